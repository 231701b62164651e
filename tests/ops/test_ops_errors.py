"""Clear errors for bad inputs and backends, naming the argument; validation toggle.

vaebench.ops raises InputError for what it checks on every backend (shape, dtype,
device agreement; Bernoulli targets under validation); a kernel backend raises
KernelInputError (InputError's base) for what only it refuses (fp16 on numba, a
device it does not run on, a bad seed)."""

from __future__ import annotations

import pytest
import torch

from vaebench import ops
from vaebench.errors import InputError
from vaebench.ops_catalog import available_backends
from vaebench_kernels.errors import KernelInputError

BACKENDS = available_backends("cpu")


def test_unknown_backend():
    with pytest.raises(InputError, match="unknown backend 'cuda'"):
        ops.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3), backend="cuda")
    with pytest.raises(InputError):
        ops.set_default_backend("fast")


def test_default_backend_round_trip():
    old = ops.get_default_backend()
    try:
        ops.set_default_backend("numba")
        assert ops.get_default_backend() == "numba"
        out = ops.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3))
        assert out.grad_fn is None and torch.equal(out, torch.zeros(2))
    finally:
        ops.set_default_backend(old)


@pytest.mark.parametrize("backend", ["numba", "eager"])
def test_wrong_shape_names_argument(backend, validation):
    with pytest.raises(InputError, match="'logvar' has shape"):
        ops.reparameterize(torch.zeros(4, 3), torch.zeros(4, 2), torch.zeros(4, 3), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_checks_shape_dtype_device_without_validation(backend):
    # eager would broadcast (4, 3) with (1, 3) and promote float32 with float64 silently
    assert not ops.get_validation()
    with pytest.raises(InputError, match="'x' has shape"):
        ops.bernoulli_log_likelihood(torch.zeros(4, 3), torch.zeros(1, 3), backend=backend)
    with pytest.raises(InputError, match="'logvar' has dtype float64"):
        ops.gaussian_kl(torch.zeros(4, 3), torch.zeros(4, 3, dtype=torch.float64), backend=backend)
    with pytest.raises(InputError, match="'eps' is on meta"):
        ops.encoder_head(torch.zeros(4, 3), torch.zeros(4, 3), torch.zeros(4, 3, device="meta"), backend=backend)


@pytest.mark.parametrize("backend", ["numba", "eager"])
def test_wrong_dtype_names_argument(backend, validation):
    with pytest.raises(InputError, match="'x' has dtype"):
        ops.bernoulli_log_likelihood(torch.zeros(4, 3), torch.zeros(4, 3, dtype=torch.float64), backend=backend)
    with pytest.raises(InputError, match="'mu' has dtype int64"):
        ops.gaussian_kl(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, 3, dtype=torch.long), backend=backend)


def test_numba_rejects_half():
    with pytest.raises(KernelInputError, match="'mu' has dtype float16"):
        ops.gaussian_kl(torch.zeros(2, 2, dtype=torch.half), torch.zeros(2, 2, dtype=torch.half), backend="numba")


def test_wrong_device_names_argument(validation):
    meta = torch.zeros(4, 3, device="meta")
    with pytest.raises(KernelInputError, match="'mu' is on device meta"):
        ops.gaussian_kl(meta, meta, backend="numba")
    with pytest.raises(InputError, match="'logvar' is on meta"):
        ops.gaussian_kl(torch.zeros(4, 3), meta, backend="eager")


def test_not_a_tensor():
    with pytest.raises(InputError, match="'x' must be a torch.Tensor"):
        ops.bernoulli_log_likelihood(torch.zeros(2, 2), [[0, 1], [1, 0]], backend="numba")


@pytest.mark.parametrize("backend", ["eager", "numba"])
def test_bernoulli_targets_outside_unit_interval(backend, validation):
    x = torch.tensor([[0.0, 1.0, 1.5]])
    with pytest.raises(InputError, match=r"'x' must lie in \[0, 1\].*1.5"):
        ops.bernoulli_log_likelihood(torch.zeros(1, 3), x, backend=backend)
    # NaN targets are not an error: NaN in, NaN out
    x = torch.tensor([[0.0, float("nan"), 1.0]])
    assert torch.isnan(ops.bernoulli_log_likelihood(torch.zeros(1, 3), x, backend=backend)).all()


def test_targets_not_checked_when_validation_off():
    out = ops.bernoulli_log_likelihood(torch.zeros(1, 3), torch.full((1, 3), 2.0), backend="eager")
    assert torch.isfinite(out).all()


def test_seed_must_be_int():
    with pytest.raises(KernelInputError, match="'seed'"):
        ops.reparameterize_seeded(torch.zeros(2, 2), torch.zeros(2, 2), -1, backend="numba")


def test_empty_batch():
    out = ops.bernoulli_log_likelihood(torch.zeros(0, 5), torch.zeros(0, 5), backend="numba")
    assert out.shape == (0,)
