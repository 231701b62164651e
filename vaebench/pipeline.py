"""The reproduction pipeline: what every figure and study does the same way, written once.

A figure or study subclasses :class:`Study` and says only what is its own: which runs (from its
config at a budget), what happens after training (Figure 3: the marginal-likelihood estimates),
its tidy rows, the comparison with the paper, the table and the plot. The pipeline does the rest:

  reproduce(study, args)   check every option (executor, device, --out, threads, jobs, config,
                           budget, seeds) before anything is written; lock the output folder;
                           train the runs (vaebench.runner on a vaebench.executors executor:
                           local processes or Ray tasks, resumable, finished runs skipped); the
                           study's after_training hook; summarize; print the table
  summarize(study, out)    the run folders under ``out`` (whatever exists) into <name>.csv
                           (tidy), <name>_table.md/.csv, <name>.png and provenance.json
                           (machine, versions, command, wall time per run)
  add_arguments(p, study)  the options of ``vaebench reproduce <name>``
  summarize_main(study)    ``python -m vaebench.figures.<name> DIR``

Seeds: ``--seeds 0,1,2`` trains every run once per seed into ``<run>_seed<N>/`` (one seed keeps
the run's name). The summary's tidy CSV has every seed's rows; the table is the study's compare
per seed, then the mean, standard deviation, min and max over seeds (``ours`` is the mean); the
figures draw the seed mean with a min-to-max band.

Configs are ``reproductions/<name>.toml`` (shipped with the package, vaebench.resources):
``budgets`` (each with ``samples``: a number, or a table per data set), ``algorithms`` (one table
per algorithm), optional ``defaults``, and optionally the study's own settings table
(``Study.settings_table``, e.g. Figure 3's ``[marginal]``, overridable per budget).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import io
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vaebench.config import MAX_SEED, RunConfig, load_toml
from vaebench.errors import VaebenchError
from vaebench.fileio import atomic_write_json, atomic_write_text
from vaebench.runs import RunFolder, check_out_path, list_runs, lock_folder

BUDGETS = ("quick", "medium", "paper")  # what the shipped configs define


# ---- the interface ---------------------------------------------------------------------------

@dataclass
class Summary:
    """What a summary is made of, handed to the study's table and provenance hooks."""
    out: Path
    budget: str | None
    settings: dict                      # the study's settings (Study.settings), {} if none
    folders: list[RunFolder]            # the study's run folders under ``out``
    ours: object = None                 # the tidy DataFrame (<name>.csv)
    command: str | None = None
    reproduce_wall_s: float | None = None


@dataclass
class Reproduction:
    """One ``vaebench reproduce`` call, handed to ``Study.after_training``."""
    conf: dict
    budget: str
    out: Path
    runs: list[tuple[RunConfig, Path]]
    settings: dict
    jobs: int
    threads: int
    device: str | None = None
    data_dir: str | None = None
    progress: bool = True
    command: str | None = None


