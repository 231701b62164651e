"""Full VB over theta (the paper's appendix F) against ML and MAP, where the paper's models overfit.

    vaebench reproduce full-vb [--budget quick|medium] [--panels nz3,nz20] [--n-train 1000,50000]
                               [--theta ml,map,vb] [--ablation] [--min-samples N] [--jobs 2] [--threads 1]
    python -m vaebench.figures.full_vb results/full_vb/medium            # summarize existing runs
    python -m vaebench.figures.full_vb --check-proposal RUN_DIR           # the predictive's proposal

Trains the runs of reproductions/full_vb.toml at a budget (vaebench.engine: in parallel,
resumable, finished runs skipped) into <out>/<panel>_ntrain<N>_<theta>/ (default
results/full_vb/<budget>/), estimates at every snapshot (vaebench.marginal.vb; ``--jobs`` runs
at a time): the appendix D marginal likelihood at the point estimate or mu_theta (the run's
marginal_hmc.csv), the same by importance sampling with a proposal fitted to the HMC samples, the
VB posterior predictive and the dataset-level bound L(phi; X) / N (eq. F.2)
(<out>/full_vb_estimates/<run>.csv), then writes

  full_vb.csv          tidy: run, samples_seen, split, quantity, value, stderr, ...
  full_vb_table.md     ML, MAP and VB at 1e6 and 1e7 samples: train, test and the gap (and .csv)
  full_vb.png          Figure 3's style: marginal log-likelihood (train solid, test dashed)
                       against training samples, one panel per setting
  provenance.json      machine, versions, budget, settings, command and wall times
"""

from __future__ import annotations

import functools
import math
import re
import sys
from pathlib import Path

from vaebench.engine.config import budget_samples, run_config
from vaebench.engine.study import Option, Study
from vaebench.engine.summary import frame, ranks
from vaebench.errors import VaebenchError
from vaebench.figures.common import LINESTYLES, new_figure, save_figure
from vaebench.formatting import format_samples, format_value
from vaebench.marginal.vb import DEFAULTS as EVAL_DEFAULTS
from vaebench.marginal.vb import check_proposal, evaluate_run, read_estimates
from vaebench.runs import RunFolder

THETAS = ("ml", "map", "vb")
LABELS = {"ml": "ML", "map": "MAP", "vb": "VB"}
COLORS = {"ml": "#606060", "map": "#e00000", "vb": "#0030e0", "vb-predictive": "#00a0c0"}
TABLE_BUDGETS = (1_000_000, 10_000_000)
ESTIMATES = "full_vb_estimates"  # <out>/full_vb_estimates/<run>.csv
_RUN_NAME = re.compile(r"^(nz\d+)_ntrain(\d+)_(ml|map|vb)(?:-([A-Za-z0-9.+-]+))?$")
QUANTITY_LABELS = {
    "bound": "SGVB-B bound per datapoint at the point estimate / mu_theta (metrics.csv, whole split)",
    "hmc": "appendix D marginal log-likelihood at the point estimate / mu_theta",
    "plugin": "the same by importance sampling (proposal fitted to the HMC samples)",
    "predictive": "VB posterior predictive log (1/S) sum_s p(x | theta_s)",
    "dataset_bound": "VB dataset-level bound L(phi; X) / N (eq. F.2, whole split)",
}


def run_name(panel: str, n_train: int, theta: str, variant: str | None = None) -> str:
    return f"{panel}_ntrain{n_train}_{theta}" + (f"-{variant}" if variant else "")


