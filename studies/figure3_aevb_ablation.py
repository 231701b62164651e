"""Why does our AEVB with N_train = 50,000 sit 8-10 nats above the paper's Figure 3 curve while
N_train = 1,000 matches it? The candidates of the Frey Face ablation, on this panel (the issue
"Sweeps that outgrow one machine", its Figure 3 question; README, "Reproducing Figure 3").

    python studies/figure3_aevb_ablation.py [--variants all] [--n-train 50000]   # train + estimate
    python studies/figure3_aevb_ablation.py --summarize                          # table + plot

As run for the committed results (2026-11-26, one process, one thread, beside other runs):
    python studies/figure3_aevb_ablation.py --n-train 50000
    python studies/figure3_aevb_ablation.py --n-train 1000 --variants ours,lr-0.02,prior-per-batch

Each variant is Figure 3's AEVB run (reproductions/figure3.toml: N_z = 3, 100 hidden units,
M = 100, L = 1, estimator B, Adagrad with the step size picked from {0.01, 0.02, 0.1}, the N(0, I)
prior on the parameters, seed 0) with one choice changed, trained to 5e6 samples (the first
budget at which the paper's curve for this panel is read) into
results/figure3/aevb_ablation/<variant>_ntrain<N>/, then log p(x) by the appendix D estimator
(the medium settings: first 1,000 train and test points) with the final parameters:

  ours             the committed setting (the control)
  lr-0.01, lr-0.02 the step size fixed (the auto rule picks 0.1 for this panel)
  init-fanin       weights ~ N(0, 1/fan_in), biases ~ N(0, 0.01^2)
  init-var         N(0, 0.01) read as a variance (sd 0.1) instead of a standard deviation
  prior-per-batch  the prior counted once per minibatch, not once per pass over the data: weight
                   decay 1/M instead of 1/N_train per datapoint (500x stronger at N_train = 50,000,
                   10x at 1,000; run on both panels, since it must not spoil the matched one)
  pixels-256       intensities x/256 instead of x/255 (the authors' later loader)

The decoder here is Bernoulli, so the Frey Face candidates about the decoder variance do not apply.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch
from figure2_frey_ablation import _fanin_init, chosen_variants, patched

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "figure3" / "aevb_ablation"
VARIANTS = ("ours", "lr-0.01", "lr-0.02", "init-fanin", "init-var", "prior-per-batch", "pixels-256")
SAMPLES = 5_000_000


def _per_batch_adagrad(params, lr, n_train, prior=True):
    """Adagrad(lr) with weight decay 1/M (M = 100): the prior once per minibatch."""
    return torch.optim.Adagrad(list(params), lr=lr, weight_decay=0.01 if prior else 0.0)


def variant_context(variant: str):
    from vaebench import models
    from vaebench.algorithms import aevb

    if variant == "init-fanin":
        return patched(models, "init_normal_", _fanin_init)
    if variant == "prior-per-batch":
        return patched(aevb, "paper_adagrad", _per_batch_adagrad)
    return contextlib.nullcontext()


def run_config(n_train: int, variant: str):
    from vaebench.engine.config import build_runs, load_config
    from vaebench.figures import figure3

    conf = load_config(figure3.STUDY)
    ((cfg, _),) = build_runs(figure3.STUDY, conf, "medium", OUT, n_train=[n_train], algorithms=["aevb"])
    cfg.samples = SAMPLES
    if variant.startswith("lr-"):
        cfg.lr = float(variant[3:])
    elif variant == "init-var":
        cfg.init_std = 0.1
    return cfg, figure3.STUDY.settings(conf, "medium")


def train_and_estimate(n_train: int, variant: str) -> None:
    from vaebench.data import load_run_data
    from vaebench.marginal.run import evaluate_run
    from vaebench.runs import RunFolder
    from vaebench.train import train

    out = OUT / f"{variant}_ntrain{n_train}"
    cfg, s = run_config(n_train, variant)
    data = load_run_data(cfg)
    if variant == "pixels-256":
        data.train.mul_(255 / 256)
        data.test.mul_(255 / 256)
    if not RunFolder(out).is_finished(cfg):
        with variant_context(variant):
            info = train(cfg, out, resume=True, progress=False, data=data)
        print(f"{out.name}: lr {info.get('lr')}, {info.get('train_wall_s')} s", flush=True)
    if not (out / "marginal_hmc.csv").exists():
        evaluate_run(
            out,
            method="hmc",
            n_points=s["n_points"],
            samples_per_point=s["samples_per_point"],
            leapfrog=s["leapfrog"],
            burn_in=s["burn_in"],
            thin=s["thin"],
            seed=s["seed"],
            snapshot="last",
            data=data,
            progress=False,
        )


def summarize():
    import pandas as pd

    from vaebench.figures import figure3
    from vaebench.figures.common import new_figure, save_figure
    from vaebench.fileio import atomic_write_text
    from vaebench.runs import RunFolder

    rows = []
    for folder in sorted(OUT.glob("*_ntrain*")):
        if not (folder / "marginal_hmc.csv").exists():
            continue
        variant, n = folder.name.rsplit("_ntrain", 1)
        est = pd.read_csv(folder / "marginal_hmc.csv")
        m = RunFolder(folder).read_metrics()
        info = RunFolder(folder).read_info()
        for split in ("train", "test"):
            e = est[est.split == split].iloc[-1]
            paper = figure3.paper_value(int(n), "aevb", split, SAMPLES)
            bound = m[(m.split == split) & (m.samples_seen == m.samples_seen.max())].lower_bound.iloc[0]
            rows.append(
                {
                    "variant": variant,
                    "n_train": int(n),
                    "split": split,
                    "samples": int(e.samples_seen),
                    "log_px": e.marginal_log_likelihood,
                    "stderr": e.stderr,
                    "paper": paper,
                    "ours_minus_paper": e.marginal_log_likelihood - paper,
                    "bound": bound,
                    "lr": info.get("lr"),
                }
            )
    df = pd.DataFrame(rows)
    atomic_write_text(OUT / "aevb_ablation.csv", df.to_csv(index=False, float_format="%.3f"))
    order = {v: i for i, v in enumerate(VARIANTS)}
    lines = [
        "| variant | N_train | lr | train log p(x) | − paper | test log p(x) | − paper | test bound |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (n, variant), g in sorted(df.groupby(["n_train", "variant"]), key=lambda k: (-k[0][0], order.get(k[0][1], 99))):
        tr, te = g.set_index("split").loc["train"], g.set_index("split").loc["test"]
        lines.append(
            f"| {variant} | {n:,} | {tr.lr} | {tr.log_px:.1f} | {tr.ours_minus_paper:+.1f} | {te.log_px:.1f} "
            f"| {te.ours_minus_paper:+.1f} | {te.bound:.1f} |"
        )
    atomic_write_text(OUT / "aevb_ablation.md", "\n".join(lines) + "\n")
    print("\n".join(lines))

    panels = sorted(df.n_train.unique(), reverse=True)
    fig, axes = new_figure(1, len(panels), (5.6 * len(panels), 3.8))
    for ax, n in zip(axes[0], panels):
        g = df[df.n_train == n]
        variants = sorted(g.variant.unique(), key=lambda v: order.get(v, 99))
        for offset, split, colour in ((-0.15, "train", "tab:blue"), (0.15, "test", "tab:red")):
            s = g[g.split == split].set_index("variant").loc[variants]
            ax.plot([i + offset for i in range(len(variants))], s.log_px, "o", color=colour, label=f"ours, {split}")
            ax.axhline(s.paper.iloc[0], color=colour, ls="--", lw=1, label=f"paper, {split}")
        ax.set_xticks(range(len(variants)), variants, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"MNIST N_train = {n:,}, AEVB at {SAMPLES:.0e} samples", fontsize=10)
        ax.set_ylabel("log p(x) per datapoint (appendix D)", fontsize=9)
        ax.grid(True, lw=0.3, alpha=0.5)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, OUT / "aevb_ablation.png")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="all", help=f"comma-separated subset of {','.join(VARIANTS)} (default all)")
    p.add_argument("--n-train", default="50000", help="comma-separated panels: 1000, 50000 (default 50000)")
    p.add_argument("--summarize", action="store_true", help="only the table and plot from the runs as they are")
    args = p.parse_args(argv)
    if not args.summarize:
        variants = chosen_variants(p, args.variants, VARIANTS)
        torch.set_num_threads(1)
        for n in (int(x) for x in args.n_train.split(",")):
            for variant in variants:
                train_and_estimate(n, variant)
    summarize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
