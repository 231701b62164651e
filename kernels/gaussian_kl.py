"""Per-row KL(N(mu, e^lv) || N(0, I)) = 1/2 sum_j (mu^2 + expm1(lv) - lv), lv = clamp(logvar).

expm1 (not 1 + lv - exp(lv), which cancels near lv = 0). Backward (recomputed):
g_mu = g mu, g_lv = [lv inside the clamp] g expm1(lv) / 2.
Tolerance against eager (fp32): 1e-5 relative on kl and gradients.
"""

from __future__ import annotations

import functools

import torch

from . import _backend as B
from ._triton_common import triton_kernels
from .constants import LOGVAR_MAX, LOGVAR_MIN
from .fastmath_config import PARALLEL_MIN
from .validate import as_rows

OP = "gaussian_kl"

# ---- layer 1: numba --------------------------------------------------------
try:
    import numba
    from numba import prange

    from .fastmath import HALF as _HALF
    from .fastmath import OPTS as _OPTS
    from .fastmath import ZERO as _Z
    from .fastmath import fclamp, fexpm1, finside

    @numba.njit(inline="always", **_OPTS)
    def _fwd_row(mu, lv, lo, hi):
        acc = _Z
        for j in range(mu.shape[0]):
            l = fclamp(lv[j], lo, hi)
            m = mu[j]
            acc += m * m + fexpm1(l) - l
        return _HALF * acc

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _fwd_par(mu, lv, kl, lo, hi):
        for i in prange(mu.shape[0]):
            kl[i] = _fwd_row(mu[i], lv[i], lo, hi)

    @numba.njit(cache=True, **_OPTS)
    def _fwd_ser(mu, lv, kl, lo, hi):
        for i in range(mu.shape[0]):
            kl[i] = _fwd_row(mu[i], lv[i], lo, hi)

    @numba.njit(inline="always", **_OPTS)
    def _bwd_row(mu, lv, g, gmu, glv, lo, hi):
        for j in range(mu.shape[0]):
            l0 = lv[j]
            gmu[j] = g * mu[j]
            v = _HALF * g * fexpm1(fclamp(l0, lo, hi))
            glv[j] = v if finside(l0, lo, hi) else _Z

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _bwd_par(mu, lv, g, gmu, glv, lo, hi):
        for i in prange(mu.shape[0]):
            _bwd_row(mu[i], lv[i], g[i], gmu[i], glv[i], lo, hi)

    @numba.njit(cache=True, **_OPTS)
    def _bwd_ser(mu, lv, g, gmu, glv, lo, hi):
        for i in range(mu.shape[0]):
            _bwd_row(mu[i], lv[i], g[i], gmu[i], glv[i], lo, hi)
except ImportError:  # pragma: no cover
    numba = None


# ---- layer 1: triton -------------------------------------------------------
@triton_kernels
def _triton_kernels(triton, tl):
    from ._triton_common import clamp, expm1, inside, load, row_block

    @triton.jit
    def fwd(MU, LV, KL, ncols, lo: tl.constexpr, hi: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, ncols, BLOCK):
            m, offs = row_block(row, start, ncols, BLOCK)
            mu, lv = load(MU, offs, m), clamp(load(LV, offs, m), lo, hi)
            acc += tl.where(m, mu * mu + expm1(lv) - lv, 0.0)
        tl.store(KL + row, (0.5 * tl.sum(acc, axis=0)).to(KL.dtype.element_ty))

    @triton.jit
    def bwd(MU, LV, G, GMU, GLV, ncols, lo: tl.constexpr, hi: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        g = tl.load(G + row).to(tl.float32)
        for start in range(0, ncols, BLOCK):
            m, offs = row_block(row, start, ncols, BLOCK)
            lv0 = load(LV, offs, m)
            tl.store(GMU + offs, (g * load(MU, offs, m)).to(GMU.dtype.element_ty), mask=m)
            v = tl.where(inside(lv0, lo, hi), 0.5 * g * expm1(clamp(lv0, lo, hi)), 0.0)
            tl.store(GLV + offs, v.to(GLV.dtype.element_ty), mask=m)

    return fwd, bwd


# ---- layer 2 -----------------------------------------------------------------
def forward(mu, logvar, backend):
    m2, l2 = B.rows(OP, backend, ("mu", "logvar"), (mu, logvar))
    kl = m2.new_empty(m2.shape[0])
    B.launch_rows(backend, lambda: (_fwd_par, _fwd_ser), _triton_kernels, (m2, l2, kl), m2.shape[1])
    return B.shaped(kl, mu.shape[:-1])


def backward(mu, logvar, g, backend):
    m2, l2 = as_rows(mu), as_rows(logvar)
    n, D = m2.shape
    g1 = g.detach().reshape(-1).to(m2.dtype).contiguous()
    gmu, glv = torch.empty_like(m2), torch.empty_like(m2)
    if n:
        if backend == "numba":
            k = _bwd_par if m2.numel() >= PARALLEL_MIN else _bwd_ser
            k(m2.numpy(), l2.numpy(), g1.numpy(), gmu.numpy(), glv.numpy(), *B.np_scalars(m2, LOGVAR_MIN, LOGVAR_MAX))
        else:
            _triton_kernels()[1][(n,)](m2, l2, g1, gmu, glv, D, lo=LOGVAR_MIN, hi=LOGVAR_MAX, BLOCK=B.row_block(D))
    return B.shaped(gmu, mu.shape), B.shaped(glv, mu.shape)


# ---- layer 3 -----------------------------------------------------------------
@B.custom_op("gaussian_kl_bwd", lambda mu, logvar, g, backend: (mu.new_empty(mu.shape), mu.new_empty(mu.shape)))
def _bwd_op(mu: torch.Tensor, logvar: torch.Tensor, g: torch.Tensor, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return backward(mu, logvar, g, backend)


def _setup(ctx, inputs, output):
    mu, logvar, backend = inputs
    ctx.save_for_backward(mu, logvar)
    ctx.backend = backend


def _backward(ctx, g, bwd=_bwd_op):
    """``bwd``: the backward op (torch.compile) or layer 2's backward (the eager path)."""
    mu, logvar = ctx.saved_tensors
    gmu, glv = bwd(mu, logvar, g, ctx.backend)
    return gmu, glv, None


@B.custom_op("gaussian_kl", lambda mu, logvar, backend: mu.new_empty(mu.shape[:-1]), backward=_backward, setup=_setup)
def _op(mu: torch.Tensor, logvar: torch.Tensor, backend: str) -> torch.Tensor:
    return forward(mu, logvar, backend)


GaussianKL = B.eager_function("GaussianKL", OP, forward, _setup, functools.partial(_backward, bwd=backward))


def gaussian_kl(mu, logvar, backend="numba"):
    if torch.compiler.is_compiling():
        return _op(mu, logvar, backend)
    return GaussianKL.apply(mu, logvar, backend)