class FullVBStudy(Study):
    name, command, title = "full_vb", "full-vb", "Full VB"
    description = "Full VB over theta (appendix F) against ML and MAP: Figure 3's setting and MNIST N_z = 20"
    run_pattern = "<panel>_ntrain<N>_<theta>/"
    algorithms = ("aevb",)
    # fmt: off
    columns = ("budget", "panel", "nz", "n_train", "theta", "variant", "samples_seen", "split", "quantity", "value",
               "stderr", "n_points", "S", "k", "lr", "status", "run")
    # fmt: on
    row_order = ("panel", "n_train", "variant", "theta", "samples_seen", "split", "quantity")
    row_ranks = {"theta": ranks(*THETAS), "split": ranks("train", "test")}
    settings_table = "evaluation"
    settings_defaults = {**EVAL_DEFAULTS, "min_samples": 0}

    # ---- the config and the runs
    def check_config(self, conf, path):
        for key in ("panels", "theta"):
            if not isinstance(conf.get(key), dict) or not conf[key]:
                raise VaebenchError(f"{path}: needs a [{key}] table")
        for name, panel in conf["panels"].items():
            if not isinstance(panel.get("n_train"), list) or not panel["n_train"]:
                raise VaebenchError(f"{path}: [panels.{name}] needs n_train, a list of training-set sizes")
        unknown = sorted(set(conf["theta"]) - set(THETAS))
        if unknown:
            raise VaebenchError(f"{path}: unknown [theta.{unknown[0]}]; choose from {', '.join(THETAS)}")

    options = (
        Option("--panels", "comma-separated subset of the config's panels (default: all)"),
        Option("--n-train", "comma-separated training-set sizes (default: each panel's)"),
        Option("--theta", "comma-separated subset of ml,map,vb (default: all three)"),
        Option("--ablation", "also the ablation of VB's choices ([ablation])", switch=True),
        Option("--min-samples", "estimate the snapshots from this many samples on (default: the config's)", type=float),
    )

    def selection(self, values, conf):
        def subset(text, choices, what):
            if not text:
                return None
            values = [v.strip() for v in text.split(",") if v.strip()]
            bad = [v for v in values if v not in choices]
            if bad or not values:
                raise VaebenchError(f"--{what}: choose from {', '.join(map(str, choices))}, got {text!r}")
            return values

        sizes = sorted({str(n) for p in conf["panels"].values() for n in p["n_train"]}, key=int)
        n_train = subset(values.get("n_train"), sizes, "n-train")
        return {
            "panels": subset(values.get("panels"), list(conf["panels"]), "panels"),
            "n_train": [int(n) for n in n_train] if n_train else None,
            "thetas": subset(values.get("theta"), list(conf["theta"]), "theta"),
            "ablation": bool(values.get("ablation", False)),
        }

    def setting_overrides(self, values):
        value = values.get("min_samples")
        return {} if value is None else {"min_samples": int(value)}

    def run_specs(self, conf, budget, selection, overrides):
        specs = []
        for pname, panel in conf["panels"].items():
            if selection.get("panels") and pname not in selection["panels"]:
                continue
            layer = {k: v for k, v in panel.items() if k != "n_train"}
            for n in panel["n_train"]:
                if selection.get("n_train") and int(n) not in selection["n_train"]:
                    continue
                for theta in selection.get("thetas") or list(conf["theta"]):  # in the order asked
                    table = conf["theta"][theta]
                    cfg = run_config(
                        conf, budget, layer, algorithm="aevb", overrides=overrides, n_train=int(n), **table
                    )
                    specs.append((cfg, run_name(pname, int(n), theta)))
        if selection.get("ablation"):
            specs += self.ablation_specs(conf, budget, overrides)
        return specs

    def ablation_specs(self, conf, budget, overrides):
        ab = conf.get("ablation") or {}
        if not ab.get("variants"):
            return []
        panel = conf["panels"][ab["panel"]]
        layer = {k: v for k, v in panel.items() if k != "n_train"}
        base = conf["theta"]["vb"]
        specs = []
        for variant, change in ab["variants"].items():
            keys = {
                **base,
                **{k: v for k, v in change.items() if k != "options"},
                "options": {**base.get("options", {}), **change.get("options", {})},
            }
            if "samples" in ab and "samples" not in change:  # the ablation's own budget, if below the study's
                keys["samples"] = min(int(float(ab["samples"])), budget_samples(conf, budget))
            cfg = run_config(
                conf, budget, layer, algorithm="aevb", overrides=overrides, n_train=int(ab["n_train"]), **keys
            )
            specs.append((cfg, run_name(ab["panel"], int(ab["n_train"]), "vb", variant)))
        return specs

    def run_key(self, name):
        m = _RUN_NAME.match(name)
        if not m:
            return None
        return (int(m.group(1)[2:]), int(m.group(2)), m.group(4) or "", THETAS.index(m.group(3)))

    def announce(self, rep):
        s = rep.settings
        return (
            f", then estimates on the first {s['n_points']:,} train and test points at every snapshot from "
            f"{s['min_samples']:,} samples ({rep.jobs} runs at a time)"
        )

    def after_training(self, rep):
        estimate_all(
            rep.runs,
            rep.settings,
            rep.out,
            executor=rep.executor,
            conf=rep.conf,
            device=rep.device,
            progress=rep.progress,
        )

    # ---- the summary
    def stored_settings(self, provenance):
        stored = provenance.get("evaluation") or {}
        return {k: v for k, v in stored.items() if k in self.settings_defaults}

    def run_rows(self, folder, settings):
        import pandas as pd

        m = _RUN_NAME.match(folder.name)
        frames = []
        metrics = folder.read_metrics()
        if not metrics.empty:
            frames.append(
                pd.DataFrame(
                    {
                        "samples_seen": metrics.samples_seen,
                        "split": metrics.split,
                        "quantity": "bound",
                        "value": metrics.lower_bound.astype(float),
                        "n_points": None,
                    }
                )
            )
        hmc = frame(folder.read_marginal("hmc"))
        if not hmc.empty:
            if settings.get("n_points") is not None:
                hmc = hmc[hmc.n_points.astype(int) <= int(settings["n_points"])]
            frames.append(
                pd.DataFrame(
                    {
                        "samples_seen": hmc.samples_seen,
                        "split": hmc.split,
                        "quantity": "hmc",
                        "value": hmc.marginal_log_likelihood,
                        "stderr": hmc.stderr,
                        "n_points": hmc.n_points,
                    }
                )
            )
        ours = frame(read_estimates(folder.path.parent / ESTIMATES / f"{folder.name}.csv"))
        if not ours.empty:
            frames.append(ours[["samples_seen", "split", "quantity", "value", "stderr", "n_points", "S", "k"]])
        if not frames:
            return None
        df = pd.concat(frames, ignore_index=True)
        df["panel"], df["n_train"], df["theta"], df["variant"] = (
            m.group(1),
            int(m.group(2)),
            m.group(3),
            m.group(4) or "",
        )
        info = folder.info_or_empty(warn=True)
        df["nz"] = info.get("config", {}).get("nz")
        return df

    def compare(self, ours):
        """One row per run and table budget it reached: train, test and train - test of each quantity."""
        import pandas as pd

        rows = []
        for (panel, n_train, variant, theta), g in ours.groupby(["panel", "n_train", "variant", "theta"], sort=False):
            reached = [b for b in TABLE_BUDGETS if (g.samples_seen == b).any()] or [int(g.samples_seen.max())]
            for samples in reached:  # the table's budgets, or the last snapshot of a shorter run
                at = g[g.samples_seen == samples]
                row = {
                    "panel": panel,
                    "nz": int(at.nz.iloc[0]),
                    "n_train": int(n_train),
                    "theta": theta,
                    "variant": variant,
                    "samples": samples,
                }
                for q in QUANTITY_LABELS:
                    for split in ("train", "test"):
                        v = at[(at.quantity == q) & (at.split == split)]
                        row[f"{q}_{split}"] = float(v.value.iloc[0]) if not v.empty else math.nan
                    row[f"{q}_gap"] = row[f"{q}_train"] - row[f"{q}_test"]
                rows.append(row)
        return pd.DataFrame(rows)

    def table_markdown(self, table, summary):
        s = {**self.settings_defaults, **(summary.settings or {})}
        lines = [f"## Full VB against ML and MAP (budget: {summary.budget})", ""]
        if table.empty:
            return "\n".join(lines + ["No estimates yet.", ""])
        main = table[table.variant == ""]
        for (_panel, nz, n_train), g in main.groupby(["panel", "nz", "n_train"], sort=False):
            lines += [
                f"### MNIST, N_z = {nz}, N_train = {n_train:,}",
                "",
                "| theta | samples | log p(x) train | test | gap | predictive train | test | gap "
                "| bound train | test | F.2 bound train | test |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            g = g.sort_values(["samples", "theta"], key=lambda c: c.map(ranks(*THETAS)) if c.name == "theta" else c)
            for r in g.itertuples():
                pred = (
                    (r.predictive_train, r.predictive_test, r.predictive_gap)
                    if r.theta == "vb"
                    else (r.plugin_train, r.plugin_test, r.plugin_gap)
                )
                lines.append(
                    f"| {LABELS[r.theta]} | {format_samples(r.samples)} | {_f(r.hmc_train)} | {_f(r.hmc_test)} "
                    f"| {_f(r.hmc_gap)} | {_f(pred[0])} | {_f(pred[1])} | {_f(pred[2])} | {_f(r.bound_train)} "
                    f"| {_f(r.bound_test)} | {_f(r.dataset_bound_train)} | {_f(r.dataset_bound_test)} |"
                )
            lines.append("")
        ab = table[(table.theta == "vb")]
        if (ab.variant != "").any():
            lines += [
                "### Ablation of VB's choices (N_z = 3, N_train = 1,000)",
                "",
                "| variant | samples | log p(x \\| mu) train | test | gap | predictive train | test | gap "
                "| F.2 bound train | test |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            ab = ab[(ab.panel == "nz3") & (ab.n_train == 1000)].sort_values(["samples", "variant"])
            for r in ab.itertuples():
                lines.append(
                    f"| {r.variant or 'default'} | {format_samples(r.samples)} | {_f(r.hmc_train)} "
                    f"| {_f(r.hmc_test)} | {_f(r.hmc_gap)} | {_f(r.predictive_train)} | {_f(r.predictive_test)} "
                    f"| {_f(r.predictive_gap)} | {_f(r.dataset_bound_train)} | {_f(r.dataset_bound_test)} |"
                )
            lines.append("")
        lines += [
            "Nats per datapoint; gap = train − test. log p(x): the appendix D estimator (HMC, "
            f"{s['samples_per_point']} + {s['samples_per_point']} posterior samples, {s['leapfrog']} leapfrog steps) "
            f"on the first {s['n_points']:,} points of each split, at the point estimate (ML, MAP) or at "
            "theta = mu_theta (VB). predictive: VB's posterior predictive log (1/S) Σ_s p(x | theta_s) over "
            f"S = {s['S']} draws theta_s ~ q(theta), each p(x | theta_s) by importance sampling with k = {s['k']} "
            "draws from a Student-t proposal fitted to the HMC samples; for ML and MAP the same importance "
            "sampling at the point estimate (S = 1). bound: the SGVB-B bound per datapoint at the point "
            "estimate / mu_theta on the whole split (metrics.csv). F.2 bound: VB's L(phi; X) / N of eq. F.2 "
            f"on the whole split, KL(q(theta) || p(theta)) / N included ({s['S_bound']} draws of theta).",
            "",
        ]
        return "\n".join(lines)

    def plot(self, ours, path, budget):
        main = ours[(ours.variant == "") & ours.quantity.isin(["hmc", "predictive"])]
        panels = [k for k, _ in main.groupby(["panel", "n_train"], sort=True)]
        panels.sort(key=lambda k: (int(k[0][2:]), k[1]))
        if not panels:
            raise VaebenchError("no marginal-likelihood estimates to plot")
        fig, axes = new_figure(1, len(panels), (max(7.0, 5.2 * len(panels)), 5.0))
        for ax, (panel, n) in zip(axes[0], panels):
            sub = main[(main.panel == panel) & (main.n_train == n)]
            for theta in THETAS:
                for quantity in ("hmc", "predictive"):
                    color = COLORS["vb-predictive" if quantity == "predictive" else theta]
                    for split in ("train", "test"):
                        c = sub[(sub.theta == theta) & (sub.quantity == quantity) & (sub.split == split)]
                        c = c.sort_values("samples_seen")
                        if c.empty:
                            continue
                        ax.plot(
                            c.samples_seen / 1e6, c.value, LINESTYLES[split], color=color, lw=1.5, marker="o", ms=2.5
                        )
            ax.set_title(f"MNIST, N_z = {int(sub.nz.iloc[0])}, N_train = {n:,}", fontsize=10)
            ax.set_xlabel("# training samples evaluated (millions)", fontsize=9)
            ax.set_ylabel("marginal log-likelihood", fontsize=9)
            ax.grid(True, lw=0.3, alpha=0.5)
            ax.tick_params(labelsize=8)
            ys = sub.value[sub.samples_seen >= 1e6]
            if len(ys):
                lo, hi = float(ys.min()), float(ys.max())
                ax.set_ylim(lo - 0.3 * (hi - lo + 1), hi + 0.1 * (hi - lo + 1))
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], color=COLORS[t], lw=1.5, label=f"{LABELS[t]}" + (" at mu_theta" if t == "vb" else ""))
            for t in THETAS
        ]
        handles += [
            Line2D([], [], color=COLORS["vb-predictive"], lw=1.5, label="VB posterior predictive"),
            *(Line2D([], [], color="k", ls=ls, label=split) for split, ls in LINESTYLES.items()),
        ]
        fig.suptitle(
            "Full VB (appendix F) against ML and MAP:\nappendix D marginal log-likelihood"
            + (f" (budget: {budget})" if budget else ""),
            fontsize=10,
        )
        fig.legend(handles=handles, loc="lower center", ncol=3 if len(panels) == 1 else 6, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.12 if len(panels) == 1 else 0.08, 1, 0.92))
        save_figure(fig, path)

    def run_provenance(self, folder, info, summary):
        rows = read_estimates(folder.path.parent / ESTIMATES / f"{folder.name}.csv")
        hmc = folder.read_marginal("hmc")
        return {
            "theta": info.get("config", {}).get("theta"),
            "estimator": info.get("config", {}).get("estimator"),
            "options": info.get("config", {}).get("options"),
            "estimate_wall_s": round(math.fsum(float(r["wall_s"]) for r in rows + hmc), 1),
        }

    def provenance(self, summary):
        return {"evaluation": {**self.settings_defaults, **(summary.settings or {})}, "quantities": QUANTITY_LABELS}


