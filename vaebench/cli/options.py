"""Argument types and options shared by the commands: counts, thread numbers, run options, the
HMC settings of the appendix D estimator and the options of the commands that load a trained run."""

from __future__ import annotations

import argparse
import math

from vaebench.config import ALGORITHMS, BINARIZE, DATASETS, DREAMS, ESTIMATORS, LATENT_FAMILIES, MAX_SEED, THETA
from vaebench.estimates import DEFAULTS, LIMITS


def count(minimum: int = 1, maximum: float = 10**12, what: str = "a count"):
    """An argparse type: a whole number in [minimum, maximum], written 1000, 1e3 or 1_000."""
    def parse(text: str) -> int:
        try:
            value = float(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not math.isfinite(value) or value != int(value):
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, got {text!r}")
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{what} must be in [{minimum:,}, {maximum:,.0f}], got {text}")
        return int(value)
    return parse


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def parse_lr(text: str):
    """A step size, or 'auto'."""
    return "auto" if text == "auto" else finite_float(text)


def add_count(p: argparse.ArgumentParser, flag: str, minimum: int, limits: dict, defaults: dict, help: str) -> None:
    """The option ``flag``: a whole number in [minimum, limits[key]], by default defaults[key], where
    key is its destination (--n-points: n_points)."""
    key = flag.lstrip("-").replace("-", "_")
    p.add_argument(flag, dest=key, type=count(minimum, limits[key], flag), default=defaults[key], help=help)


threads = count(1, 1024, "--threads")
seed = count(0, MAX_SEED, "--seed")


def add_threads(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=threads, help="torch CPU threads (at least 1; default: torch's)")


def set_threads(args) -> None:
    """Set torch's CPU threads to --threads, where it was given."""
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def add_hmc_options(p: argparse.ArgumentParser, *, samples_help: str, leapfrog_help: str) -> None:
    """--samples-per-point, --leapfrog, --burn-in and --thin: the HMC settings of the paper's
    appendix D estimator, with the defaults and bounds of vaebench.estimates (DEFAULTS, LIMITS).
    The help of the first two differs between the commands, so the caller gives it (argparse
    writes the default for %(default)s)."""
    add_count(p, "--samples-per-point", 2, LIMITS, DEFAULTS, samples_help)
    add_count(p, "--leapfrog", 1, LIMITS, DEFAULTS, leapfrog_help)
    add_count(p, "--burn-in", 0, LIMITS, DEFAULTS, "hmc: burn-in moves (default %(default)s)")
    add_count(p, "--thin", 1, LIMITS, DEFAULTS, "hmc: moves between kept samples (default %(default)s)")


def add_trained_run_options(p: argparse.ArgumentParser, *, progress_help: str) -> None:
    """--threads, --data-dir, --device and --no-progress: the last options of the commands that
    load a trained run (evaluate, infer, restore)."""
    add_threads(p)
    p.add_argument("--data-dir", dest="data_dir", help="folder with the data files")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help=progress_help)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options of one run's config (every default is None: unset keeps the config's value)."""
    p.add_argument("--dataset", choices=DATASETS, help="mnist or frey (default mnist)")
    p.add_argument("--algorithm", choices=ALGORITHMS, help="default aevb")
    p.add_argument("--estimator", choices=ESTIMATORS, help="SGVB estimator (default: B, the paper's, where "
                   "KL(q || p) is closed form, else A)")
    p.add_argument("--posterior", metavar="FAMILY", help=f"AEVB: the family of q(z|x): {', '.join(LATENT_FAMILIES)} (default gaussian)")
    p.add_argument("--prior", dest="latent_prior", metavar="FAMILY",
                   help=f"AEVB: the family of p(z): {', '.join(LATENT_FAMILIES)} (default gaussian, N(0, I))")
    p.add_argument("--nz", type=count(1, 1000, "--nz"), help="latent dimension N_z (default 20)")
    p.add_argument("--hidden", type=count(1, 100_000, "--hidden"),
                   help="hidden units of encoder and decoder (default: 500 MNIST, 200 Frey Face)")
    p.add_argument("--samples", type=count(1, 10**11, "--samples"),
                   help="budget in training samples evaluated, e.g. 1e6 (default 1e6)")
    p.add_argument("--seed", type=seed, help="random seed in [0, 2^63 - 1] (default 0)")
    p.add_argument("--lr", type=parse_lr, help="Adagrad step size, or 'auto' to pick from {0.01, 0.02, 0.1} as the "
                   "paper (default: auto; 0.01 for wake-sleep)")
    p.add_argument("--batch-size", dest="batch_size", type=count(1, 100_000, "--batch-size"),
                   help="minibatch size M (default 100)")
    p.add_argument("-L", dest="L", type=count(1, 10_000, "-L"), help="samples of z per datapoint (default 1)")
    p.add_argument("--init-std", dest="init_std", type=finite_float, help="parameters ~ N(0, std^2) (default 0.01)")
    p.add_argument("--binarize", choices=BINARIZE, help="MNIST: none (intensities as Bernoulli means, the paper), "
                   "static or dynamic")
    p.add_argument("--n-train", dest="n_train", type=count(1, 10**9, "--n-train"),
                   help="use only the first N training points")
    p.add_argument("--theta", choices=THETA, help="the global parameters: ml, map (the N(0, I) prior as weight "
                   "decay, the paper's; default) or vb (variational Bayes over the decoder, appendix F)")
    p.add_argument("--dreams", choices=DREAMS, help="wake-sleep: sleep-phase x sampled from the decoder or its mean")
    p.add_argument("--snapshots", action="store_true", default=None, help="keep the parameters at every evaluation point")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--backend", help="hot-path ops: eager, numba, triton or compile (default eager)")
    p.add_argument("--data-dir", dest="data_dir", help="folder with the data files (else $VAEBENCH_DATA_DIR, the cache, ...)")
    p.add_argument("--checkpoint-every", dest="checkpoint_every_s", type=finite_float,
                   help="also checkpoint every this many seconds of training (default 300; 0: only at evaluations)")


RUN_KEYS = ("dataset", "algorithm", "estimator", "posterior", "latent_prior", "nz", "hidden", "samples", "seed", "lr",
            "batch_size", "L", "init_std", "binarize", "n_train", "theta", "dreams", "snapshots", "device", "backend", "data_dir",
            "checkpoint_every_s")


def given_run_options(args) -> dict:
    """The run options set on the command line."""
    return {k: getattr(args, k) for k in RUN_KEYS if getattr(args, k, None) is not None}
