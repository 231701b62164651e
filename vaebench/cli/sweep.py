"""Train a sweep: a grid over any run settings x seeds, from a TOML file (vaebench.sweep), on
this machine's processes or as Ray tasks (--executor ray), each run resumable and finished runs
skipped; then write sweep.csv, sweep_table.md (mean ± sd over seeds), sweep.png and
provenance.json beside the run folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaebench import pipeline

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", type=Path, metavar="SWEEP.toml",
                   help="the sweep: name, seeds, [base] and [grid] (see reproductions/sweeps/example.toml)")
    pipeline.add_run_arguments(p, out_help="output folder (default runs/sweeps/<the sweep's name>)")


def run(args) -> int:
    from vaebench.sweep import run as run_sweep

    return run_sweep(args)
