"""Parity of the numba and compile backends against eager: values and gradients
under a shared random upstream gradient (tolerances in tests/ops/_ops_cases.py)."""

from __future__ import annotations

import pytest
import torch

from vaebench import ops
from vaebench.ops_catalog import TENSOR_OPS as OPS
from vaebench.ops_catalog import TEST_SHAPES

from ._ops_cases import compare_with_eager as _compare
from ._ops_cases import make_inputs, run

numba = pytest.importorskip("numba")


@pytest.mark.parametrize("shape", TEST_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", OPS)
def test_numba_parity_fp32(op, shape):
    inputs, grad_names = make_inputs(op, shape, torch.float32, special=shape[0] * shape[1] >= 12)
    _compare(op, "numba", inputs, grad_names, torch.float32)


@pytest.mark.parametrize("op", OPS)
def test_numba_parity_fp64(op):
    inputs, grad_names = make_inputs(op, (257, 20), torch.float64, special=True)
    _compare(op, "numba", inputs, grad_names, torch.float64)


@pytest.mark.parametrize("op", OPS)
def test_numba_non_contiguous(op):
    inputs, grad_names = make_inputs(op, (20, 33), torch.float32, special=True)
    inputs = {k: v.t() for k, v in inputs.items()}  # transposed: (33, 20), strides (1, 33)
    _compare(op, "numba", inputs, grad_names, torch.float32)
    wide, _ = make_inputs(op, (40, 50), torch.float32)
    sliced = {k: v[::2, 5:45] for k, v in wide.items()}  # sliced rows and columns
    _compare(op, "numba", sliced, grad_names, torch.float32)


def test_numba_3d_inputs():
    inputs, grad_names = make_inputs("bernoulli_log_likelihood", (2, 5, 7))
    _compare("bernoulli_log_likelihood", "numba", inputs, grad_names, torch.float32)


@pytest.mark.parametrize("op", ["reparameterize", "gaussian_kl", "encoder_head", "gaussian_log_likelihood"])
def test_logvar_clamp_gradient_is_zero_outside(op):
    inputs, grad_names = make_inputs(op, (1, 4))
    inputs["logvar"] = torch.tensor([[ops.LOGVAR_MIN - 1, ops.LOGVAR_MAX + 1, ops.LOGVAR_MIN, ops.LOGVAR_MAX]])
    for backend in ("eager", "numba"):
        _, g = run(op, backend, inputs, ("logvar",))
        assert g["logvar"][0, 0] == 0 and g["logvar"][0, 1] == 0, backend
    _compare(op, "numba", inputs, grad_names, torch.float32)


def test_kl_near_zero_logvar_has_no_cancellation():
    # KL = sum(expm1(lv) - lv)/2 ~ lv^2/4 per element; 1 + lv - exp(lv) loses ~1e-3 of it in fp32
    mu = torch.zeros(1, 8)
    lv = torch.full((1, 8), 1e-2)
    lv64 = lv.double()
    expected = (0.5 * (torch.expm1(lv64) - lv64).sum()).item()
    naive = (0.5 * (torch.exp(lv) - 1 - lv).sum()).item()
    assert abs(naive - expected) > 1e-4 * expected  # the cancellation the kernels avoid
    for backend in ("eager", "numba"):
        kl = ops.gaussian_kl(mu, lv, backend=backend)
        assert abs(kl.double().item() - expected) < 1e-4 * expected, backend


# the input every output of the op depends on (location_scale_rsample's neg_log_det does not
# depend on loc; tests/ops/test_ops_location_scale.py checks NaN in loc and eps)
_NAN_INPUT = {"location_scale_rsample": "raw_scale"}


@pytest.mark.parametrize("op", OPS)
def test_nan_in_nan_out(op):
    inputs, _ = make_inputs(op, (3, 5))
    inputs[_NAN_INPUT.get(op, next(iter(inputs)))][1, 2] = float("nan")
    for backend in ("eager", "numba"):
        res = getattr(ops, op)(*inputs.values(), backend=backend)
        outs = res if isinstance(res, tuple) else (res,)
        for o in outs:
            row = o[1] if o.dim() == 1 else o[1, 2]
            assert torch.isnan(row).all(), f"{op}[{backend}] turned NaN into {row}"
            assert not torch.isnan(o[0]).any()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("backend", ["eager", "numba"])
def test_gradcheck_fp64(op, backend):
    inputs, grad_names = make_inputs(op, (3, 4), torch.float64)
    leaves = {k: v.clone().requires_grad_(k in grad_names or k == "eps") for k, v in inputs.items()}

    def f(*args):
        return getattr(ops, op)(*args, backend=backend)

    assert torch.autograd.gradcheck(f, tuple(leaves.values()))


def test_bernoulli_gradient_wrt_targets():
    inputs, _ = make_inputs("bernoulli_log_likelihood", (4, 6))
    inputs["x"] = torch.rand(4, 6, dtype=torch.float32)
    _compare("bernoulli_log_likelihood", "numba", inputs, ("logits", "x"), torch.float32)


def test_retain_graph_second_backward_matches():
    inputs, _ = make_inputs("bernoulli_log_likelihood", (5, 7))
    logits = inputs["logits"].requires_grad_()
    ll = ops.bernoulli_log_likelihood(logits, inputs["x"], backend="numba")
    (g1,) = torch.autograd.grad(ll.sum(), logits, retain_graph=True)
    (g2,) = torch.autograd.grad(ll.sum(), logits)
    torch.testing.assert_close(g1, g2)


def test_decoder_tail_is_the_likelihood():
    inputs, _ = make_inputs("bernoulli_log_likelihood", (4, 9))
    torch.testing.assert_close(
        ops.decoder_tail(*inputs.values(), backend="numba"), ops.bernoulli_log_likelihood(*inputs.values())
    )
    g, _ = make_inputs("gaussian_log_likelihood", (4, 9))
    torch.testing.assert_close(
        ops.decoder_tail(g["mean"], g["x"], g["logvar"], backend="numba"),
        ops.gaussian_log_likelihood(g["mean"], g["logvar"], g["x"]),
    )


# ---- the in-kernel RNG variant -------------------------------------------------


@pytest.mark.parametrize("backend", ["eager", "numba"])
def test_seeded_statistics_and_consistency(backend):
    n, d = 4000, 50
    mu = torch.full((n, d), 0.5, requires_grad=True)
    lv = torch.full((n, d), 2 * torch.log(torch.tensor(1.5)).item(), requires_grad=True)
    z = ops.reparameterize_seeded(mu, lv, 1234, backend=backend)
    eps = ((z - 0.5) / 1.5).detach()
    # standard normal: mean 0, variance 1, little correlation between neighbours
    assert abs(eps.mean().item()) < 5 / (n * d) ** 0.5
    assert abs(eps.var().item() - 1) < 0.02
    assert abs((eps[:, 1:] * eps[:, :-1]).mean().item()) < 0.01
    assert abs((eps.abs() > 1.96).float().mean().item() - 0.05) < 0.005
    # same seed -> same draw; another seed -> another
    torch.testing.assert_close(ops.reparameterize_seeded(mu, lv, 1234, backend=backend), z)
    assert not torch.equal(ops.reparameterize_seeded(mu, lv, 1235, backend=backend), z)
    # backward recomputes the eps of the forward: d z / d logvar = eps * std / 2
    g = torch.randn(n, d)
    gmu, glv = torch.autograd.grad(z, (mu, lv), g)
    torch.testing.assert_close(gmu, g)
    torch.testing.assert_close(glv, g * eps * 1.5 / 2, rtol=1e-5, atol=1e-5)


# ---- the compile backend and torch.compile(fullgraph=True) over kernel ops -----


def _all_ops(mu, lv, eps, logits, x, mean, glv, xg, backend):
    z, kl = ops.encoder_head(mu, lv, eps, backend=backend)
    return (
        z.sum(-1)
        + kl
        + ops.reparameterize(mu, lv, eps, backend=backend).sum(-1)
        + ops.gaussian_kl(mu, lv, backend=backend)
        + ops.bernoulli_log_likelihood(logits, x, backend=backend)
        + ops.gaussian_log_likelihood(mean, glv, xg, backend=backend)
        + (ops.reparameterize_seeded(mu, lv, 7, backend=backend).sum(-1) * 0 if backend == "numba" else 0)
    )


def _all_inputs(n=6, d=5):
    g = torch.Generator().manual_seed(3)
    t = [torch.randn(n, d, generator=g) for _ in range(8)]  # mu lv eps logits x mean glv xg
    t[4] = (t[4] > 0).float()
    t[7] = torch.rand(n, d, generator=g)
    return [v.requires_grad_(i in (0, 1, 3, 5, 6)) for i, v in enumerate(t)]


@pytest.mark.parametrize("backend", ["numba", "compile"])
def test_torch_compile_fullgraph_matches_eager(backend):
    torch._dynamo.reset()
    inputs = _all_inputs()
    ref = _all_ops(*inputs, backend="eager")
    ref_g = torch.autograd.grad(ref.sum(), [t for t in inputs if t.requires_grad])
    compiled = torch.compile(_all_ops, fullgraph=True, backend="aot_eager" if backend == "numba" else "inductor")
    out = compiled(*inputs, backend=backend)
    g = torch.autograd.grad(out.sum(), [t for t in inputs if t.requires_grad])
    # the seeded term (kernel backends only: eager's torch.Generator is not traceable)
    # is multiplied by 0, its stream differs between backends
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(g, ref_g):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager-path", "torch.compile"])
@pytest.mark.parametrize("op", ["bernoulli_log_likelihood", "gaussian_log_likelihood"])
def test_likelihood_gradients_for_every_input(op, compiled):
    # the targets too: both backwards (the autograd Function's and, under torch.compile, the custom op's)
    inputs, _ = make_inputs(op, (6, 5))
    leaves = [v.detach().clone().requires_grad_() for v in inputs.values()]
    fn = getattr(ops, op)
    ref = fn(*leaves, backend="eager")
    ref_g = torch.autograd.grad(ref, leaves, torch.ones_like(ref))
    if compiled:
        torch._dynamo.reset()
        fn = torch.compile(fn, fullgraph=True, backend="aot_eager")
    out = fn(*leaves, backend="numba")
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(torch.autograd.grad(out, leaves, torch.ones_like(out)), ref_g):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
