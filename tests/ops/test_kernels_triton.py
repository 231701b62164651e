"""Triton kernels under the interpreter (TRITON_INTERPRET=1, CPU tensors, core tl ops only):
parity with eager on small shapes, the seeded RNG variant, the device rules, and that the GPU
tests' check of compiled kernels fails under the interpreter."""

from __future__ import annotations

import os

import pytest
import torch

from vaebench import ops
from vaebench.ops_catalog import TENSOR_OPS as OPS
from vaebench.ops_catalog import TEST_SHAPES
from vaebench_kernels.errors import KernelInputError

from . import conftest
from ._ops_cases import assert_ran_compiled, compare_with_eager, make_inputs, triton_parity

pytest.importorskip("triton")
if os.environ.get("TRITON_INTERPRET") != "1":  # pragma: no cover
    pytest.skip("TRITON_INTERPRET is set to something else", allow_module_level=True)


@pytest.mark.parametrize("shape", TEST_SHAPES[:3], ids=lambda s: "x".join(map(str, s)))  # the interpreter is slow
@pytest.mark.parametrize("op", OPS)
def test_triton_interpret_parity(op, shape):
    inputs, grad_names = make_inputs(op, shape, torch.float32, special=shape[0] * shape[1] >= 12)
    compare_with_eager(op, "triton", inputs, grad_names, torch.float32)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", OPS)
def test_triton_interpret_half_precision(op, dtype):
    # the likelihoods' backward scales the saved gradient buffer: in fp16/bf16 under the
    # interpreter that went to a numba kernel (which takes neither) and failed. No edge values
    # in fp16: exp(LOGVAR_MAX) ~ 5e8 is beyond its largest value (65504).
    inputs, grad_names = make_inputs(op, (5, 37), torch.float32, special=dtype == torch.bfloat16)
    compare_with_eager(op, "triton", {k: v.to(dtype) for k, v in inputs.items()}, grad_names, dtype)


def test_triton_non_contiguous():
    inputs, grad_names = make_inputs("bernoulli_log_likelihood", (9, 6), special=True)
    compare_with_eager(
        "bernoulli_log_likelihood", "triton", {k: v.t() for k, v in inputs.items()}, grad_names, torch.float32
    )


def test_triton_nan_in_nan_out():
    logits = torch.randn(2, 5)
    logits[1, 3] = float("nan")
    ll = ops.bernoulli_log_likelihood(logits, torch.ones(2, 5), backend="triton")
    assert torch.isnan(ll[1]) and not torch.isnan(ll[0])


def test_triton_seeded_statistics_and_consistency():
    n, d = 256, 64
    mu = torch.zeros(n, d, requires_grad=True)
    lv = torch.zeros(n, d, requires_grad=True)
    z = ops.reparameterize_seeded(mu, lv, 42, backend="triton")
    eps = z.detach()
    assert abs(eps.mean().item()) < 5 / (n * d) ** 0.5
    assert abs(eps.var().item() - 1) < 0.05
    torch.testing.assert_close(ops.reparameterize_seeded(mu, lv, 42, backend="triton"), z)
    g = torch.randn(n, d)
    _, glv = torch.autograd.grad(z, (mu, lv), g)
    torch.testing.assert_close(glv, 0.5 * g * eps, rtol=1e-5, atol=1e-6)


def test_triton_on_cpu_without_interpreter_names_the_device(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(KernelInputError, match="device cpu"):
        ops.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), backend="triton")


def test_triton_rejects_fp64():
    with pytest.raises(KernelInputError, match="float64"):
        ops.gaussian_kl(
            torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64), backend="triton"
        )


@pytest.mark.parametrize("op", OPS)
def test_a_gpu_test_under_the_interpreter_fails_its_own_assertion(op):
    # test_kernels_gpu's parity case on CPU tensors with the interpreter on: the values agree, then
    # its check that the kernels ran compiled fails, so the GPU session cannot run the interpreter unseen
    with pytest.raises(AssertionError, match="JITFunction: it ran in the interpreter"):
        triton_parity(op, (3, 5), torch.float32, "cpu")


def test_the_seeded_gpu_test_under_the_interpreter_fails_its_own_assertion():
    ops.reparameterize_seeded(torch.zeros(4, 3), torch.zeros(4, 3), 5, backend="triton")
    with pytest.raises(AssertionError, match="it ran in the interpreter"):
        assert_ran_compiled("reparameterize_seeded")


def test_the_gpu_session_turns_the_interpreter_off(monkeypatch):
    # nox -s tests_gpu sets VAEBENCH_GPU_SESSION=1: the session's TRITON_INTERPRET is 0 whatever it was
    monkeypatch.setenv("VAEBENCH_GPU_SESSION", "1")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    conftest.pytest_configure(None)
    assert os.environ["TRITON_INTERPRET"] == "0"
    monkeypatch.delenv("VAEBENCH_GPU_SESSION")
    monkeypatch.delenv("TRITON_INTERPRET")
    conftest.pytest_configure(None)
    assert os.environ["TRITON_INTERPRET"] == "1"  # the CPU suite's
