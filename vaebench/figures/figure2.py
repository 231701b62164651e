"""Figure 2 of the paper: AEVB against wake-sleep, lower bound against training samples.

``reproduce(args)`` (``vaebench reproduce figure2``) trains the 18 runs (9 panels x 2
algorithms) of ``reproductions/figure2.toml`` at a budget into ``<out>/<dataset>_nz<N>_<algorithm>/``
(in parallel, resumable, finished runs skipped), then ``summarize(out)`` writes

  figure2.csv        every run's curves, tidy (one row per run, evaluation point and split)
  figure2.png        the paper's layout (MNIST row of 5 panels, Frey Face row of 4), ours
                     beside the paper's own curves (lighter, thinner)
  figure2_table.md   obtained against paper at fixed budgets, per panel, algorithm and split
  figure2_table.csv  the same table, tidy
  provenance.json    machine, versions, budget, command and wall time of every run

``summarize`` also works alone on run folders trained by other means:
``python -m vaebench.figures.figure2 results/figure2/medium``.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from pathlib import Path

from vaebench.config import RunConfig, load_toml
from vaebench.errors import VaebenchError
from vaebench.fileio import atomic_path, atomic_write_json, atomic_write_text
from vaebench.figures.common import (BUDGETS, PAPER_DIR, REPRODUCTIONS_DIR, add_run_columns, default_budget,
                                     format_samples, format_value, machine_and_versions, print_done,
                                     read_old_provenance, read_paper_csv, read_run_json, sort_in_order,
                                     summarize_main, utc_now, write_csv)

DEFAULT_CONFIG = REPRODUCTIONS_DIR / "figure2.toml"
DATASETS = ("mnist", "frey")
ALGORITHMS = ("aevb", "wake-sleep")
PANELS = {"mnist": (3, 5, 10, 20, 200), "frey": (2, 5, 10, 20)}  # the paper's layout
DATASET_TITLES = {"mnist": "MNIST", "frey": "Frey Face"}
ALGORITHM_LABELS = {"aevb": "AEVB", "wake-sleep": "Wake-Sleep"}
COLORS = {"aevb": "#e00000", "wake-sleep": "#00a000"}          # ours (the paper: red, green)
PAPER_COLORS = {"aevb": "#f4a0a0", "wake-sleep": "#a0dca0"}    # the paper's curves, lighter
LINESTYLES = {"train": "-", "test": "--"}
LONG_SEGMENT = 0.15  # paper values on a drawn segment wider than this (decades) are the plot's straight line

# keys of figure2.toml that are not RunConfig keys
_PANEL_KEYS = ("nz", "hidden")


def paper_algorithm(algorithm: str) -> str:
    """vaebench's spelling -> the paper CSVs' ("wake-sleep" -> "wake_sleep")."""
    return algorithm.replace("-", "_")


def run_name(dataset: str, nz: int, algorithm: str) -> str:
    return f"{dataset}_nz{nz}_{algorithm}"


# ---- the config ----------------------------------------------------------------------------

def load_config(path: str | Path | None = None) -> dict:
    """figure2.toml, checked: budgets, data sets with their panels, algorithms."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    conf = load_toml(path)
    for key in ("budgets", "datasets", "algorithms"):
        if not isinstance(conf.get(key), dict) or not conf[key]:
            raise VaebenchError(f"{path}: needs a [{key}] table")
    for name, budget in conf["budgets"].items():
        samples = budget.get("samples") if isinstance(budget, dict) else None
        if samples is None:
            raise VaebenchError(f"{path}: [budgets.{name}] needs `samples` (a number or a table per data set)")
        if isinstance(samples, dict):
            missing = sorted(set(conf["datasets"]) - set(samples))
            if missing:
                raise VaebenchError(f"{path}: [budgets.{name}] samples has no value for {', '.join(missing)}")
    for name, ds in conf["datasets"].items():
        if name not in PANELS:
            raise VaebenchError(f"{path}: unknown data set [datasets.{name}]; Figure 2 has {', '.join(PANELS)}")
        if not ds.get("nz"):
            raise VaebenchError(f"{path}: [datasets.{name}] needs an nz list")
    for name in conf["algorithms"]:
        if name not in ALGORITHMS:
            raise VaebenchError(f"{path}: unknown algorithm [algorithms.{name}]; Figure 2 has {', '.join(ALGORITHMS)}")
    return conf