class Study:
    """A figure or study of the reproduction suite: only what is its own.

    Output files are <name>.csv, <name>.png, <name>_table.md, <name>_table.csv and
    provenance.json in the output folder (default results/<name>/<budget>/).
    """

    name: str = ""                # the config (reproductions/<name>.toml), the output prefix and folder
    command: str = ""             # its name on the command line if not ``name``: use ``cli_name``
    config_name: str = ""         # another study's config to use instead (its runs, the same settings)
    title: str = ""               # "Figure 2", in messages and headings
    description: str = ""         # one line for ``vaebench reproduce --help``
    run_pattern: str = ""         # its run folders' names, for messages: "<dataset>_nz<N>_<algorithm>/"
    algorithms: tuple[str, ...] = ()   # the [algorithms.<name>] tables its config may have
    columns: tuple[str, ...] = ()      # the tidy CSV's columns
    row_order: tuple[str, ...] = ()    # its rows' order (columns), ...
    row_ranks: dict = {}               # ... a column named here by its value's rank
    settings_table: str | None = None  # a config table of the study's own settings (or None)
    settings_defaults: dict = {}       # its keys and defaults

    @property
    def cli_name(self) -> str:
        """``vaebench reproduce <cli_name>``."""
        return self.command or self.name

    # -- config and runs
    def check_config(self, conf: dict, path: Path) -> None:
        """Check the config's keys of the study's own (the pipeline checks budgets and algorithms)."""

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        """Add the study's own options of ``vaebench reproduce <name>`` (e.g. --datasets)."""

    def selection(self, args, conf: dict) -> dict:
        """Those options, checked, as keyword arguments of run_specs' ``selection``."""
        return {}

    def setting_overrides(self, args) -> dict:
        """Those options that override the study's settings (e.g. Full VB's --min-samples)."""
        return {}

    def run_specs(self, conf: dict, budget: str, selection: dict, overrides: dict) -> list[tuple[RunConfig, str]]:
        """(checked RunConfig, run folder name) of every run at ``budget``; build each config with
        run_config(conf, budget, ..., overrides=overrides)."""
        raise NotImplementedError

    def run_key(self, name: str):
        """A sort key if ``name`` is one of the study's run folders, else None."""
        raise NotImplementedError

    def settings(self, conf: dict, budget: str) -> dict:
        """The study's settings at ``budget``: defaults < [<settings_table>] < [budgets.<budget>.<settings_table>]."""
        if not self.settings_table:
            return {}
        s = {**self.settings_defaults, **conf.get(self.settings_table, {}),
             **check_budget(conf, budget).get(self.settings_table, {})}
        if "min_samples" in s:  # TOML writes 1e5 as a float
            s["min_samples"] = int(float(s["min_samples"]))
        return s

    def announce(self, rep: Reproduction) -> str:
        """What the study adds to the line printed before training."""
        return ""

    def after_training(self, rep: Reproduction) -> None:
        """Work on the trained runs before the summary (Figure 3: the estimates)."""

    # -- the summary
    def stored_settings(self, provenance: dict) -> dict:
        """The settings an earlier provenance.json recorded (for summarizing alone)."""
        return {}

    def run_rows(self, folder: RunFolder, settings: dict):
        """One run's tidy rows (a DataFrame; the pipeline adds budget, lr, status and run)."""
        raise NotImplementedError

    def compare(self, ours):
        """The obtained-against-paper table (a DataFrame; <name>_table.csv)."""
        raise NotImplementedError

    def table_markdown(self, table, summary: Summary) -> str:
        """<name>_table.md."""
        raise NotImplementedError

    def plot(self, ours, path: Path, budget: str | None) -> None:
        """<name>.png."""
        raise NotImplementedError

    def run_provenance(self, folder: RunFolder, info: dict, summary: Summary) -> dict:
        """What provenance.json records of a run besides the pipeline's keys."""
        return {}

    def provenance(self, summary: Summary) -> dict:
        """What provenance.json records besides the pipeline's keys (e.g. the settings)."""
        return {}


# ---- the config ------------------------------------------------------------------------------

class Config(dict):
    """A study's TOML as a dict that remembers its file and the study's settings table."""

    path: Path | None = None
    settings_table: str | None = None


def load_config(study: Study, path: str | Path | None = None) -> Config:
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
            raise VaebenchError(f"{path}: unknown algorithm [algorithms.{name}]; {study.title} has "
                                f"{', '.join(study.algorithms)}")
    if study.settings_table:
        tables = [(study.settings_table, conf.get(study.settings_table, {}))] + [
            (f"budgets.{b}.{study.settings_table}", v.get(study.settings_table, {})) for b, v in conf["budgets"].items()]
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


def run_config(conf: dict, budget: str, *layers: dict, algorithm: str, overrides: dict | None = None,
               **keys) -> RunConfig:
    """One run's config, checked; later wins: RunConfig defaults < [defaults] < ``layers`` (the
    study's tables, e.g. [datasets.mnist]) < [algorithms.<algorithm>] < [budgets.<budget>] (its
    run keys; ``samples`` of the run's data set) < ``keys`` < ``overrides`` (None: unset)."""
    if algorithm not in conf["algorithms"]:
        raise VaebenchError(f"unknown algorithm {algorithm!r}; the config has {', '.join(conf['algorithms'])}")
    own = getattr(conf, "settings_table", None)
    d = {**conf.get("defaults", {})}
    for layer in layers:
        d.update(layer)
    d.update({**conf["algorithms"][algorithm], **{k: v for k, v in check_budget(conf, budget).items() if k != own},
              "algorithm": algorithm, **keys})
    if isinstance(d.get("samples"), dict):
        d["samples"] = budget_samples(conf, budget, d.get("dataset", RunConfig.dataset))
    d.update({k: v for k, v in (overrides or {}).items() if v is not None})
    path = getattr(conf, "path", None)
    return RunConfig.from_dict(d, where=f"{path}: " if path else "").check()


