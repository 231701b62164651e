"""A tiny trained MNIST run for the tests of the commands that load one (evaluate, infer,
restore); the test is skipped where MNIST is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaebench.config import RunConfig
from vaebench.errors import DataError

# a few seconds of AEVB on 300 MNIST points: enough for the commands to have something to load
TINY = dict(nz=2, hidden=20, samples=3000, lr=0.1, n_train=300, first_eval=1000, evals_per_decade=1,
            lr_trial_samples=100)


def train_tiny_mnist_run(out: Path, **settings) -> Path:
    """Train ``RunConfig(**TINY, **settings)`` into ``out`` and return ``out`` (a skip without MNIST)."""
    from vaebench.train import train

    cfg = RunConfig(**{**TINY, **settings})
    try:
        train(cfg, out, progress=False)
    except DataError as exc:  # pragma: no cover - MNIST not installed
        pytest.skip(f"MNIST not available: {exc}")
    return out
