"""Triton helpers from core ``tl`` ops only (no libdevice), so they also run under
TRITON_INTERPRET=1. Built on first use: ``triton.jit`` reads TRITON_INTERPRET when
it decorates, so nothing here is decorated at import time (nor is triton imported).

A kernel file defines its kernels in a function decorated with ``@triton_kernels``,
which builds them on first use. That function imports the helpers it uses from here
(``from ._triton_common import load, row_block``: the names are this module's
attributes, built by ``helpers()`` on first access) and gets ``triton`` and ``tl`` as
arguments. The compiler reads those closure variables of a kernel; the interpreter does
not (it re-executes the kernel source with the module's globals), so the decorator also
copies them into the kernel file's globals.

Which of the two a kernel is, a compiled ``triton.runtime.jit.JITFunction`` or the
interpreter's ``InterpretedFunction``, says ``is_compiled``; ``compiled_kernels`` builds a
file's kernels anew as compiled ones whatever TRITON_INTERPRET says, for ahead-of-time
compilation (``triton.compile`` for a named GPU target needs no GPU); ``kernel_files``
lists every ``@triton_kernels`` function of the package."""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import pkgutil
from types import SimpleNamespace

from ._backend import triton_interpreted

# every @triton_kernels function of the package, by "<module>.<name>" (kernel_files())
_FILES: dict = {}


def helpers() -> SimpleNamespace:
    """The helpers, built for the mode TRITON_INTERPRET says now (once per mode)."""
    return _helpers(triton_interpreted())


@functools.cache
def _helpers(interpreted: bool) -> SimpleNamespace:
    import triton
    import triton.language as tl

    globals()["tl"] = tl

    @triton.jit
    def clamp(x, lo: tl.constexpr, hi: tl.constexpr):
        # NaN-preserving: a NaN compares false and passes through
        x = tl.where(x < lo, lo, x)
        return tl.where(x > hi, hi, x)

    @triton.jit
    def inside(x, lo: tl.constexpr, hi: tl.constexpr):
        return (x >= lo) & (x <= hi)

    @triton.jit
    def row_block(row, start, ncols, BLOCK: tl.constexpr):
        # (mask, offsets) of the columns [start, start + BLOCK) of a row of a contiguous (rows, ncols)
        cols = start + tl.arange(0, BLOCK)
        return cols < ncols, row * ncols + cols

    @triton.jit
    def load(P, offs, m):
        # the masked load of a block, in fp32 (the kernels compute in fp32 for every input dtype)
        return tl.load(P + offs, mask=m, other=0.0).to(tl.float32)

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

    return SimpleNamespace(
        triton=triton,
        tl=tl,
        clamp=clamp,
        inside=inside,
        row_block=row_block,
        load=load,
        expm1=expm1,
        log1p_unit=log1p_unit,
    )


_HELPERS = ("clamp", "inside", "row_block", "load", "expm1", "log1p_unit")


def __getattr__(name: str):
    # the helpers as module attributes, so that a kernel file imports them by name
    if name in _HELPERS:
        return getattr(helpers(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def triton_kernels(build):
    """``build(triton, tl)`` returns a file's kernel or tuple of kernels; the decorated function
    returns them, built once, with each kernel's closure variables (``tl``, the helpers it
    calls) also in the file's globals, where the interpreter looks them up."""

    @functools.cache
    def get():
        h = helpers()
        kernels = build(h.triton, h.tl)
        for k in _as_tuple(kernels):
            fn = k.fn  # the Python function under a JITFunction or an InterpretedFunction
            build.__globals__.update(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
        return kernels

    get.build = build
    _FILES[f"{build.__module__}.{build.__name__}"] = get
    return get


def _as_tuple(kernels) -> tuple:
    return kernels if isinstance(kernels, tuple) else (kernels,)


def is_compiled(kernel) -> bool:
    """A compiled Triton kernel (``triton.runtime.jit.JITFunction``), not the interpreter's
    ``InterpretedFunction`` (what ``triton.jit`` makes under TRITON_INTERPRET=1)."""
    from triton.runtime.jit import JITFunction

    return isinstance(kernel, JITFunction)


def built_kernels(kernels) -> tuple:
    """The kernels a ``@triton_kernels`` function has built in this process (as a tuple), or ()."""
    return _as_tuple(kernels()) if kernels.cache_info().currsize else ()


@contextlib.contextmanager
def _interpreter_off():
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old


def compiled_kernels(kernels):
    """A ``@triton_kernels`` function's kernels built anew as compiled JITFunctions, whatever
    TRITON_INTERPRET says: for ``triton.compile`` for a named target (ahead of time, no GPU).
    Neither cached nor copied into the file's globals (the interpreter's kernels are unchanged).
    Triton decorates its own library (``tl.sum``, ``tl.randn``) when it is imported: where that was
    under TRITON_INTERPRET=1 those are the interpreter's, and these kernels do not compile in that
    process (compile them in one started with TRITON_INTERPRET=0, as tests/ops/_aot.py does)."""
    with _interpreter_off():
        h = helpers()
        return kernels.build(h.triton, h.tl)


def kernel_files() -> dict:
    """Every ``@triton_kernels`` function of the package by "<module>.<name>" (imports its modules)."""
    for m in pkgutil.iter_modules([os.path.dirname(__file__)]):
        importlib.import_module(f"{__package__}.{m.name}")
    return dict(_FILES)