def build_runs(study: Study, conf: dict, budget: str, out: str | Path, overrides: dict | None = None,
               seeds: list[int] | None = None, **selection) -> list[tuple[RunConfig, Path]]:
    """(config, run folder) of every run of the study at ``budget``: ``<out>/<run name>/``, or
    with several ``seeds`` ``<out>/<run name>_seed<N>/`` for each (one seed: the name as is)."""
    check_budget(conf, budget)
    return with_seeds([(cfg, Path(out) / name) for cfg, name in study.run_specs(conf, budget, selection, overrides or {})],
                      seeds)


# ---- seeds -------------------------------------------------------------------------------------

_SEED_SUFFIX = re.compile(r"^(.+)_seed(\d+)$")


def with_seeds(runs: list[tuple[RunConfig, Path]], seeds: list[int] | None) -> list[tuple[RunConfig, Path]]:
    """Each run once per seed: ``<name>_seed<N>`` with several seeds; one seed keeps the name
    (and sets the seed); none keeps the runs as they are."""
    if not seeds:
        return runs
    if len(seeds) == 1:
        return [(dataclasses.replace(cfg, seed=seeds[0]), out) for cfg, out in runs]
    return [(dataclasses.replace(cfg, seed=seed), out.with_name(f"{out.name}_seed{seed}"))
            for cfg, out in runs for seed in seeds]


def split_seed(name: str) -> tuple[str, int | None]:
    """A run folder's name as (the run's name, its seed suffix or None): "a_seed2" -> ("a", 2)."""
    m = _SEED_SUFFIX.match(name)
    return (m.group(1), int(m.group(2))) if m else (name, None)


def parse_seeds(text: str) -> list[int]:
    """--seeds: distinct seeds, comma-separated ("0,1,2"); an argparse type."""
    from vaebench.cli.options import count

    seed = count(0, MAX_SEED, "--seeds")
    seeds = [seed(word.strip()) for word in text.split(",") if word.strip()]
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds takes distinct comma-separated seeds such as 0,1,2, got {text!r}")
    return seeds


def compare(study: Study, ours):
    """The obtained-against-paper table: study.compare, or with runs of several seeds
    study.compare per seed and then over seeds (seed_statistics)."""
    import pandas as pd

    seeds = ours.run.map(lambda run: split_seed(run)[1])
    if seeds.nunique(dropna=False) <= 1:
        return study.compare(ours)
    return seed_statistics(pd.concat([study.compare(g) for _, g in ours.groupby(seeds, dropna=False, sort=True)]))


SEED_STATISTICS = ("ours_std", "ours_min", "ours_max", "seeds")


def seed_statistics(per_seed):
    """Rows of ``per_seed`` (one table per seed, concatenated) that differ only in ``ours``
    (and ``difference``, ``ours_exact``) as one row: ``ours`` their mean, then ``ours_std``
    (sample standard deviation), ``ours_min``, ``ours_max`` and ``seeds`` (how many have a
    value); ``difference`` = mean - paper; ``ours_exact`` if exact in every seed."""
    keys = [c for c in per_seed.columns if c not in ("ours", "difference", "ours_exact")]
    grouped = per_seed.groupby(keys, sort=False, dropna=False)
    table = grouped.ours.agg(ours="mean", ours_std="std", ours_min="min", ours_max="max", seeds="count").reset_index()
    if "ours_exact" in per_seed:
        table["ours_exact"] = grouped.ours_exact.all().to_numpy()
    if "paper" in per_seed:
        table["difference"] = table.ours - table.paper
    columns = list(per_seed.columns)
    after = columns.index("ours") + 1
    return table[columns[:after] + list(SEED_STATISTICS) + columns[after:]]


# ---- the summary -----------------------------------------------------------------------------

def study_folders(study: Study, out: str | Path) -> list[RunFolder]:
    """The study's run folders under ``out`` (with or without a seed suffix), in the study's
    order, seeds in order."""
    found = []
    for folder in list_runs(out):
        name, seed = split_seed(folder.name)
        if (key := study.run_key(name)) is not None:
            found.append(((key, -1 if seed is None else seed), folder))
    return [f for _, f in sorted(found, key=lambda kf: kf[0])]


def read_info(folder: RunFolder) -> dict:
    """A run's run.json ({} if it has none); an unreadable one is reported and skipped."""
    try:
        return folder.read_info(missing_ok=True) or {}
    except VaebenchError as exc:
        print(f"warning: {exc}; summarizing without it", file=sys.stderr)
        return {}


