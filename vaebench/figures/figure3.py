"""Figure 3 of the paper: the estimated marginal log-likelihood of MNIST models (N_z = 3,
100 hidden units) against training samples, AEVB, wake-sleep and Monte Carlo EM, for
N_train = 1,000 and 50,000, train and test.

``reproduce(args)`` (``vaebench reproduce figure3``) trains the 6 runs of
``reproductions/figure3.toml`` at a budget into ``<out>/ntrain<N>_<algorithm>/`` with snapshots
(in parallel, resumable, finished runs skipped), estimates the marginal likelihood at each
snapshot with the appendix D estimator (``vaebench.marginal``; written beside each run as
``marginal_hmc.csv``, resumable), then ``summarize(out)`` writes

  figure3.csv        tidy: one row per run, snapshot and split
  figure3.png        the paper's layout (two panels, N_train = 1000 and 50000; linear x axis;
                     AEVB red, wake-sleep green, MCEM blue; train solid, test dashed), ours
                     beside the paper's own curves (lighter, thinner)
  figure3_table.md   obtained against paper at the paper's tabulated budgets (and .csv)
  provenance.json    machine, versions, budget, settings, command and wall times

``summarize`` also works alone on existing run folders:
``python -m vaebench.figures.figure3 results/figure3/medium``.
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

DEFAULT_CONFIG = REPRODUCTIONS_DIR / "figure3.toml"
N_TRAIN = (1000, 50000)
ALGORITHMS = ("aevb", "wake-sleep", "mcem")
ALGORITHM_LABELS = {"aevb": "AEVB", "wake-sleep": "Wake-Sleep", "mcem": "MCEM"}
COLORS = {"aevb": "#e00000", "wake-sleep": "#00a000", "mcem": "#0030e0"}
PAPER_COLORS = {"aevb": "#f4a0a0", "wake-sleep": "#a0dca0", "mcem": "#a8b8f4"}
LINESTYLES = {"train": "-", "test": "--"}
MARGINAL_DEFAULTS = {"method": "hmc", "n_points": 1000, "samples_per_point": 50, "leapfrog": 4,
                     "burn_in": 200, "thin": 2, "min_samples": 0, "seed": 0, "importance_k": 1000}
_TOP_KEYS = ("n_train", "algorithms")


def run_name(n_train: int, algorithm: str) -> str:
    return f"ntrain{n_train}_{algorithm}"


# ---- the config ----------------------------------------------------------------------------

def load_config(path: str | Path | None = None) -> dict:
    """figure3.toml, checked: n_train list, budgets, one [algorithms.<name>] table per curve."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    conf = load_toml(path)
    for key in ("budgets", "algorithms"):
        if not isinstance(conf.get(key), dict) or not conf[key]:
            raise VaebenchError(f"{path}: needs a [{key}] table")
    for name, budget in conf["budgets"].items():
        if not isinstance(budget, dict) or budget.get("samples") is None:
            raise VaebenchError(f"{path}: [budgets.{name}] needs `samples`")
    conf.setdefault("n_train", list(N_TRAIN))
    for n in conf["n_train"]:
        if not isinstance(n, int) or n < 100:
            raise VaebenchError(f"{path}: n_train values must be integers >= 100, got {n!r}")
    for a in conf["algorithms"]:
        if a not in ALGORITHMS:
            raise VaebenchError(f"{path}: unknown algorithm [algorithms.{a}]; Figure 3 has {', '.join(ALGORITHMS)}")
    for where, table in [("marginal", conf.get("marginal", {}))] + [
            (f"budgets.{b}.marginal", v.get("marginal", {})) for b, v in conf["budgets"].items()]:
        unknown = sorted(set(table) - set(MARGINAL_DEFAULTS))
        if unknown:
            raise VaebenchError(f"{path}: unknown [{where}] key(s): {', '.join(unknown)}")
    return conf


