"""Shared cases for the ops parity tests: inputs per op, and the comparison with tolerances.

Tolerances (relative, with an absolute floor of rtol times the tensor's largest
magnitude, so that terms that cancel to ~0 are compared at the scale of the
row) -- fp32: 1e-5 for every op's values and gradients; fp64: 1e-10.
"""

from __future__ import annotations

import torch

from vaebench import ops

RTOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def make_inputs(op: str, shape, dtype=torch.float32, seed=0, special=False):
    g = torch.Generator().manual_seed(seed)

    def randn():
        return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)

    if op in ("reparameterize", "encoder_head"):
        mu, lv, eps = randn(), randn() * 2, randn()
        if special:
            _edges(lv)
        return {"mu": mu, "logvar": lv, "eps": eps}, ("mu", "logvar")
    if op == "gaussian_kl":
        mu, lv = randn(), randn() * 2
        if special:
            _edges(lv)
        return {"mu": mu, "logvar": lv}, ("mu", "logvar")
    if op == "bernoulli_log_likelihood":
        logits = randn() * 4
        x = (torch.rand(shape, generator=g, dtype=torch.float64) < 0.3).to(dtype)
        if special:
            flat = logits.view(-1)
            flat[0::4] = 100.0
            flat[1::4] = -100.0
        return {"logits": logits, "x": x}, ("logits",)
    if op == "gaussian_log_likelihood":
        mean, lv = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype), randn()
        x = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
        if special:
            _edges(lv)
        return {"mean": mean, "logvar": lv, "x": x}, ("mean", "logvar")
    raise KeyError(op)


def _edges(lv):
    flat = lv.view(-1)
    vals = [ops.LOGVAR_MIN, ops.LOGVAR_MAX, ops.LOGVAR_MIN - 5, ops.LOGVAR_MAX + 5, 0.0, 1e-7]
    for i, v in enumerate(vals):
        flat[i::len(vals) * 2] = v


def call(op, backend, inputs):
    fn = getattr(ops, op)
    return fn(*inputs.values(), backend=backend)


def outputs(res):
    return res if isinstance(res, tuple) else (res,)


def run(op, backend, inputs, grad_names, upstream_seed=1):
    """Values and the gradients of grad_names under a random upstream gradient."""
    leaves = {k: (v.detach().clone().requires_grad_(k in grad_names)) for k, v in inputs.items()}
    outs = outputs(call(op, backend, leaves))
    g = torch.Generator().manual_seed(upstream_seed)
    ups = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype) for o in outs]
    grads = torch.autograd.grad(outs, [leaves[k] for k in grad_names], ups, allow_unused=True)
    return [o.detach() for o in outs], dict(zip(grad_names, grads))


def assert_close(actual, expected, dtype, what):
    rtol = RTOL[dtype]
    atol = rtol * max(1.0, float(expected.abs().max())) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what}: {m}")
