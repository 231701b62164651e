"""asv suite: every op x backend x size, forward and forward+backward, plus peak memory.

Ops, backends, sizes and inputs come from vaebench.ops_catalog, the calls from
vaebench.bench.make_call (as for ``vaebench bench`` and the pytest-benchmark suite).
Run from the repository root: ``asv run`` (see asv.conf.json), ``asv publish``
then ``asv preview`` for the HTML report. Speed-ups against eager are ratios of
these timings within one run (``asv compare`` or ``vaebench bench``)."""

from __future__ import annotations

from vaebench.bench import make_call, parse_size
from vaebench.ops_catalog import BACKENDS, DATA_OPS, LATENT_OPS, SIZES, available_backends


class _Op:
    param_names = ["op", "backend", "size"]
    timeout = 300
    number = 0  # let asv choose
    warmup_time = 1.0

    def setup(self, op, backend, size):
        if backend not in available_backends("cpu", interpreted=False):
            raise NotImplementedError  # asv: skipped
        B, D = parse_size(size)
        self.fwd = make_call(op, backend, "fwd", B, D)
        self.fwdbwd = make_call(op, backend, "fwdbwd", B, D)
        self.fwd()  # JIT / compile outside the timing
        self.fwdbwd()

    def time_forward(self, op, backend, size):
        self.fwd()

    def time_forward_backward(self, op, backend, size):
        self.fwdbwd()

    def peakmem_forward_backward(self, op, backend, size):
        self.fwdbwd()


def _labels(kind):
    return [f"{B}x{D}" for B, D in SIZES[kind]]


class LatentOps(_Op):
    params = [list(LATENT_OPS), list(BACKENDS), _labels("latent")]


class DataOps(_Op):
    params = [list(DATA_OPS), list(BACKENDS), _labels("data")]
