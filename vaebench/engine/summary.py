"""A study's summary: its run folders under an output folder (whatever exists) into

  <name>.csv          the tidy rows of every run (Study.run_rows, with budget, lr, status, run)
  <name>_table.csv    the obtained-against-paper table (Study.compare; with several seeds, per
  <name>_table.md     seed and then their mean, sd, min and max: seed_statistics)
  <name>.png          the study's plot
  provenance.json     machine, versions, command, wall time per run

each written atomically.
"""

from __future__ import annotations

import datetime as _dt
import io
from pathlib import Path

from vaebench.engine.study import BUDGETS, Summary
from vaebench.errors import VaebenchError
from vaebench.fileio import atomic_write_json, atomic_write_text
from vaebench.runs import RunFolder, list_runs, split_seed


def sort_in_order(df, columns: list[str], order: dict[str, dict]):
    """``df`` sorted (stably) by ``columns``; a column named in ``order`` by its value's rank there."""
    return df.sort_values(columns, key=lambda s: s.map(order[s.name]) if s.name in order else s, kind="stable")


def ranks(*values) -> dict:
    """{value: its position}, for sort_in_order."""
    return {v: i for i, v in enumerate(values)}


def compare(study, ours):
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


def study_folders(study, out: str | Path) -> list[RunFolder]:
    """The study's run folders under ``out`` (with or without a seed suffix), in the study's
    order, seeds in order."""
    found = []
    for folder in list_runs(out):
        name, seed = split_seed(folder.name)
        if (key := study.run_key(name)) is not None:
            found.append(((key, -1 if seed is None else seed), folder))
    return [f for _, f in sorted(found, key=lambda kf: kf[0])]


def collect(study, folders: list[RunFolder], budget: str | None, settings: dict):
    """Every run's rows as one tidy DataFrame (study.columns, in study.row_order)."""
    import pandas as pd

    frames = []
    for folder in folders:
        df = study.run_rows(folder, settings)
        if df is None or df.empty:
            continue
        info = folder.info_or_empty(warn=True)
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


def output_paths(study, out: Path) -> dict[str, Path]:
    names = (
        f"{study.name}.csv",
        f"{study.name}.png",
        f"{study.name}_table.md",
        f"{study.name}_table.csv",
        "provenance.json",
    )
    return {name: out / name for name in names}


def read_provenance(out: Path) -> dict:
    """The provenance.json an earlier summary left in ``out``; {} if none or unreadable."""
    import json

    try:
        old = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


def summarize(
    study,
    out: str | Path,
    *,
    budget: str | None = None,
    settings: dict | None = None,
    command: str | None = None,
    reproduce_wall_s: float | None = None,
) -> dict[str, Path]:
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


def provenance(study, s: Summary) -> dict:
    """provenance.json: the budget, command, machine and versions, and per run its status, step
    size and wall times (from its run.json), with what the study adds."""
    runs, infos = {}, []
    for folder in s.folders:
        info = folder.info_or_empty(warn=True)
        if not info:
            continue
        infos.append(info)
        train_s, eval_s = info.get("train_wall_s") or 0.0, info.get("eval_wall_s") or 0.0
        machine = info.get("machine", {})
        runs[folder.name] = {
            "status": info.get("status"),
            "samples_seen": info.get("samples_seen"),
            "budget_samples": info.get("config", {}).get("samples"),
            "lr": info.get("lr"),
            "lr_choice": info.get("lr_choice"),
            "wall_s": round(train_s + eval_s, 1),
            "train_wall_s": train_s,
            "eval_wall_s": eval_s,
            "samples_per_s": info.get("samples_per_s"),
            "device": machine.get("device"),
            "device_name": machine.get("device_name"),
            "torch_threads": machine.get("torch_threads"),
            "git": info.get("git"),
            **study.run_provenance(folder, info, s),
        }
    return {
        "figure": study.name,
        "budget": s.budget,
        "command": s.command,
        "reproduce_wall_s": s.reproduce_wall_s,
        "summarized_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **machine_and_versions(infos),
        "total_run_wall_s": round(sum(r["wall_s"] for r in runs.values()), 1),
        **study.provenance(s),
        "runs": runs,
    }


def machine_and_versions(infos: list[dict]) -> dict:
    """Provenance's "machine" and "versions": the one all runs share, else the list of distinct ones."""
    machines, versions = [], []
    for info in infos:
        if info.get("machine") and info["machine"] not in machines:
            machines.append(info["machine"])
        if info.get("versions") and info["versions"] not in versions:
            versions.append(info["versions"])
    return {
        "machine": machines[0] if len(machines) == 1 else machines,
        "versions": versions[0] if len(versions) == 1 else versions,
    }


def written(paths: dict) -> str:
    return "wrote " + ", ".join(str(p) for p in paths.values())
