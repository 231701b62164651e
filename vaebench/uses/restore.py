"""``vaebench restore RUN --task inpaint|denoise|superres``: marginal inference of x, the
trained model as a prior over clean images.

The first N images of a split (default the first 1,000 test images) are corrupted with a fixed
seed by the task's corruption model (vaebench.uses.corruption), then restored by each method
(vaebench.uses.samplers): Metropolis-within-Gibbs (``mwg``), pseudo-Gibbs, HMC on p(z|y) (a
reference that needs no encoder), for N_z = 2 the exact answer by quadrature over z (``grid``, on
request: it evaluates the decoder's likelihood at 14,641 nodes per image), and the baselines
``mean-image`` and ``encoder-decoder``. A run without an encoder (MCEM) gets
no encoder-based method. Metrics per method, over the images:

  heldout_loglik      log p(c_hidden = truth|y) per image (nats, summed over its hidden values)
                      under the method's predictive distribution, and its standard error
  heldout_loglik_per_value   the same summed over all images, divided by all hidden values
  mse                 the mean over images of the mean squared error of the posterior mean
                      E[c|y] against the truth over the hidden values; psnr = 10 log10(1 / mse)
                      (pixel values in [0, 1])

Written beside the run (or in ``out``): restore_<setting>.csv (RESTORE_COLUMNS, one row per
method) and restore_<setting>.png (a grid of the first images: observed, then for each sampler
its posterior mean and two posterior samples, then the truth), <setting> e.g. inpaint-bottom,
denoise-rho0.1, superres-k2.
"""

from __future__ import annotations

import math
import time

import torch

from vaebench.errors import VaebenchError
from vaebench.fileio import atomic_write_csv
from vaebench.runs import lock_folder
from vaebench.uses import samplers
from vaebench.uses.corruption import make_corruption
from vaebench.uses.trained import load_trained, output_dir

# fmt: off
RESTORE_COLUMNS = ("run", "dataset", "algorithm", "nz", "hidden", "samples_seen", "split", "task", "setting", "mask",
                   "rho", "noise_std", "k", "obs_noise", "method", "n_images", "hidden_per_image", "heldout_loglik",
                   "heldout_loglik_stderr", "heldout_loglik_per_value", "mse", "mse_stderr", "psnr", "accept_rate",
                   "burn_in", "samples", "seed", "wall_s", "images_per_s")
# fmt: on
DEFAULTS = {"n_points": 1000, "burn_in": 100, "samples": 100, "seed": 0, "grid": 8, "batch_size": 500}
LIMITS = {"n_points": 10**6, "burn_in": 10**5, "samples": 10**5, "grid": 100, "batch_size": 10**6}
METHOD_LABELS = {
    "mwg": "Metropolis-within-Gibbs",
    "pseudo-gibbs": "pseudo-Gibbs",
    "hmc": "HMC on p(z|y)",
    "grid": "exact (quadrature, N_z = 2)",
    "mean-image": "mean image",
    "encoder-decoder": "encoder-decoder (one pass)",
}


def file_names(setting: str) -> dict:
    return {"table": f"restore_{setting}.csv", "grid": f"restore_{setting}.png"}


def check_settings(methods, **counts) -> None:
    bad = [m for m in (methods or ()) if m not in samplers.ALL_METHODS]
    if bad or (methods is not None and not methods):
        raise VaebenchError(f"--methods takes {', '.join(samplers.ALL_METHODS)}, got {','.join(methods) or 'nothing'}")
    for name, value in counts.items():
        low = 0 if name in ("burn_in", "grid") else 1
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= LIMITS[name]):
            raise VaebenchError(
                f"--{name.replace('_', '-')} must be a whole number in [{low}, {LIMITS[name]:,}], got {value!r}"
            )


def image_metrics(post: samplers.Posterior, truth: torch.Tensor, hidden: torch.Tensor) -> dict:
    """Per image: log p(c_hidden|y), the number of hidden values, the MSE over them."""
    n_hidden = hidden.sum(-1)
    sq = torch.where(hidden, (post.mean - truth).square(), torch.zeros_like(truth)).sum(-1)
    return {
        "loglik": post.log_pred.double(),
        "n_hidden": n_hidden.double(),
        "mse": (sq.double() / n_hidden.clamp_min(1)).where(n_hidden > 0, torch.tensor(math.nan, dtype=torch.float64)),
    }