def marginal_settings(conf: dict, budget: str) -> dict:
    """[marginal] < [budgets.<budget>.marginal], over the defaults."""
    s = {**MARGINAL_DEFAULTS, **conf.get("marginal", {}), **conf["budgets"].get(budget, {}).get("marginal", {})}
    s["min_samples"] = int(float(s["min_samples"]))
    return s


def run_configs(conf: dict, budget: str, n_train=None, algorithms=None, **overrides) -> list[RunConfig]:
    """The RunConfigs at ``budget`` (optionally only some N_train / algorithms), checked;
    ``overrides`` (device, backend, data_dir, ...) win over the file."""
    if budget not in conf["budgets"]:
        raise VaebenchError(f"unknown budget {budget!r}; the config has {', '.join(conf['budgets'])}")
    n_train = list(conf["n_train"]) if n_train is None else [int(n) for n in n_train]
    algorithms = list(conf["algorithms"]) if algorithms is None else list(algorithms)
    budget_extra = {k: v for k, v in conf["budgets"][budget].items() if k != "marginal"}
    configs = []
    for n in n_train:
        for algorithm in algorithms:
            if algorithm not in conf["algorithms"]:
                raise VaebenchError(f"unknown algorithm {algorithm!r} for figure3; choose from "
                                    f"{', '.join(conf['algorithms'])}")
            d = {**conf.get("defaults", {}), **conf["algorithms"][algorithm], **budget_extra,
                 "algorithm": algorithm, "n_train": int(n)}
            d["samples"] = int(float(d["samples"]))
            d.update({k: v for k, v in overrides.items() if v is not None})
            configs.append(RunConfig.from_dict(d).check())
    return configs


def build_runs(conf: dict, budget: str, out: str | Path, **kw) -> list[tuple[RunConfig, Path]]:
    """(config, run folder) for every run: ``<out>/ntrain<N>_<algorithm>/``."""
    return [(cfg, Path(out) / run_name(cfg.n_train, cfg.algorithm)) for cfg in run_configs(conf, budget, **kw)]


# ---- the paper's values --------------------------------------------------------------------

def paper_curves(paper_dir: str | Path = PAPER_DIR):
    """Every plotted vertex of the paper's Figure 3 (algorithm in vaebench's spelling)."""
    return read_paper_csv(Path(paper_dir) / "figure3_curves.csv")


def paper_reference(paper_dir: str | Path = PAPER_DIR):
    """The paper's Figure 3 read at 1, 2, 5, 10, 20, ..., 60 million samples."""
    return read_paper_csv(Path(paper_dir) / "figure3_reference.csv")


def paper_value(n_train: int, algorithm: str, split: str, samples: int, paper_dir: str | Path = PAPER_DIR) -> float:
    """The paper's marginal log-likelihood at one of figure3_reference.csv's budgets."""
    ref = paper_reference(paper_dir)
    row = ref[(ref.n_train == n_train) & (ref.algorithm == algorithm) & (ref.split == split)
              & (ref.samples_seen == int(samples))]
    if len(row) != 1:
        raise KeyError(f"no paper value for N_train={n_train} {algorithm} {split} at {samples:g} samples")
    return float(row.marginal_log_likelihood.iloc[0])


# ---- our runs ------------------------------------------------------------------------------

def interpolate_linear(samples, values, at: float) -> float:
    """The value at ``at`` samples, linear in samples between evaluation points (the figure's
    x axis is linear); NaN outside [first, last]."""
    pts = sorted(zip(samples, values))
    if not pts or at < pts[0][0] or at > pts[-1][0]:
        return math.nan
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if s0 <= at <= s1:
            if at == s0:
                return float(v0)
            if at == s1:
                return float(v1)
            return float(v0 + (at - s0) / (s1 - s0) * (v1 - v0))
    return float(pts[-1][1])


