"""Reparameterised sampling z = mu + exp(lv / 2) eps, lv = clamp(logvar).

Two variants:
- ``reparameterize(mu, logvar, eps)``: eps given (bit-comparable with eager).
  Backward: g_mu = g, g_lv = [lv inside the clamp] g eps std / 2, g_eps = g std.
- ``reparameterize_seeded(mu, logvar, seed)``: eps drawn inside the kernel from a
  counter-based generator keyed by (seed, element index) -- Philox via
  ``tl.randn`` in Triton; a splitmix64 hash + Box-Muller in Numba -- and
  recomputed in backward instead of being stored (one tensor less in memory).
  The streams differ from ``torch.randn`` and between backends: tests check the
  statistics of the samples and that backward matches the forward's eps.
Tolerance against eager (fp32): 1e-6 relative on z, 1e-5 on gradients.
"""

from __future__ import annotations

import functools

import torch

from . import _backend as B
from ._triton_common import triton_kernels
from .constants import LOGVAR_MAX, LOGVAR_MIN
from .errors import KernelInputError
from .fastmath_config import PARALLEL_MIN
from .validate import as_rows

OP = "reparameterize"

# ---- layer 1: numba --------------------------------------------------------
try:
    import math

    import numba
    import numpy as np
    from numba import prange

    from .fastmath import HALF as _HALF
    from .fastmath import OPTS as _OPTS
    from .fastmath import ZERO as _Z
    from .fastmath import fclamp, fexp, finside

    @numba.njit(inline="always", **_OPTS)
    def _fwd_row(mu, lv, eps, z, lo, hi):
        for j in range(mu.shape[0]):
            z[j] = mu[j] + fexp(_HALF * fclamp(lv[j], lo, hi)) * eps[j]

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _fwd_par(mu, lv, eps, z, lo, hi):
        for i in prange(mu.shape[0]):
            _fwd_row(mu[i], lv[i], eps[i], z[i], lo, hi)

    @numba.njit(cache=True, **_OPTS)
    def _fwd_ser(mu, lv, eps, z, lo, hi):
        for i in range(mu.shape[0]):
            _fwd_row(mu[i], lv[i], eps[i], z[i], lo, hi)

    @numba.njit(inline="always", **_OPTS)
    def _bwd_row(lv, eps, g, glv, geps, need_eps, lo, hi):
        for j in range(lv.shape[0]):
            l0 = lv[j]
            std = fexp(_HALF * fclamp(l0, lo, hi))
            gj = g[j]
            v = _HALF * gj * eps[j] * std
            glv[j] = v if finside(l0, lo, hi) else _Z
            if need_eps:
                geps[j] = gj * std

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _bwd_par(lv, eps, g, glv, geps, need_eps, lo, hi):
        for i in prange(lv.shape[0]):
            _bwd_row(lv[i], eps[i], g[i], glv[i], geps[i], need_eps, lo, hi)

    @numba.njit(cache=True, **_OPTS)
    def _bwd_ser(lv, eps, g, glv, geps, need_eps, lo, hi):
        for i in range(lv.shape[0]):
            _bwd_row(lv[i], eps[i], g[i], glv[i], geps[i], need_eps, lo, hi)

    # -- counter-based normal draws: eps_k = BoxMuller(splitmix64(seed, k)) --
    _GOLD = np.uint64(0x9E3779B97F4A7C15)
    _M1 = np.uint64(0xBF58476D1CE4E5B9)
    _M2 = np.uint64(0x94D049BB133111EB)
    _S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
    _S40, _S16, _MASK24 = np.uint64(40), np.uint64(16), np.uint64(0xFFFFFF)
    _INV24 = 1.0 / 16777216.0

    @numba.njit(inline="always", cache=True)
    def _normal(seed, k):
        x = np.uint64(seed) * _GOLD + np.uint64(k) * _M2 + _GOLD
        x = (x ^ (x >> _S30)) * _M1
        x = (x ^ (x >> _S27)) * _M2
        x = x ^ (x >> _S31)
        u1 = (float(x >> _S40) + 1.0) * _INV24  # (0, 1]
        u2 = float((x >> _S16) & _MASK24) * _INV24  # [0, 1)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _seeded_fwd(mu, lv, z, seed, lo, hi):
        n, D = mu.shape
        for i in prange(n):
            for j in range(D):
                e = _normal(seed, i * D + j)
                z[i, j] = mu[i, j] + fexp(_HALF * fclamp(lv[i, j], lo, hi)) * e

    @numba.njit(parallel=True, cache=True, **_OPTS)
    def _seeded_bwd(lv, g, glv, seed, lo, hi):
        n, D = lv.shape
        for i in prange(n):
            for j in range(D):
                l0 = lv[i, j]
                v = _HALF * g[i, j] * _normal(seed, i * D + j) * fexp(_HALF * fclamp(l0, lo, hi))
                glv[i, j] = v if finside(l0, lo, hi) else _Z
