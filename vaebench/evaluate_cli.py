"""Estimate the marginal log-likelihood log p(x) of a trained run, per datapoint averaged over
the first N train and test points: the paper's appendix D estimator (--method hmc: HMC posterior
samples, a full-covariance Gaussian q(z) per datapoint fitted to a first set, the estimate from a
second set) or importance sampling with the trained encoder as proposal (--method importance,
k samples). Evaluates the final parameters (--snapshot last) or every snapshot of a run trained
with --snapshots (--snapshot all); writes RUN_DIR/marginal_<method>.csv (resumable: rows with the
same settings already there are kept, not recomputed)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import time
from pathlib import Path

import torch

from vaebench.errors import VaebenchError
from vaebench.fileio import atomic_write_text

METHODS = ("hmc", "importance")
COLUMNS = ("run", "dataset", "algorithm", "n_train", "nz", "hidden", "samples_seen", "split", "method",
           "n_points", "marginal_log_likelihood", "stderr", "samples_per_point", "leapfrog", "burn_in", "thin",
           "k", "seed", "mean_accept", "wall_s")
# columns that identify an estimate's settings (a stored row is reused only if they all match)
SETTING_KEYS = ("method", "n_points", "samples_per_point", "leapfrog", "burn_in", "thin", "k", "seed")
SNAPSHOT_RE = re.compile(r"params_(\d+)\.pt$")


def _positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1 or value != float(text):
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (run.json, checkpoint.pt, snapshots/)")
    p.add_argument("--method", choices=METHODS, default="hmc",
                   help="hmc: the paper's appendix D estimator (default); importance: the encoder as proposal")
    p.add_argument("--split", default="train,test", help="comma-separated splits (default train,test)")
    p.add_argument("--n-points", dest="n_points", type=_positive_int, default=1000,
                   help="the first N points of each split (default 1000, as the paper)")
    p.add_argument("--k", type=_positive_int, default=1000, help="importance: samples per datapoint (default 1000)")
    p.add_argument("--samples-per-point", dest="samples_per_point", type=_positive_int, default=50,
                   help="hmc: posterior samples per datapoint in each of the two sets (default 50, as the paper)")
    p.add_argument("--leapfrog", type=_positive_int, default=4, help="hmc: leapfrog steps (default 4, as the paper)")
    p.add_argument("--burn-in", dest="burn_in", type=int, default=200, help="hmc: burn-in moves (default 200)")
    p.add_argument("--thin", type=_positive_int, default=2, help="hmc: moves between kept samples (default 2)")
    p.add_argument("--snapshot", choices=("all", "last"), default="last",
                   help="last: the final parameters (checkpoint); all: every snapshot (default last)")
    p.add_argument("--min-samples", dest="min_samples", type=float, default=0,
                   help="with --snapshot all: only snapshots from this many training samples on")
    p.add_argument("--seed", type=int, default=0, help="random seed of the estimate (default 0)")
    p.add_argument("--threads", type=_positive_int, help="torch CPU threads (default: torch's)")
    p.add_argument("--data-dir", dest="data_dir", help="folder with the data files")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default cpu)")


# ---- loading a run -----------------------------------------------------------------------------

def read_run(run_dir: Path):
    """(run.json content, RunConfig) of a run folder."""
    from vaebench.config import RunConfig

    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise VaebenchError(f"{run_dir} is not a run folder (no run.json)")
    try:
        info = json.loads(path.read_text())
        cfg = RunConfig.from_dict(info["config"])
    except (ValueError, KeyError) as exc:
        raise VaebenchError(f"{path} is not a vaebench run.json ({exc})") from None
    return info, cfg


def list_parameters(run_dir: Path, snapshot: str = "last", min_samples: float = 0) -> list[tuple[int, Path, str]]:
    """(samples_seen, file, kind) of the parameters to evaluate; kind 'snapshot' or 'checkpoint'."""
    run_dir = Path(run_dir)
    if snapshot == "all":
        found = sorted((int(m.group(1)), p) for p in (run_dir / "snapshots").glob("params_*.pt")
                       if (m := SNAPSHOT_RE.search(p.name)))
        if found:
            return [(s, p, "snapshot") for s, p in found if s >= min_samples]
        if not (run_dir / "checkpoint.pt").exists():
            raise VaebenchError(f"{run_dir} has no snapshots/ and no checkpoint.pt")
    ckpt = run_dir / "checkpoint.pt"
    if not ckpt.exists():
        raise VaebenchError(f"{run_dir} has no checkpoint.pt")
    samples = torch.load(ckpt, weights_only=False, map_location="cpu")["trainer"]["samples_seen"]
    return [(int(samples), ckpt, "checkpoint")]


def load_parameters(path: Path, kind: str) -> dict:
    state = torch.load(path, weights_only=False, map_location="cpu")
    return state["trainer"]["model"] if kind == "checkpoint" else state


def build_run_model(cfg, x_dim: int, likelihood: str):
    from vaebench.algorithms import algorithm_class
    from vaebench.models import build_model

    return build_model(x_dim, cfg.nz, cfg.hidden_units, likelihood,
                       encoder=algorithm_class(cfg.algorithm).needs_encoder)


# ---- the estimate ------------------------------------------------------------------------------

def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _same_settings(row: dict, settings: dict) -> bool:
    return all(str(row.get(k, "")) == str(settings.get(k, "")) for k in SETTING_KEYS)


def evaluate_run(run_dir, *, method: str = "hmc", splits=("train", "test"), n_points: int = 1000,
                 k: int = 1000, samples_per_point: int = 50, leapfrog: int = 4, burn_in: int = 200, thin: int = 2,
                 snapshot: str = "last", min_samples: float = 0, seed: int = 0, data=None, data_dir=None,
                 device: str | None = None, progress: bool = True, only=None) -> list[dict]:
    """Estimate log p(x) for the run's parameters (final or every snapshot) on each split's first
    ``n_points`` points; write and return the rows of RUN_DIR/marginal_<method>.csv.
    ``only``: a collection of samples_seen values, to evaluate just those snapshots."""
    from vaebench.data import load_dataset
    from vaebench.marginal import hmc_log_marginal, importance_log_marginal

    if method not in METHODS:
        raise VaebenchError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    run_dir = Path(run_dir)
    info, cfg = read_run(run_dir)
    bad = [s for s in splits if s not in ("train", "test")]
    if bad or not splits:
        raise VaebenchError(f"--split takes train and/or test, got {','.join(splits) or 'nothing'}")
    from vaebench.algorithms import algorithm_class
    if method == "importance" and not algorithm_class(cfg.algorithm).needs_encoder:
        raise VaebenchError(f"{run_dir}: {cfg.algorithm} trains no encoder; use --method hmc")
    params = list_parameters(run_dir, snapshot, min_samples)
    if only is not None:
        params = [p for p in params if p[0] in set(only)]
    if data is None:
        data = load_dataset(cfg.dataset, data_dir if data_dir is not None else cfg.data_dir,
                            binarize=cfg.binarize, n_train=cfg.n_train, seed=cfg.seed)
    device = torch.device(device or "cpu")
    settings = {"method": method, "n_points": n_points, "seed": seed,
                "samples_per_point": samples_per_point if method == "hmc" else "",
                "leapfrog": leapfrog if method == "hmc" else "", "burn_in": burn_in if method == "hmc" else "",
                "thin": thin if method == "hmc" else "", "k": k if method == "importance" else ""}
    out_path = run_dir / f"marginal_{method}.csv"
    rows = _read_rows(out_path)  # every stored row is kept; those with these settings are reused
    done = {(int(r["samples_seen"]), r["split"]) for r in rows if _same_settings(r, settings)}
    model = build_run_model(cfg, data.x_dim, data.likelihood).to(device)
    for samples_seen, path, kind in params:
        todo = [s for s in splits if (samples_seen, s) not in done]
        if not todo:
            continue
        model.load_state_dict(load_parameters(path, kind))
        for split in todo:
            x = (data.train if split == "train" else data.test)[:n_points].to(device)
            gen = torch.Generator(device=device).manual_seed(
                (seed * 1_000_003 + samples_seen * 7 + (split == "test")) % (2**63 - 1))
            t0 = time.perf_counter()
            if method == "hmc":
                est = hmc_log_marginal(model, x, samples=samples_per_point, n_leapfrog=leapfrog, burn_in=burn_in,
                                       thin=thin, generator=gen)
            else:
                est = importance_log_marginal(model, x, k=k, generator=gen)
            wall = time.perf_counter() - t0
            row = {"run": run_dir.name, "dataset": cfg.dataset, "algorithm": cfg.algorithm,
                   "n_train": data.train.shape[0], "nz": cfg.nz, "hidden": cfg.hidden_units,
                   "samples_seen": samples_seen, "split": split, **settings, "n_points": x.shape[0],
                   "marginal_log_likelihood": repr(est.mean), "stderr": repr(est.mean_stderr),
                   "mean_accept": round(est.info["mean_accept"], 4) if "mean_accept" in est.info else "",
                   "wall_s": round(wall, 2)}
            rows.append(row)
            rows.sort(key=lambda r: (int(r["samples_seen"]), r["split"] != "train", str(r["n_points"])))
            _write_rows(out_path, rows)
            if progress:
                print(f"{run_dir.name}: {samples_seen:,} samples, {split}: log p(x) = {est.mean:.2f} "
                      f"± {est.mean_stderr:.2f} ({method}, {x.shape[0]} points, {wall:.0f} s)", flush=True)
    if not out_path.exists():
        _write_rows(out_path, rows)
    return [r for r in rows if _same_settings(r, settings)]


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = tuple(s.strip() for s in args.split.split(",") if s.strip())
    if args.burn_in < 0:
        raise VaebenchError(f"--burn-in must be >= 0, got {args.burn_in}")
    if args.method == "hmc" and args.samples_per_point < 2:
        raise VaebenchError("--samples-per-point must be at least 2")
    if args.method == "importance" and args.k < 2:
        raise VaebenchError("--k must be at least 2")
    if args.device and args.device.startswith("cuda") and not torch.cuda.is_available():
        raise VaebenchError(f"--device {args.device}: CUDA is not available")
    rows = evaluate_run(args.run_dir, method=args.method, splits=splits, n_points=args.n_points, k=args.k,
                        samples_per_point=args.samples_per_point, leapfrog=args.leapfrog, burn_in=args.burn_in,
                        thin=args.thin, snapshot=args.snapshot, min_samples=args.min_samples, seed=args.seed,
                        data_dir=args.data_dir, device=args.device)
    print(f"wrote {Path(args.run_dir) / f'marginal_{args.method}.csv'} ({len(rows)} rows)")
    return 0
