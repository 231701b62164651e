"""The decoder tail: a log-likelihood whose gradient is computed in the forward pass.

For a per-row log-likelihood ll_i = sum_j f(a_ij, ...), the backward pass is
grad_a_ij = g_i * df/da_ij. The kernels of ``bernoulli_log_likelihood`` and
``gaussian_log_likelihood`` write df/da while they already hold the inputs in
registers (one pass: read the inputs, write ll and df/da), so the backward only
scales rows by the upstream gradient g -- in place on the saved buffer in eager
mode (no allocation, one read and one write), out of place under torch.compile.

This module holds that shared backward (layer 3 helpers: ``tail_grad``, and
``take_buffers`` for the eager path) and the small ``scale_rows`` numba kernel; the
likelihood files hold the forward kernels.
"""

from __future__ import annotations

import torch

try:
    import numba
    from numba import prange

    from .fastmath import FLAGS

    _OPTS = dict(cache=True, fastmath=FLAGS, error_model="numpy", nogil=True)

    @numba.njit(inline="always", fastmath=FLAGS)
    def _scale(row, gi):
        for j in range(row.shape[0]):
            row[j] *= gi

    @numba.njit(parallel=True, **_OPTS)
    def _scale_rows_inplace_par(d, g):
        for i in prange(d.shape[0]):
            _scale(d[i], g[i])

    @numba.njit(**_OPTS)
    def _scale_rows_inplace_ser(d, g):
        for i in range(d.shape[0]):
            _scale(d[i], g[i])
except ImportError:  # pragma: no cover - numba is an optional extra
    numba = None

from .fastmath_config import PARALLEL_MIN


def scale_rows_(d: torch.Tensor, g: torch.Tensor, backend: str) -> torch.Tensor:
    """d[i, :] *= g[i] in place (d contiguous 2-D, g 1-D of d's rows); returns d. The numba
    backend uses its kernel; any other (triton, also under TRITON_INTERPRET on the CPU and in
    fp16/bf16, which numba does not take) a torch multiply on d's device."""
    g = g.detach().reshape(-1).to(d.dtype)
    if backend == "numba":
        dn, gn = d.detach().numpy(), g.contiguous().numpy()
        (_scale_rows_inplace_par if d.numel() >= PARALLEL_MIN else _scale_rows_inplace_ser)(dn, gn)
        return d
    return d.mul_(g.unsqueeze(1))


def tail_grad(saved: torch.Tensor, g: torch.Tensor, shape, *, inplace: bool, backend: str | None = None):
    """The input gradient g[..., None] * saved, reshaped to ``shape``; ``inplace``: on ``saved``, with
    ``backend``'s kernel (``scale_rows_``)."""
    g2 = g.reshape(-1)
    if inplace:
        return scale_rows_(saved, g2, backend).view(shape)
    return (saved * g2.unsqueeze(1).to(saved.dtype)).view(shape)


def take_buffers(ctx, recompute):
    """The gradient buffers the eager forward kept on ``ctx.bufs`` (a tuple), handed to the first
    backward only, since it scales them in place; a later backward (retain_graph=True) gets
    ``recompute()``'s."""
    bufs, ctx.bufs = ctx.bufs, None
    return bufs if bufs is not None else recompute()
