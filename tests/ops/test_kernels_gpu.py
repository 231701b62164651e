"""GPU only (``nox -s tests_gpu``): Triton compiled for real, parity with eager in
fp32 (1e-5 relative) and fp16/bf16 (2e-2 relative: inputs rounded, math in fp32)."""

from __future__ import annotations

import pytest
import torch

from vaebench.ops_catalog import TENSOR_OPS as OPS
from vaebench.ops_catalog import TEST_SHAPES

from ._ops_cases import compare_with_eager, make_inputs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", TEST_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", OPS)
def test_triton_gpu_parity(op, shape, dtype):
    # fp16/bf16: against eager in fp32 on the same (rounded) inputs (tolerances in _ops_cases);
    # no edge values in fp16: exp(LOGVAR_MAX) ~ 5e8 is beyond its largest value (65504)
    special = shape[0] * shape[1] >= 12 and dtype != torch.float16
    inputs, grad_names = make_inputs(op, shape, torch.float32, special=special, device="cuda")
    compare_with_eager(op, "triton", {k: v.to(dtype) for k, v in inputs.items()}, grad_names, dtype)


def test_triton_gpu_seeded():
    mu = torch.zeros(1000, 100, device="cuda", requires_grad=True)
    lv = torch.zeros(1000, 100, device="cuda", requires_grad=True)
    from vaebench import ops

    z = ops.reparameterize_seeded(mu, lv, 5, backend="triton")
    assert abs(z.mean().item()) < 0.02 and abs(z.var().item() - 1) < 0.02
