"""Images restored per second by the samplers of `vaebench restore`, per backend of vaebench.ops.

MNIST's model size (784-500-20, a random model of the paper's initialisation scale), bottom-half
inpainting, one chain per image, 100 images at a time. Each round runs 10 transitions; the
reported rate is for the command's default of 200 transitions per image (100 burn-in + 100
kept): images/s = 100 / (time per round * 20). Run with `nox -s bench` (or
`pytest benchmarks/test_bench_restore.py --benchmark-enable -o addopts=`). Reported in
`extra_info`, never asserted.
"""

import pytest
import torch

from vaebench import ops
from vaebench.models import build_model
from vaebench.uses.corruption import Inpaint
from vaebench.uses.samplers import sample_posterior

N_IMAGES = 100
TRANSITIONS = 10
DEFAULT_TRANSITIONS = 200


def _backend_available(name):
    if name == "eager":
        return True
    try:
        ops.set_default_backend(name)
        ops.bernoulli_log_likelihood(torch.zeros(2, 3), torch.zeros(2, 3))
        ops.reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
        return True
    except Exception:  # noqa: BLE001 - a backend that cannot run here is skipped
        return False
    finally:
        ops.set_default_backend("eager")


@pytest.mark.parametrize("method", ["mwg", "pseudo-gibbs", "hmc"])
@pytest.mark.parametrize("backend", ["eager", "numba", "compile"])
def test_images_restored_per_second(benchmark, backend, method):
    if not _backend_available(backend):
        pytest.skip(f"backend {backend} cannot run here")
    threads = torch.get_num_threads()
    ops.set_default_backend(backend)
    try:
        if backend == "numba":  # numba's parallel kernels use as many threads as torch, not every core
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        gen = torch.Generator().manual_seed(0)
        model = build_model(784, 20, 500, "bernoulli", init_std=0.05, generator=gen).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        corr = Inpaint("bernoulli", (28, 28), "bottom")
        y, truth = corr.corrupt(torch.rand(N_IMAGES, 784, generator=gen), gen)

        def restore():
            sample_posterior(
                model,
                corr,
                y,
                truth,
                method=method,
                burn_in=TRANSITIONS // 2,
                samples=TRANSITIONS // 2,
                generator=gen,
                n_prior=10,
            )

        restore()  # warm-up (JIT, allocator)
        torch.set_num_threads(threads)  # an OpenMP threading layer may have changed it
        benchmark.pedantic(restore, rounds=5, iterations=1)
        per_s = N_IMAGES / (benchmark.stats.stats.median * DEFAULT_TRANSITIONS / TRANSITIONS)
        benchmark.extra_info["images_per_s"] = round(per_s, 1)
        benchmark.extra_info["threads"] = threads
        print(
            f"\n{method} on {backend}: {per_s:,.1f} images/s restored (784-500-20, {DEFAULT_TRANSITIONS} "
            f"transitions per image, {threads} threads)"
        )
    finally:
        ops.set_default_backend("eager")