def collect(study: Study, folders: list[RunFolder], budget: str | None, settings: dict):
    """Every run's rows as one tidy DataFrame (study.columns, in study.row_order)."""
    import pandas as pd

    from vaebench.figures.common import sort_in_order

    frames = []
    for folder in folders:
        df = study.run_rows(folder, settings)
        if df is None or df.empty:
            continue
        info = read_info(folder)
        df = df.copy()
        df.insert(0, "budget", budget)
        df["lr"], df["status"], df["run"] = info.get("lr"), info.get("status"), folder.name
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=list(study.columns))
    df = pd.concat(frames, ignore_index=True)
    for col in study.columns:
        if col not in df:
            df[col] = None
    df = sort_in_order(df, list(study.row_order), study.row_ranks)
    return df[list(study.columns)].reset_index(drop=True)


def frame(rows: list[dict]):
    """Rows of strings (a CSV read by vaebench.runs) as a DataFrame, numbers as numbers ('' as NaN)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    for col in df:
        values = df[col].where(df[col] != "", None)
        try:
            df[col] = pd.to_numeric(values)
        except (ValueError, TypeError):
            pass
    return df


def write_csv(path: Path, df, float_format: str | None = None) -> None:
    """``df`` as CSV (no index, \\n line ends), written atomically."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n", float_format=float_format)
    atomic_write_text(path, buf.getvalue())


def output_paths(study: Study, out: Path) -> dict[str, Path]:
    names = (f"{study.name}.csv", f"{study.name}.png", f"{study.name}_table.md", f"{study.name}_table.csv",
             "provenance.json")
    return {name: out / name for name in names}


def read_provenance(out: Path) -> dict:
    """The provenance.json an earlier summary left in ``out``; {} if none or unreadable."""
    import json

    try:
        old = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def summarize(study: Study, out: str | Path, *, budget: str | None = None, settings: dict | None = None,
              command: str | None = None, reproduce_wall_s: float | None = None) -> dict[str, Path]:
    """Summarize the study's run folders under ``out`` (whatever exists); returns the paths
    written. Alone (no ``command``), it keeps the budget, settings and command an earlier
    summary recorded; the budget is else the folder's name if it is one of BUDGETS."""
    out = Path(out)
    old = read_provenance(out)
    budget = budget or old.get("budget") or (out.name if out.name in BUDGETS else None)
    if settings is None:
        settings = study.stored_settings(old)
    if command is None:
        command, reproduce_wall_s = old.get("command"), old.get("reproduce_wall_s")
    folders = study_folders(study, out)
    s = Summary(out, budget, settings, folders, command=command, reproduce_wall_s=reproduce_wall_s)
    s.ours = collect(study, folders, budget, settings)
    if s.ours.empty:
        raise VaebenchError(f"no {study.title} results ({study.run_pattern} run folders) under {out}")
    paths = output_paths(study, out)
    write_csv(paths[f"{study.name}.csv"], s.ours)
    table = compare(study, s.ours)
    write_csv(paths[f"{study.name}_table.csv"], table, float_format="%.4f")
    atomic_write_text(paths[f"{study.name}_table.md"], study.table_markdown(table, s))
    study.plot(s.ours, paths[f"{study.name}.png"], budget)
    atomic_write_json(paths["provenance.json"], provenance(study, s))
    return paths


def provenance(study: Study, s: Summary) -> dict:
    """provenance.json: the budget, command, machine and versions, and per run its status, step
    size and wall times (from its run.json), with what the study adds."""
    runs, infos = {}, []
    for folder in s.folders:
        info = read_info(folder)
        if not info:
            continue
        infos.append(info)
        train_s, eval_s = info.get("train_wall_s") or 0.0, info.get("eval_wall_s") or 0.0
        machine = info.get("machine", {})
        runs[folder.name] = {
            "status": info.get("status"), "samples_seen": info.get("samples_seen"),
            "budget_samples": info.get("config", {}).get("samples"), "lr": info.get("lr"),
            "lr_choice": info.get("lr_choice"), "wall_s": round(train_s + eval_s, 1), "train_wall_s": train_s,
            "eval_wall_s": eval_s, "samples_per_s": info.get("samples_per_s"), "device": machine.get("device"),
            "device_name": machine.get("device_name"), "torch_threads": machine.get("torch_threads"),
            "git": info.get("git"), **study.run_provenance(folder, info, s)}
    return {"figure": study.name, "budget": s.budget, "command": s.command, "reproduce_wall_s": s.reproduce_wall_s,
            "summarized_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            **machine_and_versions(infos), "total_run_wall_s": round(sum(r["wall_s"] for r in runs.values()), 1),
            **study.provenance(s), "runs": runs}