def run_dirs(out_dir: str | Path) -> list[Path]:
    """Run folders of the figure under ``out_dir`` (ntrain<N>_<algorithm>/ with a run.json)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = []
    for p in out_dir.iterdir():
        name = p.name
        if name.startswith("ntrain") and "_" in name and (p / "run.json").exists():
            n, alg = name[len("ntrain"):].split("_", 1)
            if n.isdigit() and alg in ALGORITHMS:
                found.append(p)
    return sorted(found, key=lambda p: (int(p.name[6:].split("_")[0]), ALGORITHMS.index(p.name.split("_", 1)[1])))


COLUMNS = ["budget", "n_train", "algorithm", "samples_seen", "split", "marginal_log_likelihood", "stderr",
           "method", "n_points", "samples_per_point", "leapfrog", "burn_in", "thin", "seed", "mean_accept",
           "lr", "status", "run"]


def collect(out_dir: str | Path, budget: str | None = None, settings: dict | None = None):
    """Every run's marginal_<method>.csv under ``out_dir`` as one tidy DataFrame (only rows with
    ``settings``' method / n_points / ... when given; else each run's most common settings)."""
    import pandas as pd

    method = (settings or {}).get("method", "hmc")
    frames = []
    for run_dir in run_dirs(out_dir):
        path = run_dir / f"marginal_{method}.csv"
        if not path.exists():
            continue
        df = pd.read_csv(path)
        if df.empty:
            continue
        if settings:
            for key in ("n_points", "samples_per_point", "leapfrog", "burn_in", "thin", "seed"):
                if key in settings and key in df:
                    df = df[df[key].astype(str) == str(settings[key])]
        frames.append(add_run_columns(df.copy(), run_dir, budget))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    for col in COLUMNS:
        if col not in df:
            df[col] = None
    order = {"algorithm": {a: i for i, a in enumerate(ALGORITHMS)}, "split": {"train": 0, "test": 1}}
    df = sort_in_order(df, ["n_train", "algorithm", "samples_seen", "split"], order)
    return df[COLUMNS].reset_index(drop=True)


# ---- the table -----------------------------------------------------------------------------

def comparison(ours, reference=None, curves=None):
    """Obtained against paper at every budget of figure3_reference.csv that a run reached
    (ours interpolated linearly between our snapshots, or exact at one). A run that reached none
    of them (the quick budget) is compared at its last snapshot where the paper's plotted curve
    covers it, the paper's value interpolated linearly between the curve's vertices (``from_curve``)."""
    import pandas as pd

    reference = paper_reference() if reference is None else reference
    curves = paper_curves() if curves is None else curves
    rows = []
    for (n_train, algorithm, split), g in ours.groupby(["n_train", "algorithm", "split"], sort=False):
        def select(df):
            return df[(df.n_train == n_train) & (df.algorithm == algorithm) & (df.split == split)]

        lo, hi = g.samples_seen.min(), g.samples_seen.max()
        ref = select(reference)
        points = [(int(r.samples_seen), float(r.marginal_log_likelihood), bool(r.shown_in_figure), False)
                  for r in ref.sort_values("samples_seen").itertuples() if lo <= r.samples_seen <= hi]
        curve = select(curves)
        curve = curve[curve.shown_in_figure.astype(bool)]
        if not points and not curve.empty:
            paper = interpolate_linear(curve.samples_seen.tolist(), curve.marginal_log_likelihood.tolist(), hi)
            if math.isfinite(paper):
                points.append((int(hi), paper, True, True))
        for samples, paper, shown, from_curve in points:
            value = interpolate_linear(g.samples_seen.tolist(), g.marginal_log_likelihood.tolist(), samples)
            rows.append({"n_train": int(n_train), "algorithm": algorithm, "split": split, "samples": samples,
                         "ours": value, "paper": paper, "difference": value - paper,
                         "ours_exact": bool((g.samples_seen == samples).any()), "paper_shown": shown,
                         "from_curve": from_curve})
    return pd.DataFrame(rows, columns=["n_train", "algorithm", "split", "samples", "ours", "paper", "difference",
                                       "ours_exact", "paper_shown", "from_curve"])


def _pair_rows(table) -> list[str]:
    lines = []
    for (n_train, algorithm, samples), g in table.groupby(["n_train", "algorithm", "samples"], sort=False):
        cells = [f"{n_train:,}", ALGORITHM_LABELS[algorithm], format_samples(samples)]
        for split in ("train", "test"):
            r = g[g.split == split]
            if r.empty:
                cells += ["", "", ""]
            else:
                r = next(r.itertuples())
                paper = format_value(r.paper) + ("" if r.paper_shown else "†") + ("‡" if r.from_curve else "")
                cells += [format_value(r.ours), paper,
                          f"{r.difference:+.1f}" if not math.isnan(r.difference) else "n/a"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table_markdown(table, budget: str | None = None, settings: dict | None = None) -> str:
    head = "| N_train | algorithm | samples | train: ours | train: paper | train: Δ | test: ours | test: paper | test: Δ |"
    sep = "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    lines = [f"## Figure 3: obtained against the paper{f' (budget: {budget})' if budget else ''}", ""]
    if table.empty:
        lines += ["No run has reached a budget at which the paper's value is tabulated (1e6 samples and up) "
                  "or that the paper's plotted curves cover.", ""]
        return "\n".join(lines)
    order = {"algorithm": {a: i for i, a in enumerate(ALGORITHMS)}, "split": {"train": 0, "test": 1}}
    table = sort_in_order(table, ["n_train", "algorithm", "samples", "split"], order)
    last = table.groupby(["n_train", "algorithm"]).samples.transform("max")
    lines += ["### At the largest compared budget each run reached", "", head, sep,
              *_pair_rows(table[table.samples == last]), ""]
    if table.samples.nunique() > 1:
        lines += ["### Every budget reached", "", head, sep, *_pair_rows(table), ""]
    s = settings or {}
    lines += [
        "Estimated marginal log-likelihood log p(x) per datapoint (nats), Δ = ours − paper. Ours: the "
        "appendix D estimator (HMC posterior samples, a full-covariance Gaussian q(z) per datapoint "
        f"fitted to {s.get('samples_per_point', 50)} samples, the estimate from {s.get('samples_per_point', 50)} "
        f"more; {s.get('leapfrog', 4)} leapfrog steps) on the first {s.get('n_points', 1000):,} points of "
        "each split, with the parameters at each snapshot, interpolated linearly between snapshots "
        "where the budget is not one of them. Paper: Figure 3 read from the PDF's vector paths "
        "(reproductions/paper/figure3_reference.csv); † = outside the figure's visible axes; "
        "‡ = a run that reached no tabulated budget, compared at its last snapshot with the paper's "
        "plotted curve (figure3_curves.csv) read there (below 1e6 the curves sit in the first 2% of the "
        "linear x axis, so those readings are coarse).", ""]
    return "\n".join(lines)


def cross_check(out_dir: str | Path, ours, settings: dict | None = None) -> str:
    """Markdown: the appendix D estimate against importance sampling with the trained encoder
    (marginal_importance.csv, final parameters) for the runs that have both."""
    import pandas as pd

    lines = []
    for run_dir in run_dirs(out_dir):
        path = run_dir / "marginal_importance.csv"
        if not path.exists():
            continue
        imp = pd.read_csv(path)
        if settings and "n_points" in settings:
            imp = imp[imp.n_points.astype(str) == str(settings["n_points"])]
        for r in imp.itertuples():
            mine = ours[(ours.run == run_dir.name) & (ours.samples_seen == r.samples_seen) & (ours.split == r.split)]
            if mine.empty:
                continue
            h = mine.iloc[0]
            lines.append(f"| {run_dir.name} | {format_samples(int(r.samples_seen))} | {r.split} | "
                         f"{h.marginal_log_likelihood:.2f} ± {h.stderr:.3f} | "
                         f"{r.marginal_log_likelihood:.2f} ± {r.stderr:.3f} (k = {int(r.k)}) |")
    if not lines:
        return ""
    return "\n".join([
        "### Cross-check: importance sampling with the trained encoder as proposal", "",
        "| run | samples | split | appendix D (HMC) | importance sampling |", "|---|---:|---|---:|---:|", *lines, "",
        "Importance sampling with q(z|x) as proposal is a lower bound in expectation; where the encoder "
        "is a poor proposal (test points of a model that overfits) it falls well below, and its "
        "standard error (delta method) understates its error.", ""])


# ---- the figure ----------------------------------------------------------------------------

def plot(ours, curves, path: str | Path, budget: str | None = None) -> None:
    """Two panels (N_train = 1000, 50000; those with runs), linear x axis in samples; AEVB red,
    wake-sleep green, MCEM blue; train solid, test dashed; the paper's curves beside ours,
    lighter and thinner."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    panels = [n for n in N_TRAIN if (ours.n_train == n).any()] + \
        sorted(set(int(n) for n in ours.n_train) - set(N_TRAIN))
    if not panels:
        raise VaebenchError("no marginal-likelihood estimates to plot")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    for ax, n in zip(axes[0], panels):
        mine = ours[ours.n_train == n]
        theirs = curves[(curves.n_train == n) & curves.shown_in_figure.astype(bool)]
        x_right = max(float(mine.samples_seen.max()), 1e6)
        for (alg, split), g in theirs.groupby(["algorithm", "split"]):
            g = g.sort_values("samples_seen")
            g = g[g.samples_seen <= x_right * 1.02]
            ax.plot(g.samples_seen / 1e6, g.marginal_log_likelihood, color=PAPER_COLORS.get(alg, "0.7"), lw=1.0,
                    ls=LINESTYLES[split], zorder=1)
        for (alg, split), g in mine.groupby(["algorithm", "split"]):
            g = g.sort_values("samples_seen")
            ax.plot(g.samples_seen / 1e6, g.marginal_log_likelihood, color=COLORS.get(alg, "k"), lw=1.6,
                    ls=LINESTYLES[split], marker="o", ms=2.5, zorder=3)
        ax.set_xlim(0, x_right / 1e6 * 1.02)
        shown = theirs[theirs.samples_seen <= x_right * 1.02].marginal_log_likelihood.tolist()
        ys = [v for v in shown + mine.marginal_log_likelihood.tolist() if math.isfinite(v)]
        if ys:
            lo, hi = min(ys), max(ys)
            if shown:  # never let an early estimate squash the panel, but show where every curve ends
                finals = mine.sort_values("samples_seen").groupby(["algorithm", "split"]).marginal_log_likelihood.last()
                floor = min(shown) - 0.5 * ((max(shown) - min(shown)) or 10.0)
                lo = max(lo, min([floor, *[v for v in finals if math.isfinite(v)]]))
            pad = 0.05 * (hi - lo or 1.0)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(f"MNIST, N_train = {n:,}", fontsize=10)
        ax.set_xlabel("# training samples evaluated (millions)", fontsize=9)
        ax.set_ylabel("marginal log-likelihood", fontsize=9)
        ax.grid(True, lw=0.3, alpha=0.5)
        ax.tick_params(labelsize=8)
    handles = [Line2D([], [], color=COLORS[a], lw=1.6, label=f"{ALGORITHM_LABELS[a]} (ours)") for a in ALGORITHMS] + \
        [Line2D([], [], color=PAPER_COLORS[a], lw=1.0, label=f"{ALGORITHM_LABELS[a]} (paper)") for a in ALGORITHMS] + \
        [Line2D([], [], color="k", lw=1.2, ls="-", label="train"),
         Line2D([], [], color="k", lw=1.2, ls="--", label="test")]
    title = "Figure 3 (Kingma & Welling 2013), N_z = 3:\nours against the paper's curves"
    fig.suptitle(title + (f" (budget: {budget})" if budget else ""), fontsize=10)
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 0.95))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)


