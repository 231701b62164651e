"""Marginal-likelihood estimates of a trained run: log p(x) per datapoint, averaged over the
first N points of each split, for the run's final parameters or every snapshot.

Methods: ``hmc``, the paper's appendix D estimator (vaebench.marginal.estimators.hmc_log_marginal), and
``importance``, importance sampling with the trained encoder as proposal. Rows go to the run
folder's marginal_<method>.csv (vaebench.runs); an estimate is keyed by its settings with the
number of points actually used, so rerunning reuses rows instead of appending duplicates.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from vaebench.errors import VaebenchError
from vaebench.families.latent import POSITIVE_FAMILIES
from vaebench.marginal import estimators as marginal
from vaebench.runs import MARGINAL_METHODS, MARGINAL_SETTING_KEYS, RunFolder

# the defaults of the estimate (the paper's where it states them; see vaebench.marginal)
DEFAULTS = {
    "n_points": marginal.DEFAULT_N_POINTS,
    "k": marginal.DEFAULT_K,
    "samples_per_point": marginal.DEFAULT_SAMPLES,
    "leapfrog": marginal.DEFAULT_LEAPFROG,
    "burn_in": marginal.DEFAULT_BURN_IN,
    "thin": marginal.DEFAULT_THIN,
}
# upper bounds that keep one estimate within days rather than years
LIMITS = {"n_points": 10**6, "k": 10**6, "samples_per_point": 10**5, "leapfrog": 1000, "burn_in": 10**5, "thin": 1000}


def build_run_model(cfg, x_dim: int, likelihood: str):
    """The model of a run's config (with an encoder only if its algorithm trains one), with the
    run's latent families (its posterior is the importance sampler's proposal)."""
    from vaebench.algorithms import algorithm_class
    from vaebench.models import build_model

    return build_model(
        x_dim,
        cfg.nz,
        cfg.hidden_units,
        likelihood,
        encoder=algorithm_class(cfg.algorithm).needs_encoder,
        posterior=cfg.posterior,
        prior=cfg.latent_prior,
    )


def _same_settings(row: dict, settings: dict) -> bool:
    return all(str(row.get(k, "")) == str(settings.get(k, "")) for k in MARGINAL_SETTING_KEYS)


def check_settings(method: str, splits, **counts) -> None:
    """One-line errors for an unknown method or split and counts out of range."""
    if method not in MARGINAL_METHODS:
        raise VaebenchError(f"unknown method {method!r}; choose one of {', '.join(MARGINAL_METHODS)}")
    bad = [s for s in splits if s not in ("train", "test")]
    if bad or not splits:
        raise VaebenchError(f"--split takes train and/or test, got {','.join(splits) or 'nothing'}")
    for name, value in counts.items():
        low = 0 if name == "burn_in" else (2 if name in ("k", "samples_per_point") else 1)
        if not (isinstance(value, int) and low <= value <= LIMITS[name]):
            raise VaebenchError(
                f"--{name.replace('_', '-')} must be a whole number in [{low}, {LIMITS[name]:,}], got {value!r}"
            )


def marginal_row(
    cfg, n_train: int, samples_seen: int, split: str, settings: dict, n_points: int, est, wall_s: float
) -> dict:
    """A row of marginal_<method>.csv (vaebench.runs.MARGINAL_COLUMNS, less ``run``): the run's
    keys, the estimate's ``settings``, and ``est`` (a MarginalEstimate) on ``n_points`` points."""
    accept = round(est.info["mean_accept"], 4) if "mean_accept" in est.info else ""
    return {
        "dataset": cfg.dataset,
        "algorithm": cfg.algorithm,
        "n_train": n_train,
        "nz": cfg.nz,
        "hidden": cfg.hidden_units,
        "samples_seen": samples_seen,
        "split": split,
        **settings,
        "n_points": n_points,
        "marginal_log_likelihood": repr(est.mean),
        "stderr": repr(est.mean_stderr),
        "mean_accept": accept,
        "wall_s": round(wall_s, 2),
    }