except ImportError:  # pragma: no cover
    numba = None


# ---- layer 1: triton -------------------------------------------------------
@triton_kernels
def _triton_kernels(triton, tl):
    from ._triton_common import clamp, inside, load

    @triton.jit
    def fwd(MU, LV, EPS, Z, N, seed, SEEDED: tl.constexpr, lo: tl.constexpr, hi: tl.constexpr, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < N
        lv = clamp(load(LV, offs, m), lo, hi)
        if SEEDED:
            eps = tl.randn(seed, offs)
        else:
            eps = load(EPS, offs, m)
        tl.store(Z + offs, (load(MU, offs, m) + tl.exp(0.5 * lv) * eps).to(Z.dtype.element_ty), mask=m)

    @triton.jit
    def bwd(
        LV,
        EPS,
        G,
        GLV,
        GEPS,
        N,
        seed,
        SEEDED: tl.constexpr,
        NEED_EPS: tl.constexpr,
        lo: tl.constexpr,
        hi: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        m = offs < N
        lv0, g = load(LV, offs, m), load(G, offs, m)
        if SEEDED:
            eps = tl.randn(seed, offs)
        else:
            eps = load(EPS, offs, m)
        std = tl.exp(0.5 * clamp(lv0, lo, hi))
        v = tl.where(inside(lv0, lo, hi), 0.5 * g * eps * std, 0.0)
        tl.store(GLV + offs, v.to(GLV.dtype.element_ty), mask=m)
        if NEED_EPS:
            tl.store(GEPS + offs, (g * std).to(GEPS.dtype.element_ty), mask=m)

    return fwd, bwd


_TBLOCK = 1024


def _launch(which, *args, N, **meta):
    """Run the element-wise Triton kernel ``which`` (0: forward, 1: backward) over N elements."""
    _triton_kernels()[which][((N + _TBLOCK - 1) // _TBLOCK,)](
        *args, N, lo=LOGVAR_MIN, hi=LOGVAR_MAX, BLOCK=_TBLOCK, **meta
    )


# ---- layer 2 -----------------------------------------------------------------
def _seed(seed) -> int:
    if isinstance(seed, torch.Tensor):
        seed = int(seed.item())
    if not isinstance(seed, int) or isinstance(seed, bool) or not (0 <= seed < 2**31):
        raise KernelInputError(f"reparameterize_seeded: argument 'seed' must be an int in [0, 2**31), got {seed!r}")
    return seed


def forward(mu, logvar, eps, backend):
    m2, l2, e2 = B.rows(OP, backend, ("mu", "logvar", "eps"), (mu, logvar, eps))
    z = torch.empty_like(m2)
    if m2.numel():
        if backend == "numba":
            k = _fwd_par if m2.numel() >= PARALLEL_MIN else _fwd_ser
            k(m2.numpy(), l2.numpy(), e2.numpy(), z.numpy(), *B.np_scalars(m2, LOGVAR_MIN, LOGVAR_MAX))
        else:
            _launch(0, m2, l2, e2, z, N=m2.numel(), seed=0, SEEDED=False)
    return B.shaped(z, mu.shape)


def backward(logvar, eps, g, need_eps, backend):
    """(g_logvar, g_eps or an empty tensor); g_mu is g itself."""
    l2, e2 = as_rows(logvar), as_rows(eps)
    g2 = as_rows(g.to(l2.dtype))
    glv = torch.empty_like(l2)
    geps = torch.empty_like(l2) if need_eps else l2.new_empty((l2.shape[0], 0))
    if l2.numel():
        if backend == "numba":
            k = _bwd_par if l2.numel() >= PARALLEL_MIN else _bwd_ser
            k(
                l2.numpy(),
                e2.numpy(),
                g2.numpy(),
                glv.numpy(),
                geps.numpy(),
                need_eps,
                *B.np_scalars(l2, LOGVAR_MIN, LOGVAR_MAX),
            )
        else:
            _launch(
                1, l2, e2, g2, glv, geps if need_eps else glv, N=l2.numel(), seed=0, SEEDED=False, NEED_EPS=need_eps
            )
    return B.shaped(glv, logvar.shape), (B.shaped(geps, logvar.shape) if need_eps else geps)


def seeded_forward(mu, logvar, seed: int, backend):
    m2, l2 = B.rows("reparameterize_seeded", backend, ("mu", "logvar"), (mu, logvar))
    z = torch.empty_like(m2)
    if m2.numel():
        if backend == "numba":
            _seeded_fwd(m2.numpy(), l2.numpy(), z.numpy(), seed, *B.np_scalars(m2, LOGVAR_MIN, LOGVAR_MAX))
        else:
            _launch(0, m2, l2, m2, z, N=m2.numel(), seed=seed, SEEDED=True)
    return B.shaped(z, mu.shape)


def seeded_backward(logvar, g, seed: int, backend):
    l2 = as_rows(logvar)
    g2 = as_rows(g.to(l2.dtype))
    glv = torch.empty_like(l2)
    if l2.numel():
        if backend == "numba":
            _seeded_bwd(l2.numpy(), g2.numpy(), glv.numpy(), seed, *B.np_scalars(l2, LOGVAR_MIN, LOGVAR_MAX))
        else:
            _launch(1, l2, l2, g2, glv, glv, N=l2.numel(), seed=seed, SEEDED=True, NEED_EPS=False)
    return B.shaped(glv, logvar.shape)


# ---- layer 3 -----------------------------------------------------------------
def _bwd_fake(logvar, eps, g, need_eps, backend):
    n = logvar.shape[:-1].numel()
    return logvar.new_empty(logvar.shape), (logvar.new_empty(logvar.shape) if need_eps else logvar.new_empty((n, 0)))


@B.custom_op("reparameterize_bwd", _bwd_fake)
def _bwd_op(
    logvar: torch.Tensor, eps: torch.Tensor, g: torch.Tensor, need_eps: bool, backend: str
) -> tuple[torch.Tensor, torch.Tensor]:
    return backward(logvar, eps, g, need_eps, backend)


def _setup(ctx, inputs, output):
    mu, logvar, eps, backend = inputs
    ctx.save_for_backward(logvar, eps)
    ctx.backend = backend


def _backward(ctx, g, bwd=_bwd_op):
    """``bwd``: the backward op (torch.compile) or layer 2's backward (the eager path)."""
    logvar, eps = ctx.saved_tensors
    need_eps = ctx.needs_input_grad[2]
    glv, geps = bwd(logvar, eps, g, need_eps, ctx.backend)
    return g, glv, (geps if need_eps else None), None


@B.custom_op(
    "reparameterize", lambda mu, logvar, eps, backend: mu.new_empty(mu.shape), backward=_backward, setup=_setup
)
def _op(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor, backend: str) -> torch.Tensor:
    return forward(mu, logvar, eps, backend)


@B.custom_op("reparameterize_seeded_bwd", lambda logvar, g, seed, backend: logvar.new_empty(logvar.shape))
def _seeded_bwd_op(logvar: torch.Tensor, g: torch.Tensor, seed: int, backend: str) -> torch.Tensor:
    return seeded_backward(logvar, g, seed, backend)


def _seeded_setup(ctx, inputs, output):
    mu, logvar, seed, backend = inputs
    ctx.save_for_backward(logvar)
    ctx.seed, ctx.backend = seed, backend


def _seeded_backward(ctx, g, bwd=_seeded_bwd_op):
    """``bwd``: the backward op (torch.compile) or layer 2's backward (the eager path)."""
    (logvar,) = ctx.saved_tensors
    return g, bwd(logvar, g, ctx.seed, ctx.backend), None, None


@B.custom_op(
    "reparameterize_seeded",
    lambda mu, logvar, seed, backend: mu.new_empty(mu.shape),
    backward=_seeded_backward,
    setup=_seeded_setup,
)
def _seeded_op(mu: torch.Tensor, logvar: torch.Tensor, seed: int, backend: str) -> torch.Tensor:
    return seeded_forward(mu, logvar, seed, backend)


Reparameterize = B.eager_function("Reparameterize", OP, forward, _setup, functools.partial(_backward, bwd=backward))
ReparameterizeSeeded = B.eager_function(
    "ReparameterizeSeeded",
    "reparameterize_seeded",
    seeded_forward,
    _seeded_setup,
    functools.partial(_seeded_backward, bwd=seeded_backward),
)


def reparameterize(mu, logvar, eps, backend="numba"):
    if torch.compiler.is_compiling():
        return _op(mu, logvar, eps, backend)
    return Reparameterize.apply(mu, logvar, eps, backend)


def reparameterize_seeded(mu, logvar, seed, backend="numba"):
    seed = _seed(seed)
    if torch.compiler.is_compiling():
        return _seeded_op(mu, logvar, seed, backend)
    return ReparameterizeSeeded.apply(mu, logvar, seed, backend)
