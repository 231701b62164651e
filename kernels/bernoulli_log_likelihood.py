"""Bernoulli log-likelihood from logits, per row, with its gradient in the forward pass.

    ll_i = -sum_j [(1 - x_ij) l_ij + max(-l_ij, 0) + log1p(exp(-|l_ij|))]
    d ll_i / d l_ij = x_ij - sigmoid(l_ij),      d ll_i / d x_ij = l_ij

That is sum_j l x - max(l, 0) - log1p(exp(-|l|)), in the order of PyTorch's
binary_cross_entropy_with_logits (the eager reference), so that infinite logits or
targets give eager's values: l = +inf with x = 0 gives -inf, not inf - inf = NaN.

One exp per element (t = exp(-|l|)) serves both log1p(t) and
sigmoid(l) = (l >= 0 ? 1 : t) / (1 + t). The forward kernel reads logits and
targets once and writes ll and, when the logits need a gradient, d ll / d l
(see ``decoder_tail``); the backward scales that buffer by the upstream gradient.

Layers: (1) numba / triton kernels; (2) ``forward`` checks, makes contiguous,
picks a kernel; (3) the ``vaebench_kernels::bernoulli_log_likelihood`` custom op (for
torch.compile) and ``BernoulliLogLikelihood`` autograd Function (the eager fast path),
whose backwards both compute the gradients in ``_gradients``.
Tolerance against eager (fp32): 1e-5 relative on ll and gradients.
"""

from __future__ import annotations

import torch

from . import _backend as B
from ._triton_common import triton_kernels
from .decoder_tail import tail_grad, take_buffers
from .fastmath_config import PARALLEL_MIN

OP = "bernoulli_log_likelihood"

# ---- layer 1: numba --------------------------------------------------------
try:
    import numba
    import numpy as np
    from numba import prange

    from .fastmath import FLAGS, fexp, flog1p_unit

    _OPTS = dict(cache=True, fastmath=FLAGS, error_model="numpy", nogil=True)
    _Z = np.float32(0.0)
    _ONE = np.float32(1.0)

    @numba.njit(inline="always", **{k: v for k, v in _OPTS.items() if k != "cache"})
    def _row(l, x, d, need_grad):
        acc = _Z
        if need_grad:
            for j in range(l.shape[0]):
                lj = l[j]
                xj = x[j]
                t = fexp(-abs(lj))
                acc += (_ONE - xj) * lj + (-lj if lj < _Z else _Z) + flog1p_unit(t)
                num = _ONE if lj >= _Z else t
                dj = xj - num / (_ONE + t)
                d[j] = lj if lj != lj else dj  # NaN logit -> NaN gradient
        else:
            for j in range(l.shape[0]):
                lj = l[j]
                acc += (_ONE - x[j]) * lj + (-lj if lj < _Z else _Z) + flog1p_unit(fexp(-abs(lj)))
        return -acc

    @numba.njit(parallel=True, **_OPTS)
    def _fwd_par(l, x, ll, d, need_grad):
        for i in prange(l.shape[0]):
            ll[i] = _row(l[i], x[i], d[i], need_grad)

    @numba.njit(**_OPTS)
    def _fwd_ser(l, x, ll, d, need_grad):
        for i in range(l.shape[0]):
            ll[i] = _row(l[i], x[i], d[i], need_grad)
except ImportError:  # pragma: no cover
    numba = None


# ---- layer 1: triton (built on first use, so TRITON_INTERPRET is read then) --
@triton_kernels
def _triton_kernel(triton, tl):
    from ._triton_common import load, log1p_unit, row_block

    @triton.jit
    def _bern_fwd(L, X, LL, D, ncols, NEED_GRAD: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, ncols, BLOCK):
            m, offs = row_block(row, start, ncols, BLOCK)
            lv, xv = load(L, offs, m), load(X, offs, m)
            t = tl.exp(-tl.abs(lv))
            acc += tl.where(m, (1.0 - xv) * lv + tl.where(lv < 0.0, -lv, 0.0) + log1p_unit(t), 0.0)
            if NEED_GRAD:
                dv = xv - tl.where(lv >= 0.0, 1.0, t) / (1.0 + t)
                tl.store(D + offs, tl.where(lv != lv, lv, dv).to(D.dtype.element_ty), mask=m)
        tl.store(LL + row, (-tl.sum(acc, axis=0)).to(LL.dtype.element_ty))

    return _bern_fwd