def budget_samples(conf: dict, budget: str, dataset: str) -> int:
    try:
        samples = conf["budgets"][budget]["samples"]
    except KeyError:
        raise VaebenchError(f"unknown budget {budget!r}; the config has {', '.join(conf['budgets'])}") from None
    return int(float(samples[dataset] if isinstance(samples, dict) else samples))


def run_configs(conf: dict, budget: str, datasets=None, algorithms=None, nzs=None,
                **overrides) -> list[RunConfig]:
    """The RunConfigs of the figure at ``budget`` (optionally only some data sets, algorithms,
    N_z), each checked; ``overrides`` (device, backend, data_dir, ...) win over the file."""
    datasets = list(conf["datasets"]) if datasets is None else list(datasets)
    algorithms = list(conf["algorithms"]) if algorithms is None else list(algorithms)
    budget_extra = {k: v for k, v in conf["budgets"].get(budget, {}).items() if k != "samples"}
    configs = []
    for dataset in datasets:
        if dataset not in conf["datasets"]:
            raise VaebenchError(f"unknown data set {dataset!r} for figure2; choose from {', '.join(conf['datasets'])}")
        ds = conf["datasets"][dataset]
        ds_extra = {k: v for k, v in ds.items() if k not in _PANEL_KEYS}
        for nz in ds["nz"]:
            if nzs is not None and nz not in nzs:
                continue
            for algorithm in algorithms:
                d = {**conf.get("defaults", {}), **ds_extra, **conf["algorithms"][algorithm], **budget_extra,
                     "dataset": dataset, "algorithm": algorithm, "nz": int(nz), "hidden": ds.get("hidden"),
                     "samples": budget_samples(conf, budget, dataset)}
                d.update({k: v for k, v in overrides.items() if v is not None})
                configs.append(RunConfig.from_dict(d).check())
    return configs


def build_runs(conf: dict, budget: str, out: str | Path, **kw) -> list[tuple[RunConfig, Path]]:
    """(config, run folder) for every run: ``<out>/<dataset>_nz<N>_<algorithm>/``."""
    return [(cfg, Path(out) / run_name(cfg.dataset, cfg.nz, cfg.algorithm)) for cfg in run_configs(conf, budget, **kw)]


# ---- the paper's values --------------------------------------------------------------------

def paper_curves(paper_dir: str | Path = PAPER_DIR):
    """Every plotted vertex of the paper's Figure 2 (algorithm in vaebench's spelling)."""
    return read_paper_csv(Path(paper_dir) / "figure2_curves.csv")


def paper_reference(paper_dir: str | Path = PAPER_DIR):
    """The paper's Figure 2 read at fixed budgets (algorithm in vaebench's spelling)."""
    return read_paper_csv(Path(paper_dir) / "figure2_reference.csv")


def paper_value(dataset: str, nz: int, algorithm: str, split: str, samples: int,
                paper_dir: str | Path = PAPER_DIR) -> float:
    """The paper's lower bound at one of figure2_reference.csv's budgets."""
    ref = paper_reference(paper_dir)
    row = ref[(ref.dataset == dataset) & (ref.nz == nz) & (ref.algorithm == algorithm)
              & (ref.split == split) & (ref.samples_seen == int(samples))]
    if len(row) != 1:
        raise KeyError(f"no paper value for {dataset} nz={nz} {algorithm} {split} at {samples:g} samples")
    return float(row.lower_bound.iloc[0])


# ---- our runs ------------------------------------------------------------------------------

