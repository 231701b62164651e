"""Vectorisable fp32 exp / log1p for Numba kernels, and the fastmath flags we allow.

pip's llvmlite ships without SVML, so ``math.exp`` and ``math.log1p`` inside a
Numba loop stay scalar libm calls and the loop does not vectorise. Here they are
written from range reduction, a short polynomial and one bit-cast, all of which
LLVM turns into AVX2/AVX-512 code.

- ``fexp(x)``:   float32: x = n ln2 + r (Cody-Waite, |r| <= ln2/2), degree-6
  polynomial, scale by 2^n built from the exponent bits; inputs are clamped to
  [-87.3, 88.7] so 2^n stays a normal number (exp(-87.3) ~ 1.2e-38 stands in
  for 0). Max relative error ~2 ulp. float64: ``math.exp``.
- ``fexpm1(x)``: float32: Taylor polynomial for |x| <= ln2/2 (no cancellation
  near 0, where the KL needs it), ``fexp(x) - 1`` beyond. float64: ``math.expm1``.
- ``fclamp(x, lo, hi)`` / ``finside(x, lo, hi)``: the log-variance clamp (NaN passes
  through) and its gradient mask.
- ``flog1p_unit(t)``: log1p for t in [0, 1] (the only range the kernels need:
  t = exp(-|l|)); log1p(t) = 2 atanh(s), s = t / (2 + t) in [0, 1/3], odd
  polynomial in s. No cancellation near t = 0 (s ~ t/2). float64: ``math.log1p``.

NaN handling: neither helper is used on NaN-sensitive paths without an explicit
``x != x`` select in the kernel, and FLAGS leaves out ``nnan``/``ninf`` so that
such selects survive optimisation (``fastmath=True`` would fold them away).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.core import cgutils  # noqa: F401  (keeps llvmlite imported for the intrinsic)
from numba.extending import intrinsic, overload

# fastmath flags for every kernel: everything but nnan/ninf, so isnan / x != x
# and inf arithmetic keep their IEEE meaning (as in stumpy's config.py).
FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}
# the options of the op files' kernels (with FLAGS, numpy's error model: a division by zero
# gives inf or nan, no check) and their fp32 literals (so that fp32 kernels stay in fp32)
OPTS = dict(fastmath=FLAGS, error_model="numpy", nogil=True)
ZERO, HALF, ONE, TWO = np.float32(0), np.float32(0.5), np.float32(1), np.float32(2)

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693145751953125)  # ln2 split for Cody-Waite
_LN2_LO = np.float32(1.428606765330187e-06)
_EXP_LO = np.float32(-87.3)
_EXP_HI = np.float32(88.7)
# Taylor coefficients of exp on |r| <= ln2/2 (degree 6: error < 2e-8 relative)
_E2 = np.float32(1.0 / 2)
_E3 = np.float32(1.0 / 6)
_E4 = np.float32(1.0 / 24)
_E5 = np.float32(1.0 / 120)
_E6 = np.float32(1.0 / 720)
_ONE = np.float32(1.0)
_TWO = np.float32(2.0)
_HALF = np.float32(0.5)
# atanh series 2 s (1 + s^2/3 + s^4/5 + ...), s^2 <= 1/9: 8 terms -> < 1e-9
_A = [np.float32(2.0 / (2 * k + 1)) for k in range(8)]
_A0, _A1, _A2, _A3, _A4, _A5, _A6, _A7 = _A


@intrinsic
def _i32_as_f32(typingctx, i):
    """Reinterpret the bits of an int32 as a float32 (a no-op bit-cast)."""
    if i != types.int32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))

    return types.float32(types.int32), codegen


@numba.njit(inline="always", fastmath=FLAGS)
def fclamp(x, lo, hi):
    x = lo if x < lo else x  # a NaN compares false and passes through
    return hi if x > hi else x


@numba.njit(inline="always", fastmath=FLAGS)
def finside(x, lo, hi):
    return (x >= lo) & (x <= hi)


def fexp(x):  # pragma: no cover - replaced by the overload inside Numba
    return math.exp(x)


def fexpm1(x):  # pragma: no cover - replaced by the overload inside Numba
    return math.expm1(x)


def flog1p_unit(t):  # pragma: no cover - replaced by the overload inside Numba
    return math.log1p(t)


@overload(fexp, fastmath=FLAGS)
def _fexp_ol(x):
    if x == types.float32:

        def impl(x):
            # NaN-free copy for the range reduction (NaN compares false -> lo)
            xc = x if x > _EXP_LO else _EXP_LO
            xc = xc if xc < _EXP_HI else _EXP_HI
            n = np.floor(xc * _LOG2E + _HALF)
            r = xc - n * _LN2_HI
            r = r - n * _LN2_LO
            p = _E6
            p = p * r + _E5
            p = p * r + _E4
            p = p * r + _E3
            p = p * r + _E2
            p = p * r + _ONE
            p = p * r + _ONE
            scale = _i32_as_f32(np.int32((np.int32(n) + np.int32(127)) << np.int32(23)))
            return x if x != x else p * scale  # NaN in, NaN out

        return impl
    if x == types.float64:
        return lambda x: math.exp(x)
    return None


@overload(flog1p_unit, fastmath=FLAGS)
def _flog1p_ol(t):
    if t == types.float32:

        def impl(t):
            s = t / (_TWO + t)
            s2 = s * s
            p = _A7
            p = p * s2 + _A6
            p = p * s2 + _A5
            p = p * s2 + _A4
            p = p * s2 + _A3
            p = p * s2 + _A2
            p = p * s2 + _A1
            p = p * s2 + _A0
            return s * p

        return impl
    if t == types.float64:
        return lambda t: math.log1p(t)
    return None


_Q = [np.float32(1.0 / math.factorial(k)) for k in range(2, 9)]
_Q2, _Q3, _Q4, _Q5, _Q6, _Q7, _Q8 = _Q
_EXPM1_SMALL = np.float32(0.34657359)  # ln2 / 2


@overload(fexpm1, fastmath=FLAGS)
def _fexpm1_ol(x):
    """expm1 without cancellation: Taylor (degree 8) for |x| <= ln2/2, exp(x) - 1 beyond."""
    if x == types.float32:

        def impl(x):
            p = _Q8
            p = p * x + _Q7
            p = p * x + _Q6
            p = p * x + _Q5
            p = p * x + _Q4
            p = p * x + _Q3
            p = p * x + _Q2
            small = x + x * x * p
            big = fexp(x) - _ONE
            r = small if abs(x) <= _EXPM1_SMALL else big
            return x if x != x else r

        return impl
    if x == types.float64:
        return lambda x: math.expm1(x)
    return None
