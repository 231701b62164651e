"""Posterior inference of z for a trained run, on the first N points of a split (default the
first 1,000 test points): per datapoint, log p(x) by the paper's appendix D estimator (HMC) and
by importance sampling with the encoder as proposal, the ELBO of the encoder's q(z|x) and of the
best diagonal Gaussian for that point alone (optimised from the encoder's output until it stops
improving), and the inference gap = approximation gap + amortisation gap; per latent dimension,
the encoder's mean and standard deviation against the HMC posterior's. Writes, beside the run
(or in --out), inference_<split>.csv, posterior_<split>.csv, inference_<split>.json and
latent_scatter_<split>.png. A run without an encoder (MCEM) gets HMC only."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaebench.cli.options import add_count, add_hmc_options, add_trained_run_options, seed, set_threads
from vaebench.uses.infer import LIMITS
from vaebench.uses.posterior import DEFAULTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trained run folder (run.json, checkpoint.pt)")
    p.add_argument("--split", choices=("train", "test"), default="test", help="default test")
    add_count(p, "--n-points", 1, LIMITS, DEFAULTS, "the first N points of the split (default 1000)")
    add_count(p, "--k", 2, LIMITS, DEFAULTS, "importance samples per point for the cross-check (default 1000)")
    add_count(p, "--elbo-samples", 2, LIMITS, DEFAULTS, "draws per point for each ELBO (default 100)")
    add_count(p, "--max-steps", 1, LIMITS, DEFAULTS, "cap on the per-point optimisation's steps (default 3000)")
    add_hmc_options(
        p,
        samples_help="hmc: posterior samples per point in each of the estimator's two sets (default %(default)s)",
        leapfrog_help="hmc: leapfrog steps (default %(default)s)",
    )
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, help="folder for the results (default: the run folder)")
    add_trained_run_options(p, progress_help="no summary line")


def run(args) -> int:
    from vaebench.uses.infer import infer_run

    set_threads(args)
    summary = infer_run(
        args.run_dir,
        split=args.split,
        n_points=args.n_points,
        k=args.k,
        elbo_samples=args.elbo_samples,
        samples_per_point=args.samples_per_point,
        leapfrog=args.leapfrog,
        burn_in=args.burn_in,
        thin=args.thin,
        max_steps=args.max_steps,
        seed=args.seed,
        out=args.out,
        data_dir=args.data_dir,
        device=args.device,
        progress=args.progress,
    )
    print(f"wrote {', '.join(summary['files'].values())}" + (f" ({summary['note']})" if summary["note"] else ""))
    return 0
