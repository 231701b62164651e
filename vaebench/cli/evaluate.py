"""Estimate the marginal log-likelihood log p(x) of a trained run, per datapoint averaged over
the first N train and test points: the paper's appendix D estimator (--method hmc: HMC posterior
samples, a full-covariance Gaussian q(z) per datapoint fitted to a first set, the estimate from a
second set) or importance sampling with the trained encoder as proposal (--method importance,
k samples). Evaluates the final parameters (--snapshot last) or every snapshot of a run trained
with --snapshots (--snapshot all); writes RUN_DIR/marginal_<method>.csv (resumable: rows with the
same settings already there are kept, not recomputed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaebench.cli.options import add_count, add_hmc_options, add_trained_run_options, finite_float, seed, set_threads
from vaebench.marginal.run import DEFAULTS, LIMITS
from vaebench.runs import MARGINAL_METHODS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (run.json, checkpoint.pt, snapshots/)")
    p.add_argument(
        "--method",
        choices=MARGINAL_METHODS,
        default="hmc",
        help="hmc: the paper's appendix D estimator (default); importance: the encoder as proposal",
    )
    p.add_argument("--split", default="train,test", help="comma-separated splits (default train,test)")
    add_count(p, "--n-points", 1, LIMITS, DEFAULTS, "the first N points of each split (default 1000, as the paper)")
    add_count(p, "--k", 2, LIMITS, DEFAULTS, "importance: samples per datapoint (default 1000)")
    add_hmc_options(
        p,
        samples_help="hmc: posterior samples per datapoint in each of the two sets (default %(default)s, as the paper)",
        leapfrog_help="hmc: leapfrog steps (default %(default)s, as the paper)",
    )
    p.add_argument(
        "--snapshot",
        choices=("all", "last"),
        default="last",
        help="last: the final parameters (checkpoint); all: every snapshot (default last)",
    )
    p.add_argument(
        "--min-samples",
        dest="min_samples",
        type=finite_float,
        default=0,
        help="with --snapshot all: only snapshots from this many training samples on",
    )
    p.add_argument("--seed", type=seed, default=0, help="random seed of the estimate (default 0)")
    add_trained_run_options(p, progress_help="no per-estimate lines")


def run(args) -> int:
    from vaebench.marginal.run import evaluate_run, marginal_csv

    set_threads(args)
    splits = tuple(s.strip() for s in args.split.split(",") if s.strip())
    rows = evaluate_run(
        args.run_dir,
        method=args.method,
        splits=splits,
        n_points=args.n_points,
        k=args.k,
        samples_per_point=args.samples_per_point,
        leapfrog=args.leapfrog,
        burn_in=args.burn_in,
        thin=args.thin,
        snapshot=args.snapshot,
        min_samples=args.min_samples,
        seed=args.seed,
        data_dir=args.data_dir,
        device=args.device,
        progress=args.progress,
    )
    print(f"wrote {marginal_csv(args.run_dir, args.method)} ({len(rows)} rows with these settings)")
    return 0
