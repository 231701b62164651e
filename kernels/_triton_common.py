"""Triton helpers from core ``tl`` ops only (no libdevice), so they also run under
TRITON_INTERPRET=1. Built on first use: ``triton.jit`` reads TRITON_INTERPRET when
it decorates, so nothing here is decorated at import time."""

from __future__ import annotations

import functools
from types import SimpleNamespace


@functools.lru_cache(maxsize=None)
def helpers() -> SimpleNamespace:
    import triton
    import triton.language as tl
    globals()["tl"] = tl  # a module global: the interpreter re-executes the kernel source

    @triton.jit
    def clamp(x, lo: tl.constexpr, hi: tl.constexpr):
        # NaN-preserving: a NaN compares false and passes through
        x = tl.where(x < lo, lo, x)
        return tl.where(x > hi, hi, x)

    @triton.jit
    def inside(x, lo: tl.constexpr, hi: tl.constexpr):
        return (x >= lo) & (x <= hi)

    @triton.jit
    def expm1(x):
        # Taylor to degree 8 for |x| <= ln2/2 (no cancellation near 0), exp(x) - 1 beyond
        p = 1.0 / 40320.0
        p = p * x + 1.0 / 5040.0
        p = p * x + 1.0 / 720.0
        p = p * x + 1.0 / 120.0
        p = p * x + 1.0 / 24.0
        p = p * x + 1.0 / 6.0
        p = p * x + 0.5
        small = x + x * x * p
        return tl.where(tl.abs(x) <= 0.34657359, small, tl.exp(x) - 1.0)

    @triton.jit
    def log1p_unit(t):
        # log1p(t) for t in [0, 1]: 2 atanh(s), s = t / (2 + t) in [0, 1/3]
        s = t / (2.0 + t)
        s2 = s * s
        p = 2.0 / 15.0
        p = p * s2 + 2.0 / 13.0
        p = p * s2 + 2.0 / 11.0
        p = p * s2 + 2.0 / 9.0
        p = p * s2 + 2.0 / 7.0
        p = p * s2 + 2.0 / 5.0
        p = p * s2 + 2.0 / 3.0
        p = p * s2 + 2.0
        return s * p

    return SimpleNamespace(triton=triton, tl=tl, clamp=clamp, inside=inside, expm1=expm1, log1p_unit=log1p_unit)
