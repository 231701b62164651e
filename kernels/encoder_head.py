"""The encoder head: z and the Gaussian KL from (mu, logvar, eps) in one pass.

    lv  = clamp(logvar, LOGVAR_MIN, LOGVAR_MAX),  h = expm1(lv / 2)
    std = 1 + h                      z  = mu + std * eps
    expm1(lv) = h (h + 2)            kl = 1/2 sum_j (mu^2 + expm1(lv) - lv)

One expm1 per element gives both the scale of the sample and the KL term
(without the cancellation of 1 + lv - exp(lv) near lv = 0). Backward
(recomputed from the inputs, nothing but them is saved):
    g_mu = g_z + g_kl mu
    g_lv = [lv inside the clamp] (g_z eps std / 2 + g_kl expm1(lv) / 2)
    g_eps = g_z std
Tolerance against eager (fp32): 1e-5 relative on z, kl and gradients.
"""

from __future__ import annotations

import functools

import torch

from . import _backend as B
from ._triton_common import triton_kernels
from .constants import LOGVAR_MAX, LOGVAR_MIN
from .fastmath_config import PARALLEL_MIN
from .validate import as_rows

OP = "encoder_head"

# ---- layer 1: numba --------------------------------------------------------
try:
    import numba
    from numba import prange

    from .fastmath import HALF as _HALF
    from .fastmath import ONE as _ONE
    from .fastmath import OPTS as _OPTS
    from .fastmath import TWO as _TWO
    from .fastmath import ZERO as _Z
    from .fastmath import fclamp, fexpm1, finside

    @numba.njit(inline="always", **_OPTS)
    def _fwd_row(mu, lv, eps, z, lo, hi):
        acc = _Z
        for j in range(mu.shape[0]):
            l = fclamp(lv[j], lo, hi)
            h = fexpm1(_HALF * l)
            m = mu[j]
            z[j] = m + (_ONE + h) * eps[j]
            acc += m * m + h * (h + _TWO) - l
        return _HALF * acc

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _fwd_par(mu, lv, eps, z, kl, lo, hi):
        for i in prange(mu.shape[0]):
            kl[i] = _fwd_row(mu[i], lv[i], eps[i], z[i], lo, hi)

    @numba.njit(cache=True, **_OPTS)
    def _fwd_ser(mu, lv, eps, z, kl, lo, hi):
        for i in range(mu.shape[0]):
            kl[i] = _fwd_row(mu[i], lv[i], eps[i], z[i], lo, hi)

    @numba.njit(inline="always", **_OPTS)
    def _bwd_row(mu, lv, eps, gz, gkl, gmu, glv, geps, need_eps, lo, hi):
        for j in range(mu.shape[0]):
            l0 = lv[j]
            h = fexpm1(_HALF * fclamp(l0, lo, hi))
            std = _ONE + h
            gzj = gz[j]
            gmu[j] = gzj + gkl * mu[j]
            g = _HALF * (gzj * eps[j] * std + gkl * h * (h + _TWO))
            glv[j] = g if finside(l0, lo, hi) else _Z
            if need_eps:
                geps[j] = gzj * std

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _bwd_par(mu, lv, eps, gz, gkl, gmu, glv, geps, need_eps, lo, hi):
        for i in prange(mu.shape[0]):
            _bwd_row(mu[i], lv[i], eps[i], gz[i], gkl[i], gmu[i], glv[i], geps[i], need_eps, lo, hi)

    @numba.njit(cache=True, **_OPTS)
    def _bwd_ser(mu, lv, eps, gz, gkl, gmu, glv, geps, need_eps, lo, hi):
        for i in range(mu.shape[0]):
            _bwd_row(mu[i], lv[i], eps[i], gz[i], gkl[i], gmu[i], glv[i], geps[i], need_eps, lo, hi)
except ImportError:  # pragma: no cover
    numba = None