def machine_and_versions(infos: list[dict]) -> dict:
    """Provenance's "machine" and "versions": the one all runs share, else the list of distinct ones."""
    machines, versions = [], []
    for info in infos:
        if info.get("machine") and info["machine"] not in machines:
            machines.append(info["machine"])
        if info.get("versions") and info["versions"] not in versions:
            versions.append(info["versions"])
    return {"machine": machines[0] if len(machines) == 1 else machines,
            "versions": versions[0] if len(versions) == 1 else versions}


def written(paths: dict) -> str:
    return "wrote " + ", ".join(str(p) for p in paths.values())


# ---- vaebench reproduce <name> ---------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser, study: Study) -> None:
    """The options of ``vaebench reproduce <study>``: the shared ones and the study's own."""
    p.add_argument("--budget", default="quick",
                   help=f"a budget of the config: {', '.join(BUDGETS)} (default quick: minutes on a laptop CPU)")
    study.add_arguments(p)
    add_run_arguments(p, out_help=f"output folder (default results/{study.name}/<budget>, with several --seeds "
                                  f"results/{study.name}/<budget>_seeds)",
                      config_help=f"the study's TOML (default: the shipped reproductions/{study.name}.toml)")


def add_run_arguments(p: argparse.ArgumentParser, *, out_help: str, config_help: str | None = None) -> None:
    """The options of training many runs (``vaebench reproduce`` and ``vaebench sweep``); then
    every option of ``p`` is recorded, to write the command into provenance.json."""
    from vaebench.cli.options import count
    from vaebench.executors import EXECUTORS, GPUS_PER_RUN

    p.add_argument("--jobs", type=count(1, 1024, "--jobs"), default=2,
                   help="runs trained at once, in separate processes (default 2; --executor ray without "
                        "--address: a local Ray instance of --jobs x --threads CPUs)")
    p.add_argument("--threads", type=count(1, 1024, "--threads"),
                   help="torch CPU threads of each run (default: the CPUs divided by --jobs, at least 1; "
                        "--executor ray: 1, and each run asks Ray for as many CPUs)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--backend", default="eager", help="hot-path ops backend (default eager)")
    if config_help:
        p.add_argument("--config", help=config_help)
    p.add_argument("--data-dir", dest="data_dir", help="folder with the data files")
    p.add_argument("--out", help=out_help)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--seeds", type=parse_seeds,
                   help="train every run once per seed, e.g. 0,1,2 (several seeds: run folders <run>_seed<N>/, "
                        "tables give the mean and standard deviation over seeds, figures the mean and a min-to-max "
                        "band; default: the config's seed)")
    p.add_argument("--executor", choices=EXECUTORS,
                   help='where the runs train: local (default: vaebench\'s process pool) or ray (a Ray task per '
                        'run; pip install "vaebench[cluster]")')
    p.add_argument("--address", help="--executor ray: the Ray cluster to join (default $RAY_ADDRESS, else a local "
                                     "Ray instance)")
    p.add_argument("--gpus-per-run", dest="gpus_per_run", type=gpu_share,
                   help=f"--executor ray --device cuda: the share of a GPU each run asks for (default {GPUS_PER_RUN})")
    # every option, to write the command into provenance.json
    p.set_defaults(_options=[(a.option_strings[0], a.dest, a.const if isinstance(a.const, bool) else None)
                             for a in p._actions if a.option_strings and a.dest != "help"])


def gpu_share(text: str) -> float:
    """--gpus-per-run: a number in (0, 1]; an argparse type."""
    from vaebench.cli.options import finite_float

    value = finite_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"--gpus-per-run must be in (0, 1], got {text}")
    return value


def command_line(words: list[str], args, out: Path) -> str:
    """The command ``words`` (e.g. vaebench reproduce figure2) with every option of ``args``
    given or defaulted spelled out."""
    words = list(words)
    for flag, dest, switch in getattr(args, "_options", []):  # switch: the value a store_true/false flag sets
        value = getattr(args, dest, None)
        if dest == "out":
            words += [flag, str(out)]
        elif switch is not None:
            words += [flag] if value is switch else []
        elif value is not None:
            words += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return shlex.join(words)


def run_overrides(args) -> dict:
    """The run keys the command line sets for every run."""
    return {"device": args.device, "backend": args.backend, "data_dir": args.data_dir}


