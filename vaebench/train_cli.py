"""Train one model (AEVB, wake-sleep or MCEM) on MNIST or Frey Face, with the paper's setup
by default. The run directory gets metrics.csv, run.json and a checkpoint; an interrupted
run continues with --resume and ends exactly as an uninterrupted one would."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from vaebench.config import ALGORITHMS, BINARIZE, DREAMS, ESTIMATORS, RunConfig, load_toml
from vaebench.errors import VaebenchError


def parse_count(text: str) -> int:
    """'1e6' or '1000000' -> 1000000 (a whole number of samples)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value == value or value in (float("inf"), float("-inf")) or value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(value)


def parse_lr(text: str):
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr takes a number or 'auto', got {text!r}") from None


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of one run's config (every default is None: unset keeps the config's value)."""
    p.add_argument("--dataset", help="mnist or frey (default mnist)")
    p.add_argument("--algorithm", help=f"one of {', '.join(ALGORITHMS)} (default aevb)")
    p.add_argument("--estimator", help=f"SGVB estimator: {', '.join(ESTIMATORS)} (default B, as the paper)")
    p.add_argument("--nz", type=int, help="latent dimension N_z (default 20)")
    p.add_argument("--hidden", type=int, help="hidden units of encoder and decoder (default: 500 MNIST, 200 Frey Face)")
    p.add_argument("--samples", type=parse_count, help="budget in training samples evaluated, e.g. 1e6 (default 1e6)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--lr", type=parse_lr, help="Adagrad step size, or 'auto' to pick from {0.01, 0.02, 0.1} as the paper "
                   "(default: auto; 0.01 for wake-sleep)")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="minibatch size M (default 100)")
    p.add_argument("-L", dest="L", type=int, help="samples of z per datapoint (default 1)")
    p.add_argument("--init-std", dest="init_std", type=float, help="parameters ~ N(0, std^2) (default 0.01)")
    p.add_argument("--binarize", choices=BINARIZE, help="MNIST: none (intensities as Bernoulli means, the paper), static or dynamic")
    p.add_argument("--n-train", dest="n_train", type=parse_count, help="use only the first N training points")
    p.add_argument("--dreams", choices=DREAMS, help="wake-sleep: sleep-phase x sampled from the decoder or its mean")
    p.add_argument("--snapshots", action="store_true", default=None, help="keep the parameters at every evaluation point")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--backend", help="hot-path ops: eager, numba, triton or compile (default eager)")
    p.add_argument("--data-dir", dest="data_dir", help="folder with the data files (else $VAEBENCH_DATA_DIR, the cache, ...)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="a TOML file of run options (command-line options win)")
    add_run_options(p)
    p.add_argument("--out", type=Path, required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


# wake-sleep's default step size: the one of the paper's three that follows its Figure 2 curve
# (MNIST N_z = 20, test bound at 1e6: 0.01 -> -134.6, 0.02 -> -169.2; reproductions/figure2.toml).
# A short "auto" trial can favour a larger step whose early lead does not last.
WAKE_SLEEP_LR = 0.01

RUN_KEYS = ("dataset", "algorithm", "estimator", "nz", "hidden", "samples", "seed", "lr", "batch_size", "L",
            "init_std", "binarize", "n_train", "dreams", "snapshots", "device", "backend", "data_dir")


def config_from_args(args, stored: dict | None = None) -> RunConfig:
    """Defaults < stored run (on resume) or --config file < explicit options."""
    given = {k: getattr(args, k) for k in RUN_KEYS if getattr(args, k, None) is not None}
    if stored is not None:
        fixed = {k: v for k, v in given.items() if k not in RunConfig.RESUMABLE_OVERRIDES and stored.get(k) != v}
        if fixed:
            changes = ", ".join(f"{k}={v!r} (run has {stored.get(k)!r})" for k, v in fixed.items())
            raise VaebenchError(f"cannot resume with different settings: {changes}; use a new --out or --overwrite")
        return RunConfig.from_dict({**stored, **given}).check()
    base = load_toml(args.config) if getattr(args, "config", None) else {}
    merged = {**base, **given}
    if merged.get("algorithm") == "wake-sleep" and "lr" not in merged:
        merged["lr"] = WAKE_SLEEP_LR
    return RunConfig.from_dict(merged).check()


def run(args) -> int:
    from vaebench.train import read_run_config, train

    if args.resume and args.overwrite:
        raise VaebenchError("--resume and --overwrite exclude each other")
    if args.threads:
        torch.set_num_threads(args.threads)
    stored = read_run_config(args.out) if args.resume else None
    cfg = config_from_args(args, stored)
    info = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite, progress=args.progress)
    final = info.get("final") or {}
    summary = ", ".join(f"{split} {value:.2f}" for split, value in final.items())
    print(f"finished {cfg.algorithm} on {cfg.dataset} (N_z={cfg.nz}) at {info['samples_seen']:,} samples: "
          f"lower bound {summary or 'n/a'}; step size {info['lr']}; {info['samples_per_s']} samples/s; "
          f"results in {args.out}")
    return 0
