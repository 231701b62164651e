"""Per-datapoint estimators of the variational lower bound (paper section 2.3).

For one datapoint x, with z_l = mu + sigma * eps_l, eps_l ~ N(0, I), l = 1..L:

- SGVB A (eq. 6):  1/L sum_l [log p(x, z_l) - log q(z_l|x)]
- SGVB B (eq. 7):  -KL(q(z|x) || p(z)) + 1/L sum_l log p(x|z_l)   (analytic KL)
- score function:  the naive estimator the paper contrasts with: the same value
  as A, but the gradient for the encoder is 1/L sum_l f(z_l) grad log q(z_l|x)
  with f = log p(x, z) - log q(z|x) and z not differentiated (no reparameterisation).

Each returns a ``Bound`` whose ``value`` is the estimate per datapoint and whose
``surrogate`` is what to maximise for that estimator's gradient. The minibatch
estimator of eq. 8 is N/M times the sum over the minibatch; the trainers use its
per-datapoint mean (the same direction; Adagrad is invariant to the scale).

A model with a non-Gaussian posterior or prior (``model.uses_families``; vaebench.models) takes
the same three estimators through the families registry: z_l = g(eps_l, params(x)) by the
family's construction, log q and log p from its densities and, for B, the closed-form KL of
the pair (a one-line error naming the families where there is none). The Gaussian posterior
with the N(0, I) prior keeps the fused ops path below, bit for bit.

The bound of a data set (``average_lower_bound``) is the mean of SGVB B (A where the pair has
no closed-form KL) over its rows, at the points of ``eval_schedule``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from vaebench import ops
from vaebench.families.latent import ESTIMATORS, has_closed_form_kl, latent_kl


class Bound(NamedTuple):
    value: torch.Tensor  # (B,) the estimate of the bound per datapoint
    surrogate: torch.Tensor  # (B,) its gradient is the estimator's gradient


def _draw_eps(mu: torch.Tensor, L: int, generator) -> torch.Tensor:
    return torch.randn((L, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)


def _sample_z(mu, logvar, eps):
    """z = mu + exp(logvar/2) * eps for L draws at once: (L, B, nz)."""
    L, B, nz = eps.shape
    z = ops.reparameterize(
        mu.expand(L, B, nz).reshape(-1, nz), logvar.expand(L, B, nz).reshape(-1, nz), eps.reshape(-1, nz)
    )
    return z.reshape(L, B, nz)


# ---- the registry path (non-Gaussian posterior or prior) ---------------------------------------


def _family_draws(model, x, L, generator, eps, detach=False):
    """(params of q(z|x), z (L, B, N_z)) through the encoder's registry family."""
    enc = model.encoder
    params = enc(x)
    eps = enc.sample_eps(params, L, generator) if eps is None else eps
    z = enc.rsample({k: v.detach() for k, v in params.items()} if detach else params, eps)
    return params, z


def _family_a(model, x, L, generator, eps) -> Bound:
    params, z = _family_draws(model, x, L, generator, eps)
    value = (model.log_joint(x, z) - model.encoder.log_prob(z, params)).mean(0)
    return Bound(value, value)


def _family_b(model, x, L, generator, eps) -> Bound:
    params, z = _family_draws(model, x, L, generator, eps)
    kl = latent_kl(model.encoder.latent, params, model.latent_prior)  # a one-line error if not closed form
    value = model.decoder.log_prob(x, z).mean(0) - kl
    return Bound(value, value)


def _family_score(model, x, L, generator, eps) -> Bound:
    params, z = _family_draws(model, x, L, generator, eps, detach=True)  # no reparameterisation gradient
    log_q = model.encoder.log_prob(z, params)
    f = model.log_joint(x, z) - log_q
    # as score_function below: grad_theta log p(x, z); grad_phi (f - 1) grad log q
    surrogate = f + f.detach() * log_q
    return Bound(f.mean(0).detach(), surrogate.mean(0))


