"""A study's config (reproductions/<name>.toml, or the user's) and the runs it makes at a budget.

A config has ``budgets`` (each with ``samples``: a number, or a table per data set),
``algorithms`` (one table per algorithm), optional ``defaults``, and optionally the study's own
settings table. A run's keys are layered: RunConfig defaults < [defaults] < the study's tables <
[algorithms.<name>] < [budgets.<budget>] < the study's keys < the command line's.
"""

from __future__ import annotations

from pathlib import Path

from vaebench.config import RunConfig, load_toml
from vaebench.errors import VaebenchError
from vaebench.runs import with_seeds


class Config(dict):
    """A study's TOML as a dict that remembers its file and the study's settings table."""

    path: Path | None = None
    settings_table: str | None = None


def load_config(study, path: str | Path | None = None) -> Config:
    """The study's config (``reproductions/<name>.toml`` unless ``path``), checked."""
    from vaebench.resources import config_path

    path = config_path(study.config_name or study.name, path)
    conf = Config(load_toml(path))
    conf.path, conf.settings_table = path, study.settings_table
    for key in ("budgets", "algorithms"):
        if not isinstance(conf.get(key), dict) or not conf[key]:
            raise VaebenchError(f"{path}: needs a [{key}] table")
    datasets = conf.get("datasets") if isinstance(conf.get("datasets"), dict) else {}
    for name, budget in conf["budgets"].items():
        samples = budget.get("samples") if isinstance(budget, dict) else None
        if samples is None:
            raise VaebenchError(f"{path}: [budgets.{name}] needs `samples` (a number or a table per data set)")
        missing = sorted(set(datasets) - set(samples)) if isinstance(samples, dict) else []
        if missing:
            raise VaebenchError(f"{path}: [budgets.{name}] samples has no value for {', '.join(missing)}")
    for name in conf["algorithms"]:
        if name not in study.algorithms:
            raise VaebenchError(
                f"{path}: unknown algorithm [algorithms.{name}]; {study.title} has {', '.join(study.algorithms)}"
            )
    if study.settings_table:
        tables = [(study.settings_table, conf.get(study.settings_table, {}))] + [
            (f"budgets.{b}.{study.settings_table}", v.get(study.settings_table, {})) for b, v in conf["budgets"].items()
        ]
        for where, table in tables:
            unknown = sorted(set(table) - set(study.settings_defaults))
            if unknown:
                raise VaebenchError(f"{path}: unknown [{where}] key(s): {', '.join(unknown)}")
    study.check_config(conf, path)
    return conf


def check_budget(conf: dict, budget: str) -> dict:
    """The [budgets.<budget>] table, or a one-line error naming the config's budgets."""
    if budget not in conf["budgets"]:
        raise VaebenchError(f"unknown budget {budget!r}; the config has {', '.join(conf['budgets'])}")
    return conf["budgets"][budget]


def budget_samples(conf: dict, budget: str, dataset: str | None = None) -> int:
    """The training samples of a run at ``budget`` (of ``dataset`` where they are a table)."""
    samples = check_budget(conf, budget)["samples"]
    if isinstance(samples, dict):
        if dataset not in samples:
            raise VaebenchError(f"[budgets.{budget}] samples has no value for {dataset}")
        samples = samples[dataset]
    return int(float(samples))


def run_config(
    conf: dict, budget: str, *layers: dict, algorithm: str, overrides: dict | None = None, **keys
) -> RunConfig:
    """One run's config, checked; later wins: RunConfig defaults < [defaults] < ``layers`` (the
    study's tables, e.g. [datasets.mnist]) < [algorithms.<algorithm>] < [budgets.<budget>] (its
    run keys; ``samples`` of the run's data set) < ``keys`` < ``overrides`` (None: unset)."""
    if algorithm not in conf["algorithms"]:
        raise VaebenchError(f"unknown algorithm {algorithm!r}; the config has {', '.join(conf['algorithms'])}")
    own = getattr(conf, "settings_table", None)
    d = {**conf.get("defaults", {})}
    for layer in layers:
        d.update(layer)
    d.update(
        {
            **conf["algorithms"][algorithm],
            **{k: v for k, v in check_budget(conf, budget).items() if k != own},
            "algorithm": algorithm,
            **keys,
        }
    )
    if isinstance(d.get("samples"), dict):
        d["samples"] = budget_samples(conf, budget, d.get("dataset", RunConfig.dataset))
    d.update({k: v for k, v in (overrides or {}).items() if v is not None})
    path = getattr(conf, "path", None)
    where = f"{path}: " if path else ""
    return RunConfig.from_dict(d, where=where).check(where)


def build_runs(
    study,
    conf: dict,
    budget: str,
    out: str | Path,
    overrides: dict | None = None,
    seeds: list[int] | None = None,
    **selection,
) -> list[tuple[RunConfig, Path]]:
    """(config, run folder) of every run of the study at ``budget``: ``<out>/<run name>/``, or
    with several ``seeds`` ``<out>/<run name>_seed<N>/`` for each (one seed: the name as is)."""
    check_budget(conf, budget)
    return with_seeds(
        [(cfg, Path(out) / name) for cfg, name in study.run_specs(conf, budget, selection, overrides or {})], seeds
    )
