"""location_scale_rsample: the location-scale reparameterisation for any base distribution.

The shared ops tests (test_ops_parity, test_kernels_triton, test_ops_edge_cases) cover it from
vaebench.ops_catalog with eps from DEFAULT_BASE; here: parity with eager for eps from every base
of the catalog on each kernel backend (numba; triton under TRITON_INTERPRET=1), gradcheck in
float64, agreement with the families registry (z = the family's construction, log q = sum log
base(eps) + neg_log_det with the gradient of the registry's log q at z(eps)), which outputs
and inputs get gradients, NaN propagation, torch.compile, and the errors for bad inputs."""

from __future__ import annotations

import pytest
import torch

from vaebench import families, ops
from vaebench.errors import InputError
from vaebench.families.latent import FIXED_PARAMS, LatentFamily
from vaebench.ops_catalog import BASES, INPUTS, available_backends, draw_base, make_inputs
from vaebench_kernels.errors import KernelInputError

from ._ops_cases import compare_with_eager, run

OP = "location_scale_rsample"
KERNEL_BACKENDS = [b for b in available_backends("cpu") if b in ("numba", "triton")]
GRADCHECK_BASES = ("gaussian", "laplace", "student-t", "uniform")
# the interpreter is slow: triton gets the small shapes
SHAPES = {"numba": ((1, 1), (3, 1023), (257, 20), (2000, 50)), "triton": ((1, 1), (3, 1023), (257, 20))}


def _inputs(shape, dtype=torch.float32, base="gaussian", special=True, seed=0):
    """(inputs by name, the names that get a gradient), eps from ``base``; edge values of
    raw_scale (at and beyond the clamp) where the shape has room for them."""
    special = special and shape[0] * shape[1] >= 12
    return make_inputs(OP, shape, dtype, seed=seed, special=special, base=base), INPUTS[OP][1]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_parity_with_eager_for_every_base(backend, base):
    for shape in SHAPES[backend]:
        inputs, grads = _inputs(shape, base=base)
        compare_with_eager(OP, backend, inputs, grads, torch.float32)
        # eps with a gradient too (as reparameterize gives one)
        compare_with_eager(OP, backend, inputs, (*grads, "eps"), torch.float32)


@pytest.mark.parametrize("base", BASES)
def test_numba_parity_fp64(base):
    inputs, grads = _inputs((257, 20), torch.float64, base=base)
    compare_with_eager(OP, "numba", inputs, (*grads, "eps"), torch.float64)


@pytest.mark.skipif("triton" not in KERNEL_BACKENDS, reason="needs triton under TRITON_INTERPRET=1")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_triton_half_precision(dtype):
    inputs, grads = _inputs((5, 37), base="laplace", special=False)
    compare_with_eager(OP, "triton", {k: v.to(dtype) for k, v in inputs.items()}, grads, dtype)


@pytest.mark.parametrize("base", GRADCHECK_BASES)
@pytest.mark.parametrize("backend", ["eager", "numba"])
def test_gradcheck_fp64(backend, base):
    inputs, _ = _inputs((3, 4), torch.float64, base=base, special=False)
    args = tuple(v.clone().requires_grad_() for v in inputs.values())
    assert torch.autograd.gradcheck(lambda *a: ops.location_scale_rsample(*a, backend=backend), args)


# ---- the families registry: z and log q as training computes them ---------------------------


def _registry_families():
    """The registry's univariate location-scale families, and the inverse-CDF logistic (the
    'logistic' posterior of the VAE: z = loc + scale logit(u))."""
    out = [f for f in families.REGISTRY.values() if f.cls == "location-scale" and not f.multivariate]
    return out + [families.get("logistic")]


