"""Gaussian log-likelihood per row, with its gradients in the forward pass (a decoder tail).

    lv = clamp(logvar),  r = x - mean,  q = r^2 e^-lv
    ll_i = -1/2 sum_j (log 2 pi + lv + q)
    d/d mean = r e^-lv,   d/d logvar = [lv inside the clamp] (q - 1) / 2,   d/d x = -r e^-lv

One exp per element. The forward writes d/d mean and d/d logvar when they are
needed; the backward scales them by the upstream gradient (``decoder_tail``).

Layers: (1) numba / triton kernels; (2) ``forward``; (3) the
``vaebench_kernels::gaussian_log_likelihood`` custom op (for torch.compile) and
``GaussianLogLikelihood`` autograd Function (the eager fast path), whose backwards both
compute the gradients in ``_gradients``.
Tolerance against eager (fp32): 1e-5 relative on ll and gradients.
"""

from __future__ import annotations

import math

import torch

from . import _backend as B
from ._triton_common import triton_kernels
from .constants import LOGVAR_MAX, LOGVAR_MIN
from .decoder_tail import tail_grad, take_buffers
from .fastmath_config import PARALLEL_MIN

OP = "gaussian_log_likelihood"
_LOG_2PI = math.log(2.0 * math.pi)

# ---- layer 1: numba --------------------------------------------------------
try:
    import numba
    from numba import prange

    from .fastmath import HALF as _HALF
    from .fastmath import ONE as _ONE
    from .fastmath import OPTS as _OPTS
    from .fastmath import ZERO as _Z
    from .fastmath import fclamp, fexp, finside

    @numba.njit(inline="always", **_OPTS)
    def _row(m, lv, x, dm, dlv, need_grad, lo, hi, log2pi):
        acc = _Z
        if need_grad:
            for j in range(m.shape[0]):
                l0 = lv[j]
                l = fclamp(l0, lo, hi)
                ie = fexp(-l)
                r = x[j] - m[j]
                q = r * r * ie
                acc += l + q
                dm[j] = r * ie
                v = _HALF * (q - _ONE)
                dlv[j] = v if finside(l0, lo, hi) else _Z
        else:
            for j in range(m.shape[0]):
                l = fclamp(lv[j], lo, hi)
                r = x[j] - m[j]
                acc += l + r * r * fexp(-l)
        return -_HALF * (acc + m.shape[0] * log2pi)

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _fwd_par(m, lv, x, ll, dm, dlv, need_grad, lo, hi, log2pi):
        for i in prange(m.shape[0]):
            ll[i] = _row(m[i], lv[i], x[i], dm[i], dlv[i], need_grad, lo, hi, log2pi)

    @numba.njit(cache=True, **_OPTS)
    def _fwd_ser(m, lv, x, ll, dm, dlv, need_grad, lo, hi, log2pi):
        for i in range(m.shape[0]):
            ll[i] = _row(m[i], lv[i], x[i], dm[i], dlv[i], need_grad, lo, hi, log2pi)
except ImportError:  # pragma: no cover
    numba = None


# ---- layer 1: triton -------------------------------------------------------
@triton_kernels
def _triton_kernel(triton, tl):
    from ._triton_common import clamp, inside, load, row_block

    @triton.jit
    def fwd(
        M,
        LV,
        X,
        LL,
        DM,
        DLV,
        ncols,
        log2pi,
        NEED_GRAD: tl.constexpr,
        lo: tl.constexpr,
        hi: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        row = tl.program_id(0).to(tl.int64)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, ncols, BLOCK):
            msk, offs = row_block(row, start, ncols, BLOCK)
            lv0 = load(LV, offs, msk)
            lv = clamp(lv0, lo, hi)
            ie = tl.exp(-lv)
            r = load(X, offs, msk) - load(M, offs, msk)
            q = r * r * ie
            acc += tl.where(msk, lv + q, 0.0)
            if NEED_GRAD:
                tl.store(DM + offs, (r * ie).to(DM.dtype.element_ty), mask=msk)
                v = tl.where(inside(lv0, lo, hi), 0.5 * (q - 1.0), 0.0)
                tl.store(DLV + offs, v.to(DLV.dtype.element_ty), mask=msk)
        tl.store(LL + row, (-0.5 * (tl.sum(acc, axis=0) + ncols * log2pi)).to(LL.dtype.element_ty))

    return fwd


