"""The hot-path ops in one place for the tests, the benchmarks (pytest-benchmark and asv)
and ``vaebench bench``: each op's inputs, the backends that run on a device here, the
sizes, and how the inputs are made."""

from __future__ import annotations

import importlib.util

import torch

from vaebench.ops import BACKENDS, LOGVAR_MAX, LOGVAR_MIN, OPS
from vaebench_kernels._backend import triton_interpreted

__all__ = ["BACKENDS", "OPS", "INPUTS", "TENSOR_OPS", "LATENT_OPS", "DATA_OPS", "SIZES", "GPU_SIZES",
           "TEST_SHAPES", "available_backends", "sizes", "make_inputs"]

# each op's tensor inputs (in call order) and those that get a gradient; the sixth op,
# reparameterize_seeded(mu, logvar, seed), has tests of its own and is not timed
INPUTS = {
    "reparameterize": (("mu", "logvar", "eps"), ("mu", "logvar")),
    "gaussian_kl": (("mu", "logvar"), ("mu", "logvar")),
    "encoder_head": (("mu", "logvar", "eps"), ("mu", "logvar")),
    "bernoulli_log_likelihood": (("logits", "x"), ("logits",)),
    "gaussian_log_likelihood": (("mean", "logvar", "x"), ("mean", "logvar")),
}
TENSOR_OPS = tuple(INPUTS)
LATENT_OPS = ("reparameterize", "gaussian_kl", "encoder_head")        # B x N_z
DATA_OPS = ("bernoulli_log_likelihood", "gaussian_log_likelihood")    # B x D of the data
# timed sizes (B, D): the paper's minibatch and an evaluation batch; on a GPU one large size more
SIZES = {"latent": ((100, 20), (10000, 20)), "data": ((100, 784), (10000, 784))}
GPU_SIZES = {"latent": ((1_000_000, 20),), "data": ((100_000, 784),)}
# tested shapes: one element, a long odd row, many short rows, the evaluation size
TEST_SHAPES = ((1, 1), (3, 1023), (257, 20), (10000, 784))


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
            kind == "cuda" or (kind == "cpu" and interpreted and triton_interpreted())):
        out.append("triton")
    return tuple(b for b in BACKENDS if b in out)


def sizes(op: str, device="cpu") -> tuple[tuple[int, int], ...]:
    """The (B, D) sizes ``op`` is timed at on ``device``."""
    kind = "latent" if op in LATENT_OPS else "data"
    return SIZES[kind] + (GPU_SIZES[kind] if torch.device(device).type == "cuda" else ())


def make_inputs(op: str, shape, dtype=torch.float32, device="cpu", *, seed: int = 0, special: bool = False,
                requires_grad: bool = False) -> dict[str, torch.Tensor]:
    """``op``'s inputs by name, drawn from ``seed``: mu, eps ~ N(0, 1); logvar ~ N(0, 4);
    logits ~ N(0, 16) with Bernoulli(0.3) targets; the Gaussian likelihood's mean and x
    ~ U(0, 1) and logvar ~ N(0, 1). ``special`` puts edge values in: logits at +-100, the
    log-variance at and beyond its clamp, 0 and 1e-7. ``requires_grad``: on the inputs
    that get a gradient (INPUTS)."""
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
    else:
        t = {"mu": randn(), "logvar": randn(2.0), "eps": randn()}
    if special and "logvar" in t:
        _edges(t["logvar"])
    return {n: t[n].to(dtype).requires_grad_(requires_grad and n in grads) for n in names}


def _edges(lv: torch.Tensor) -> None:
    flat = lv.view(-1)
    vals = [LOGVAR_MIN, LOGVAR_MAX, LOGVAR_MIN - 5, LOGVAR_MAX + 5, 0.0, 1e-7]
    for i, v in enumerate(vals):
        flat[i::len(vals) * 2] = v