def interpolate_log(samples, values, at: float) -> float:
    """The value at ``at`` samples, linear in log10(samples) between evaluation points
    (exact at a point); NaN outside [first, last]."""
    pts = sorted(zip(samples, values))
    if not pts or at < pts[0][0] or at > pts[-1][0]:
        return math.nan
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if s0 <= at <= s1:
            if at == s0:
                return float(v0)
            if at == s1:
                return float(v1)
            t = (math.log10(at) - math.log10(s0)) / (math.log10(s1) - math.log10(s0))
            return float(v0 + t * (v1 - v0))
    return float(pts[-1][1])  # a single point, equal to ``at``


def run_dirs(out_dir: str | Path) -> list[Path]:
    """Run folders of the figure under ``out_dir`` (named <dataset>_nz<N>_<algorithm>, with a metrics.csv)."""
    out_dir = Path(out_dir)
    names = {run_name(d, nz, a) for d, nzs in PANELS.items() for nz in nzs for a in ALGORITHMS}
    return sorted(p for p in out_dir.iterdir() if p.name in names and (p / "metrics.csv").exists()) \
        if out_dir.is_dir() else []


def collect(out_dir: str | Path, budget: str | None = None):
    """Every run's metrics.csv under ``out_dir`` as one tidy DataFrame."""
    import pandas as pd

    frames = []
    for run_dir in run_dirs(out_dir):
        df = pd.read_csv(run_dir / "metrics.csv")
        if df.empty:
            continue
        frames.append(add_run_columns(df, run_dir, budget))
    columns = ["budget", "dataset", "algorithm", "estimator", "nz", "hidden", "seed", "samples_seen", "split",
               "lower_bound", "wall_s", "lr", "status", "run"]
    if not frames:
        return pd.DataFrame(columns=columns)
    df = pd.concat(frames, ignore_index=True)
    order = {"dataset": {d: i for i, d in enumerate(PANELS)}, "algorithm": {a: i for i, a in enumerate(ALGORITHMS)},
             "split": {"train": 0, "test": 1}}
    df = sort_in_order(df, ["dataset", "nz", "algorithm", "samples_seen", "split"], order)
    return df[columns].reset_index(drop=True)


# ---- the table -----------------------------------------------------------------------------

def comparison(ours, reference=None):
    """Obtained against paper at every budget of figure2_reference.csv that a run reached
    (ours interpolated in log10(samples) between our evaluation points, or exact at one)."""
    import pandas as pd

    reference = paper_reference() if reference is None else reference
    rows = []
    for (dataset, nz, algorithm, split), g in ours.groupby(["dataset", "nz", "algorithm", "split"], sort=False):
        ref = reference[(reference.dataset == dataset) & (reference.nz == nz)
                        & (reference.algorithm == algorithm) & (reference.split == split)]
        lo, hi = g.samples_seen.min(), g.samples_seen.max()
        for r in ref.sort_values("samples_seen").itertuples():
            if not lo <= r.samples_seen <= hi:
                continue
            value = interpolate_log(g.samples_seen.tolist(), g.lower_bound.tolist(), r.samples_seen)
            rows.append({"dataset": dataset, "nz": int(nz), "algorithm": algorithm, "split": split,
                         "samples": int(r.samples_seen), "ours": value, "paper": float(r.lower_bound),
                         "difference": value - float(r.lower_bound),
                         "ours_exact": bool((g.samples_seen == r.samples_seen).any()),
                         "paper_interpolated": bool(r.segment_decades > LONG_SEGMENT),
                         "paper_shown": bool(r.shown_in_figure)})
    return pd.DataFrame(rows, columns=["dataset", "nz", "algorithm", "split", "samples", "ours", "paper",
                                       "difference", "ours_exact", "paper_interpolated", "paper_shown"])


def _paper_cell(row) -> str:
    mark = ("*" if row.paper_interpolated else "") + ("†" if not row.paper_shown else "")
    return f"{format_value(row.paper)}{mark}"