# ---- provenance ----------------------------------------------------------------------------

def provenance(out_dir: str | Path, budget: str | None, settings: dict | None = None, command: str | None = None,
               reproduce_wall_s: float | None = None) -> dict:
    import pandas as pd

    runs, infos = {}, []
    method = (settings or {}).get("method", "hmc")
    for run_dir in run_dirs(out_dir):
        info = read_run_json(run_dir)
        if not info:
            continue
        infos.append(info)
        machine = info.get("machine", {})
        est_wall = None
        path = run_dir / f"marginal_{method}.csv"
        if path.exists():
            df = pd.read_csv(path)
            est_wall = round(float(df.wall_s.sum()), 1) if len(df) else 0.0
        runs[run_dir.name] = {
            "status": info.get("status"), "samples_seen": info.get("samples_seen"),
            "budget_samples": info.get("config", {}).get("samples"), "lr": info.get("lr"),
            "lr_choice": info.get("lr_choice"), "options": info.get("config", {}).get("options"),
            "train_wall_s": info.get("train_wall_s"), "eval_wall_s": info.get("eval_wall_s"),
            "marginal_wall_s": est_wall, "samples_per_s": info.get("samples_per_s"),
            "device": machine.get("device"), "device_name": machine.get("device_name"),
            "torch_threads": machine.get("torch_threads"), "git": info.get("git"),
        }
    return {
        "figure": "figure3", "budget": budget, "command": command, "reproduce_wall_s": reproduce_wall_s,
        "marginal_likelihood": {**(settings or {}), "estimator": "appendix D: HMC posterior samples, "
                                "full-covariance Gaussian q(z) per datapoint fitted to a first sample set, "
                                "-logmeanexp[log q - log p(x, z)] on a second set"},
        "summarized_at": utc_now(), **machine_and_versions(infos),
        "runs": runs,
    }