@pytest.mark.parametrize("family", _registry_families(), ids=lambda f: f.name)
@pytest.mark.parametrize("backend", KERNEL_BACKENDS + ["eager"])
def test_matches_the_family_construction_and_log_q(family, backend):
    dtype = torch.float64 if backend != "triton" else torch.float32
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    B, nz = 6, 5
    g = torch.Generator().manual_seed(7)
    loc = torch.randn(B, nz, generator=g, dtype=dtype).requires_grad_()
    raw = (2 * torch.randn(B, nz, generator=g, dtype=dtype)).requires_grad_()
    fixed = {k: torch.tensor(v, dtype=dtype) for k, v in FIXED_PARAMS.get(family.name, {}).items()}
    e = family.sample_eps((B, nz) + tuple(family.eps_event_shape({**family.example, **fixed})), g, dtype)
    # the standard draw: the family's construction at loc 0, scale 1 (Student's t: n / sqrt(chi2/df))
    std = {"loc": torch.zeros((), dtype=dtype), "scale": torch.ones((), dtype=dtype), **fixed}
    eps = family._rsample(std, e).detach()

    z, nld = ops.location_scale_rsample(loc, raw, eps, backend=backend)
    log_q = family._dist(std).log_prob(eps).sum(-1) + nld
    # the registry's path: scale as FamilyEncoder makes it, z by the family, log q from its density
    scale = torch.exp(0.5 * ops.clamp_logvar(raw))
    if family.name in ("gaussian", "laplace", "logistic", "student-t"):  # the VAE's posteriors
        torch.testing.assert_close(LatentFamily(family.name).params((loc, raw))["scale"], scale, rtol=0, atol=0)
    params = {"loc": loc, "scale": scale, **fixed}
    z_ref = family._rsample(params, e)
    log_q_ref = family._dist(params).log_prob(z_ref).sum(-1)
    torch.testing.assert_close(z, z_ref, rtol=rtol, atol=rtol)
    torch.testing.assert_close(log_q, log_q_ref, rtol=rtol, atol=rtol)
    # the gradient of log q(z(eps, params); params) is that of neg_log_det: -1/2 per raw element
    gl, gr = torch.autograd.grad(log_q.sum(), (loc, raw), allow_unused=True, materialize_grads=True)
    gl_ref, gr_ref = torch.autograd.grad(log_q_ref.sum(), (loc, raw))
    torch.testing.assert_close(gl, gl_ref, rtol=rtol, atol=rtol)
    torch.testing.assert_close(gr, gr_ref, rtol=rtol, atol=rtol)
    torch.testing.assert_close(gr, torch.full_like(gr, -0.5))


# ---- gradients: which inputs, unused outputs, the clamp ---------------------------------------


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_gradients_when_one_output_is_unused(backend):
    inputs, _ = _inputs((4, 6), base="uniform", special=False)
    for pick in (0, 1):
        grads = {}
        for b in ("eager", backend):
            leaves = [v.clone().requires_grad_() for v in inputs.values()]
            out = ops.location_scale_rsample(*leaves, backend=b)[pick]
            grads[b] = torch.autograd.grad(out.sum(), leaves, allow_unused=True, materialize_grads=True)
        for a, e in zip(grads[backend], grads["eager"]):
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_eps_gets_no_gradient_unless_asked(backend):
    inputs, _ = _inputs((3, 4), base="laplace")
    loc, raw = inputs["loc"].requires_grad_(), inputs["raw_scale"].requires_grad_()
    z, nld = ops.location_scale_rsample(loc, raw, inputs["eps"], backend=backend)
    (z.sum() + nld.sum()).backward()
    assert inputs["eps"].grad is None and loc.grad is not None and raw.grad is not None


@pytest.mark.parametrize("backend", KERNEL_BACKENDS)
def test_clamp_gradient_is_zero_outside(backend):
    raw = torch.tensor([[ops.LOGVAR_MIN - 1, ops.LOGVAR_MAX + 1, ops.LOGVAR_MIN, ops.LOGVAR_MAX]])
    inputs = {"loc": torch.zeros(1, 4), "raw_scale": raw, "eps": torch.tensor([[0.5, -2.0, 1.5, -0.1]])}
    _, g = run(OP, backend, inputs, ("raw_scale",))
    assert g["raw_scale"][0, 0] == 0 and g["raw_scale"][0, 1] == 0
    compare_with_eager(OP, backend, inputs, ("loc", "raw_scale", "eps"), torch.float32)


