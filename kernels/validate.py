"""Input checks shared by every kernel (the middle layer of each op file) and by ``vaebench.ops``.

Cheap checks (shape, dtype, device) always run before a kernel touches memory; the
value checks (Bernoulli targets in [0, 1], finite base draws eps) cost a pass over the data, and
``vaebench.ops`` runs them only when validation is on. Errors name the argument and
are :class:`KernelInputError` (or the ``error`` type given).
"""

from __future__ import annotations

import torch

from .errors import KernelInputError

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
NUMBA_DTYPES = (torch.float32, torch.float64)
TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_tensors(
    op: str,
    names: tuple[str, ...],
    tensors: tuple,
    *,
    dtypes=FLOAT_DTYPES,
    device_type=None,
    error: type[Exception] = KernelInputError,
):
    """All tensors: same shape (at least 1-D), same floating dtype from ``dtypes``, same device."""
    first = tensors[0]
    if _agree(tensors, dtypes, device_type):  # the fast path (~1.5 us for three tensors)
        return
    for name, t in zip(names, tensors):
        if not isinstance(t, torch.Tensor):
            raise error(f"{op}: argument {name!r} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 1:
            raise error(f"{op}: argument {name!r} must have at least 1 dimension, got a scalar")
        if t.dtype not in dtypes:
            allowed = ", ".join(_dtype_name(d) for d in dtypes)
            raise error(f"{op}: argument {name!r} has dtype {_dtype_name(t.dtype)}; this backend takes {allowed}")
        if device_type is not None and t.device.type != device_type:
            raise error(f"{op}: argument {name!r} is on device {t.device}; this backend needs {device_type}")
    for name, t in zip(names[1:], tensors[1:]):
        if t.shape != first.shape:
            raise error(
                f"{op}: argument {name!r} has shape {tuple(t.shape)}, "
                f"expected {tuple(first.shape)} (the shape of {names[0]!r})"
            )
        if t.dtype != first.dtype:
            raise error(
                f"{op}: argument {name!r} has dtype {_dtype_name(t.dtype)}, "
                f"expected {_dtype_name(first.dtype)} (the dtype of {names[0]!r})"
            )
        if t.device != first.device:
            raise error(
                f"{op}: argument {name!r} is on {t.device}, expected {first.device} (the device of {names[0]!r})"
            )


def _agree(tensors, dtypes, device_type) -> bool:
    try:
        first = tensors[0]
        shape, dtype, device = first.shape, first.dtype, first.device
        if not shape or dtype not in dtypes or (device_type is not None and device.type != device_type):
            return False
        for t in tensors[1:]:
            if t.shape != shape or t.dtype != dtype or t.device != device:
                return False
    except AttributeError:  # not a tensor: the slow path names it
        return False
    return True


def check_unit_interval(op: str, name: str, t: torch.Tensor, error: type[Exception] = KernelInputError):
    """Values in [0, 1] (so +-inf is refused); NaN passes (NaN in gives NaN out, it is not an error)."""
    bad = (t < 0) | (t > 1)
    if bool(bad.any()):
        v = t[bad].flatten()[0].item()
        raise error(f"{op}: argument {name!r} must lie in [0, 1] (Bernoulli targets); found {v!r}")


def check_finite(op: str, name: str, t: torch.Tensor, what: str, error: type[Exception] = KernelInputError):
    """No +-inf in ``t``; NaN passes (NaN in gives NaN out, it is not an error). ``what`` says why."""
    bad = torch.isinf(t)
    if bool(bad.any()):
        v = t[bad].flatten()[0].item()
        raise error(f"{op}: argument {name!r} must be finite ({what}); found {v!r}")


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """A contiguous (rows, D) view or copy of ``t`` (rows = product of the leading dims, also when D = 0)."""
    t = t.detach()
    if t.dim() != 2:
        t = t.reshape(t.shape[:-1].numel(), t.shape[-1])
    return t.contiguous()