# ---- layer 2 -----------------------------------------------------------------
def forward(mean, logvar, x, need_grad: bool, backend: str):
    """(ll (rows,), d/d mean (rows, D), d/d logvar (rows, D)); the last two empty without need_grad."""
    m2, l2, x2 = B.rows(OP, backend, ("mean", "logvar", "x"), (mean, logvar, x))
    n, D = m2.shape
    ll = m2.new_empty(n)
    shape = (n, D) if need_grad else (n, 0)
    dm, dlv = m2.new_empty(shape), m2.new_empty(shape)
    if n:
        if backend == "numba":
            k = _fwd_par if m2.numel() >= PARALLEL_MIN else _fwd_ser
            k(
                m2.numpy(),
                l2.numpy(),
                x2.numpy(),
                ll.numpy(),
                dm.numpy(),
                dlv.numpy(),
                need_grad,
                *B.np_scalars(m2, LOGVAR_MIN, LOGVAR_MAX, _LOG_2PI),
            )
        else:
            _triton_kernel()[(n,)](
                m2,
                l2,
                x2,
                ll,
                dm if need_grad else m2,
                dlv if need_grad else m2,
                D,
                _LOG_2PI,
                NEED_GRAD=need_grad,
                lo=LOGVAR_MIN,
                hi=LOGVAR_MAX,
                BLOCK=B.row_block(D),
            )
    return ll, dm, dlv


# ---- layer 3 -----------------------------------------------------------------
def _gradients(needs, dm, dlv, g, shape, *, inplace, backend=None):
    """(g_mean, g_logvar, g_x) for the inputs ``needs`` (needs_input_grad) marks, from the
    forward's buffers dm = d ll / d mean and dlv = d ll / d logvar: g_mean = g dm,
    g_logvar = g dlv, g_x = -g_mean (``tail_grad``: ``inplace`` on the buffers, with ``backend``'s
    kernel, on the eager path). Both backwards end here."""
    need_m, need_lv, need_x = needs[:3]
    gm = tail_grad(dm, g, shape, inplace=inplace, backend=backend) if (need_m or need_x) else None
    glv = tail_grad(dlv, g, shape, inplace=inplace, backend=backend) if need_lv else None
    return (gm if need_m else None), glv, (-gm if need_x else None)


@torch.library.custom_op("vaebench_kernels::gaussian_log_likelihood", mutates_args=())
def _op(
    mean: torch.Tensor, logvar: torch.Tensor, x: torch.Tensor, need_grad: bool, backend: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ll, dm, dlv = forward(mean, logvar, x, need_grad, backend)
    return ll.view(mean.shape[:-1]), dm, dlv


@_op.register_fake
def _(mean, logvar, x, need_grad, backend):
    n, D = mean.shape[:-1].numel(), mean.shape[-1]
    shape = (n, D) if need_grad else (n, 0)
    return mean.new_empty(mean.shape[:-1]), mean.new_empty(shape), mean.new_empty(shape)


def _setup(ctx, inputs, output):
    mean, logvar, x, need_grad, backend = inputs
    ctx.save_for_backward(output[1], output[2])
    ctx.shape = mean.shape


def _backward(ctx, g, _gdm, _gdlv):
    """The custom op's backward: the buffers are its saved outputs, scaled out of place."""
    dm, dlv = ctx.saved_tensors
    return (*_gradients(ctx.needs_input_grad, dm, dlv, g, ctx.shape, inplace=False), None, None)


_op.register_autograd(_backward, setup_context=_setup)


class GaussianLogLikelihood(torch.autograd.Function):
    """Eager fast path: the same kernels; the backward scales the saved buffers in place."""

    @staticmethod
    def forward(ctx, mean, logvar, x, backend):
        need = any(ctx.needs_input_grad[:3])
        ll, dm, dlv = forward(mean, logvar, x, need, backend)
        ctx.save_for_backward(mean, logvar, x)
        ctx.bufs = (dm, dlv) if need else None
        ctx.shape, ctx.backend = mean.shape, backend
        return ll.view(mean.shape[:-1])

    @staticmethod
    def backward(ctx, g):
        B.refuse_double_backward(ctx, OP)
        mean, logvar, x = ctx.saved_tensors
        dm, dlv = take_buffers(ctx, lambda: forward(mean.detach(), logvar.detach(), x.detach(), True, ctx.backend)[1:])
        return (*_gradients(ctx.needs_input_grad, dm, dlv, g, ctx.shape, inplace=True, backend=ctx.backend), None)


def gaussian_log_likelihood(mean, logvar, x, backend="numba"):
    if torch.compiler.is_compiling():
        need = mean.requires_grad or logvar.requires_grad or x.requires_grad
        return _op(mean, logvar, x, need, backend)[0]
    return GaussianLogLikelihood.apply(mean, logvar, x, backend)
