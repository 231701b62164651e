"""A sweep file: a grid over any RunConfig fields x seeds (trained and summarized as a study by
vaebench.figures.sweep, on this machine or on Ray: vaebench.engine.executors).

A sweep file (TOML; reproductions/sweeps/example.toml):

    name = "nz-by-lr"        # optional (default: the file's stem); default output runs/sweeps/<name>/
    seeds = [0, 1, 2]        # optional (--seeds wins); several: run folders <run>_seed<N>/
    [base]                   # RunConfig keys of every run (vaebench.config), [base.options] too
    dataset = "mnist"
    samples = 1e5
    [grid]                   # RunConfig keys, each a list of values: the runs are their product
    nz = [3, 10]
    lr = [0.01, 0.02]

Run ``<key>-<value>_<key>-<value>...`` (grid keys in the file's order: ``nz-3_lr-0.01``) trains
into ``<out>/<run>/`` (``<run>_seed<N>/`` with several seeds). ``vaebench sweep FILE`` trains
every run (resumable, finished runs skipped), then writes

  sweep.csv          every run's metrics, tidy, with its grid point (``point``: the run's name)
  sweep_table.md     the bound at the end of each grid point's runs (mean ± sd over seeds), .csv too
  sweep.png          the bound against samples, one colour per grid point (seed mean, min-max band)
  provenance.json    the sweep, command, machine, versions and wall time of every run
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path

from vaebench.config import MAX_SEED, RunConfig, load_toml
from vaebench.errors import VaebenchError

SWEEP_KEYS = ("name", "seeds", "base", "grid")
SCALARS = (str, int, float, bool)


@dataclass
class Sweep:
    path: Path
    name: str
    base: dict
    grid: dict  # key: its values, in the file's order
    seeds: list[int] | None

    def points(self) -> dict[str, dict]:
        """Every grid point by its run name, in order (the first key varies slowest)."""
        keys = list(self.grid)
        points = {}
        for values in itertools.product(*self.grid.values()):
            point = dict(zip(keys, values))
            name = "_".join(f"{k}-{_slug(v)}" for k, v in point.items()) or "run"
            if name in points:
                raise VaebenchError(f"{self.path}: grid points {points[name]} and {point} get the same run name {name}")
            points[name] = point
        return points

    def runs(self, out: str | Path, overrides: dict | None = None) -> list[tuple[RunConfig, Path]]:
        """(checked config, run folder) of every grid point; ``overrides`` (None: unset) win."""
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        runs = []
        for name, point in self.points().items():
            where = f"{self.path}: {name}: "
            cfg = RunConfig.from_dict({**self.base, **point, **given}, where=where)
            try:
                runs.append((cfg.check(), Path(out) / name))
            except VaebenchError as exc:
                raise VaebenchError(f"{where}{exc}") from None
        return runs


def _slug(value) -> str:
    """A grid value in a folder name: whole floats as integers, odd characters as '+'."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "+", str(value).lower() if isinstance(value, bool) else str(value))


def load_sweep(path: str | Path) -> Sweep:
    """A sweep file, checked (every run's config too): one-line errors naming the file."""
    path = Path(path)
    d = load_toml(path)
    unknown = sorted(set(d) - set(SWEEP_KEYS))
    if unknown:
        raise VaebenchError(f"{path}: unknown key(s) {', '.join(unknown)}; a sweep has {', '.join(SWEEP_KEYS)}")
    base, grid = d.get("base", {}), d.get("grid", {})
    if not isinstance(base, dict) or not isinstance(grid, dict):
        raise VaebenchError(f"{path}: [base] and [grid] must be tables")
    for key, values in grid.items():
        if key == "seed":
            raise VaebenchError(f"{path}: [grid] seed: give the seeds as `seeds = [...]` (summarized over seeds)")
        if not isinstance(values, list) or not values or not all(isinstance(v, SCALARS) for v in values):
            raise VaebenchError(f"{path}: [grid] {key} must be a non-empty list of numbers, strings or booleans")
    seeds = d.get("seeds")
    if seeds is not None and not (
        isinstance(seeds, list)
        and seeds
        and len(set(seeds)) == len(seeds)
        and all(type(s) is int and 0 <= s <= MAX_SEED for s in seeds)
    ):
        raise VaebenchError(f"{path}: seeds must be a list of distinct seeds in [0, 2^63 - 1], got {seeds!r}")
    name = d.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._+-]+", name):
        raise VaebenchError(f"{path}: name must be letters, digits and . _ + -, got {name!r}")
    sweep = Sweep(path, name, base, grid, seeds)
    sweep.runs("OUT")  # every config checked now
    return sweep
