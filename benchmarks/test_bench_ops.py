"""pytest-benchmark suite (``nox -s bench``): every op x backend x size, forward and
forward+backward. Speed is reported as a ratio against eager within the same run
(group by op/size/mode; compare the medians); targets are reported, never asserted."""

from __future__ import annotations

import torch

from benchmarks._cases import DATA_OPS, LATENT_OPS, SIZES, available_backends, fwd_bwd, make

try:  # asv imports every module of benchmarks/ in an environment without pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

CASES = [(op, size) for op in LATENT_OPS for size in SIZES["latent"]] + \
        [(op, size) for op in DATA_OPS for size in SIZES["data"]]


def _device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def _parametrize(f):
    if pytest is None:
        return f
    f = pytest.mark.parametrize("backend", ["eager", "numba", "triton", "compile"])(f)
    f = pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])(f)
    return pytest.mark.parametrize("op,size", CASES)(f)


@_parametrize
def test_op(benchmark, op, size, mode, backend):
    from vaebench import ops
    device = _device()
    if backend not in available_backends(device):
        pytest.skip(f"{backend} does not run on {device} here")
    fn = getattr(ops, op)
    args, leaves = make(op, size, device)
    benchmark.group = f"{op} {size} {mode}"
    benchmark.extra_info.update(op=op, size=size, mode=mode, backend=backend, device=device)
    fwd_bwd(fn, args, leaves, backend)  # JIT / compile before timing

    if mode == "fwd":
        def call():
            with torch.no_grad():
                fn(*args, backend=backend)
    else:
        def call():
            fwd_bwd(fn, args, leaves, backend)
    benchmark.pedantic(call, rounds=15, iterations=1, warmup_rounds=2)
