"""asv suite: every op x backend x size, forward and forward+backward, plus peak memory.

Run from the repository root: ``asv run`` (see asv.conf.json), ``asv publish``
then ``asv preview`` for the HTML report. Speed-ups against eager are ratios of
these timings within one run (``asv compare`` or ``vaebench bench``)."""

from __future__ import annotations

import torch

from benchmarks._cases import DATA_OPS, LATENT_OPS, SIZES, available_backends, fwd_bwd, make


class _Op:
    ops: tuple = ()
    kind = "latent"
    param_names = ["op", "backend", "size"]
    timeout = 300
    number = 0  # let asv choose
    warmup_time = 1.0

    def setup(self, op, backend, size):
        from vaebench import ops
        if backend not in available_backends():
            raise NotImplementedError  # asv: skipped
        self.fn = getattr(ops, op)
        self.args, self.leaves = make(op, size)
        self.backend = backend
        fwd_bwd(self.fn, self.args, self.leaves, backend)  # JIT / compile outside the timing
        with torch.no_grad():
            self.fn(*self.args, backend=backend)

    def time_forward(self, op, backend, size):
        with torch.no_grad():
            self.fn(*self.args, backend=self.backend)

    def time_forward_backward(self, op, backend, size):
        fwd_bwd(self.fn, self.args, self.leaves, self.backend)

    def peakmem_forward_backward(self, op, backend, size):
        fwd_bwd(self.fn, self.args, self.leaves, self.backend)


class LatentOps(_Op):
    params = [list(LATENT_OPS), ["eager", "numba", "compile"], list(SIZES["latent"])]


class DataOps(_Op):
    params = [list(DATA_OPS), ["eager", "numba", "compile"], list(SIZES["data"])]
