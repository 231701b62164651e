"""End-to-end training throughput at the paper's MNIST size (784-500-20, M = 100), per backend.

Run with `nox -s bench` (or `pytest benchmarks/test_bench_training.py --benchmark-enable -o addopts=`).
The target (issue 3): 30,000 training samples/s or more on a 2-core CPU with eager PyTorch;
`--backend numba` not slower than eager. Reported as samples/s in `extra_info`, never asserted.
"""

import pytest
import torch

from vaebench import ops
from vaebench.algorithms.aevb import AEVB
from vaebench.models import build_model
from vaebench.ops_catalog import available_backends

STEPS = 50


@pytest.mark.parametrize("backend", ["eager", "numba"])
def test_aevb_training_throughput(benchmark, backend):
    if backend not in available_backends("cpu", interpreted=False):
        pytest.skip(f"backend {backend} cannot run here")
    ops.set_default_backend(backend)
    try:
        gen = torch.Generator().manual_seed(0)
        model = build_model(784, 20, 500, "bernoulli", generator=gen)
        algo = AEVB(model, lr=0.02, n_train=60_000)
        data = torch.rand(STEPS, 100, 784, generator=gen)
        for x in data[:3]:  # warm-up (JIT, allocator)
            algo.step(x, gen)

        def steps():
            for x in data:
                algo.step(x, gen)

        benchmark.pedantic(steps, rounds=7, iterations=1)
        if benchmark.stats is None:  # --benchmark-disable: ran once, as a smoke test
            return
        per_s = STEPS * 100 / benchmark.stats.stats.median
        benchmark.extra_info["samples_per_s"] = round(per_s)
        benchmark.extra_info["threads"] = torch.get_num_threads()
        print(f"\n{backend}: {per_s:,.0f} training samples/s (784-500-20, M=100, {torch.get_num_threads()} threads)")
    finally:
        ops.set_default_backend("eager")
