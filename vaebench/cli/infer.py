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

from vaebench.cli.options import add_threads, count, seed
from vaebench.uses.infer import LIMITS
from vaebench.uses.posterior import DEFAULTS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a trained run folder (run.json, checkpoint.pt)")
    p.add_argument("--split", choices=("train", "test"), default="test", help="default test")
    p.add_argument("--n-points", dest="n_points", type=count(1, LIMITS["n_points"], "--n-points"),
                   default=DEFAULTS["n_points"], help="the first N points of the split (default 1000)")
    p.add_argument("--k", type=count(2, LIMITS["k"], "--k"), default=DEFAULTS["k"],
                   help="importance samples per point for the cross-check (default 1000)")
    p.add_argument("--elbo-samples", dest="elbo_samples", type=count(2, LIMITS["elbo_samples"], "--elbo-samples"),
                   default=DEFAULTS["elbo_samples"], help="draws per point for each ELBO (default 100)")
    p.add_argument("--max-steps", dest="max_steps", type=count(1, LIMITS["max_steps"], "--max-steps"),
                   default=DEFAULTS["max_steps"], help="cap on the per-point optimisation's steps (default 3000)")
    p.add_argument("--samples-per-point", dest="samples_per_point", default=DEFAULTS["samples_per_point"],
                   type=count(2, LIMITS["samples_per_point"], "--samples-per-point"),
                   help="hmc: posterior samples per point in each of the estimator's two sets (default 50)")
    p.add_argument("--leapfrog", type=count(1, LIMITS["leapfrog"], "--leapfrog"), default=DEFAULTS["leapfrog"],
                   help="hmc: leapfrog steps (default 4)")
    p.add_argument("--burn-in", dest="burn_in", type=count(0, LIMITS["burn_in"], "--burn-in"),
                   default=DEFAULTS["burn_in"], help="hmc: burn-in moves (default 200)")
    p.add_argument("--thin", type=count(1, LIMITS["thin"], "--thin"), default=DEFAULTS["thin"],
                   help="hmc: moves between kept samples (default 2)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, help="folder for the results (default: the run folder)")
    add_threads(p)
    p.add_argument("--data-dir", dest="data_dir", help="folder with the data files")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no summary line")


def run(args) -> int:
    import torch

    from vaebench.uses.infer import infer_run

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = infer_run(args.run_dir, split=args.split, n_points=args.n_points, k=args.k,
                        elbo_samples=args.elbo_samples, samples_per_point=args.samples_per_point,
                        leapfrog=args.leapfrog, burn_in=args.burn_in, thin=args.thin, max_steps=args.max_steps,
                        seed=args.seed, out=args.out, data_dir=args.data_dir, device=args.device,
                        progress=args.progress)
    print(f"wrote {', '.join(summary['files'].values())}" + (f" ({summary['note']})" if summary["note"] else ""))
    return 0
