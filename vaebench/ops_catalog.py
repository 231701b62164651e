"""The hot-path ops in one place for the tests, the benchmarks (pytest-benchmark and asv)
and ``vaebench bench``: each op's inputs, the backends that run on a device here, the
sizes, and how the inputs are made."""

from __future__ import annotations

import importlib.util

import torch

from vaebench.ops import BACKENDS, LOGVAR_MAX, LOGVAR_MIN, OPS
from vaebench_kernels._backend import triton_interpreted

__all__ = [
    "BACKENDS",
    "OPS",
    "INPUTS",
    "TENSOR_OPS",
    "LATENT_OPS",
    "DATA_OPS",
    "SIZES",
    "GPU_SIZES",
    "TEST_SHAPES",
    "BASES",
    "DEFAULT_BASE",
    "available_backends",
    "sizes",
    "make_inputs",
    "draw_base",
]

# each op's tensor inputs (in call order) and those that get a gradient; the one op left out,
# reparameterize_seeded(mu, logvar, seed), has tests of its own and is not timed
INPUTS = {
    "reparameterize": (("mu", "logvar", "eps"), ("mu", "logvar")),
    "gaussian_kl": (("mu", "logvar"), ("mu", "logvar")),
    "encoder_head": (("mu", "logvar", "eps"), ("mu", "logvar")),
    "location_scale_rsample": (("loc", "raw_scale", "eps"), ("loc", "raw_scale")),
    "bernoulli_log_likelihood": (("logits", "x"), ("logits",)),
    "gaussian_log_likelihood": (("mean", "logvar", "x"), ("mean", "logvar")),
}
TENSOR_OPS = tuple(INPUTS)
LATENT_OPS = ("reparameterize", "gaussian_kl", "encoder_head", "location_scale_rsample")  # B x N_z
DATA_OPS = ("bernoulli_log_likelihood", "gaussian_log_likelihood")  # B x D of the data
# timed sizes (B, D): the paper's minibatch and an evaluation batch; on a GPU one large size more
SIZES = {"latent": ((100, 20), (10000, 20)), "data": ((100, 784), (10000, 784))}
GPU_SIZES = {"latent": ((1_000_000, 20),), "data": ((100_000, 784),)}
# tested shapes: one element, a long odd row, many short rows, the evaluation size
TEST_SHAPES = ((1, 1), (3, 1023), (257, 20), (10000, 784))
# the standard bases of location_scale_rsample's eps (the standard members of
# vaebench.families.location_scale, drawn from a torch.Generator); DEFAULT_BASE is what the
# shared tests and the timings use: heavy tails, so eps spans a wider range than N(0, 1)
BASES = ("gaussian", "laplace", "logistic", "student-t", "uniform", "triangular")
DEFAULT_BASE = "student-t"
STUDENT_T_DF = 3  # as vaebench.models.STUDENT_T_DF; an integer, so chi2_df is a sum of df squared normals


def available_backends(device="cpu", *, interpreted: bool = True) -> tuple[str, ...]:
    """The backends that run on ``device`` here: eager and compile always; numba when it is
    installed and the device is the CPU; triton when it is installed and the device is CUDA, or
    on the CPU under TRITON_INTERPRET=1 (a slow interpreter for tests: ``interpreted=False``
    leaves it out, as timings do)."""
    kind = torch.device(device).type
    out = ["eager", "compile"]
    if kind == "cpu" and importlib.util.find_spec("numba") is not None:
        out.append("numba")
    if importlib.util.find_spec("triton") is not None and (
        kind == "cuda" or (kind == "cpu" and interpreted and triton_interpreted())
    ):
        out.append("triton")
    return tuple(b for b in BACKENDS if b in out)


def sizes(op: str, device="cpu") -> tuple[tuple[int, int], ...]:
    """The (B, D) sizes ``op`` is timed at on ``device``."""
    kind = "latent" if op in LATENT_OPS else "data"
    return SIZES[kind] + (GPU_SIZES[kind] if torch.device(device).type == "cuda" else ())