def evaluate_run(
    run_dir,
    *,
    method: str = "hmc",
    splits=("train", "test"),
    n_points: int = DEFAULTS["n_points"],
    k: int = DEFAULTS["k"],
    samples_per_point: int = DEFAULTS["samples_per_point"],
    leapfrog: int = DEFAULTS["leapfrog"],
    burn_in: int = DEFAULTS["burn_in"],
    thin: int = DEFAULTS["thin"],
    snapshot: str = "last",
    min_samples: float = 0,
    seed: int = 0,
    data=None,
    data_dir=None,
    device: str | None = None,
    progress: bool = True,
    only=None,
) -> list[dict]:
    """Estimate log p(x) for the run's parameters (final or every snapshot) on each split's first
    ``n_points`` points; write and return the rows of RUN_DIR/marginal_<method>.csv with these
    settings. ``only``: a collection of samples_seen values, to evaluate just those snapshots."""
    from vaebench.algorithms import algorithm_class
    from vaebench.data import load_run_data
    from vaebench.devices import check_device

    check_settings(
        method,
        splits,
        n_points=n_points,
        k=k,
        samples_per_point=samples_per_point,
        leapfrog=leapfrog,
        burn_in=burn_in,
        thin=thin,
    )
    folder = RunFolder(run_dir)
    cfg = folder.read_config()
    if method == "importance" and not algorithm_class(cfg.algorithm).needs_encoder:
        raise VaebenchError(f"{folder.path}: {cfg.algorithm} trains no encoder; use --method hmc")
    if method == "hmc" and cfg.latent_prior in POSITIVE_FAMILIES:
        raise VaebenchError(
            f"{folder.path}: HMC moves z on the real line, but prior {cfg.latent_prior!r} lives on "
            "z > 0; use --method importance"
        )
    device = check_device(device)
    with folder.lock("vaebench evaluate"):
        params = folder.parameters(snapshot, min_samples)
        if only is not None:
            params = [p for p in params if p[0] in set(only)]
        if data is None:
            data = load_run_data(cfg, data_dir)
        hmc = method == "hmc"
        settings = {
            "method": method,
            "seed": seed,
            "samples_per_point": samples_per_point if hmc else "",
            "leapfrog": leapfrog if hmc else "",
            "burn_in": burn_in if hmc else "",
            "thin": thin if hmc else "",
            "k": "" if hmc else k,
        }
        used = {split: min(n_points, (data.train if split == "train" else data.test).shape[0]) for split in splits}
        rows = folder.read_marginal(method)  # every stored row is kept; those with these settings are reused
        done = {
            (int(r["samples_seen"]), r["split"])
            for r in rows
            if _same_settings(r, {**settings, "n_points": used.get(r["split"], "")})
        }
        model = build_run_model(cfg, data.x_dim, data.likelihood).to(device)
        for samples_seen, path, kind in params:
            todo = [s for s in splits if (samples_seen, s) not in done]
            if not todo:
                continue
            model.load_state_dict(folder.load_parameters(path, kind))
            for split in todo:
                x = (data.train if split == "train" else data.test)[:n_points].to(device)
                gen = torch.Generator(device=device).manual_seed(
                    (seed * 1_000_003 + samples_seen * 7 + (split == "test")) % (2**63 - 1)
                )
                t0 = time.perf_counter()
                if hmc:
                    est = marginal.hmc_log_marginal(
                        model,
                        x,
                        samples=samples_per_point,
                        n_leapfrog=leapfrog,
                        burn_in=burn_in,
                        thin=thin,
                        generator=gen,
                    )
                else:
                    est = marginal.importance_log_marginal(model, x, k=k, generator=gen)
                wall = time.perf_counter() - t0
                row = marginal_row(cfg, data.train.shape[0], samples_seen, split, settings, x.shape[0], est, wall)
                rows.append({"run": folder.name, **row})
                rows.sort(key=lambda r: (int(r["samples_seen"]), r["split"] != "train", str(r["n_points"])))
                folder.write_marginal(method, rows)
                if progress:
                    print(
                        f"{folder.name}: {samples_seen:,} samples, {split}: log p(x) = {est.mean:.2f} "
                        f"± {est.mean_stderr:.2f} ({method}, {x.shape[0]} points, {wall:.0f} s)",
                        flush=True,
                    )
        if not folder.marginal_path(method).exists():
            folder.write_marginal(method, rows)
    return [r for r in rows if _same_settings(r, {**settings, "n_points": used.get(r["split"], "")})]


def marginal_csv(run_dir, method: str) -> Path:
    return RunFolder(run_dir).marginal_path(method)