def _pair_rows(table, with_samples: bool) -> list[str]:
    lines = []
    keys = ["dataset", "nz", "algorithm", "samples"]
    for (dataset, nz, algorithm, samples), g in table.groupby(keys, sort=False):
        cells = [DATASET_TITLES[dataset], str(nz), ALGORITHM_LABELS[algorithm]]
        if with_samples:
            cells.append(format_samples(samples))
        for split in ("test", "train"):
            r = g[g.split == split]
            if r.empty:
                cells += ["", "", ""]
            else:
                r = next(r.itertuples())
                cells += [format_value(r.ours), _paper_cell(r),
                          f"{r.difference:+.1f}" if not math.isnan(r.difference) else "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table_markdown(table, budget: str | None = None) -> str:
    """Markdown: the comparison at the largest budget each run reached, then at every budget."""
    head = ("| data set | N_z | algorithm | {s}test: ours | test: paper | test: Δ | "
            "train: ours | train: paper | train: Δ |")
    sep = "|---|---:|---|{s}---:|---:|---:|---:|---:|---:|"
    lines = [f"## Figure 2: obtained against the paper{f' (budget: {budget})' if budget else ''}", ""]
    if table.empty:
        lines += ["No run has reached a budget at which the paper's value is tabulated (5e5 samples and up).", ""]
        return "\n".join(lines)
    order = {"dataset": {d: i for i, d in enumerate(PANELS)}, "algorithm": {a: i for i, a in enumerate(ALGORITHMS)},
             "split": {"test": 0, "train": 1}}
    table = sort_in_order(table, ["dataset", "nz", "algorithm", "samples", "split"], order)
    last = table.groupby(["dataset", "nz", "algorithm"]).samples.transform("max")
    final = table[table.samples == last]
    lines += ["### At the largest tabulated budget each run reached", "",
              head.format(s="samples | "), sep.format(s="---:|"), *_pair_rows(final, True), ""]
    if table.samples.nunique() > 1:
        lines += ["### Every budget reached", "", head.format(s="samples | "), sep.format(s="---:|"),
                  *_pair_rows(table, True), ""]
    lines += [
        "Average variational lower bound per datapoint (nats; Frey Face: a density, so positive), "
        "Δ = ours − paper. Ours: the bound estimate on the whole split (SGVB B, L = 1) with the "
        "parameters at that point, interpolated linearly in log10(samples) between our evaluation "
        "points (4 per decade) where the budget is not one of them. Paper: Figure 2 read from the PDF's "
        "vector paths at that budget (reproductions/paper/figure2_reference.csv); "
        f"* = on a drawn segment wider than {LONG_SEGMENT} decades (the plot's straight line, not a "
        "measurement); † = outside the figure's visible axes. The paper's train curve may be a running "
        "average over the preceding minibatches (it lies below its test curve early on); ours is not.",
        ""]
    return "\n".join(lines)


# ---- the figure ----------------------------------------------------------------------------

def plot(ours, curves, path: str | Path, budget: str | None = None) -> None:
    """The paper's layout, only panels with runs: MNIST row (N_z 3, 5, 10, 20, 200), Frey Face
    row (2, 5, 10, 20); log x; AEVB red, wake-sleep green; train solid, test dashed; the
    paper's curves beside ours, lighter and thinner."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = [(d, [nz for nz in PANELS[d] if ((ours.dataset == d) & (ours.nz == nz)).any()]) for d in PANELS]
    rows = [(d, nzs) for d, nzs in rows if nzs]
    if not rows:
        raise VaebenchError("no run folder with metrics to plot")
    ncols = max(len(nzs) for _, nzs in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(max(3.0 * ncols, 6.0), 2.9 * len(rows) + 0.8), squeeze=False)
    for r, (dataset, nzs) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(nzs):
                ax.set_visible(False)
                continue
            nz = nzs[c]
            mine = ours[(ours.dataset == dataset) & (ours.nz == nz)]
            theirs = curves[(curves.dataset == dataset) & (curves.nz == nz)]
            shown = theirs[theirs.shown_in_figure.astype(bool)]
            x_left = 1e5
            x_right = max(float(shown.samples_seen.max()) if len(shown) else 1e8, float(mine.samples_seen.max()), 1e6)
            for (alg, split), g in theirs.groupby(["algorithm", "split"]):
                g = g.sort_values("samples_seen")
                ax.plot(g.samples_seen, g.lower_bound, color=PAPER_COLORS.get(alg, "0.7"), lw=0.9,
                        ls=LINESTYLES[split], zorder=1)
            for (alg, split), g in mine.groupby(["algorithm", "split"]):
                g = g.sort_values("samples_seen")
                ax.plot(g.samples_seen, g.lower_bound, color=COLORS.get(alg, "k"), lw=1.6,
                        ls=LINESTYLES[split], marker="o", ms=2.2, zorder=3)
            ax.set_xscale("log")
            ax.set_xlim(x_left, x_right * 1.05)
            # y range: the paper's visible range and ours past 1e5 samples, but never let an
            # early or diverged value squash the panel
            in_x = lambda df: df[(df.samples_seen >= x_left) & (df.samples_seen <= x_right)].lower_bound  # noqa: E731
            paper_y, our_y = in_x(shown), in_x(mine)
            ys = [v for s in (paper_y, our_y) for v in s.tolist() if math.isfinite(v)]
            if ys:
                lo, hi = min(ys), max(ys)
                if len(paper_y):
                    span = float(paper_y.max() - paper_y.min()) or 10.0
                    lo = max(lo, float(paper_y.min()) - 1.5 * span)
                pad = 0.05 * (hi - lo or 1.0)
                ax.set_ylim(lo - pad, hi + pad)
            ax.set_title(f"{DATASET_TITLES[dataset]}, $N_z = {nz}$", fontsize=10)
            ax.grid(True, which="major", lw=0.3, alpha=0.5)
            ax.tick_params(labelsize=8)
            if c == 0:
                ax.set_ylabel(r"$\mathcal{L}$ per datapoint", fontsize=9)
            if r == len(rows) - 1 or c >= len(rows[r + 1][1]):
                ax.set_xlabel("# training samples evaluated", fontsize=9)
    handles = [Line2D([], [], color=COLORS["aevb"], lw=1.6, label="AEVB (ours)"),
               Line2D([], [], color=COLORS["wake-sleep"], lw=1.6, label="Wake-Sleep (ours)"),
               Line2D([], [], color=PAPER_COLORS["aevb"], lw=0.9, label="AEVB (paper)"),
               Line2D([], [], color=PAPER_COLORS["wake-sleep"], lw=0.9, label="Wake-Sleep (paper)"),
               Line2D([], [], color="k", lw=1.2, ls="-", label="train"),
               Line2D([], [], color="k", lw=1.2, ls="--", label="test")]
    h = fig.get_figheight()
    title = "Figure 2 (Kingma & Welling 2013): ours against the paper's curves"
    fig.suptitle(title + (f" — budget: {budget}" if budget else ""), fontsize=10, y=1 - 0.08 / h, va="top")
    wide = fig.get_figwidth() >= 9  # the legend on one line, else two
    fig.legend(handles=handles, loc="upper center", ncol=6 if wide else 3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.3 / h))
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.45 if wide else 0.65) / h))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)


# ---- provenance ----------------------------------------------------------------------------

def provenance(out_dir: str | Path, budget: str | None, command: str | None = None,
               reproduce_wall_s: float | None = None) -> dict:
    runs, infos = {}, []
    for run_dir in run_dirs(out_dir):
        info = read_run_json(run_dir)
        if not info:
            continue
        infos.append(info)
        train_s, eval_s = info.get("train_wall_s") or 0.0, info.get("eval_wall_s") or 0.0
        machine = info.get("machine", {})
        runs[run_dir.name] = {
            "status": info.get("status"), "samples_seen": info.get("samples_seen"),
            "budget_samples": info.get("config", {}).get("samples"), "lr": info.get("lr"),
            "lr_choice": info.get("lr_choice"), "dreams": info.get("config", {}).get("dreams")
            if info.get("config", {}).get("algorithm") == "wake-sleep" else None,
            "wall_s": round(train_s + eval_s, 1), "train_wall_s": train_s, "eval_wall_s": eval_s,
            "samples_per_s": info.get("samples_per_s"), "device": machine.get("device"),
            "device_name": machine.get("device_name"), "torch_threads": machine.get("torch_threads"),
            "git": info.get("git"), "final": info.get("final"),
        }
    return {
        "figure": "figure2", "budget": budget, "command": command, "reproduce_wall_s": reproduce_wall_s,
        "summarized_at": utc_now(), **machine_and_versions(infos),
        "total_run_wall_s": round(sum(r["wall_s"] for r in runs.values()), 1),
        "runs": runs,
    }


# ---- summarize -----------------------------------------------------------------------------

def summarize(out_dir: str | Path, *, budget: str | None = None, command: str | None = None,
              reproduce_wall_s: float | None = None, paper_dir: str | Path = PAPER_DIR) -> dict:
    """Aggregate the run folders under ``out_dir`` (whatever exists) into figure2.csv,
    figure2.png, figure2_table.md/.csv and provenance.json; returns their paths."""
    out_dir = Path(out_dir)
    old = read_old_provenance(out_dir)
    if budget is None:
        budget = default_budget(out_dir, old)
    if command is None:  # summarizing alone keeps how the runs were made
        command, reproduce_wall_s = old.get("command"), old.get("reproduce_wall_s")
    ours = collect(out_dir, budget)
    if ours.empty:
        raise VaebenchError(f"no Figure 2 run folders (<dataset>_nz<N>_<algorithm>/metrics.csv) under {out_dir}")
    paths = {name: out_dir / name for name in
             ("figure2.csv", "figure2.png", "figure2_table.md", "figure2_table.csv", "provenance.json")}
    write_csv(paths["figure2.csv"], ours)

    table = comparison(ours, paper_reference(paper_dir))
    write_csv(paths["figure2_table.csv"], table, float_format="%.4f")
    atomic_write_text(paths["figure2_table.md"], table_markdown(table, budget))

    plot(ours, paper_curves(paper_dir), paths["figure2.png"], budget)
    atomic_write_json(paths["provenance.json"], provenance(out_dir, budget, command, reproduce_wall_s))
    return paths


# ---- vaebench reproduce figure2 ------------------------------------------------------------

def _command(args, out: Path) -> str:
    """The command line equivalent to ``args`` (every option spelled out)."""
    words = ["vaebench", "reproduce", "figure2", "--budget", args.budget]
    for flag, name in (("--datasets", "datasets"), ("--jobs", "jobs"), ("--device", "device"),
                       ("--backend", "backend"), ("--config", "config"), ("--data-dir", "data_dir")):
        value = getattr(args, name, None)
        if value is not None:
            words += [flag, str(value)]
    words += ["--out", str(out)]
    if not getattr(args, "progress", True):
        words.append("--no-progress")
    return shlex.join(words)


def reproduce(args) -> int:
    from vaebench.runner import run_many

    conf = load_config(getattr(args, "config", None))
    datasets = None
    if getattr(args, "datasets", None):
        datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
        unknown = [d for d in datasets if d not in conf["datasets"]]
        if unknown:
            raise VaebenchError(f"--datasets: unknown {', '.join(unknown)}; choose from {', '.join(conf['datasets'])}")
    out = Path(args.out) if getattr(args, "out", None) else Path("results") / "figure2" / args.budget
    runs = build_runs(conf, args.budget, out, datasets=datasets, device=getattr(args, "device", None),
                      backend=getattr(args, "backend", None), data_dir=getattr(args, "data_dir", None))
    command = _command(args, out)
    print(f"figure2, budget {args.budget}: {len(runs)} runs into {out}/ ({args.jobs} at a time)", flush=True)
    t0, paths = time.perf_counter(), None
    try:
        run_many(runs, jobs=args.jobs, progress=getattr(args, "progress", True))
    finally:
        wall = round(time.perf_counter() - t0, 1)
        if run_dirs(out):  # even after a failure: summarize what exists
            paths = summarize(out, budget=args.budget, command=command, reproduce_wall_s=wall)
    if paths is None:
        raise VaebenchError(f"no run wrote metrics under {out}")
    print_done(paths, wall, "figure2_table.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    return summarize_main(argv, summarize, "figure2", "Figure 2", "<dataset>_nz<N>_<algorithm>/")


if __name__ == "__main__":
    sys.exit(main())