# ---- layer 2 -----------------------------------------------------------------
def forward(logits: torch.Tensor, x: torch.Tensor, need_grad: bool, backend: str):
    """(ll (rows,), d ll/d logits (rows, D) or an empty tensor) for 2-D contiguous rows."""
    l2, x2 = B.rows(OP, backend, ("logits", "x"), (logits, x))
    n, D = l2.shape
    ll = l2.new_empty(n)
    d = l2.new_empty((n, D) if need_grad else (n, 0))
    if n:
        if backend == "numba":
            kern = _fwd_par if l2.numel() >= PARALLEL_MIN else _fwd_ser
            kern(l2.numpy(), x2.numpy(), ll.numpy(), d.numpy(), need_grad)
        else:
            _triton_kernel()[(n,)](l2, x2, ll, d if need_grad else l2, D, NEED_GRAD=need_grad, BLOCK=B.row_block(D))
    return ll, d


# ---- layer 3 -----------------------------------------------------------------
def _gradients(needs, logits, d, g_ll, shape, *, inplace, backend=None):
    """(g_logits, g_x) for the inputs ``needs`` (needs_input_grad) marks, from the forward's
    buffer d = d ll / d logits: g_logits = g_ll d (``tail_grad``: ``inplace`` on d, with
    ``backend``'s kernel, on the eager path), g_x = g_ll logits. Both backwards end here."""
    g_logits = g_x = None
    if needs[1]:
        g_x = g_ll.unsqueeze(-1) * logits
    if needs[0]:
        g_logits = tail_grad(d, g_ll, shape, inplace=inplace, backend=backend)
    return g_logits, g_x


@torch.library.custom_op("vaebench_kernels::bernoulli_log_likelihood", mutates_args=())
def _op(logits: torch.Tensor, x: torch.Tensor, need_grad: bool, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
    ll, d = forward(logits, x, need_grad, backend)
    return ll.view(logits.shape[:-1]), d


@_op.register_fake
def _(logits, x, need_grad, backend):
    n, D = logits.shape[:-1].numel(), logits.shape[-1]
    return (logits.new_empty(logits.shape[:-1]), logits.new_empty((n, D) if need_grad else (n, 0)))


def _setup(ctx, inputs, output):
    logits, x, need_grad, backend = inputs
    ctx.save_for_backward(logits, x, output[1])
    ctx.shape = logits.shape


def _backward(ctx, g_ll, g_d):
    """The custom op's backward: d is its saved output, scaled out of place."""
    logits, x, d = ctx.saved_tensors
    return (*_gradients(ctx.needs_input_grad, logits, d, g_ll, ctx.shape, inplace=False), None, None)


_op.register_autograd(_backward, setup_context=_setup)


class BernoulliLogLikelihood(torch.autograd.Function):
    """Eager fast path: same kernels, no custom-op dispatch (~40 us less per call); the backward
    scales the buffer d in place."""

    @staticmethod
    def forward(ctx, logits, x, backend):
        need = ctx.needs_input_grad[0]
        ll, d = forward(logits, x, need, backend)
        ctx.save_for_backward(logits, x)
        ctx.bufs = (d,) if need else None
        ctx.shape = logits.shape
        ctx.backend = backend
        return ll.view(logits.shape[:-1])

    @staticmethod
    def backward(ctx, g_ll):
        B.refuse_double_backward(ctx, OP)
        logits, x = ctx.saved_tensors
        d = None
        if ctx.needs_input_grad[0]:
            (d,) = take_buffers(ctx, lambda: forward(logits.detach(), x.detach(), True, ctx.backend)[1:])
        return (*_gradients(ctx.needs_input_grad, logits, d, g_ll, ctx.shape, inplace=True, backend=ctx.backend), None)


def bernoulli_log_likelihood(logits, x, backend="numba"):
    if torch.compiler.is_compiling():
        return _op(logits, x, logits.requires_grad, backend)[0]
    return BernoulliLogLikelihood.apply(logits, x, backend)
