"""Train one model (AEVB, wake-sleep or MCEM) on MNIST or Frey Face, with the paper's setup
by default. The run folder gets metrics.csv, run.json and checkpoints; an interrupted run
continues with --resume and ends exactly as an uninterrupted one would; --resume --samples N
extends a finished run."""

from __future__ import annotations

import argparse
from pathlib import Path

from vaebench.cli.options import add_run_options, add_threads, given_run_options, set_threads
from vaebench.config import RunConfig, default_lr, load_toml
from vaebench.errors import VaebenchError
from vaebench.runs import RunFolder, check_out_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="a TOML file of run options (command-line options win)")
    add_run_options(p)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint (or extend it with a larger --samples)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    add_threads(p)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def config_from_args(args) -> RunConfig:
    """Defaults < the stored run (on --resume) or the --config file < explicit options.

    --resume continues the run stored in --out (only the device, backend, data folder,
    checkpoint interval and a larger budget may change); with no run stored it starts the
    config the user gives, and with none given it refuses: it never invents a run."""
    given = given_run_options(args)
    folder = RunFolder(check_out_path(args.out))
    info = folder.read_info(missing_ok=True) if args.resume else None
    if info is not None and info.get("config"):
        stored = folder.read_config().to_dict()
        if args.config is not None:
            raise VaebenchError("--config and --resume exclude each other (the run's config is in its run.json)")
        fixed = {k: v for k, v in given.items() if k not in RunConfig.RESUMABLE_OVERRIDES and stored.get(k) != v}
        if fixed:
            changes = ", ".join(f"{k}={v!r} (run has {stored.get(k)!r})" for k, v in fixed.items())
            raise VaebenchError(f"cannot resume with different settings: {changes}; use a new --out or --overwrite")
        return RunConfig.from_dict({**stored, **given}).check()
    if args.resume and not given and args.config is None:
        raise VaebenchError(f"nothing to resume in {args.out} (no run.json or checkpoint); "
                            "pass the run's options or --config to start it")
    base = load_toml(args.config) if args.config is not None else {}
    merged = {**base, **given}
    merged.setdefault("lr", default_lr(merged.get("algorithm", "aevb")))
    where = f"{args.config}: " if args.config is not None else ""
    return RunConfig.from_dict(merged, where=where).check()


def run(args) -> int:
    from vaebench.train import train

    if args.resume and args.overwrite:
        raise VaebenchError("--resume and --overwrite exclude each other")
    cfg = config_from_args(args)
    set_threads(args)
    info = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite, progress=args.progress)
    final = info.get("final") or {}
    summary = ", ".join(f"{split} {value:.2f}" for split, value in final.items())
    print(f"finished {cfg.algorithm} on {cfg.dataset} (N_z={cfg.nz}) at {info['samples_seen']:,} samples: "
          f"lower bound {summary or 'n/a'}; step size {info['lr']}; {info['samples_per_s']} samples/s; "
          f"results in {args.out}")
    return 0
