"""The options of the commands that train many runs (``vaebench reproduce <study>`` and
``vaebench sweep``), and the command line they record in provenance.json."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from vaebench.cli.options import count, finite_float
from vaebench.config import MAX_SEED
from vaebench.engine.executors import EXECUTORS, GPUS_PER_RUN
from vaebench.engine.runs_many import RunOptions
from vaebench.engine.study import BUDGETS, Study


def add_arguments(p: argparse.ArgumentParser, study: Study) -> None:
    """The options of ``vaebench reproduce <study>``: the shared ones and the study's own."""
    p.add_argument(
        "--budget",
        default="quick",
        help=f"a budget of the config: {', '.join(BUDGETS)} (default quick: minutes on a laptop CPU)",
    )
    for option in study.options:
        if option.switch:
            p.add_argument(option.flag, dest=option.dest, action="store_true", help=option.help)
        else:
            p.add_argument(option.flag, dest=option.dest, type=option.type, help=option.help)
    add_run_arguments(
        p,
        out_help=f"output folder (default results/{study.name}/<budget>, with several --seeds "
        f"results/{study.name}/<budget>_seeds)",
        config_help=f"the study's TOML (default: the shipped reproductions/{study.name}.toml)",
    )


def add_run_arguments(p: argparse.ArgumentParser, *, out_help: str, config_help: str | None = None) -> None:
    """The options of training many runs (``vaebench reproduce`` and ``vaebench sweep``); then
    every option of ``p`` is recorded, to write the command into provenance.json."""
    p.add_argument(
        "--jobs",
        type=count(1, 1024, "--jobs"),
        default=2,
        help="runs trained at once, in separate processes (default 2; --executor ray without "
        "--address: a local Ray instance of --jobs x --threads CPUs)",
    )
    p.add_argument(
        "--threads",
        type=count(1, 1024, "--threads"),
        help="torch CPU threads of each run (default: the CPUs divided by --jobs, at least 1; "
        "--executor ray: 1, and each run asks Ray for as many CPUs)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--backend", default="eager", help="hot-path ops backend (default eager)")
    if config_help:
        p.add_argument("--config", help=config_help)
    p.add_argument("--data-dir", dest="data_dir", help="folder with the data files")
    p.add_argument("--out", help=out_help)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument(
        "--seeds",
        type=parse_seeds,
        help="train every run once per seed, e.g. 0,1,2 (several seeds: run folders <run>_seed<N>/, "
        "tables give the mean and standard deviation over seeds, figures the mean and a min-to-max "
        "band; default: the config's seed)",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="where the runs train: local (default: vaebench's process pool) or ray (a Ray task per "
        'run; pip install "vaebench[cluster]")',
    )
    p.add_argument(
        "--address", help="--executor ray: the Ray cluster to join (default $RAY_ADDRESS, else a local Ray instance)"
    )
    p.add_argument(
        "--gpus-per-run",
        dest="gpus_per_run",
        type=gpu_share,
        help=f"--executor ray --device cuda: the share of a GPU each run asks for (default {GPUS_PER_RUN})",
    )
    # every option, to write the command into provenance.json
    p.set_defaults(
        _options=[
            (a.option_strings[0], a.dest, a.const if isinstance(a.const, bool) else None)
            for a in p._actions
            if a.option_strings and a.dest != "help"
        ]
    )


def gpu_share(text: str) -> float:
    """--gpus-per-run: a number in (0, 1]; an argparse type."""
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


def run_options(args) -> RunOptions:
    """How the runs train, from the options add_run_arguments added."""
    return RunOptions(
        jobs=args.jobs,
        threads=args.threads,
        device=args.device,
        backend=args.backend,
        data_dir=args.data_dir,
        progress=args.progress,
        executor=args.executor or "local",
        address=args.address,
        gpus_per_run=args.gpus_per_run,
    )


def study_options(args, study: Study) -> dict:
    """The values of the study's own options (Study.options), by dest."""
    return {option.dest: getattr(args, option.dest) for option in study.options}


def parse_seeds(text: str) -> list[int]:
    """--seeds: distinct seeds, comma-separated ("0,1,2"); an argparse type."""
    seed = count(0, MAX_SEED, "--seeds")
    seeds = [seed(word.strip()) for word in text.split(",") if word.strip()]
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds takes distinct comma-separated seeds such as 0,1,2, got {text!r}")
    return seeds
