"""The Gaussian log-density, written once (every module that needs it imports it from here):

log N(x; m, diag(exp(lv))) = -1/2 sum_i (log 2 pi + lv_i + (x_i - m_i)^2 exp(-lv_i))
log N(z; 0, I)             = -1/2 (sum_i z_i^2 + D log 2 pi)
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def log_normal(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, *, summed: bool = True) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over the last dimension (``summed``) or per element.
    The caller bounds ``logvar`` where it must (vaebench.ops.clamp_logvar)."""
    terms = LOG_2PI + logvar + (x - mean).square() * torch.exp(-logvar)
    return -0.5 * (terms.sum(-1) if summed else terms)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * LOG_2PI)