def draw_base(base: str, shape, generator: torch.Generator, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Draws from the standard member of a location-scale family (BASES), by the constructions of
    vaebench.families.location_scale: N(0, 1); Laplace(0, 1) = -sign(v) log1p(-2|v|), v = u - 1/2;
    Logistic(0, 1) = log u - log1p(-u); Student's t(STUDENT_T_DF) = n / sqrt(chi2/df); U(-1, 1) = 2u - 1;
    Triangular(-1, 0, 1) = u1 - u2. u ~ U(0, 1) is kept off 0 and 1 (as families.base.uniform)."""
    tiny = torch.finfo(dtype).eps / 2

    def u():
        return torch.rand(shape, generator=generator, dtype=dtype, device=device).clamp(tiny, 1 - tiny)

    def n():
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)

    if base == "gaussian":
        return n()
    if base == "laplace":
        v = u() - 0.5
        return -torch.sign(v) * torch.log1p(-2 * v.abs())
    if base == "logistic":
        w = u()
        return torch.log(w) - torch.log1p(-w)
    if base == "student-t":
        num, chi2 = n(), sum(n().square() for _ in range(STUDENT_T_DF))
        return num * torch.rsqrt(chi2 / STUDENT_T_DF)
    if base == "uniform":
        return 2 * u() - 1
    if base == "triangular":
        return u() - u()
    raise ValueError(f"unknown base {base!r}; choose one of {', '.join(BASES)}")


def make_inputs(
    op: str,
    shape,
    dtype=torch.float32,
    device="cpu",
    *,
    seed: int = 0,
    special: bool = False,
    requires_grad: bool = False,
    base: str = DEFAULT_BASE,
) -> dict[str, torch.Tensor]:
    """``op``'s inputs by name, drawn from ``seed``: mu, eps ~ N(0, 1); logvar ~ N(0, 4);
    logits ~ N(0, 16) with Bernoulli(0.3) targets; the Gaussian likelihood's mean and x
    ~ U(0, 1) and logvar ~ N(0, 1); location_scale_rsample's loc ~ N(0, 1), raw_scale ~ N(0, 4)
    and eps from the standard ``base`` (BASES, draw_base). ``special`` puts edge values in:
    logits at +-100, the log-variance (and raw_scale) at and beyond its clamp, 0 and 1e-7.
    ``requires_grad``: on the inputs that get a gradient (INPUTS)."""
    device = torch.device(device)
    names, grads = INPUTS[op]
    g = torch.Generator(device=device).manual_seed(seed)
    draw_dtype = torch.float64 if dtype == torch.float64 else torch.float32

    def randn(scale=1.0):
        return torch.randn(shape, generator=g, dtype=draw_dtype, device=device) * scale

    def rand():
        return torch.rand(shape, generator=g, dtype=draw_dtype, device=device)

    if op == "bernoulli_log_likelihood":
        t = {"logits": randn(4.0), "x": (rand() < 0.3).to(draw_dtype)}
        if special:
            flat = t["logits"].view(-1)
            flat[0::4], flat[1::4] = 100.0, -100.0
    elif op == "gaussian_log_likelihood":
        t = {"mean": rand(), "logvar": randn(), "x": rand()}
    elif op == "location_scale_rsample":
        t = {"loc": randn(), "raw_scale": randn(2.0), "eps": draw_base(base, shape, g, draw_dtype, device)}
    else:
        t = {"mu": randn(), "logvar": randn(2.0), "eps": randn()}
    for name in ("logvar", "raw_scale"):
        if special and name in t:
            _edges(t[name])
    return {n: t[n].to(dtype).requires_grad_(requires_grad and n in grads) for n in names}


def _edges(lv: torch.Tensor) -> None:
    flat = lv.view(-1)
    vals = [LOGVAR_MIN, LOGVAR_MAX, LOGVAR_MIN - 5, LOGVAR_MAX + 5, 0.0, 1e-7]
    for i, v in enumerate(vals):
        flat[i :: len(vals) * 2] = v
