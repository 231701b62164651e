"""pytest-benchmark suite (``nox -s bench``): every op x backend x size, forward and
forward+backward. Speed is reported as a ratio against eager within the same run
(group by op/size/mode; compare the medians); targets are reported, never asserted.
Ops, backends, sizes and inputs come from vaebench.ops_catalog, the calls from
vaebench.bench.make_call."""

from __future__ import annotations

import torch

from vaebench.bench import MODES, make_call, parse_size
from vaebench.ops_catalog import BACKENDS, TENSOR_OPS, available_backends, sizes

try:  # asv imports every module of benchmarks/ in an environment without pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CASES = [(op, f"{B}x{D}") for op in TENSOR_OPS for B, D in sizes(op)]


def _parametrize(f):
    if pytest is None:
        return f
    f = pytest.mark.parametrize("backend", BACKENDS)(f)
    f = pytest.mark.parametrize("mode", MODES)(f)
    return pytest.mark.parametrize("op,size", CASES)(f)


@_parametrize
def test_op(benchmark, op, size, mode, backend):
    if backend not in available_backends(DEVICE, interpreted=False):
        pytest.skip(f"{backend} does not run on {DEVICE} here")
    call = make_call(op, backend, mode, *parse_size(size), DEVICE)
    benchmark.group = f"{op} {size} {mode}"
    benchmark.extra_info.update(op=op, size=size, mode=mode, backend=backend, device=DEVICE)
    call()  # JIT / compile before timing
    benchmark.pedantic(call, rounds=15, iterations=1, warmup_rounds=2)
