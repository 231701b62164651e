"""What the figure modules share: paths, reading run folders and old outputs, table
formatting, provenance pieces, and the console output of ``reproduce`` and of
``python -m vaebench.figures.<figure>``."""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import math
import sys
from pathlib import Path

from vaebench.errors import VaebenchError
from vaebench.fileio import atomic_write_text

REPRODUCTIONS_DIR = Path(__file__).resolve().parents[2] / "reproductions"
PAPER_DIR = REPRODUCTIONS_DIR / "paper"
BUDGETS = ("quick", "medium", "paper")


# ---- reading -------------------------------------------------------------------------------

def read_paper_csv(path: str | Path):
    """One of the paper's CSVs, its algorithm column in vaebench's spelling ("wake_sleep" -> "wake-sleep")."""
    import pandas as pd

    df = pd.read_csv(path)
    df["algorithm"] = df["algorithm"].str.replace("_", "-")
    return df


def read_run_json(run_dir: Path) -> dict:
    """A run folder's run.json; {} if it is missing or unreadable."""
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def read_old_provenance(out_dir: Path) -> dict:
    """The provenance.json an earlier summary left in ``out_dir``; {} if none or unreadable."""
    path = out_dir / "provenance.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {}


def default_budget(out_dir: Path, old: dict) -> str | None:
    """The budget of an earlier summary, else the folder's name if it is a budget."""
    return old.get("budget") or (out_dir.name if out_dir.name in BUDGETS else None)


# ---- tables --------------------------------------------------------------------------------

def add_run_columns(df, run_dir: Path, budget: str | None):
    """``df`` (one run's rows) with budget first and the run's lr, status and folder name last."""
    info = read_run_json(run_dir)
    df.insert(0, "budget", budget)
    df["lr"] = info.get("lr")
    df["status"] = info.get("status")
    df["run"] = run_dir.name
    return df


def sort_in_order(df, columns: list[str], order: dict[str, dict]):
    """``df`` sorted (stably) by ``columns``; a column named in ``order`` by its value's rank there."""
    return df.sort_values(columns, key=lambda s: s.map(order[s.name]) if s.name in order else s, kind="stable")


def write_csv(path: Path, df, float_format: str | None = None) -> None:
    """``df`` as CSV (no index, \\n line ends), written atomically."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n", float_format=float_format)
    atomic_write_text(path, buf.getvalue())


def format_samples(s: int) -> str:
    """A sample count the way the tables show it: 1e6, 2e6, 5e5."""
    exp = int(math.floor(math.log10(s)))
    mant = s / 10**exp
    return f"1e{exp}" if mant == 1 else f"{mant:g}e{exp}"


def format_value(v, digits: int = 1) -> str:
    """``v`` with ``digits`` decimals; "n/a" for None or NaN."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


# ---- provenance ----------------------------------------------------------------------------

def utc_now() -> str:
    """The time now (UTC, to the second), ISO 8601."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def machine_and_versions(infos: list[dict]) -> dict:
    """Provenance's "machine" and "versions" from the runs' run.json: the one all runs share,
    else the list of distinct ones."""
    machines, versions = [], []
    for info in infos:
        machine = info.get("machine", {})
        if machine and machine not in machines:
            machines.append(machine)
        if info.get("versions") and info["versions"] not in versions:
            versions.append(info["versions"])
    return {"machine": machines[0] if len(machines) == 1 else machines,
            "versions": versions[0] if len(versions) == 1 else versions}


# ---- the commands --------------------------------------------------------------------------

def summarize_main(argv: list[str] | None, summarize, figure: str, title: str, run_folders: str) -> int:
    """The command that summarizes existing run folders: ``summarize(out_dir, budget=...)``,
    then the paths written; exit status 2 with the message on a VaebenchError."""
    p = argparse.ArgumentParser(prog=f"python -m vaebench.figures.{figure}",
                                description=f"Summarize existing {title} run folders: CSV, figure, table, provenance.")
    p.add_argument("out_dir", type=Path, help=f"folder holding {run_folders} run folders")
    p.add_argument("--budget", help="budget label written into the outputs (default: the folder's name)")
    args = p.parse_args(argv)
    try:
        paths = summarize(args.out_dir, budget=args.budget)
    except VaebenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(written(paths))
    return 0


def print_done(paths: dict, wall_s: float, table_md: str) -> None:
    """After ``reproduce``: the wall time, the paths written and the table's first part
    (each run at its largest tabulated budget)."""
    print(f"done in {wall_s:.0f} s; " + written(paths))
    print(paths[table_md].read_text().split("### Every budget")[0].rstrip())


def written(paths: dict) -> str:
    """The line "wrote <path>, <path>, ..." for the paths that summarize returns."""
    return "wrote " + ", ".join(str(p) for p in paths.values())