# ---- summarize -----------------------------------------------------------------------------

def summarize(out_dir: str | Path, *, budget: str | None = None, settings: dict | None = None,
              command: str | None = None, reproduce_wall_s: float | None = None,
              paper_dir: str | Path = PAPER_DIR) -> dict:
    """Aggregate the estimates under ``out_dir`` into figure3.csv, figure3.png,
    figure3_table.md/.csv and provenance.json; returns their paths."""
    out_dir = Path(out_dir)
    old = read_old_provenance(out_dir)
    if budget is None:
        budget = default_budget(out_dir, old)
    if settings is None:
        stored = old.get("marginal_likelihood") or {}
        settings = {k: v for k, v in stored.items() if k in MARGINAL_DEFAULTS} or None
    if command is None:
        command, reproduce_wall_s = old.get("command"), old.get("reproduce_wall_s")
    ours = collect(out_dir, budget, settings)
    if ours.empty:
        raise VaebenchError(f"no Figure 3 estimates (ntrain<N>_<algorithm>/marginal_hmc.csv) under {out_dir}")
    paths = {name: out_dir / name for name in
             ("figure3.csv", "figure3.png", "figure3_table.md", "figure3_table.csv", "provenance.json")}
    write_csv(paths["figure3.csv"], ours)
    table = comparison(ours, paper_reference(paper_dir), paper_curves(paper_dir))
    cross = cross_check(out_dir, ours, settings)
    write_csv(paths["figure3_table.csv"], table, float_format="%.4f")
    if settings is None:
        first = ours.iloc[0]
        settings = {k: (int(first[k]) if str(first[k]).isdigit() else first[k])
                    for k in MARGINAL_DEFAULTS if k in ours and k != "min_samples"}
    atomic_write_text(paths["figure3_table.md"], table_markdown(table, budget, settings) + ("\n" + cross if cross else ""))
    plot(ours, paper_curves(paper_dir), paths["figure3.png"], budget)
    atomic_write_json(paths["provenance.json"], provenance(out_dir, budget, settings, command, reproduce_wall_s))
    return paths


