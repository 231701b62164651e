"""Plain helpers the test modules share (functions they call, constants): a synthetic data set and
config for quick runs of the training loop, reading metrics, interrupting a run, the command line.

The shared fixtures (the tiny trained runs, fake training, ops validation) are in conftest.py."""

from __future__ import annotations

import csv

import torch

from vaebench.cli import main
from vaebench.config import RunConfig
from vaebench.data import Dataset
from vaebench.train import Trainer

# Figure 2's config, cut to two MNIST runs of 1,000 samples (nz 3, AEVB and wake-sleep)
TOY = (
    "[budgets.quick]\nsamples = 1000\n[defaults]\nfirst_eval = 1000\n[datasets.mnist]\nhidden = 8\nnz = [3]\n"
    "[algorithms.aevb]\nlr = 0.02\n[algorithms.wake-sleep]\nlr = 0.01\n"
)


def tiny_dataset(n_train=600, n_test=200, dim=12, seed=0):
    """A small Bernoulli-mean data set with structure (two near-binary prototypes plus noise)."""
    g = torch.Generator().manual_seed(seed)
    protos = 0.05 + 0.9 * (torch.rand(2, dim, generator=g) > 0.5).float()

    def draw(n):
        which = torch.randint(0, 2, (n,), generator=g)
        return (protos[which] + 0.1 * torch.randn(n, dim, generator=g)).clamp(0, 1).contiguous()

    return Dataset(
        name="mnist",
        train=draw(n_train),
        test=draw(n_test),
        likelihood="bernoulli",
        image_shape=(3, 4),
        binarize="none",
        checksums={},
        source="synthetic",
        split="synthetic",
    )


def tiny_config(**kw):
    base = dict(nz=2, hidden=16, samples=6000, lr=0.1, first_eval=1000, evals_per_decade=4)
    return RunConfig(**{**base, **kw})


def read_metrics(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def interrupt_at(monkeypatch, n: int):
    """Make Trainer.step raise KeyboardInterrupt at its n-th call; returns the undo."""
    original, calls = Trainer.step, {"n": 0}

    def step(self):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "step", step)
    return lambda: monkeypatch.setattr(Trainer, "step", original)


def run_cli(capsys, *argv):
    """`vaebench *argv` (paths welcome): its exit status, stdout and stderr."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err