# ---- layer 1: triton -------------------------------------------------------
@triton_kernels
def _triton_kernels(triton, tl):
    from ._triton_common import clamp, expm1, inside, load, row_block

    @triton.jit
    def fwd(MU, LV, EPS, Z, KL, ncols, lo: tl.constexpr, hi: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, ncols, BLOCK):
            m, offs = row_block(row, start, ncols, BLOCK)
            mu, lv = load(MU, offs, m), clamp(load(LV, offs, m), lo, hi)
            h = expm1(0.5 * lv)
            tl.store(Z + offs, (mu + (1.0 + h) * load(EPS, offs, m)).to(Z.dtype.element_ty), mask=m)
            acc += tl.where(m, mu * mu + h * (h + 2.0) - lv, 0.0)
        tl.store(KL + row, (0.5 * tl.sum(acc, axis=0)).to(KL.dtype.element_ty))

    @triton.jit
    def bwd(
        MU,
        LV,
        EPS,
        GZ,
        GKL,
        GMU,
        GLV,
        GEPS,
        ncols,
        NEED_EPS: tl.constexpr,
        lo: tl.constexpr,
        hi: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        gkl = tl.load(GKL + row).to(tl.float32)
        for start in range(0, ncols, BLOCK):
            m, offs = row_block(row, start, ncols, BLOCK)
            lv0, gz = load(LV, offs, m), load(GZ, offs, m)
            h = expm1(0.5 * clamp(lv0, lo, hi))
            std = 1.0 + h
            tl.store(GMU + offs, (gz + gkl * load(MU, offs, m)).to(GMU.dtype.element_ty), mask=m)
            g = 0.5 * (gz * load(EPS, offs, m) * std + gkl * h * (h + 2.0))
            tl.store(GLV + offs, tl.where(inside(lv0, lo, hi), g, 0.0).to(GLV.dtype.element_ty), mask=m)
            if NEED_EPS:
                tl.store(GEPS + offs, (gz * std).to(GEPS.dtype.element_ty), mask=m)

    return fwd, bwd


# ---- layer 2 -----------------------------------------------------------------
def forward(mu, logvar, eps, backend):
    """(z with mu's shape, kl with mu.shape[:-1])."""
    m2, l2, e2 = B.rows(OP, backend, ("mu", "logvar", "eps"), (mu, logvar, eps))
    z, kl = torch.empty_like(m2), m2.new_empty(m2.shape[0])
    B.launch_rows(backend, lambda: (_fwd_par, _fwd_ser), _triton_kernels, (m2, l2, e2, z, kl), m2.shape[1])
    return B.shaped(z, mu.shape), B.shaped(kl, mu.shape[:-1])


def backward(mu, logvar, eps, gz, gkl, need_eps, backend):
    """(g_mu, g_logvar, g_eps or an empty tensor)."""
    m2, l2, e2 = as_rows(mu), as_rows(logvar), as_rows(eps)
    n, D = m2.shape
    gz2 = as_rows(gz.to(m2.dtype)) if gz is not None else torch.zeros_like(m2)
    gkl2 = gkl.detach().reshape(-1).to(m2.dtype).contiguous() if gkl is not None else m2.new_zeros(n)
    gmu, glv = torch.empty_like(m2), torch.empty_like(m2)
    geps = torch.empty_like(m2) if need_eps else m2.new_empty((n, 0))
    if n:
        if backend == "numba":
            k = _bwd_par if m2.numel() >= PARALLEL_MIN else _bwd_ser
            k(
                m2.numpy(),
                l2.numpy(),
                e2.numpy(),
                gz2.numpy(),
                gkl2.numpy(),
                gmu.numpy(),
                glv.numpy(),
                geps.numpy(),
                need_eps,
                *B.np_scalars(m2, LOGVAR_MIN, LOGVAR_MAX),
            )
        else:
            _triton_kernels()[1][(n,)](
                m2,
                l2,
                e2,
                gz2,
                gkl2,
                gmu,
                glv,
                geps if need_eps else gmu,
                D,
                NEED_EPS=need_eps,
                lo=LOGVAR_MIN,
                hi=LOGVAR_MAX,
                BLOCK=B.row_block(D),
            )
    return B.shaped(gmu, mu.shape), B.shaped(glv, mu.shape), (B.shaped(geps, mu.shape) if need_eps else geps)


# ---- layer 3 -----------------------------------------------------------------
def _bwd_fake(mu, logvar, eps, gz, gkl, need_eps, backend):
    n = mu.shape[:-1].numel()
    return (
        mu.new_empty(mu.shape),
        mu.new_empty(mu.shape),
        mu.new_empty(mu.shape) if need_eps else mu.new_empty((n, 0)),
    )


@B.custom_op("encoder_head_bwd", _bwd_fake)
def _bwd_op(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    eps: torch.Tensor,
    gz: torch.Tensor,
    gkl: torch.Tensor,
    need_eps: bool,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gmu, glv, geps = backward(mu, logvar, eps, gz, gkl, need_eps, backend)
    return gmu, glv, geps


def _setup(ctx, inputs, output):
    mu, logvar, eps, backend = inputs
    ctx.save_for_backward(mu, logvar, eps)
    ctx.backend = backend


def _backward(ctx, gz, gkl, bwd=_bwd_op):
    """``bwd``: the backward op (torch.compile) or layer 2's backward (the eager path)."""
    mu, logvar, eps = ctx.saved_tensors
    if gz is None:
        gz = torch.zeros_like(mu)
    if gkl is None:
        gkl = mu.new_zeros(mu.shape[:-1])
    need_eps = ctx.needs_input_grad[2]
    gmu, glv, geps = bwd(mu, logvar, eps, gz, gkl, need_eps, ctx.backend)
    return gmu, glv, (geps if need_eps else None), None


@B.custom_op(
    "encoder_head",
    lambda mu, logvar, eps, backend: (mu.new_empty(mu.shape), mu.new_empty(mu.shape[:-1])),
    backward=_backward,
    setup=_setup,
)
def _op(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return forward(mu, logvar, eps, backend)


EncoderHead = B.eager_function("EncoderHead", OP, forward, _setup, functools.partial(_backward, bwd=backward))


def encoder_head(mu, logvar, eps, backend="numba"):
    if torch.compiler.is_compiling():
        return _op(mu, logvar, eps, backend)
    return EncoderHead.apply(mu, logvar, eps, backend)