# ---- vaebench reproduce figure3 ------------------------------------------------------------

def estimate_all(runs, settings: dict, *, data_dir=None, device=None, progress: bool = True) -> None:
    """The marginal likelihood at every snapshot (from ``min_samples``) of every trained run."""
    from vaebench.evaluate_cli import evaluate_run

    for cfg, run_dir in runs:
        if not (Path(run_dir) / "run.json").exists():
            continue
        evaluate_run(run_dir, method=settings["method"], n_points=settings["n_points"],
                     samples_per_point=settings["samples_per_point"], leapfrog=settings["leapfrog"],
                     burn_in=settings["burn_in"], thin=settings["thin"], snapshot="all",
                     min_samples=settings["min_samples"], seed=settings["seed"], data_dir=data_dir,
                     device=device, progress=progress)
        if cfg.algorithm != "mcem" and settings.get("importance_k"):  # the cross-check, final parameters
            evaluate_run(run_dir, method="importance", n_points=settings["n_points"], k=settings["importance_k"],
                         snapshot="last", seed=settings["seed"], data_dir=data_dir, device=device,
                         progress=progress)


def _parse_n_train(text: str | None, conf: dict):
    if not text:
        return None
    try:
        values = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise VaebenchError(f"--n-train takes comma-separated integers, got {text!r}") from None
    bad = [v for v in values if v not in conf["n_train"]]
    if bad or not values:
        raise VaebenchError(f"--n-train: choose from {', '.join(map(str, conf['n_train']))}, got {text!r}")
    return values


