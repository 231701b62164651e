"""The VAE hot-path ops, dispatched to a backend.

Models and estimators call these functions only; they never import a backend.
Backends: ``eager`` (plain PyTorch, the reference), ``numba``, ``triton``,
``compile`` (torch.compile of the eager reference).

Math (per row, D columns):
- reparameterize:  z = mu + exp(logvar / 2) * eps
- gaussian_kl:     KL(N(mu, e^lv) || N(0, I)) = 1/2 sum(mu^2 + expm1(lv) - lv)
- bernoulli_log_likelihood: sum(l*x - max(l, 0) - log1p(exp(-|l|)))
- gaussian_log_likelihood:  -1/2 sum(log 2pi + lv + (x - m)^2 e^-lv)
Log-variance is clamped to [LOGVAR_MIN, LOGVAR_MAX] everywhere.
"""

from __future__ import annotations

import math

import torch

BACKENDS = ("eager", "numba", "triton", "compile")
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
_LOG_2PI = math.log(2.0 * math.pi)

_default_backend = "eager"


def set_default_backend(name: str) -> None:
    """Choose the backend used when an op is called without ``backend=``."""
    global _default_backend
    _check_backend(name)
    _default_backend = name


def get_default_backend() -> str:
    return _default_backend


def _check_backend(name: str) -> None:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


def clamp_logvar(logvar: torch.Tensor) -> torch.Tensor:
    return logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


# ---- eager reference -------------------------------------------------------

def reparameterize_eager(mu, logvar, eps):
    return mu + torch.exp(0.5 * clamp_logvar(logvar)) * eps


def gaussian_kl_eager(mu, logvar):
    lv = clamp_logvar(logvar)
    return 0.5 * (mu.square() + torch.expm1(lv) - lv).sum(-1)


def bernoulli_log_likelihood_eager(logits, x):
    # PyTorch's own fused, stable form of  l*x - max(l, 0) - log1p(exp(-|l|))  (one kernel, not six)
    return -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def gaussian_log_likelihood_eager(mean, logvar, x):
    lv = clamp_logvar(logvar)
    return -0.5 * (_LOG_2PI + lv + (x - mean).square() * torch.exp(-lv)).sum(-1)


_EAGER = {
    "reparameterize": reparameterize_eager,
    "gaussian_kl": gaussian_kl_eager,
    "bernoulli_log_likelihood": bernoulli_log_likelihood_eager,
    "gaussian_log_likelihood": gaussian_log_likelihood_eager,
}


def _impl(op: str, backend: str | None):
    backend = backend or _default_backend
    _check_backend(backend)
    if backend == "eager":
        return _EAGER[op]
    raise NotImplementedError(f"backend {backend!r} for {op} is not built yet")


def reparameterize(mu, logvar, eps, *, backend=None):
    """z = mu + exp(logvar/2) * eps."""
    return _impl("reparameterize", backend)(mu, logvar, eps)


def gaussian_kl(mu, logvar, *, backend=None):
    """Per-row KL(N(mu, exp(logvar)) || N(0, I))."""
    return _impl("gaussian_kl", backend)(mu, logvar)


def bernoulli_log_likelihood(logits, x, *, backend=None):
    """Per-row sum of log Bernoulli(x | sigmoid(logits)), from the logits."""
    return _impl("bernoulli_log_likelihood", backend)(logits, x)


def gaussian_log_likelihood(mean, logvar, x, *, backend=None):
    """Per-row sum of log N(x | mean, exp(logvar))."""
    return _impl("gaussian_log_likelihood", backend)(mean, logvar, x)
