"""Argument types and options shared by the commands: counts, thread numbers, run options, the
HMC settings of the appendix D estimator and the options of the commands that load a trained run."""

from __future__ import annotations

import argparse
import math
import typing

from vaebench.config import FIELD_OPTIONS, MAX_SEED, RunConfig
from vaebench.marginal.run import DEFAULTS, LIMITS


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
    appendix D estimator, with the defaults and bounds of vaebench.marginal.run (DEFAULTS, LIMITS).
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
    """The options of one run's config, one per RunConfig field with an ``option`` in its metadata
    (flag, help, choices and bounds are written there); every default is None: unset keeps the
    config's value."""
    hints = typing.get_type_hints(RunConfig)
    for key, opt in FIELD_OPTIONS.items():
        flag, kind = RunConfig.flag(key), hints[key]
        extra = {"choices": opt["choices"]} if opt["choices"] else {}
        if opt["metavar"]:
            extra["metavar"] = opt["metavar"]
        if kind is bool:
            extra.update(action="store_true", default=None)
        elif key == "lr":
            extra["type"] = parse_lr
        elif int in typing.get_args(kind) or kind is int:
            extra["type"] = count(*opt["bounds"], flag)
        elif kind is float:
            extra["type"] = finite_float
        p.add_argument(flag, dest=key, help=opt["help"], **extra)


def given_run_options(args) -> dict:
    """The run options set on the command line."""
    return {k: getattr(args, k) for k in FIELD_OPTIONS if getattr(args, k, None) is not None}