def reproduce(args) -> int:
    import torch

    from vaebench.runner import run_many

    conf = load_config(getattr(args, "config", None))
    n_train = _parse_n_train(getattr(args, "n_train", None), conf)
    threads = getattr(args, "threads", None)
    if threads:
        torch.set_num_threads(threads)
    out = Path(args.out) if getattr(args, "out", None) else Path("results") / "figure3" / args.budget
    runs = build_runs(conf, args.budget, out, n_train=n_train, device=getattr(args, "device", None),
                      backend=getattr(args, "backend", None), data_dir=getattr(args, "data_dir", None))
    settings = marginal_settings(conf, args.budget)
    command = shlex.join(["vaebench", *sys.argv[1:]]) if sys.argv and sys.argv[0] else None
    progress = getattr(args, "progress", True)
    print(f"figure3, budget {args.budget}: {len(runs)} runs into {out}/ ({args.jobs} at a time), then the "
          f"appendix D estimate on the first {settings['n_points']:,} train and test points at every snapshot "
          f"from {settings['min_samples']:,} samples", flush=True)
    if settings["n_points"] < 1000:
        print(f"note: {settings['n_points']} points per split at this budget (the paper: 1,000)", flush=True)
    t0, paths = time.perf_counter(), None
    try:
        run_many(runs, jobs=args.jobs, progress=progress)
        estimate_all(runs, settings, data_dir=getattr(args, "data_dir", None), device=getattr(args, "device", None),
                     progress=progress)
    finally:
        wall = round(time.perf_counter() - t0, 1)
        if any((Path(d) / f"marginal_{settings['method']}.csv").exists() for _, d in runs):
            paths = summarize(out, budget=args.budget, settings=settings, command=command, reproduce_wall_s=wall)
    if paths is None:
        raise VaebenchError(f"no run has marginal-likelihood estimates under {out}")
    print_done(paths, wall, "figure3_table.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    return summarize_main(argv, summarize, "figure3", "Figure 3", "ntrain<N>_<algorithm>/")


if __name__ == "__main__":
    sys.exit(main())
