"""``python -m vaebench.figures.<name> DIR``: summarize existing run folders of a study (its
CSV, figure, table and provenance) without training anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vaebench.engine.study import Study
from vaebench.engine.summary import summarize, written
from vaebench.errors import VaebenchError
from vaebench.runs import check_out_path, lock_folder


def main(study: Study, argv: list[str] | None = None) -> int:
    """Summarize existing run folders; exit status 2 with one line on a VaebenchError."""
    p = argparse.ArgumentParser(
        prog=f"python -m vaebench.figures.{study.name}",
        description=f"Summarize existing {study.title} run folders: CSV, figure, table, provenance.",
    )
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
