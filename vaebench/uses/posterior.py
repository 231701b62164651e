"""Posterior inference of z: how far the trained encoder is from the truth, per datapoint.

For a datapoint x, with the model's log p(x) and the evidence lower bound
ELBO(q) = E_q[log p(x|z)] - KL(q(z) || p(z)) of a diagonal Gaussian q(z):

    inference gap     = log p(x) - ELBO(q_phi(z|x))            (the encoder's q)
    approximation gap = log p(x) - ELBO(q*)                     (q*: the best diagonal Gaussian
                                                                 for this x alone)
    amortisation gap  = ELBO(q*) - ELBO(q_phi(z|x))

so inference gap = approximation gap + amortisation gap by construction (Cremer, Li and
Duvenaud, 2018). log p(x) is the paper's appendix D estimator (HMC posterior samples, a
full-covariance Gaussian fitted to half of them, the estimate from the other half;
vaebench.marginal); importance sampling with the encoder as proposal (k samples) is a
cross-check (a lower bound in expectation; the appendix D estimate is an upper bound in
expectation, as -log of an unbiased estimate of 1/p(x)).

q* is found by optimising the ELBO of each datapoint over (mu, log sigma^2), starting from the
encoder's output: Adam with its own step size per datapoint, the reparameterised gradient of
``train_samples`` draws per step in antithetic pairs (eps and -eps: the gradient's noise from
the posterior's mean cancels where log p(x|z) is locally quadratic); every ``check_every`` steps
the ELBO is evaluated on a fixed set of ``eval_samples`` antithetic draws (common random
numbers), and a datapoint whose ELBO did not improve by more than ``tol`` since the last check
goes on with half the step size; after ``max_halvings`` halvings it has stopped improving and
keeps its last parameters (the iterate, not the best on the fixed draws, which would be
biased towards those draws), or at ``max_steps``. Both ELBOs are then estimated on the same fresh
``elbo_samples`` draws, independent of the selection (analytic KL, Monte Carlo likelihood).

Runs without an encoder (MCEM) get log p(x) by HMC only: no ELBO, no gaps.

Posterior summaries: per latent dimension, the encoder's mean and standard deviation (and q*'s)
against the HMC posterior's mean and standard deviation of each datapoint.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from vaebench import ops
from vaebench.marginal import estimators as marginal

DEFAULTS = {
    "n_points": 1000,
    "k": 1000,
    "elbo_samples": 100,
    "train_samples": 2,
    "eval_samples": 32,
    "lr": 0.05,
    "check_every": 25,
    "max_halvings": 4,
    "tol": 0.001,
    "max_steps": 3000,
    "samples_per_point": marginal.DEFAULT_SAMPLES,
    "leapfrog": marginal.DEFAULT_LEAPFROG,
    "burn_in": marginal.DEFAULT_BURN_IN,
    "thin": marginal.DEFAULT_THIN,
}


# --------------------------------------------------------------------------------------------
# the ELBO of a given diagonal Gaussian
# --------------------------------------------------------------------------------------------
def elbo_samples(model, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log p(x|z_l) - KL(q || p(z)) for z_l = mu + sigma eps_l: (L, n) (the ELBO's mean over l)."""
    lv = ops.clamp_logvar(logvar)
    z = mu + torch.exp(0.5 * lv) * eps
    kl = 0.5 * (mu.square() + torch.expm1(lv) - lv).sum(-1)
    return model.decoder.log_prob(x, z) - kl


def elbo(model, x, mu, logvar, eps) -> tuple[torch.Tensor, torch.Tensor]:
    """(ELBO per datapoint, its Monte Carlo standard error) from the draws eps (L, n, nz)."""
    with torch.no_grad():
        v = elbo_samples(model, x, mu, logvar, eps)
    return v.mean(0), v.std(0) / math.sqrt(v.shape[0])


