"""Full VB over theta (the paper's appendix F) against ML and MAP, where the paper's models overfit.

    vaebench reproduce full-vb [--budget quick|medium] [--panels nz3,nz20] [--n-train 1000,50000]
                               [--theta ml,map,vb] [--ablation] [--min-samples N] [--jobs 2] [--threads 1]
    python -m vaebench.figures.full_vb results/full_vb/medium            # summarize existing runs
    python -m vaebench.figures.full_vb --check-proposal RUN_DIR           # the predictive's proposal

Trains the runs of reproductions/full_vb.toml at a budget (vaebench.pipeline: in parallel,
resumable, finished runs skipped) into <out>/<panel>_ntrain<N>_<theta>/ (default
results/full_vb/<budget>/), estimates at every snapshot (vaebench.vb_evaluation; ``--jobs`` runs
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

import argparse
import math
import re
import sys
from pathlib import Path

from vaebench import pipeline
from vaebench.errors import VaebenchError
from vaebench.figures.common import format_samples, new_figure, ranks, save_figure
from vaebench.runs import RunFolder
from vaebench.vb_evaluation import DEFAULTS as EVAL_DEFAULTS, evaluate_run, read_estimates

THETAS = ("ml", "map", "vb")
LABELS = {"ml": "ML", "map": "MAP", "vb": "VB"}
COLORS = {"ml": "#606060", "map": "#e00000", "vb": "#0030e0", "vb-predictive": "#00a0c0"}
SPLIT_STYLE = {"train": "-", "test": "--"}
TABLE_BUDGETS = (1_000_000, 10_000_000)
ESTIMATES = "full_vb_estimates"   # <out>/full_vb_estimates/<run>.csv
_RUN_NAME = re.compile(r"^(nz\d+)_ntrain(\d+)_(ml|map|vb)(?:-([A-Za-z0-9.+-]+))?$")
QUANTITY_LABELS = {
    "bound": "SGVB-B bound per datapoint at the point estimate / mu_theta (metrics.csv, whole split)",
    "hmc": "appendix D marginal log-likelihood at the point estimate / mu_theta",
    "plugin": "the same by importance sampling (proposal fitted to the HMC samples)",
    "predictive": "VB posterior predictive log (1/S) sum_s p(x | theta_s)",
    "dataset_bound": "VB dataset-level bound L(phi; X) / N (eq. F.2, whole split)"}


def run_name(panel: str, n_train: int, theta: str, variant: str | None = None) -> str:
    return f"{panel}_ntrain{n_train}_{theta}" + (f"-{variant}" if variant else "")


class FullVBStudy(pipeline.Study):
    name, command, title = "full_vb", "full-vb", "Full VB"
    description = "Full VB over theta (appendix F) against ML and MAP: Figure 3's setting and MNIST N_z = 20"
    run_pattern = "<panel>_ntrain<N>_<theta>/"
    algorithms = ("aevb",)
    columns = ("budget", "panel", "nz", "n_train", "theta", "variant", "samples_seen", "split", "quantity", "value",
               "stderr", "n_points", "S", "k", "lr", "status", "run")
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

    def add_arguments(self, p):
        p.add_argument("--panels", help="comma-separated subset of the config's panels (default: all)")
        p.add_argument("--n-train", dest="n_train", help="comma-separated training-set sizes (default: each panel's)")
        p.add_argument("--theta", help="comma-separated subset of ml,map,vb (default: all three)")
        p.add_argument("--ablation", action="store_true", help="also the ablation of VB's choices ([ablation])")
        p.add_argument("--min-samples", dest="min_samples", type=float,
                       help="estimate the snapshots from this many samples on (default: the config's)")

    def selection(self, args, conf):
        def subset(text, choices, what):
            if not text:
                return None
            values = [v.strip() for v in text.split(",") if v.strip()]
            bad = [v for v in values if v not in choices]
            if bad or not values:
                raise VaebenchError(f"--{what}: choose from {', '.join(map(str, choices))}, got {text!r}")
            return values

        sizes = sorted({str(n) for p in conf["panels"].values() for n in p["n_train"]}, key=int)
        n_train = subset(getattr(args, "n_train", None), sizes, "n-train")
        return {"panels": subset(getattr(args, "panels", None), list(conf["panels"]), "panels"),
                "n_train": [int(n) for n in n_train] if n_train else None,
                "thetas": subset(getattr(args, "theta", None), list(conf["theta"]), "theta"),
                "ablation": bool(getattr(args, "ablation", False))}

    def setting_overrides(self, args):
        value = getattr(args, "min_samples", None)
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
                    cfg = pipeline.run_config(conf, budget, layer, algorithm="aevb", overrides=overrides,
                                              n_train=int(n), **table)
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
            keys = {**base, **{k: v for k, v in change.items() if k != "options"},
                    "options": {**base.get("options", {}), **change.get("options", {})}}
            if "samples" in ab and "samples" not in change:  # the ablation's own budget, if below the study's
                keys["samples"] = min(int(float(ab["samples"])), pipeline.budget_samples(conf, budget))
            cfg = pipeline.run_config(conf, budget, layer, algorithm="aevb", overrides=overrides,
                                      n_train=int(ab["n_train"]), **keys)
            specs.append((cfg, run_name(ab["panel"], int(ab["n_train"]), "vb", variant)))
        return specs

    def run_key(self, name):
        m = _RUN_NAME.match(name)
        if not m:
            return None
        return (int(m.group(1)[2:]), int(m.group(2)), m.group(4) or "", THETAS.index(m.group(3)))

    def announce(self, rep):
        s = rep.settings
        return (f", then estimates on the first {s['n_points']:,} train and test points at every snapshot from "
                f"{s['min_samples']:,} samples ({rep.jobs} runs at a time)")

    def after_training(self, rep):
        estimate_all(rep.runs, rep.settings, rep.out, conf=rep.conf, jobs=rep.jobs, threads=rep.threads,
                     device=rep.device, data_dir=rep.data_dir, progress=rep.progress)

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
            frames.append(pd.DataFrame({"samples_seen": metrics.samples_seen, "split": metrics.split,
                                        "quantity": "bound", "value": metrics.lower_bound.astype(float),
                                        "n_points": None}))
        hmc = pipeline.frame(folder.read_marginal("hmc"))
        if not hmc.empty:
            if settings.get("n_points") is not None:
                hmc = hmc[hmc.n_points.astype(int) <= int(settings["n_points"])]
            frames.append(pd.DataFrame({"samples_seen": hmc.samples_seen, "split": hmc.split, "quantity": "hmc",
                                        "value": hmc.marginal_log_likelihood, "stderr": hmc.stderr,
                                        "n_points": hmc.n_points}))
        ours = pipeline.frame(read_estimates(folder.path.parent / ESTIMATES / f"{folder.name}.csv"))
        if not ours.empty:
            frames.append(ours[["samples_seen", "split", "quantity", "value", "stderr", "n_points", "S", "k"]])
        if not frames:
            return None
        df = pd.concat(frames, ignore_index=True)
        df["panel"], df["n_train"], df["theta"], df["variant"] = m.group(1), int(m.group(2)), m.group(3), m.group(4) or ""
        info = pipeline.read_info(folder)
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
                row = {"panel": panel, "nz": int(at.nz.iloc[0]), "n_train": int(n_train), "theta": theta,
                       "variant": variant, "samples": samples}
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
        for (panel, nz, n_train), g in main.groupby(["panel", "nz", "n_train"], sort=False):
            lines += [f"### MNIST, N_z = {nz}, N_train = {n_train:,}", "",
                      "| theta | samples | log p(x) train | test | gap | predictive train | test | gap "
                      "| bound train | test | F.2 bound train | test |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            g = g.sort_values(["samples", "theta"], key=lambda c: c.map(ranks(*THETAS)) if c.name == "theta" else c)
            for r in g.itertuples():
                pred = ((r.predictive_train, r.predictive_test, r.predictive_gap) if r.theta == "vb"
                        else (r.plugin_train, r.plugin_test, r.plugin_gap))
                lines.append(f"| {LABELS[r.theta]} | {format_samples(r.samples)} | {_f(r.hmc_train)} | {_f(r.hmc_test)} "
                             f"| {_f(r.hmc_gap)} | {_f(pred[0])} | {_f(pred[1])} | {_f(pred[2])} | {_f(r.bound_train)} "
                             f"| {_f(r.bound_test)} | {_f(r.dataset_bound_train)} | {_f(r.dataset_bound_test)} |")
            lines.append("")
        ab = table[(table.theta == "vb")]
        if (ab.variant != "").any():
            lines += ["### Ablation of VB's choices (N_z = 3, N_train = 1,000)", "",
                      "| variant | samples | log p(x \\| mu) train | test | gap | predictive train | test | gap "
                      "| F.2 bound train | test |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            ab = ab[(ab.panel == "nz3") & (ab.n_train == 1000)].sort_values(["samples", "variant"])
            for r in ab.itertuples():
                lines.append(f"| {r.variant or 'default'} | {format_samples(r.samples)} | {_f(r.hmc_train)} "
                             f"| {_f(r.hmc_test)} | {_f(r.hmc_gap)} | {_f(r.predictive_train)} | {_f(r.predictive_test)} "
                             f"| {_f(r.predictive_gap)} | {_f(r.dataset_bound_train)} | {_f(r.dataset_bound_test)} |")
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
            f"on the whole split, KL(q(theta) || p(theta)) / N included ({s['S_bound']} draws of theta).", ""]
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
                        ax.plot(c.samples_seen / 1e6, c.value, SPLIT_STYLE[split], color=color, lw=1.5, marker="o",
                                ms=2.5)
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

        handles = [Line2D([], [], color=COLORS[t], lw=1.5, label=f"{LABELS[t]}" + (" at mu_theta" if t == "vb" else ""))
                   for t in THETAS]
        handles += [Line2D([], [], color=COLORS["vb-predictive"], lw=1.5, label="VB posterior predictive"),
                    Line2D([], [], color="k", ls="-", label="train"), Line2D([], [], color="k", ls="--", label="test")]
        fig.suptitle("Full VB (appendix F) against ML and MAP:\nappendix D marginal log-likelihood"
                     + (f" (budget: {budget})" if budget else ""), fontsize=10)
        fig.legend(handles=handles, loc="lower center", ncol=3 if len(panels) == 1 else 6, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.12 if len(panels) == 1 else 0.08, 1, 0.92))
        save_figure(fig, path)

    def run_provenance(self, folder, info, summary):
        rows = read_estimates(folder.path.parent / ESTIMATES / f"{folder.name}.csv")
        hmc = folder.read_marginal("hmc")
        return {"theta": info.get("config", {}).get("theta"), "estimator": info.get("config", {}).get("estimator"),
                "options": info.get("config", {}).get("options"),
                "estimate_wall_s": round(math.fsum(float(r["wall_s"]) for r in rows + hmc), 1)}

    def provenance(self, summary):
        return {"evaluation": {**self.settings_defaults, **(summary.settings or {})},
                "quantities": QUANTITY_LABELS}


def _f(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


# ---- the estimates -------------------------------------------------------------------------

def _estimate_one(run_dir: str, estimates_csv: str, settings: dict, only, threads: int | None, device, data_dir,
                  progress: bool) -> str:
    from vaebench.runner import torch_threads

    with torch_threads(threads):
        evaluate_run(run_dir, estimates_csv, settings, min_samples=settings.get("min_samples", 0), only=only,
                     device=device or "cpu", progress=progress)
    return run_dir


def estimate_all(runs, settings: dict, out, *, conf=None, jobs: int = 1, threads: int | None = None, device=None,
                 data_dir=None, progress: bool = True) -> None:
    """Every run's estimates (vaebench.vb_evaluation.evaluate_run), ``jobs`` runs at a time; the
    ablation's runs only at its ``evaluate_at`` budgets."""
    from vaebench.runner import worker_pool

    only_for = (conf or {}).get("ablation", {}).get("evaluate_at")
    todo = []
    for cfg, run_dir in runs:
        if RunFolder(run_dir).read_info(missing_ok=True) is None:
            continue
        m = _RUN_NAME.match(Path(run_dir).name)
        only = only_for if (m and m.group(4)) else None
        todo.append((str(run_dir), str(Path(out) / ESTIMATES / f"{Path(run_dir).name}.csv"), settings, only, threads,
                     device, data_dir, progress))
    (Path(out) / ESTIMATES).mkdir(parents=True, exist_ok=True)
    if jobs <= 1 or len(todo) <= 1:
        for args in todo:
            _estimate_one(*args)
        return
    failed = []
    with worker_pool(min(jobs, len(todo))) as pool:
        futures = [pool.submit(_estimate_one, *args) for args in todo]
        for fut, args in zip(futures, todo):
            if fut.exception() is not None:
                failed.append(f"{Path(args[0]).name}: {fut.exception()}")
    if failed:
        raise VaebenchError("estimates failed: " + "; ".join(failed))