def reproduce(study: Study, args) -> int:
    """``vaebench reproduce <study>``: check, lock, train, the study's hook, summarize, print."""
    from vaebench.executors import from_args

    # everything is checked before anything is written
    executor = from_args(args)
    conf = load_config(study, args.config)
    check_budget(conf, args.budget)
    selection = study.selection(args, conf)
    several = args.seeds is not None and len(args.seeds) > 1
    out = check_out_path(args.out if args.out is not None
                         else Path("results") / study.name / (f"{args.budget}_seeds" if several else args.budget))
    runs = build_runs(study, conf, args.budget, out, run_overrides(args), seeds=args.seeds, **selection)
    settings = {**study.settings(conf, args.budget), **study.setting_overrides(args)}
    rep = Reproduction(conf, args.budget, out, runs, settings, args.jobs, executor.threads,
                       args.device, args.data_dir, args.progress,
                       command_line(["vaebench", "reproduce", study.cli_name], args, out))
    return run_study(study, rep, executor, what=f"vaebench reproduce {study.cli_name}", hook_threads=args.threads)


def run_study(study: Study, rep: Reproduction, executor, *, what: str, hook_threads: int | None = None) -> int:
    """Lock the output folder, train the runs on ``executor``, the study's hook (with
    ``hook_threads`` torch threads, None: all), summarize, print the table."""
    from vaebench.runner import run_many, torch_threads

    seeds = sorted({cfg.seed for cfg, _ in rep.runs})
    with executor, lock_folder(rep.out, what):
        print(f"{study.name}{f', budget {rep.budget}' if rep.budget else ''}: {len(rep.runs)} runs"
              f"{f' ({len(seeds)} seeds: ' + ', '.join(map(str, seeds)) + ')' if len(seeds) > 1 else ''} into "
              f"{rep.out}/ ({executor.describe()}){study.announce(rep)}", flush=True)
        t0 = time.perf_counter()
        try:
            run_many(rep.runs, jobs=rep.jobs, threads=rep.threads, progress=rep.progress, executor=executor)
            with torch_threads(hook_threads):  # the hook runs alone here: all of torch's threads unless given
                study.after_training(rep)
        except BaseException:
            _summarize_what_exists(study, rep, round(time.perf_counter() - t0, 1))
            raise
        wall = round(time.perf_counter() - t0, 1)
        paths = summarize(study, rep.out, budget=rep.budget, settings=rep.settings, command=rep.command,
                          reproduce_wall_s=wall)
    print(f"done in {wall:.0f} s; " + written(paths))
    print(paths[f"{study.name}_table.md"].read_text(encoding="utf-8").split("### Every budget")[0].rstrip())
    return 0


def _summarize_what_exists(study: Study, rep: Reproduction, wall: float) -> None:
    """After a failure: summarize the runs that exist, without hiding the failure."""
    if not study_folders(study, rep.out):
        return
    try:
        paths = summarize(study, rep.out, budget=rep.budget, settings=rep.settings, command=rep.command,
                          reproduce_wall_s=wall)
        print(f"summarized what exists: {written(paths)}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 -- the failure that got us here is what matters
        print(f"could not summarize what exists: {exc}", file=sys.stderr)


# ---- python -m vaebench.figures.<name> DIR ---------------------------------------------------

def summarize_main(study: Study, argv: list[str] | None = None) -> int:
    """Summarize existing run folders; exit status 2 with one line on a VaebenchError."""
    p = argparse.ArgumentParser(prog=f"python -m vaebench.figures.{study.name}",
                                description=f"Summarize existing {study.title} run folders: CSV, figure, table, "
                                            "provenance.")
    p.add_argument("out_dir", type=Path, help=f"folder holding {study.run_pattern} run folders")
    p.add_argument("--budget", help="budget label written into the outputs (default: the folder's name)")
    args = p.parse_args(argv)
    try:
        if not args.out_dir.is_dir():
            raise VaebenchError(f"{args.out_dir} is not a folder")
        with lock_folder(check_out_path(args.out_dir), f"python -m vaebench.figures.{study.name}"):
            paths = summarize(study, args.out_dir, budget=args.budget)
    except VaebenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(written(paths))
    return 0


__all__ = ["Study", "Summary", "Reproduction", "Config", "BUDGETS", "load_config", "check_budget", "budget_samples",
           "run_config", "build_runs", "with_seeds", "split_seed", "parse_seeds", "compare", "seed_statistics",
           "study_folders", "collect", "summarize", "provenance", "reproduce", "run_study", "add_arguments",
           "add_run_arguments", "summarize_main", "frame", "write_csv"]