def _f(v) -> str:
    return format_value(v, 1, missing="")


# ---- the estimates -------------------------------------------------------------------------


def estimate_task(
    cfg_dict: dict, run_dir: str, threads: int | None, *, settings: dict, only_for, device, progress: bool
) -> str:
    """One run's estimates (vaebench.marginal.vb.evaluate_run) into <out>/estimates/<run>.csv, with
    ``threads`` torch threads: the task an executor runs after training (the ablation's runs only
    at ``only_for``, its ``evaluate_at`` budgets)."""
    from vaebench.engine.workers import torch_threads

    m = _RUN_NAME.match(Path(run_dir).name)
    with torch_threads(threads):
        evaluate_run(
            run_dir,
            Path(run_dir).parent / ESTIMATES / f"{Path(run_dir).name}.csv",
            settings,
            min_samples=settings.get("min_samples", 0),
            only=only_for if (m and m.group(4)) else None,
            device=device or "cpu",
            progress=progress,
        )
    return run_dir


def estimate_all(runs, settings: dict, out, *, executor, conf=None, device=None, progress: bool = True) -> None:
    """Every trained run's estimates, as tasks of ``executor`` (the one the runs trained on);
    the failures raised together at the end, as training's are."""
    from vaebench.engine.runs_many import raise_failures, run_each

    todo = [(cfg, Path(run_dir)) for cfg, run_dir in runs if RunFolder(run_dir).read_info(missing_ok=True) is not None]
    (Path(out) / ESTIMATES).mkdir(parents=True, exist_ok=True)
    task = functools.partial(
        estimate_task,
        settings=settings,
        only_for=(conf or {}).get("ablation", {}).get("evaluate_at"),
        device=device,
        progress=progress,
    )
    raise_failures(run_each(executor, todo, task), len(todo))


STUDY = FullVBStudy()


def main(argv: list[str] | None = None) -> int:
    """Summarize existing runs (``DIR``), or ``--check-proposal RUN_DIR``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--check-proposal"] and len(argv) == 2:
        print(f"wrote {check_proposal(argv[1])}")
        return 0
    from vaebench.cli.summarize import main as summarize_main  # python -m vaebench.figures.full_vb DIR

    return summarize_main(STUDY, argv)


if __name__ == "__main__":
    sys.exit(main())