STUDY = FullVBStudy()


def check_proposal(run_dir, *, n_points: int = 200, draws: int = 3, seed: int = 0, settings: dict | None = None) -> Path:
    """The predictive's proposal against the appendix D estimator at single draws theta_s: at the
    run's last snapshot, per split, log p(x | theta) at mu_theta and at ``draws`` draws theta_s ~ q(theta)
    by the appendix D estimator (its own HMC at theta_s) and by importance sampling from the proposal
    fitted at mu_theta (k_plugin draws), with the importance weights' median effective sample size.
    Writes <out>/proposal_check.csv beside the run folder."""
    import torch

    from vaebench import marginal, vb_evaluation as ve
    from vaebench.data import load_dataset
    from vaebench.fileio import atomic_write_text

    s = {**EVAL_DEFAULTS, **(settings or {})}
    folder = RunFolder(run_dir)
    cfg = folder.read_config()
    data = load_dataset(cfg.dataset, cfg.data_dir, binarize=cfg.binarize, n_train=cfg.n_train, seed=cfg.seed)
    samples_seen, path, kind = folder.parameters("all")[-1]
    model = ve.load_model(cfg, data.x_dim, data.likelihood, folder.load_parameters(path, kind))
    hmc = dict(samples=s["samples_per_point"], n_leapfrog=s["leapfrog"], burn_in=s["burn_in"], thin=s["thin"])
    lines = ["run,samples_seen,split,n_points,theta_draw,appendix_d,importance_fitted_proposal,difference,"
             "median_ess,k"]
    for split, x_all in (("train", data.train), ("test", data.test)):
        x = x_all[:n_points]
        g = torch.Generator().manual_seed(seed)
        est, zs = ve.appendix_d(ve.at_mean(model), x, samples=hmc["samples"], leapfrog=hmc["n_leapfrog"],
                                burn_in=hmc["burn_in"], thin=hmc["thin"], generator=g)
        proposal = ve.Proposal(zs)
        for i, m in enumerate([ve.at_mean(model)] + ve.draw_models(model, draws, g)):
            h = est if i == 0 else marginal.hmc_log_marginal(m, x, generator=g, **hmc)
            logw = ve.importance(m, x, proposal, k=s["k_plugin"], generator=g)
            lme, _ = marginal._logmeanexp_with_stderr(logw)
            w = torch.softmax(logw, 0)
            ess = float((1 / w.square().sum(0)).median())
            imp = float(lme.double().mean())
            lines.append(f"{folder.name},{samples_seen},{split},{x.shape[0]},{'mu' if i == 0 else i},{h.mean:.4f},"
                         f"{imp:.4f},{imp - h.mean:.4f},{ess:.0f},{s['k_plugin']}")
    out = folder.path.parent / "proposal_check.csv"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    """Summarize existing runs (``DIR``), or ``--check-proposal RUN_DIR``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--check-proposal"] and len(argv) == 2:
        print(f"wrote {check_proposal(argv[1])}")
        return 0
    return pipeline.summarize_main(STUDY, argv)


if __name__ == "__main__":
    sys.exit(main())
