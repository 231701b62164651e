"""``vaebench infer RUN``: posterior inference of z for the first N points of a split, written
beside the run (or in ``out``):

  inference_<split>.csv     one row per datapoint: INFERENCE_COLUMNS (log p(x) by HMC and by
                            importance sampling, the encoder's and the best per-datapoint ELBO,
                            the inference, approximation and amortisation gaps)
  posterior_<split>.csv     one row per latent dimension: POSTERIOR_COLUMNS (encoder and q*
                            against the HMC posterior's mean and standard deviation)
  inference_<split>.json    the settings, the averages with their Monte Carlo standard errors,
                            timings
  latent_scatter_<split>.png  the encoder's means of the whole split (HMC posterior means of
                            the N points for a run without encoder), coloured by digit label;
                            N_z = 2 directly, else the first two principal components

The mathematics is in vaebench.uses.posterior.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from vaebench.errors import VaebenchError
from vaebench.fileio import atomic_write_csv, atomic_write_json
from vaebench.runs import lock_folder
from vaebench.uses import posterior
from vaebench.uses.trained import labels, load_trained, output_dir

# fmt: off
INFERENCE_COLUMNS = ("run", "dataset", "algorithm", "nz", "hidden", "samples_seen", "split", "index", "label",
                     "log_px_hmc", "log_px_hmc_stderr", "hmc_accept", "log_px_is", "log_px_is_stderr", "elbo_encoder",
                     "elbo_encoder_stderr", "elbo_optimised", "elbo_optimised_stderr", "inference_gap",
                     "approximation_gap", "amortisation_gap", "amortisation_gap_stderr", "opt_steps", "note")
# fmt: on
# fmt: off
POSTERIOR_COLUMNS = ("run", "dataset", "algorithm", "nz", "split", "n_points", "dim", "hmc_mean_avg", "hmc_mean_sd",
                     "hmc_std", "encoder_std", "encoder_log_std_ratio", "encoder_mean_rmse", "encoder_mean_rmse_in_std",
                     "encoder_mean_corr", "optimised_std", "optimised_log_std_ratio", "optimised_mean_rmse",
                     "optimised_mean_rmse_in_std", "optimised_mean_corr")
# fmt: on
# fmt: off
SUMMARY_KEYS = ("log_px_hmc", "log_px_is", "elbo_encoder", "elbo_optimised", "inference_gap", "approximation_gap",
                "amortisation_gap")
# fmt: on
NO_ENCODER_NOTE = "no encoder (mcem): log p(x) and posterior by HMC only, no ELBO or gaps"
LIMITS = {
    "n_points": 10**6,
    "k": 10**6,
    "elbo_samples": 10**5,
    "samples_per_point": 10**5,
    "leapfrog": 1000,
    "burn_in": 10**5,
    "thin": 1000,
    "max_steps": 10**6,
}


def file_names(split: str) -> dict:
    return {
        "inference": f"inference_{split}.csv",
        "posterior": f"posterior_{split}.csv",
        "summary": f"inference_{split}.json",
        "scatter": f"latent_scatter_{split}.png",
    }


def check_settings(split: str, **counts) -> None:
    if split not in ("train", "test"):
        raise VaebenchError(f"--split takes train or test, got {split!r}")
    for name, value in counts.items():
        low = 0 if name == "burn_in" else (2 if name in ("k", "samples_per_point", "elbo_samples") else 1)
        if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= LIMITS[name]):
            raise VaebenchError(
                f"--{name.replace('_', '-')} must be a whole number in [{low}, {LIMITS[name]:,}], got {value!r}"
            )


def _num(v, digits: int = 6):
    if isinstance(v, torch.Tensor):
        v = v.item()
    if isinstance(v, float):
        return "" if math.isnan(v) else round(v, digits)
    return v


def project_2d(z: torch.Tensor) -> tuple[torch.Tensor, tuple[str, str]]:
    """z itself when N_z = 2, else its first two principal components (with the share of
    variance each explains in the axis labels)."""
    if z.shape[1] == 2:
        return z, ("z1", "z2")
    centred = (z - z.mean(0)).double()
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    share = s.square() / s.square().sum()
    return (centred @ vh[:2].T).to(z.dtype), (
        f"PC1 of z ({share[0]:.0%} of the variance)",
        f"PC2 of z ({share[1]:.0%} of the variance)",
    )


def infer_run(
    run_dir,
    *,
    split: str = "test",
    n_points: int = posterior.DEFAULTS["n_points"],
    k: int = posterior.DEFAULTS["k"],
    elbo_samples: int = posterior.DEFAULTS["elbo_samples"],
    samples_per_point: int = posterior.DEFAULTS["samples_per_point"],
    leapfrog: int = posterior.DEFAULTS["leapfrog"],
    burn_in: int = posterior.DEFAULTS["burn_in"],
    thin: int = posterior.DEFAULTS["thin"],
    max_steps: int = posterior.DEFAULTS["max_steps"],
    seed: int = 0,
    out=None,
    data_dir=None,
    device=None,
    data=None,
    progress: bool = True,
) -> dict:
    """Run the decomposition on the split's first ``n_points`` points; write the files of the
    module docstring and return the summary (the JSON's content)."""
    check_settings(
        split,
        n_points=n_points,
        k=k,
        elbo_samples=elbo_samples,
        samples_per_point=samples_per_point,
        leapfrog=leapfrog,
        burn_in=burn_in,
        thin=thin,
        max_steps=max_steps,
    )
    run = load_trained(run_dir, device=device, data_dir=data_dir, data=data)
    where = output_dir(run, out)
    names = file_names(split)
    full = run.split(split).to(run.device)
    x = full[:n_points]
    lab = labels(run, split, data_dir=data_dir)
    gen = torch.Generator(device=run.device).manual_seed(int(seed))
    timings = {}
    t0 = time.perf_counter()
    res = posterior.decompose(
        run.model,
        x,
        generator=gen,
        k=k,
        elbo_samples_=elbo_samples,
        hmc={"samples": samples_per_point, "leapfrog": leapfrog, "burn_in": burn_in, "thin": thin},
        local={"max_steps": max_steps},
        timings=timings,
    )
    timings["total_s"] = time.perf_counter() - t0
    ident = {**run.identity(), "split": split}
    note = "" if run.has_encoder else NO_ENCODER_NOTE
    rows = []
    for i in range(x.shape[0]):
        row = {**ident, "index": i, "label": int(lab[i]) if lab is not None else "", "note": note}
        for col in INFERENCE_COLUMNS:
            if col in res:
                row[col] = _num(res[col][i])
        rows.append(row)
    post_rows = [
        {
            **{k_: ident[k_] for k_ in ("run", "dataset", "algorithm", "nz", "split")},
            "n_points": x.shape[0],
            **{k_: _num(v) for k_, v in r.items()},
        }
        for r in posterior.posterior_summary(res)
    ]
    summary = {
        **ident,
        "n_points": int(x.shape[0]),
        "has_encoder": run.has_encoder,
        "note": note,
        "seed": seed,
        "settings": {
            "hmc": {"samples_per_point": samples_per_point, "leapfrog": leapfrog, "burn_in": burn_in, "thin": thin},
            "importance": {"k": k} if run.has_encoder else None,
            "elbo_samples": elbo_samples,
            "local_optimisation": {
                **{
                    k_: posterior.DEFAULTS[k_]
                    for k_ in ("lr", "train_samples", "eval_samples", "check_every", "max_halvings", "tol")
                },
                "max_steps": max_steps,
            }
            if run.has_encoder
            else None,
        },
        "mean": {},
        "mc_stderr": {},
        "timings_s": {k_: round(v, 2) for k_, v in timings.items()},
        "hmc_accept": round(float(res["hmc_accept"].mean()), 4),
    }
    for key in SUMMARY_KEYS:
        if key in res:
            summary["mean"][key] = float(res[key].double().mean())
            se = {
                "log_px_hmc": "log_px_hmc_stderr",
                "log_px_is": "log_px_is_stderr",
                "elbo_encoder": "elbo_encoder_stderr",
                "elbo_optimised": "elbo_optimised_stderr",
                "amortisation_gap": "amortisation_gap_stderr",
            }.get(key)
            if se is None:  # a gap with log p(x): the two estimates' errors are independent
                other = "elbo_encoder_stderr" if key == "inference_gap" else "elbo_optimised_stderr"
                var = res["log_px_hmc_stderr"].double().square() + res[other].double().square()
            else:
                var = res[se].double().square()
            summary["mc_stderr"][key] = float(var.sum().sqrt() / x.shape[0])
    if run.has_encoder:
        summary["mean"]["opt_steps"] = float(res["opt_steps"].double().mean())
        summary["between_points_sd"] = {
            k_: float(res[k_].double().std()) for k_ in ("inference_gap", "approximation_gap", "amortisation_gap")
        }
    # the scatter: the encoder's means of the whole split, or the HMC means of the N points
    if run.has_encoder:
        with torch.no_grad():
            z = torch.cat([run.model.encoder(b)[0] for b in full.split(2000)]).cpu()
        lab_z, what = lab, f"encoder means of all {full.shape[0]:,} {split} points"
    else:
        z, lab_z = res["hmc_mean"].cpu(), (lab[: x.shape[0]] if lab is not None else None)
        what = f"HMC posterior means of the first {x.shape[0]:,} {split} points (no encoder)"
    z2, axes = project_2d(z)
    from vaebench.uses import plots

    with lock_folder(where, "vaebench infer"):
        atomic_write_csv(where / names["inference"], INFERENCE_COLUMNS, rows)
        atomic_write_csv(where / names["posterior"], POSTERIOR_COLUMNS, post_rows)
        atomic_write_json(where / names["summary"], summary)
        plots.latent_scatter(where / names["scatter"], z2, lab_z, axis_labels=axes, title=f"{run.name}: {what}")
    if progress:
        m, s = summary["mean"], summary["mc_stderr"]
        line = f"{run.name} ({split}, {x.shape[0]} points): log p(x) HMC {m['log_px_hmc']:.2f} ± {s['log_px_hmc']:.2f}"
        if run.has_encoder:
            line += (
                f", IS {m['log_px_is']:.2f}; ELBO encoder {m['elbo_encoder']:.2f}, optimised "
                f"{m['elbo_optimised']:.2f}; gaps: inference {m['inference_gap']:.2f} = approximation "
                f"{m['approximation_gap']:.2f} + amortisation {m['amortisation_gap']:.2f}"
            )
        else:
            line += f" ({NO_ENCODER_NOTE})"
        print(line + f" [{timings['total_s']:.0f} s]", flush=True)
    summary["files"] = {k_: str(Path(where) / v) for k_, v in names.items()}
    return summary