_FAMILY_TABLE = {"A": _family_a, "B": _family_b, "score": _family_score}


# ---- the paper's model: Gaussian posterior, N(0, I) prior, fused ops ---------------------------


def sgvb_a(model, x, L=1, generator=None, eps=None) -> Bound:
    mu, logvar = model.encoder(x)
    eps = _draw_eps(mu, L, generator) if eps is None else eps
    z = _sample_z(mu, logvar, eps)
    value = (model.log_joint(x, z) - model.encoder.log_prob(z, mu, logvar)).mean(0)
    return Bound(value, value)


def sgvb_b(model, x, L=1, generator=None, eps=None) -> Bound:
    mu, logvar = model.encoder(x)
    eps = _draw_eps(mu, L, generator) if eps is None else eps
    if eps.shape[0] == 1:  # the paper's L = 1: z and the KL in one fused pass
        z, kl = ops.encoder_head(mu, logvar, eps[0])
        z = z.unsqueeze(0)
    else:
        z, kl = _sample_z(mu, logvar, eps), ops.gaussian_kl(mu, logvar)
    value = model.decoder.log_prob(x, z).mean(0) - kl
    return Bound(value, value)


def score_function(model, x, L=1, generator=None, eps=None) -> Bound:
    mu, logvar = model.encoder(x)
    eps = _draw_eps(mu, L, generator) if eps is None else eps
    z = _sample_z(mu, logvar, eps).detach()  # no reparameterisation gradient
    log_q = model.encoder.log_prob(z, mu, logvar)
    f = model.log_joint(x, z) - log_q
    # grad_theta: grad log p(x, z);  grad_phi: (f - 1) grad log q, and E_q[grad log q] = 0
    surrogate = f + f.detach() * log_q
    return Bound(f.mean(0).detach(), surrogate.mean(0))


_TABLE = {"A": sgvb_a, "B": sgvb_b, "score": score_function}


def estimate(model, x, estimator="B", L=1, generator=None, eps=None) -> Bound:
    """The bound per datapoint with the named estimator ("A", "B" or "score")."""
    table = _FAMILY_TABLE if getattr(model, "uses_families", False) else _TABLE
    try:
        fn = table[estimator]
    except KeyError:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}") from None
    return fn(model, x, L, generator, eps)


def bound_estimator(model) -> str:
    """The estimator of a reported bound (the train/test evaluation): B (analytic KL) where the
    model's posterior/prior pair has a closed-form KL (always for the paper's model), else A."""
    if not getattr(model, "uses_families", False):
        return "B"
    return "B" if has_closed_form_kl(model.encoder.latent.name, model.latent_prior.name) else "A"


# ---- the bound of a data set, and when to evaluate it ---------------------------------------


def eval_schedule(budget: int, batch_size: int, per_decade: int = 4, first: int = 10_000) -> list[int]:
    """Log-spaced evaluation points (in samples) from ``first`` to ``budget``, ``per_decade``
    per decade, each rounded to whole minibatches, and always the budget itself."""
    last_step = budget // batch_size
    points, k = set(), math.ceil(per_decade * math.log10(max(first, batch_size)) - 1e-9)
    while True:
        s = 10 ** (k / per_decade)
        if s > budget:
            break
        points.add(max(1, round(s / batch_size)))
        k += 1
    points.add(last_step)
    return [p * batch_size for p in sorted(p for p in points if p <= last_step)]


@torch.no_grad()
def average_lower_bound(
    model, data: torch.Tensor, *, generator: torch.Generator | None = None, L: int = 1, chunk: int = 10_000
) -> float:
    """Mean over the rows of ``data`` of the SGVB-B estimate of the bound (analytic KL, L draws);
    SGVB A for a posterior/prior pair without a closed-form KL (bound_estimator)."""
    total = 0.0
    for start in range(0, data.shape[0], chunk):
        x = data[start : start + chunk]
        total += float(estimate(model, x, bound_estimator(model), L, generator).value.double().sum())
    return total / data.shape[0]