def summarise(per_image: dict) -> dict:
    """The CSV's metric columns from the per-image metrics (images with nothing hidden left out)."""
    keep = per_image["n_hidden"] > 0
    ll, nh, mse = per_image["loglik"][keep], per_image["n_hidden"][keep], per_image["mse"][keep]
    n = int(keep.sum())
    se = lambda t: float(t.std() / math.sqrt(n)) if n > 1 else math.nan
    m = float(mse.mean())
    return {
        "n_images": n,
        "hidden_per_image": round(float(nh.mean()), 2),
        "heldout_loglik": round(float(ll.mean()), 4),
        "heldout_loglik_stderr": round(se(ll), 4),
        "heldout_loglik_per_value": round(float(ll.sum() / nh.sum()), 6),
        "mse": round(m, 6),
        "mse_stderr": round(se(mse), 6),
        "psnr": round(10 * math.log10(1 / m), 3) if m > 0 else math.inf,
    }


def restore_images(
    model,
    corruption,
    y,
    truth,
    *,
    methods=samplers.ALL_METHODS,
    prior=None,
    burn_in: int = 100,
    samples: int = 100,
    seed: int = 0,
    batch_size: int = 500,
    keep_first: int = 0,
    progress=None,
) -> dict:
    """Every method on the observations y (n, .) with their truth (n, D): {method: {"per_image":
    per-image metrics, "wall_s", "accept", "first": the Posterior of the first ``keep_first``
    images}}."""
    out = {}
    hidden = corruption.hidden(y)
    for i, method in enumerate(methods):
        gen = torch.Generator(device=truth.device).manual_seed(int(seed) * 7919 + 101 * (i + 1))
        parts, firsts, accepts = [], [], []
        t0 = time.perf_counter()
        for start in range(0, y.shape[0], batch_size):
            yb, cb = y[start : start + batch_size], truth[start : start + batch_size]
            if method in samplers.METHODS:
                post = samplers.sample_posterior(
                    model,
                    corruption,
                    yb,
                    cb,
                    method=method,
                    burn_in=burn_in,
                    samples=samples,
                    background=prior.mean()[0] if prior is not None else None,
                    generator=gen,
                )
                accepts.append(post.accept)
            elif method == "grid":
                post = samplers.grid_posterior(model, corruption, yb, cb)
            elif method == "mean-image":
                post = samplers.mean_image(prior, corruption, yb, cb)
            else:
                post = samplers.encoder_decoder(model, corruption, yb, cb)
            parts.append(image_metrics(post, cb, hidden[start : start + batch_size]))
            if start < keep_first:
                firsts.append(post)
        wall = time.perf_counter() - t0
        per_image = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        first = _first(firsts, keep_first) if firsts else None
        out[method] = {
            "per_image": per_image,
            "wall_s": wall,
            "accept": float(torch.cat(accepts).mean()) if accepts else math.nan,
            "first": first,
        }
        if progress:
            s = summarise(per_image)
            progress(
                f"  {METHOD_LABELS[method]}: held-out log-lik {s['heldout_loglik']:.2f} "
                f"± {s['heldout_loglik_stderr']:.2f} nats/image, MSE {s['mse']:.4f}, PSNR {s['psnr']:.2f} dB"
                + (f", acceptance {out[method]['accept']:.2f}" if accepts else "")
                + f" ({wall:.1f} s)"
            )
    return out


def _first(posts: list, keep: int) -> samplers.Posterior:
    """The first ``keep`` images of a list of batch results."""

    def cat(field, dim=0):
        parts = [getattr(p, field) for p in posts]
        return None if parts[0] is None else torch.cat(parts, dim)

    kept, acc = cat("kept", 1), cat("accept")
    return samplers.Posterior(
        cat("mean")[:keep],
        cat("var")[:keep],
        cat("log_pred")[:keep],
        None if kept is None else kept[:, :keep],
        None if acc is None else acc[:keep],
    )


