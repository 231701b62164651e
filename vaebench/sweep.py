"""A sweep: a grid over any RunConfig fields x seeds, trained and summarized as the figures are
(vaebench.pipeline), on this machine or on Ray (vaebench.executors).

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
import math
import re
from dataclasses import dataclass
from pathlib import Path

from vaebench import pipeline
from vaebench.config import MAX_SEED, RunConfig, load_toml
from vaebench.errors import VaebenchError
from vaebench.figures.common import (LINESTYLES, draw_curves, format_samples, format_spread, new_figure, ranks,
                                     save_figure, seeds_title)
from vaebench.runs import METRIC_COLUMNS

SWEEP_KEYS = ("name", "seeds", "base", "grid")
SCALARS = (str, int, float, bool)


@dataclass
class Sweep:
    path: Path
    name: str
    base: dict
    grid: dict            # key: its values, in the file's order
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
    if seeds is not None and not (isinstance(seeds, list) and seeds and len(set(seeds)) == len(seeds)
                                  and all(type(s) is int and 0 <= s <= MAX_SEED for s in seeds)):
        raise VaebenchError(f"{path}: seeds must be a list of distinct seeds in [0, 2^63 - 1], got {seeds!r}")
    name = d.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._+-]+", name):
        raise VaebenchError(f"{path}: name must be letters, digits and . _ + -, got {name!r}")
    sweep = Sweep(path, name, base, grid, seeds)
    sweep.runs("OUT")  # every config checked now
    return sweep


class SweepStudy(pipeline.Study):
    """A sweep as a study of the pipeline: its runs, rows, table and plot."""

    name, title = "sweep", "Sweep"
    run_pattern = "<key>-<value>_.../"

    def __init__(self, sweep: Sweep):
        self.sweep, self.points = sweep, sweep.points()
        self.title = f"Sweep {sweep.name}"
        extra = [k for k in sweep.grid if k not in METRIC_COLUMNS]
        self.columns = ("point", *extra, *METRIC_COLUMNS, "lr", "status", "run")
        self.row_order = ("point", "seed", "samples_seen", "split")
        self.row_ranks = {"point": ranks(*self.points), "split": ranks("train", "test")}

    def run_key(self, name):
        return list(self.points).index(name) if name in self.points else None

    def run_rows(self, folder, settings):
        df = folder.read_metrics()[list(METRIC_COLUMNS)]
        point = pipeline.split_seed(folder.name)[0]
        df.insert(0, "point", point)
        for key, value in self.points[point].items():
            if key not in df:
                df[key] = value
        return df

    def compare(self, ours):
        """Per grid point and split: the bound at the last evaluation (``samples``)."""
        import pandas as pd

        rows = []
        for (point, split), g in ours.groupby(["point", "split"], sort=False):
            last = g.loc[g.samples_seen.idxmax()]
            rows.append({"point": point, **self.points[point], "split": split, "samples": int(last.samples_seen),
                         "ours": float(last.lower_bound)})
        return pd.DataFrame(rows, columns=["point", *self.sweep.grid, "split", "samples", "ours"])

    def table_markdown(self, table, summary):
        keys = list(self.sweep.grid)
        lines = [f"## {self.title}: the average lower bound per datapoint at the end of each run", "",
                 "| " + " | ".join([*keys, "samples", "train", "test"]) + " |",
                 "|" + "|".join(["---"] * len(keys) + ["---:"] * 3) + "|"]
        for point in self.points:
            g = table[table.point == point]
            if g.empty:
                continue
            cells = {r.split: format_spread(r, 2) for r in g.itertuples()}
            lines.append("| " + " | ".join([*(str(v) for v in self.points[point].values()),
                                            format_samples(int(g.samples.max())), cells.get("train", ""),
                                            cells.get("test", "")]) + " |")
        seeds = int(table.seeds.max()) if "seeds" in table else 1
        note = (f"Mean ± standard deviation over {seeds} seeds. " if seeds > 1 else "") + \
            f"Each run's SGVB-B bound on the whole split at its last evaluation (nats). Sweep file: {self.sweep.path}."
        return "\n".join(lines + ["", note, ""])

    def plot(self, ours, path, budget):
        import matplotlib

        colors = {p: matplotlib.colormaps["tab10"](i % 10) for i, p in enumerate(self.points)}
        fig, axes = new_figure(1, 1, (7.5, 4.8))
        ax = axes[0][0]
        draw_curves(ax, ours, "lower_bound", colors, by="point", lw=1.4, marker="o", ms=2)
        ax.set_xscale("log")
        late = ours[ours.samples_seen >= math.sqrt(ours.samples_seen.min() * ours.samples_seen.max())].lower_bound
        ys = [v for v in late if math.isfinite(v)]  # the y range of the later half (log x): early bounds squash it
        if ys:
            pad = 0.1 * (max(ys) - min(ys) or 1.0)
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=colors[p], lw=1.4, label=p) for p in self.points if (ours.point == p).any()]
        handles += [Line2D([], [], color="k", ls=ls, label=split) for split, ls in LINESTYLES.items()]
        ax.legend(handles=handles, fontsize=7, ncol=2)
        ax.set_xlabel("# training samples evaluated", fontsize=9)
        ax.set_ylabel(r"$\mathcal{L}$ per datapoint", fontsize=9)
        ax.set_title(f"{self.title}{seeds_title(ours)}", fontsize=10)
        ax.grid(True, which="major", lw=0.3, alpha=0.5)
        fig.tight_layout()
        save_figure(fig, path)

    def provenance(self, summary):
        s = self.sweep
        return {"sweep": {"file": str(s.path), "name": s.name, "base": s.base, "grid": s.grid, "seeds": s.seeds}}


def run(args) -> int:
    """``vaebench sweep FILE``: check, lock, train, summarize, print (vaebench.pipeline.run_study)."""
    from vaebench.executors import from_args
    from vaebench.runs import check_out_path

    executor = from_args(args)
    sweep = load_sweep(args.sweep)
    out = check_out_path(args.out if args.out is not None else Path("runs") / "sweeps" / sweep.name)
    runs = pipeline.with_seeds(sweep.runs(out, pipeline.run_overrides(args)), args.seeds or sweep.seeds)
    rep = pipeline.Reproduction({}, None, out, runs, {}, args.jobs, executor.threads, args.device, args.data_dir,
                                args.progress, pipeline.command_line(["vaebench", "sweep", str(args.sweep)], args, out))
    return pipeline.run_study(SweepStudy(sweep), rep, executor, what="vaebench sweep", hook_threads=args.threads)
