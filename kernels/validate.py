"""Input checks shared by every kernel (the middle layer of each op file).

Cheap checks (shape, dtype, device) always run before a kernel touches memory;
value checks (Bernoulli targets in [0, 1]) cost a pass over the data and run
only when ``vaebench.ops.set_validation(True)``. Errors name the argument.
"""

from __future__ import annotations

import torch

try:  # the package's error type when vaebench is importable; ValueError otherwise
    from vaebench.errors import InputError
except ImportError:  # pragma: no cover
    class InputError(ValueError):
        pass

CPU_DTYPES = (torch.float32, torch.float64)
GPU_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_tensors(op: str, names: tuple[str, ...], tensors: tuple, *, dtypes=CPU_DTYPES, device_type=None):
    """All tensors: same shape (at least 1-D), same floating dtype from ``dtypes``, same device."""
    first = tensors[0]
    try:  # fast path: everything agrees
        shape, dtype, device = first.shape, first.dtype, first.device
        if (len(shape) >= 1 and dtype in dtypes and (device_type is None or device.type == device_type)
                and all(t.shape == shape and t.dtype == dtype and t.device == device for t in tensors[1:])):
            return
    except AttributeError:
        pass
    for name, t in zip(names, tensors):
        if not isinstance(t, torch.Tensor):
            raise InputError(f"{op}: argument {name!r} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 1:
            raise InputError(f"{op}: argument {name!r} must have at least 1 dimension, got a scalar")
        if t.dtype not in dtypes:
            allowed = ", ".join(str(d).replace("torch.", "") for d in dtypes)
            raise InputError(f"{op}: argument {name!r} has dtype {str(t.dtype).replace('torch.', '')}; "
                             f"this backend takes {allowed}")
        if device_type is not None and t.device.type != device_type:
            raise InputError(f"{op}: argument {name!r} is on device {t.device}; this backend needs {device_type}")
    for name, t in zip(names[1:], tensors[1:]):
        if t.shape != first.shape:
            raise InputError(f"{op}: argument {name!r} has shape {tuple(t.shape)}, "
                             f"expected {tuple(first.shape)} (the shape of {names[0]!r})")
        if t.dtype != first.dtype:
            raise InputError(f"{op}: argument {name!r} has dtype {t.dtype}, expected {first.dtype} "
                             f"(the dtype of {names[0]!r})")
        if t.device != first.device:
            raise InputError(f"{op}: argument {name!r} is on {t.device}, expected {first.device} "
                             f"(the device of {names[0]!r})")


def check_unit_interval(op: str, name: str, t: torch.Tensor):
    """Values in [0, 1]; NaN passes (NaN in gives NaN out, it is not an error)."""
    bad = (t < 0) | (t > 1)
    if bool(bad.any()):
        v = t[bad].flatten()[0].item()
        raise InputError(f"{op}: argument {name!r} must lie in [0, 1] (Bernoulli targets); found {v!r}")


def as_rows(t: torch.Tensor) -> torch.Tensor:
    """A contiguous (rows, D) view or copy of ``t``."""
    t = t.detach()
    if t.dim() != 2:
        t = t.reshape(-1, t.shape[-1])
    return t.contiguous()
