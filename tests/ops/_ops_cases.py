"""Shared helpers for the ops tests: inputs (from vaebench.ops_catalog), a run of values and
gradients, and the comparison with tolerances.

Tolerances (relative, with an absolute floor of rtol times the tensor's largest
magnitude, so that terms that cancel to ~0 are compared at the scale of the
row) -- fp32: 1e-5 for every op's values and gradients; fp64: 1e-10; fp16 and
bf16 (against eager in fp32 on the same rounded inputs; the kernels compute in
fp32 and round their outputs and gradient buffers, each rounding 2^-11 (fp16) or
2^-8 (bf16) relative, and the upstream gradient is rounded too): 2e-2.
"""

from __future__ import annotations

import os

import torch

from vaebench import ops
from vaebench.ops_catalog import INPUTS
from vaebench.ops_catalog import make_inputs as _catalog_inputs

RTOL = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 2e-2, torch.bfloat16: 2e-2}


def make_inputs(op: str, shape, dtype=torch.float32, seed=0, special=False, device="cpu"):
    """(inputs by name, the names that get a gradient)."""
    return _catalog_inputs(op, shape, dtype, device, seed=seed, special=special), INPUTS[op][1]


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
    ups = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.device, o.dtype) for o in outs]
    grads = torch.autograd.grad(outs, [leaves[k] for k in grad_names], ups, allow_unused=True)
    return [o.detach() for o in outs], dict(zip(grad_names, grads))


def assert_close(actual, expected, dtype, what):
    """``actual`` (any dtype, cast to expected's) against ``expected`` at the tolerance of ``dtype``."""
    rtol = RTOL[dtype]
    atol = rtol * max(1.0, float(expected.abs().max())) if expected.numel() else 0.0
    torch.testing.assert_close(
        actual.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what}: {m}"
    )


def compare_with_eager(op, backend, inputs, grad_names, dtype):
    """Values and gradients of ``backend`` against eager on the same inputs (eager in fp32 when
    the inputs are fp16/bf16)."""
    ref_inputs = {k: v.float() for k, v in inputs.items()} if dtype in (torch.float16, torch.bfloat16) else inputs
    ref_out, ref_g = run(op, "eager", ref_inputs, grad_names)
    out, g = run(op, backend, inputs, grad_names)
    for i, (a, e) in enumerate(zip(out, ref_out)):
        assert a.shape == e.shape and a.dtype == inputs[next(iter(inputs))].dtype
        assert_close(a, e, dtype, f"{op}[{backend}] output {i}")
    for k in grad_names:
        assert_close(g[k], ref_g[k], dtype, f"{op}[{backend}] d/d{k}")


def triton_parity(op, shape, dtype, device):
    """The GPU parity case: ``op`` on backend triton against eager in fp32 on the same (rounded)
    inputs, then ``assert_ran_compiled``. No edge values in fp16: exp(LOGVAR_MAX) ~ 5e8 is beyond
    its largest value (65504)."""
    special = shape[0] * shape[1] >= 12 and dtype != torch.float16
    inputs, grad_names = make_inputs(op, shape, torch.float32, special=special, device=device)
    compare_with_eager(op, "triton", {k: v.to(dtype) for k, v in inputs.items()}, grad_names, dtype)
    assert_ran_compiled(op)


def assert_ran_compiled(op):
    """Every Triton kernel that ``op``'s kernel file has built is a compiled JITFunction (not the
    interpreter's InterpretedFunction), and one of them was compiled for a device and launched."""
    from vaebench_kernels._triton_common import built_kernels, is_compiled, kernel_files

    module = ops._kernel(op).__module__
    kernels = [k for name, f in kernel_files().items() if name.startswith(f"{module}.") for k in built_kernels(f)]
    assert kernels, f"{op}: no Triton kernel of {module} was built"
    for k in kernels:
        assert is_compiled(k), (
            f"{op}: Triton kernel {k.fn.__name__} is a {type(k).__module__}.{type(k).__qualname__}, not a compiled "
            f"triton.runtime.jit.JITFunction: it ran in the interpreter "
            f"(TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET')!r})"
        )
    assert any(cache[0] for k in kernels for cache in k.device_caches.values()), f"{op}: no kernel was compiled"
