"""Inputs shared by the asv and pytest-benchmark suites."""

from __future__ import annotations

import torch

LATENT_OPS = ("reparameterize", "gaussian_kl", "encoder_head")
DATA_OPS = ("bernoulli_log_likelihood", "gaussian_log_likelihood")
SIZES = {"latent": ("100x20", "10000x20"), "data": ("100x784", "10000x784")}


def available_backends(device="cpu"):
    out = ["eager", "compile"]
    try:
        import numba  # noqa: F401
        if device == "cpu":
            out.append("numba")
    except ImportError:
        pass
    if device == "cuda":
        out.append("triton")
    return out


def make(op, size, device="cpu", dtype=torch.float32):
    from vaebench.bench import _inputs, _parse_size
    B, D = _parse_size(size)
    inp = _inputs(op, B, D, torch.device(device), dtype)
    args = list(inp.values())
    leaves = [a for a in args if a.requires_grad]
    return args, leaves


def fwd_bwd(fn, args, leaves, backend, ups=None):
    res = fn(*args, backend=backend)
    outs = res if isinstance(res, tuple) else (res,)
    if ups is None:
        ups = [torch.ones_like(o) for o in outs]
    torch.autograd.grad(outs, leaves, ups)
