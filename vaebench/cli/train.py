"""Train one model (AEVB, wake-sleep or MCEM) on MNIST or Frey Face, with the paper's setup
by default. The run folder gets metrics.csv, run.json and checkpoints; an interrupted run
continues with --resume and ends exactly as an uninterrupted one would; --resume --samples N
extends a finished run."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaebench.cli.options import add_run_options, add_threads, given_run_options, set_threads
from vaebench.config import RunConfig
from vaebench.errors import VaebenchError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="a TOML file of run options (command-line options win)")
    add_run_options(p)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint (or extend it with a larger --samples)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    add_threads(p)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def config_from_args(args) -> RunConfig:
    """The run's config from the command line (vaebench.train.run_config_for)."""
    from vaebench.train import run_config_for

    return run_config_for(args.out, given_run_options(args), config=args.config, resume=args.resume)


def run(args) -> int:
    from vaebench.train import train

    if args.resume and args.overwrite:
        raise VaebenchError("--resume and --overwrite exclude each other")
    cfg = config_from_args(args)
    set_threads(args)
    info = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite, progress=args.progress)
    final = info.get("final") or {}
    summary = ", ".join(f"{split} {value:.2f}" for split, value in final.items())
    print(
        f"finished {cfg.algorithm} on {cfg.dataset} (N_z={cfg.nz}) at {info['samples_seen']:,} samples: "
        f"lower bound {summary or 'n/a'}; step size {info['lr']}; {info['samples_per_s']} samples/s; "
        f"results in {args.out}"
    )
    return 0
