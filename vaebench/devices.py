"""Checking a device name before any work starts."""

from __future__ import annotations

from vaebench.errors import VaebenchError


def check_device(name: str | None, option: str = "--device"):
    """``name`` ('cpu', 'cuda', 'cuda:N') as a torch.device that exists here, or a one-line error."""
    import torch

    name = "cpu" if name is None else str(name)
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise VaebenchError(f"{option} {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise VaebenchError(f"{option} {name}: CUDA is not available on this machine (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise VaebenchError(f"{option} {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise VaebenchError(f"{option} {name!r}: vaebench runs on cpu or cuda")
    return device
