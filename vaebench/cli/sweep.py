"""Train a sweep: a grid over any run settings x seeds, from a TOML file (vaebench.engine.sweep), on
this machine's processes or as Ray tasks (--executor ray), each run resumable and finished runs
skipped; then write sweep.csv, sweep_table.md (mean ± sd over seeds), sweep.png and
provenance.json beside the run folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaebench.cli.run_options import add_run_arguments, command_line, run_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "sweep",
        type=Path,
        metavar="SWEEP.toml",
        help="the sweep: name, seeds, [base] and [grid] (see reproductions/sweeps/example.toml)",
    )
    add_run_arguments(p, out_help="output folder (default runs/sweeps/<the sweep's name>)")


def run(args) -> int:
    from vaebench.figures.sweep import run_sweep

    return run_sweep(
        args.sweep,
        out=args.out,
        seeds=args.seeds,
        run=run_options(args),
        command=lambda out: command_line(["vaebench", "sweep", str(args.sweep)], args, out),
    )