def antithetic(L: int, n: int, nz: int, *, generator=None, dtype=torch.float32, device=None) -> torch.Tensor:
    """L standard normal draws (L, n, nz) in antithetic pairs (eps, -eps) (L rounded up to even)."""
    half = torch.randn(((L + 1) // 2, n, nz), generator=generator, dtype=dtype, device=device)
    return torch.cat([half, -half])


# --------------------------------------------------------------------------------------------
# the best diagonal Gaussian per datapoint
# --------------------------------------------------------------------------------------------
@dataclass
class LocalFit:
    mu: torch.Tensor  # (n, nz)
    logvar: torch.Tensor  # (n, nz)
    steps: torch.Tensor  # (n,) optimisation steps until the datapoint stopped improving
    last: torch.Tensor  # (n,) its ELBO on the fixed check draws at the last check


def optimise_local(
    model,
    x: torch.Tensor,
    mu0: torch.Tensor,
    logvar0: torch.Tensor,
    *,
    lr: float = DEFAULTS["lr"],
    train_samples: int = DEFAULTS["train_samples"],
    eval_samples: int = DEFAULTS["eval_samples"],
    check_every: int = DEFAULTS["check_every"],
    max_halvings: int = DEFAULTS["max_halvings"],
    tol: float = DEFAULTS["tol"],
    max_steps: int = DEFAULTS["max_steps"],
    generator: torch.Generator | None = None,
) -> LocalFit:
    """Maximise each datapoint's ELBO over (mu, log sigma^2) from (mu0, logvar0); see the module
    docstring for the stopping rule."""
    n, nz = mu0.shape
    dtype, device = mu0.dtype, mu0.device
    p = torch.cat([mu0, ops.clamp_logvar(logvar0)], -1).detach().clone()
    eval_eps = antithetic(eval_samples, n, nz, generator=generator, dtype=dtype, device=device)

    def evaluate(params):
        return elbo(model, x, params[:, :nz], params[:, nz:], eval_eps)[0]

    last = evaluate(p)
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    step_size = torch.full((n, 1), float(lr), dtype=dtype, device=device)
    halvings = torch.zeros(n, dtype=torch.long, device=device)
    active = torch.ones(n, dtype=torch.bool, device=device)
    steps = torch.zeros(n, dtype=torch.long, device=device)
    b1, b2 = 0.9, 0.999
    total, count, final = torch.zeros_like(p), torch.zeros(n, 1, dtype=dtype, device=device), p.clone()
    for step in range(1, max_steps + 1):
        eps = antithetic(train_samples, n, nz, generator=generator, dtype=dtype, device=device)
        with torch.enable_grad():
            q = p.detach().requires_grad_(True)
            value = elbo_samples(model, x, q[:, :nz], q[:, nz:], eps).mean(0).sum()
            (g,) = torch.autograd.grad(value, q)
        a = active.unsqueeze(-1)
        m = torch.where(a, b1 * m + (1 - b1) * g, m)
        v = torch.where(a, b2 * v + (1 - b2) * g.square(), v)
        update = step_size * (m / (1 - b1**step)) / ((v / (1 - b2**step)).sqrt() + 1e-8)
        p = torch.where(a, p + update, p)  # ascent
        p[:, nz:] = ops.clamp_logvar(p[:, nz:])
        total, count = torch.where(a, total + p, total), count + a.to(dtype)
        if step % check_every == 0:
            cur = evaluate(p)
            stalled = active & ~(cur > last + tol)
            step_size = torch.where(stalled.unsqueeze(-1), step_size / 2, step_size)
            halvings = halvings + stalled.long()
            last = cur
            final = torch.where(stalled.unsqueeze(-1), total / count.clamp_min(1), final)
            total, count = (
                torch.where(stalled.unsqueeze(-1), 0.0, total),
                torch.where(stalled.unsqueeze(-1), 0.0, count),
            )
            steps = torch.where(active, step, steps)
            active = active & (halvings < max_halvings)
            if not bool(active.any()):
                break
    else:
        steps = torch.where(active, max_steps, steps)
        final = torch.where(active.unsqueeze(-1), torch.where(count > 0, total / count.clamp_min(1), p), final)
    return LocalFit(final[:, :nz].clone(), final[:, nz:].clone(), steps, last)


# --------------------------------------------------------------------------------------------
# HMC: log p(x) (appendix D) and posterior moments from the same chains
# --------------------------------------------------------------------------------------------
@dataclass
class HMCPosterior:
    log_px: torch.Tensor  # (n,) appendix D estimate
    stderr: torch.Tensor  # (n,)
    mean: torch.Tensor  # (n, nz) posterior mean over all kept samples
    std: torch.Tensor  # (n, nz) posterior standard deviation
    accept: torch.Tensor  # (n,) mean acceptance in the sampling phase


def hmc_posterior(
    model,
    x: torch.Tensor,
    *,
    samples: int = DEFAULTS["samples_per_point"],
    leapfrog: int = DEFAULTS["leapfrog"],
    burn_in: int = DEFAULTS["burn_in"],
    thin: int = DEFAULTS["thin"],
    chunk: int = 1000,
    generator=None,
) -> HMCPosterior:
    """The appendix D estimate of log p(x) exactly as vaebench.marginal.estimators.hmc_log_marginal computes
    it, and the posterior mean and standard deviation of z from the same 2 * ``samples`` draws."""
    out = {k: [] for k in ("log_px", "stderr", "mean", "std", "accept")}
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk]
        z0 = marginal.initial_z(model, xb, generator=generator)
        part = marginal.appendix_d_chunk(
            model, xb, z0, samples=samples, n_leapfrog=leapfrog, burn_in=burn_in, thin=thin, generator=generator
        )
        out["log_px"].append(part.log_px)
        out["stderr"].append(part.stderr)  # the estimator's own error estimate
        out["mean"].append(part.samples.mean(0))
        out["std"].append(part.samples.std(0))
        out["accept"].append(part.accept)
    return HMCPosterior(*(torch.cat(out[k]) for k in ("log_px", "stderr", "mean", "std", "accept")))


# --------------------------------------------------------------------------------------------
# the whole decomposition for a batch of datapoints
# --------------------------------------------------------------------------------------------
def decompose(
    model,
    x: torch.Tensor,
    *,
    generator=None,
    k: int = DEFAULTS["k"],
    elbo_samples_: int = DEFAULTS["elbo_samples"],
    hmc: dict | None = None,
    local: dict | None = None,
    timings: dict | None = None,
) -> dict:
    """Per-datapoint tensors: log_px_hmc(+_stderr), hmc posterior mean/std, and with an encoder
    log_px_is(+_stderr), the encoder's and q*'s (mu, logvar), elbo_encoder, elbo_optimised
    (+_stderr), the three gaps, amortisation_gap_stderr, opt_steps."""
    timings = {} if timings is None else timings
    was_training = model.training
    model.eval()
    try:
        t0 = time.perf_counter()
        post = hmc_posterior(model, x, generator=generator, **(hmc or {}))
        timings["hmc_s"] = time.perf_counter() - t0
        res = {
            "log_px_hmc": post.log_px,
            "log_px_hmc_stderr": post.stderr,
            "hmc_mean": post.mean,
            "hmc_std": post.std,
            "hmc_accept": post.accept,
        }
        if getattr(model, "encoder", None) is None:
            return res
        t0 = time.perf_counter()
        est = marginal.importance_log_marginal(model, x, k=k, generator=generator)
        timings["importance_s"] = time.perf_counter() - t0
        with torch.no_grad():
            mu, lv = model.encoder(x)
            lv = ops.clamp_logvar(lv)
        t0 = time.perf_counter()
        fit = optimise_local(model, x, mu, lv, generator=generator, **(local or {}))
        timings["optimise_s"] = time.perf_counter() - t0
        eps = torch.randn((elbo_samples_, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        with torch.no_grad():
            enc_v = elbo_samples(model, x, mu, lv, eps)
            opt_v = elbo_samples(model, x, fit.mu, fit.logvar, eps)
        L = math.sqrt(elbo_samples_)
        e_enc, e_opt = enc_v.mean(0), opt_v.mean(0)
        res.update(
            {
                "log_px_is": est.log_px,
                "log_px_is_stderr": est.stderr,
                "encoder_mu": mu,
                "encoder_logvar": lv,
                "optimised_mu": fit.mu,
                "optimised_logvar": fit.logvar,
                "elbo_encoder": e_enc,
                "elbo_encoder_stderr": enc_v.std(0) / L,
                "elbo_optimised": e_opt,
                "elbo_optimised_stderr": opt_v.std(0) / L,
                "inference_gap": post.log_px - e_enc,
                "approximation_gap": post.log_px - e_opt,
                "amortisation_gap": e_opt - e_enc,
                "amortisation_gap_stderr": (opt_v - enc_v).std(0) / L,
                "opt_steps": fit.steps,
            }
        )
        return res
    finally:
        model.train(was_training)


def posterior_summary(res: dict) -> list[dict]:
    """Per latent dimension: the encoder's (and q*'s) mean and standard deviation against the
    HMC posterior's, over the datapoints (empty comparisons for a model without encoder)."""
    hm, hs = res["hmc_mean"].double(), res["hmc_std"].double().clamp_min(1e-12)
    rows = []
    for d in range(hm.shape[1]):
        row = {
            "dim": d,
            "hmc_mean_avg": float(hm[:, d].mean()),
            "hmc_mean_sd": float(hm[:, d].std()),
            "hmc_std": float(hs[:, d].mean()),
        }
        for who in ("encoder", "optimised"):
            if f"{who}_mu" not in res:
                row.update(
                    {f"{who}_{c}": "" for c in ("std", "log_std_ratio", "mean_rmse", "mean_rmse_in_std", "mean_corr")}
                )
                continue
            mu, sd = res[f"{who}_mu"][:, d].double(), torch.exp(0.5 * res[f"{who}_logvar"][:, d].double())
            err = mu - hm[:, d]
            corr = torch.corrcoef(torch.stack([mu, hm[:, d]]))[0, 1] if mu.numel() > 2 else torch.tensor(math.nan)
            row.update(
                {
                    f"{who}_std": float(sd.mean()),
                    f"{who}_log_std_ratio": float(torch.log(sd / hs[:, d]).mean()),
                    f"{who}_mean_rmse": float(err.square().mean().sqrt()),
                    f"{who}_mean_rmse_in_std": float((err / hs[:, d]).square().mean().sqrt()),
                    f"{who}_mean_corr": float(corr),
                }
            )
        rows.append(row)
    return rows