def restore_run(
    run_dir,
    task: str,
    *,
    mask=None,
    rho=None,
    noise_std=None,
    k=None,
    obs_noise=None,
    split: str = "test",
    n_points: int = DEFAULTS["n_points"],
    burn_in: int = DEFAULTS["burn_in"],
    samples: int = DEFAULTS["samples"],
    seed: int = DEFAULTS["seed"],
    methods=None,
    grid: int = DEFAULTS["grid"],
    batch_size: int = DEFAULTS["batch_size"],
    out=None,
    data_dir=None,
    device=None,
    data=None,
    progress: bool = True,
) -> list[dict]:
    """Corrupt, restore, score; write restore_<setting>.csv and .png; return the CSV's rows."""
    methods = None if methods is None else tuple(methods)
    check_settings(methods, n_points=n_points, burn_in=burn_in, samples=samples, grid=grid, batch_size=batch_size)
    if split not in ("train", "test"):
        raise VaebenchError(f"--split takes train or test, got {split!r}")
    run = load_trained(run_dir, device=device, data_dir=data_dir, data=data)
    if methods is None:
        methods = tuple(
            m
            for m in samplers.ALL_METHODS
            if (run.has_encoder or m not in samplers.ENCODER_METHODS) and m not in samplers.EXACT
        )
    if "grid" in methods and run.cfg.nz != 2:
        raise VaebenchError(f"--methods grid (quadrature over z) needs N_z = 2; {run.name} has N_z = {run.cfg.nz}")
    need = [m for m in methods if m in samplers.ENCODER_METHODS]
    if need and not run.has_encoder:
        raise VaebenchError(
            f"{run.folder.path}: {run.cfg.algorithm} trains no encoder, which {', '.join(need)} "
            "need; use --methods hmc,mean-image"
        )
    corruption = make_corruption(
        task,
        run.data.likelihood,
        run.data.image_shape,
        mask=mask,
        rho=rho,
        noise_std=noise_std,
        k=k,
        obs_noise=obs_noise,
    )
    where = output_dir(run, out)
    names = file_names(corruption.name)
    x = run.split(split)[:n_points].to(run.device)
    gen = torch.Generator(device=run.device).manual_seed(int(seed))
    y, truth = corruption.corrupt(x, gen)
    prior = samplers.mean_image_prior(run.data, run.data.likelihood)
    prior = samplers.PixelDist(
        prior.kind, prior.loc.to(run.device)[None], None if prior.logvar is None else prior.logvar.to(run.device)[None]
    )
    say = (lambda s: print(s, flush=True)) if progress else None
    if say:
        say(f"{run.name}: {corruption.describe()}; {x.shape[0]} {split} images")
    results = restore_images(
        run.model,
        corruption,
        y,
        truth,
        methods=methods,
        prior=prior,
        burn_in=burn_in,
        samples=samples,
        seed=seed,
        batch_size=batch_size,
        keep_first=grid,
        progress=say,
    )
    rows = []
    for method, r in results.items():
        sampler = method in samplers.METHODS
        rows.append(
            {
                **run.identity(),
                "split": split,
                "task": corruption.task,
                "setting": corruption.name,
                **corruption.params(),
                "method": method,
                **summarise(r["per_image"]),
                "accept_rate": round(r["accept"], 4) if sampler else "",
                "burn_in": burn_in if sampler else "",
                "samples": samples if sampler else "",
                "seed": seed,
                "wall_s": round(r["wall_s"], 3),
                "images_per_s": round(x.shape[0] / r["wall_s"], 2),
            }
        )
    with lock_folder(where, "vaebench restore"):
        atomic_write_csv(where / names["table"], RESTORE_COLUMNS, rows)
        if grid:
            write_grid(where / names["grid"], run, corruption, y[:grid], truth[:grid], results)
    return rows


def write_grid(path, run, corruption, y, truth, results) -> None:
    from vaebench.uses import plots

    observed = corruption.fill(y, None)
    missing = corruption.hidden(y) if corruption.task == "inpaint" else None
    columns = {"observed": observed}
    for method in samplers.METHODS:
        first = results.get(method, {}).get("first")
        if first is None:
            continue
        label = {"mwg": "MwG", "pseudo-gibbs": "PG", "hmc": "HMC"}[method]
        columns[f"{label} mean"] = first.mean
        for j in range(first.kept.shape[0] if first.kept is not None else 0):
            columns[f"{label} s{j + 1}"] = first.kept[j]
    columns["truth"] = truth
    plots.restoration_grid(
        path, columns, run.data.image_shape, missing=missing, title=f"{run.name}: {corruption.describe()}"
    )