# ---- NaN, torch.compile ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["eager"] + KERNEL_BACKENDS)
def test_nan_in_nan_out(backend):
    for name in ("loc", "raw_scale", "eps"):
        inputs, _ = _inputs((3, 5), special=False)
        inputs[name][1, 2] = float("nan")
        z, nld = ops.location_scale_rsample(*inputs.values(), backend=backend)
        assert torch.isnan(z[1, 2]) and torch.isnan(z).sum() == 1, (name, z)
        # neg_log_det depends on raw_scale only
        assert torch.isnan(nld[1]) == (name == "raw_scale") and not torch.isnan(nld[[0, 2]]).any(), (name, nld)


def test_torch_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    inputs, _ = _inputs((6, 5), base="student-t")

    def f(loc, raw, eps, backend):
        z, nld = ops.location_scale_rsample(loc, raw, eps, backend=backend)
        return z.square().sum(-1) + nld

    results = []
    for backend, fn in (("eager", f), ("numba", torch.compile(f, fullgraph=True, backend="aot_eager"))):
        leaves = [v.clone().requires_grad_() for v in inputs.values()]
        out = fn(*leaves, backend=backend)
        results.append([out, *torch.autograd.grad(out.sum(), leaves)])
    for a, e in zip(*results):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


# ---- bad inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", available_backends("cpu"))
def test_shape_dtype_device_errors_name_the_argument(backend):
    a = torch.zeros(4, 3)
    with pytest.raises(InputError, match=f"{OP}: argument 'raw_scale' has shape \\(4, 2\\), expected \\(4, 3\\)"):
        ops.location_scale_rsample(a, torch.zeros(4, 2), a, backend=backend)
    with pytest.raises(InputError, match="'eps' has dtype float64, expected float32"):
        ops.location_scale_rsample(a, a, a.double(), backend=backend)
    with pytest.raises(InputError, match="'eps' is on meta"):
        ops.location_scale_rsample(a, a, torch.zeros(4, 3, device="meta"), backend=backend)
    with pytest.raises(InputError, match="'loc' must be a torch.Tensor"):
        ops.location_scale_rsample([[0.0]], a, a, backend=backend)
    with pytest.raises(InputError, match="'loc' has dtype int64"):
        ops.location_scale_rsample(a.long(), a.long(), a.long(), backend=backend)


def test_kernel_backends_refuse_what_they_do_not_take():
    h = torch.zeros(2, 3, dtype=torch.half)
    with pytest.raises(KernelInputError, match=f"{OP}: argument 'loc' has dtype float16"):
        ops.location_scale_rsample(h, h, h, backend="numba")
    if "triton" in KERNEL_BACKENDS:
        d = torch.zeros(2, 3, dtype=torch.float64)
        with pytest.raises(KernelInputError, match="'loc' has dtype float64"):
            ops.location_scale_rsample(d, d, d, backend="triton")


@pytest.mark.parametrize("backend", available_backends("cpu"))
def test_infinite_eps_is_refused_under_validation(backend, validation):
    a = torch.zeros(2, 3)
    for v in (float("inf"), -float("inf")):
        eps = torch.tensor([[0.0, 1.0, v], [0.5, 0.0, 1.0]])
        with pytest.raises(InputError, match=rf"{OP}: argument 'eps' must be finite .*found {v}"):
            ops.location_scale_rsample(a, a, eps, backend=backend)
    # NaN is not an error: NaN in, NaN out
    z, _ = ops.location_scale_rsample(a, a, torch.tensor([[0.0, float("nan"), 1.0]] * 2), backend=backend)
    assert torch.isnan(z[:, 1]).all()


def test_infinite_eps_passes_without_validation():
    assert not ops.get_validation()
    z, _ = ops.location_scale_rsample(
        torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([[float("inf"), 1.0]]), backend="numba"
    )
    assert z[0, 0] == float("inf") and z[0, 1] == 1.0


def test_unknown_base():
    with pytest.raises(ValueError, match="unknown base 'cauchy'"):
        draw_base("cauchy", (2, 2), torch.Generator())
