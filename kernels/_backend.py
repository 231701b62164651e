"""Backend plumbing shared by the op files: lazy imports, device rules, numpy views."""

from __future__ import annotations

import functools
import os

import torch

from .validate import InputError

NUMBA_OPTS = None  # filled in by numba_opts()


def have_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def require_numba(op: str):
    if not have_numba():
        raise InputError(f"{op}: backend 'numba' needs numba (pip install 'vaebench[kernels]')")


@functools.lru_cache(maxsize=None)
def triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def require_triton(op: str, device: torch.device):
    try:
        import triton  # noqa: F401
    except ImportError:
        raise InputError(f"{op}: backend 'triton' needs triton (pip install 'vaebench[kernels]')") from None
    if device.type == "cpu" and not (os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")):
        raise InputError(f"{op}: backend 'triton' got tensors on device {device}; Triton runs on a GPU "
                         "(or on the CPU only under TRITON_INTERPRET=1, the interpreter used in tests)")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"{op}: backend 'triton' does not run on device {device}")


def np_view(t: torch.Tensor):
    """The numpy view of a CPU tensor (no copy)."""
    return t.detach().numpy()


def next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.lru_cache(maxsize=None)
def logvar_range() -> tuple[float, float]:
    """The documented clamp of the log-variance (vaebench.ops.LOGVAR_MIN/MAX)."""
    from vaebench.ops import LOGVAR_MAX, LOGVAR_MIN
    return float(LOGVAR_MIN), float(LOGVAR_MAX)


@functools.lru_cache(maxsize=None)
def _np_scalars(dtype, values):
    import numpy as np
    typ = np.float32 if dtype == torch.float32 else np.float64
    return tuple(typ(v) for v in values)


def np_scalars(t: torch.Tensor, *values):
    """``values`` as numpy scalars of t's dtype (so numba kernels stay in fp32)."""
    return _np_scalars(t.dtype, values)


def shaped(t: torch.Tensor, shape) -> torch.Tensor:
    return t if t.shape == shape else t.view(shape)
