"""GPU only (``nox -s tests_gpu``): Triton compiled for real, parity with eager in
fp32 (1e-5 relative) and fp16/bf16 (2e-2 relative: inputs rounded, math in fp32). Each test
asserts that the kernels it ran are compiled JITFunctions (``assert_ran_compiled``): with the
interpreter on it fails (test_kernels_triton.py shows it)."""

from __future__ import annotations

import pytest
import torch

from vaebench.ops_catalog import TENSOR_OPS as OPS
from vaebench.ops_catalog import TEST_SHAPES

from ._ops_cases import assert_ran_compiled, triton_parity

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", TEST_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", OPS)
def test_triton_gpu_parity(op, shape, dtype):
    # fp16/bf16: against eager in fp32 on the same (rounded) inputs (tolerances in _ops_cases)
    triton_parity(op, shape, dtype, "cuda")


def test_triton_gpu_seeded():
    mu = torch.zeros(1000, 100, device="cuda", requires_grad=True)
    lv = torch.zeros(1000, 100, device="cuda", requires_grad=True)
    from vaebench import ops

    z = ops.reparameterize_seeded(mu, lv, 5, backend="triton")
    assert abs(z.mean().item()) < 0.02 and abs(z.var().item() - 1) < 0.02
    assert_ran_compiled("reparameterize_seeded")
