"""Backend plumbing shared by the op files: lazy imports, device rules, the checks of
layer 2, numpy scalars, and the refusal of double backward."""

from __future__ import annotations

import functools
import os
import types

import torch

from .constants import LOGVAR_MAX, LOGVAR_MIN
from .errors import KernelInputError
from .fastmath_config import PARALLEL_MIN
from .validate import NUMBA_DTYPES, TRITON_DTYPES, as_rows, check_tensors


def have_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def triton_interpreted() -> bool:
    """TRITON_INTERPRET=1: Triton kernels run on CPU tensors, in the interpreter (tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def require_numba(op: str):
    if not have_numba():
        raise KernelInputError(f"{op}: backend 'numba' needs numba (pip install 'vaebench[kernels]')")


def require_triton(op: str, device: torch.device):
    try:
        import triton  # noqa: F401
    except ImportError:
        raise KernelInputError(f"{op}: backend 'triton' needs triton (pip install 'vaebench[kernels]')") from None
    if device.type == "cpu" and not triton_interpreted():
        raise KernelInputError(
            f"{op}: backend 'triton' got tensors on device {device}; Triton runs on a GPU "
            "(or on the CPU only under TRITON_INTERPRET=1, the interpreter used in tests)"
        )
    if device.type not in ("cpu", "cuda"):
        raise KernelInputError(f"{op}: backend 'triton' does not run on device {device}")


def rows(op: str, backend: str, names: tuple[str, ...], tensors: tuple) -> list[torch.Tensor]:
    """Check the tensors for ``backend`` and return them as contiguous (rows, D) views or copies."""
    if backend == "numba":
        require_numba(op)
        check_tensors(op, names, tensors, dtypes=NUMBA_DTYPES, device_type="cpu")
    else:
        require_triton(op, tensors[0].device)
        check_tensors(op, names, tensors, dtypes=TRITON_DTYPES)
    return [as_rows(t) for t in tensors]


def refuse_double_backward(ctx, op: str):
    """The kernels' backward is not itself differentiable: with create_graph=True (grad mode on
    inside backward) a second derivative would silently miss this op's terms, so refuse it."""
    if torch.is_grad_enabled() and any(ctx.needs_input_grad):
        raise NotImplementedError(
            f"{op}: double backward (create_graph=True) is not supported on backend "
            f"{ctx.backend!r}; use backend='eager' or 'compile' for higher derivatives"
        )


def next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def row_block(ncols: int) -> int:
    """The column block of the row-wise Triton kernels."""
    return min(1024, next_pow2(ncols))


@functools.cache
def _np_scalars(dtype, values):
    import numpy as np

    typ = np.float32 if dtype == torch.float32 else np.float64
    return tuple(typ(v) for v in values)


def np_scalars(t: torch.Tensor, *values):
    """``values`` as numpy scalars of t's dtype (so numba kernels stay in fp32)."""
    return _np_scalars(t.dtype, values)


def launch_rows(backend: str, numba_kernels, triton_kernels, tensors: tuple, ncols: int) -> None:
    """Run an op's row kernel over the rows of ``tensors`` (inputs then outputs, rows first):
    numba's (parallel, serial) pair from ``numba_kernels()``, the parallel one from
    PARALLEL_MIN elements on, or the first kernel of ``triton_kernels()`` on one program per
    row; the log-variance clamp's bounds are the kernels' last arguments."""
    n = tensors[0].shape[0]
    if not n:
        return
    if backend == "numba":
        par, ser = numba_kernels()
        kernel = par if tensors[0].numel() >= PARALLEL_MIN else ser
        kernel(*(t.numpy() for t in tensors), *np_scalars(tensors[0], LOGVAR_MIN, LOGVAR_MAX))
    else:
        triton_kernels()[0][(n,)](*tensors, ncols, lo=LOGVAR_MIN, hi=LOGVAR_MAX, BLOCK=row_block(ncols))


def shaped(t: torch.Tensor, shape) -> torch.Tensor:
    return t if t.shape == shape else t.view(shape)


def custom_op(name: str, fake, *, backward=None, setup=None):
    """Decorator: the function as the torch custom op ``vaebench_kernels::<name>`` (mutating no
    input), ``fake`` its fake (shape-only) implementation and, given, ``backward`` its autograd
    formula with ``setup`` as its setup_context."""

    def register(fn):
        op = torch.library.custom_op(f"vaebench_kernels::{name}", mutates_args=())(fn)
        op.register_fake(fake)
        if backward is not None:
            op.register_autograd(backward, setup_context=setup)
        return op

    return register


def eager_function(name: str, op: str, forward, setup, backward) -> type:
    """The eager fast path of a custom op: a torch.autograd.Function ``name`` running ``forward``
    (layer 2) with the op's ``setup`` (setup_context) and ``backward`` formula, without the
    custom-op dispatch. Its backward refuses double backward (refuse_double_backward)."""

    def fwd(ctx, *inputs):
        output = forward(*inputs)
        setup(ctx, inputs, output)
        return output

    def bwd(ctx, *grads):
        refuse_double_backward(ctx, op)
        return backward(ctx, *grads)

    body = {
        "forward": staticmethod(fwd),
        "backward": staticmethod(bwd),
        "__module__": forward.__module__,
        "__doc__": "Eager fast path: the same kernels without the custom-op dispatch.",
    }
    return types.new_class(name, (torch.autograd.Function,), exec_body=lambda ns: ns.update(body))
