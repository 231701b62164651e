"""Reproduce a figure of the paper: train every run of its config (in parallel, resumable,
finished runs skipped), then write the tidy CSV, the figure with the paper's curves beside
ours, and the obtained-versus-paper table."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

FIGURES = {"figure2": "vaebench.figures.figure2", "figure3": "vaebench.figures.figure3"}
BUDGETS = ("quick", "medium", "paper")
REPRODUCTIONS_DIR = Path(__file__).resolve().parents[1] / "reproductions"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("figure", choices=list(FIGURES), help="which figure")
    p.add_argument("--budget", choices=BUDGETS, default="quick",
                   help="quick (minutes on a laptop CPU), medium (1e7 samples a run) or paper (as the paper's x-axis)")
    p.add_argument("--datasets", help="figure2: comma-separated subset of mnist,frey (default both)")
    p.add_argument("--n-train", dest="n_train", help="figure3: comma-separated subset of 1000,50000 (default both)")
    p.add_argument("--threads", type=int, help="torch CPU threads of this process (default: torch's)")
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once, in separate processes (default 2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--backend", default="eager", help="hot-path ops backend (default eager)")
    p.add_argument("--config", type=Path, help="the figure's TOML (default reproductions/<figure>.toml)")
    p.add_argument("--data-dir", dest="data_dir", help="folder with the data files")
    p.add_argument("--out", type=Path, help="output folder (default results/<figure>/<budget>)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")


def run(args) -> int:
    if args.jobs < 1:
        from vaebench.errors import VaebenchError

        raise VaebenchError(f"--jobs must be at least 1, got {args.jobs}")
    return importlib.import_module(FIGURES[args.figure]).reproduce(args)
