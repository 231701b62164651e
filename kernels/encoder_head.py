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
from .fastmath_config import PARALLEL_MIN
from .validate import as_rows, check_tensors

OP = "encoder_head"

# ---- layer 1: numba --------------------------------------------------------
try:
    import numba
    import numpy as np
    from numba import prange

    from .fastmath import FLAGS, fexpm1

    _OPTS = dict(fastmath=FLAGS, error_model="numpy", nogil=True)
    _Z, _HALF, _ONE, _TWO = np.float32(0), np.float32(0.5), np.float32(1), np.float32(2)

    @numba.njit(inline="always", **_OPTS)
    def _fwd_row(mu, lv, eps, z, lo, hi):
        acc = _Z
        for j in range(mu.shape[0]):
            l = lv[j]
            l = lo if l < lo else l
            l = hi if l > hi else l
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
            l = lo if l0 < lo else l0
            l = hi if l > hi else l
            h = fexpm1(_HALF * l)
            std = _ONE + h
            gzj = gz[j]
            gmu[j] = gzj + gkl * mu[j]
            g = _HALF * (gzj * eps[j] * std + gkl * h * (h + _TWO))
            glv[j] = g if (l0 >= lo) & (l0 <= hi) else _Z
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
@functools.lru_cache(maxsize=None)
def _triton_kernels():
    from ._triton_common import helpers
    H = helpers()
    triton, tl = H.triton, H.tl
    # module globals, not closure cells: the interpreter re-executes the kernel source
    globals().update(tl=tl, clamp=H.clamp, inside=H.inside, expm1=H.expm1)

    @triton.jit
    def fwd(MU, LV, EPS, Z, KL, ncols, lo: tl.constexpr, hi: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        base = row * ncols
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, ncols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            m = cols < ncols
            mu = tl.load(MU + base + cols, mask=m, other=0.0).to(tl.float32)
            lv = clamp(tl.load(LV + base + cols, mask=m, other=0.0).to(tl.float32), lo, hi)
            eps = tl.load(EPS + base + cols, mask=m, other=0.0).to(tl.float32)
            h = expm1(0.5 * lv)
            tl.store(Z + base + cols, (mu + (1.0 + h) * eps).to(Z.dtype.element_ty), mask=m)
            acc += tl.where(m, mu * mu + h * (h + 2.0) - lv, 0.0)
        tl.store(KL + row, (0.5 * tl.sum(acc, axis=0)).to(KL.dtype.element_ty))

    @triton.jit
    def bwd(MU, LV, EPS, GZ, GKL, GMU, GLV, GEPS, ncols, NEED_EPS: tl.constexpr,
            lo: tl.constexpr, hi: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        base = row * ncols
        gkl = tl.load(GKL + row).to(tl.float32)
        for start in range(0, ncols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            m = cols < ncols
            mu = tl.load(MU + base + cols, mask=m, other=0.0).to(tl.float32)
            lv0 = tl.load(LV + base + cols, mask=m, other=0.0).to(tl.float32)
            eps = tl.load(EPS + base + cols, mask=m, other=0.0).to(tl.float32)
            gz = tl.load(GZ + base + cols, mask=m, other=0.0).to(tl.float32)
            h = expm1(0.5 * clamp(lv0, lo, hi))
            std = 1.0 + h
            tl.store(GMU + base + cols, (gz + gkl * mu).to(GMU.dtype.element_ty), mask=m)
            g = 0.5 * (gz * eps * std + gkl * h * (h + 2.0))
            g = tl.where(inside(lv0, lo, hi), g, 0.0)
            tl.store(GLV + base + cols, g.to(GLV.dtype.element_ty), mask=m)
            if NEED_EPS:
                tl.store(GEPS + base + cols, (gz * std).to(GEPS.dtype.element_ty), mask=m)

    return fwd, bwd


# ---- layer 2 -----------------------------------------------------------------
_NAMES = ("mu", "logvar", "eps")


def _check(backend, tensors, names=_NAMES):
    if backend == "numba":
        B.require_numba(OP)
        check_tensors(OP, names, tensors, device_type="cpu")
    else:
        B.require_triton(OP, tensors[0].device)
        check_tensors(OP, names, tensors, dtypes=B.TRITON_DTYPES)


def forward(mu, logvar, eps, backend):
    """(z with mu's shape, kl with mu.shape[:-1])."""
    _check(backend, (mu, logvar, eps))
    m2, l2, e2 = as_rows(mu), as_rows(logvar), as_rows(eps)
    n, D = m2.shape
    z = torch.empty_like(m2)
    kl = torch.empty(n, dtype=m2.dtype, device=m2.device)
    lo, hi = B.logvar_range()
    if n:
        if backend == "numba":
            k = _fwd_par if m2.numel() >= PARALLEL_MIN else _fwd_ser
            lo, hi = B.np_scalars(m2, lo, hi)
            k(m2.numpy(), l2.numpy(), e2.numpy(), z.numpy(), kl.numpy(), lo, hi)
        else:
            _triton_kernels()[0][(n,)](m2, l2, e2, z, kl, D, lo=lo, hi=hi, BLOCK=min(1024, B.next_pow2(D)))
    return B.shaped(z, mu.shape), B.shaped(kl, mu.shape[:-1])


def backward(mu, logvar, eps, gz, gkl, need_eps, backend):
    """(g_mu, g_logvar, g_eps or an empty tensor)."""
    m2, l2, e2 = as_rows(mu), as_rows(logvar), as_rows(eps)
    n, D = m2.shape
    gz2 = as_rows(gz.to(m2.dtype)) if gz is not None else torch.zeros_like(m2)
    gkl2 = (gkl.detach().reshape(-1).to(m2.dtype).contiguous() if gkl is not None
            else torch.zeros(n, dtype=m2.dtype, device=m2.device))
    gmu, glv = torch.empty_like(m2), torch.empty_like(m2)
    geps = torch.empty_like(m2) if need_eps else torch.empty((n, 0), dtype=m2.dtype, device=m2.device)
    lo, hi = B.logvar_range()
    if n:
        if backend == "numba":
            k = _bwd_par if m2.numel() >= PARALLEL_MIN else _bwd_ser
            lo, hi = B.np_scalars(m2, lo, hi)
            gepsn = geps.numpy() if need_eps else np.empty((n, 0), dtype=geps.numpy().dtype)
            k(m2.numpy(), l2.numpy(), e2.numpy(), gz2.numpy(), gkl2.numpy(), gmu.numpy(), glv.numpy(),
              gepsn, need_eps, lo, hi)
        else:
            _triton_kernels()[1][(n,)](m2, l2, e2, gz2, gkl2, gmu, glv, geps if need_eps else gmu, D,
                                       NEED_EPS=need_eps, lo=lo, hi=hi, BLOCK=min(1024, B.next_pow2(D)))
    return B.shaped(gmu, mu.shape), B.shaped(glv, mu.shape), (B.shaped(geps, mu.shape) if need_eps else geps)


# ---- layer 3 -----------------------------------------------------------------
@torch.library.custom_op("vaebench_kernels::encoder_head", mutates_args=())
def _op(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    return forward(mu, logvar, eps, backend)


@_op.register_fake
def _(mu, logvar, eps, backend):
    return mu.new_empty(mu.shape), mu.new_empty(mu.shape[:-1])


@torch.library.custom_op("vaebench_kernels::encoder_head_bwd", mutates_args=())
def _bwd_op(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor, gz: torch.Tensor, gkl: torch.Tensor,
            need_eps: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gmu, glv, geps = backward(mu, logvar, eps, gz, gkl, need_eps, backend)
    return gmu, glv, geps


@_bwd_op.register_fake
def _(mu, logvar, eps, gz, gkl, need_eps, backend):
    n = mu.shape[:-1].numel()
    return (mu.new_empty(mu.shape), mu.new_empty(mu.shape),
            mu.new_empty(mu.shape) if need_eps else mu.new_empty((n, 0)))


def _setup(ctx, inputs, output):
    mu, logvar, eps, backend = inputs
    ctx.save_for_backward(mu, logvar, eps)
    ctx.backend = backend


def _backward(ctx, gz, gkl):
    mu, logvar, eps = ctx.saved_tensors
    if gz is None:
        gz = torch.zeros_like(mu)
    if gkl is None:
        gkl = mu.new_zeros(mu.shape[:-1])
    need_eps = ctx.needs_input_grad[2]
    gmu, glv, geps = _bwd_op(mu, logvar, eps, gz, gkl, need_eps, ctx.backend)
    return gmu, glv, (geps if need_eps else None), None


_op.register_autograd(_backward, setup_context=_setup)


class EncoderHead(torch.autograd.Function):
    """Eager fast path: the same kernels without the custom-op dispatch."""

    @staticmethod
    def forward(ctx, mu, logvar, eps, backend):
        z, kl = forward(mu, logvar, eps, backend)
        ctx.save_for_backward(mu, logvar, eps)
        ctx.backend = backend
        return z, kl

    @staticmethod
    def backward(ctx, gz, gkl):
        mu, logvar, eps = ctx.saved_tensors
        need_eps = ctx.needs_input_grad[2]
        gmu, glv, geps = backward(mu, logvar, eps, gz, gkl, need_eps, ctx.backend)
        return gmu, glv, (geps if need_eps else None), None


def encoder_head(mu, logvar, eps, backend="numba"):
    if torch.compiler.is_compiling():
        return _op(mu, logvar, eps, backend)
    return EncoderHead.apply(mu, logvar, eps, backend)
