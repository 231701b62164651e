"""Hybrid Monte Carlo moves on p(z|x) ∝ p(z) p(x|z), batched over chains as tensor operations.

The leapfrog integrator uses grad_z log p(x, z) from torch.autograd.grad; each chain has its own
step size, and each transition draws it uniformly within ±STEP_JITTER of the chain's (avoids
periodic trajectories). Used by MCEM's E-step (vaebench.algorithms.mcem), the appendix D
estimator (vaebench.marginal.estimators) and posterior inference (vaebench.uses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

STEP_JITTER = 0.1


def log_joint_and_grad(log_joint, x, z):
    """log p(x, z) per chain and its gradient in z (no graph kept, parameters untouched)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        lp = log_joint(x, z)
        (grad,) = torch.autograd.grad(lp.sum(), z)
    return lp.detach(), grad.detach()


@dataclass
class HMCState:
    """Chains z (..., nz) with their log joint and its gradient (reused by the next move)."""

    z: torch.Tensor
    logp: torch.Tensor
    grad: torch.Tensor

    @classmethod
    def start(cls, log_joint, x, z):
        lp, g = log_joint_and_grad(log_joint, x, z)
        return cls(z.detach(), lp, g)


def hmc_transition(
    log_joint,
    x,
    state: HMCState,
    step_size: torch.Tensor,
    n_leapfrog: int,
    generator: torch.Generator | None = None,
    jitter: float = STEP_JITTER,
):
    """One HMC move of every chain: momentum ~ N(0, I), ``n_leapfrog`` leapfrog steps of size
    ``step_size`` (one per chain, shape z.shape[:-1]), Metropolis accept/reject.

    Returns (new state, acceptance probability per chain). Costs n_leapfrog gradient evaluations.
    """
    z0, lp0, g0 = state.z, state.logp, state.grad
    dtype, device = z0.dtype, z0.device
    eps = step_size.to(dtype)
    if jitter:
        u = torch.rand(eps.shape, generator=generator, dtype=dtype, device=device)
        eps = eps * (1.0 + jitter * (2.0 * u - 1.0))
    eps = eps.unsqueeze(-1)
    p0 = torch.randn(z0.shape, generator=generator, dtype=dtype, device=device)
    z, g = z0, g0
    p = p0 + 0.5 * eps * g
    for i in range(n_leapfrog):
        z = z + eps * p
        lp, g = log_joint_and_grad(log_joint, x, z)
        p = p + (eps if i < n_leapfrog - 1 else 0.5 * eps) * g
    h0 = -lp0 + 0.5 * p0.square().sum(-1)
    h1 = -lp + 0.5 * p.square().sum(-1)
    log_accept = (h0 - h1).clamp(max=0.0)
    log_accept = torch.where(torch.isfinite(log_accept), log_accept, torch.full_like(log_accept, -math.inf))
    u = torch.rand(log_accept.shape, generator=generator, dtype=dtype, device=device)
    accept = torch.log(u) < log_accept
    a = accept.unsqueeze(-1)
    new = HMCState(torch.where(a, z, z0), torch.where(accept, lp, lp0), torch.where(a, g, g0))
    return new, log_accept.exp()


def adapt_log_step(log_step: torch.Tensor, accept_prob: torch.Tensor, target: float, rate: float):
    """Robbins-Monro update: larger steps when accepting more often than ``target``."""
    return (log_step + rate * (accept_prob - target)).clamp(-12.0, 2.0)
