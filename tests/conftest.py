"""The fixtures the test modules share (pytest finds them here; no test module imports another).

- ``aevb_run``, ``mcem_run``: a copy, for the test to change as it likes, of the session's tiny
  trained MNIST run (``tiny_mnist_runs``: each algorithm trained once per session, on first use);
- ``finished_run``: a copy in ``tmp_path / "run"`` of the session's finished synthetic run;
- ``trained``: vaebench.train.train replaced by a fake that writes a finished run at once;
- ``sweep_command``: `vaebench sweep` in the CLI;
- ``validation``: the ops' value checks on for the test.

vaebench is imported inside the fixtures, not here (tests/ops/conftest.py sets TRITON_INTERPRET for
the session before any kernel is built).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# a few seconds of training on 200 MNIST points, with a snapshot at every evaluation point: enough for
# the commands that load a run (evaluate, infer, restore) to have something to load; N_z = 2 for the
# quadrature of `vaebench restore`
TINY_MNIST = dict(
    nz=2,
    hidden=10,
    samples=3000,
    lr=0.1,
    n_train=200,
    first_eval=1000,
    evals_per_decade=2,
    lr_trial_samples=100,
    snapshots=True,
)


class TinyMnistRuns:
    """The session's tiny MNIST runs under ``root``, one per algorithm, each trained on its first
    request; a request is skipped where MNIST is not installed."""

    def __init__(self, root: Path):
        self.root = root
        self.runs: dict[str, Path] = {}

    def __call__(self, algorithm: str) -> Path:
        if algorithm not in self.runs:
            from vaebench.config import RunConfig
            from vaebench.errors import DataError
            from vaebench.train import train

            out = self.root / algorithm
            try:
                train(RunConfig(**TINY_MNIST, algorithm=algorithm), out, progress=False)
            except DataError as exc:  # pragma: no cover - MNIST not installed
                shutil.rmtree(out, ignore_errors=True)
                pytest.skip(f"MNIST not available: {exc}")
            except BaseException:
                shutil.rmtree(out, ignore_errors=True)  # a failed training: the next request trains it again
                raise
            self.runs[algorithm] = out
        return self.runs[algorithm]


@pytest.fixture(scope="session")
def tiny_mnist_runs(tmp_path_factory) -> TinyMnistRuns:
    """The session's tiny trained MNIST runs by algorithm; read them only (take ``aevb_run`` or
    ``mcem_run`` to write beside a run)."""
    return TinyMnistRuns(tmp_path_factory.mktemp("tiny_mnist"))


def _copy_of(run: Path, tmp_path_factory) -> Path:
    """A copy of ``run`` under the same name, in a fresh folder of its own."""
    return Path(shutil.copytree(run, tmp_path_factory.mktemp(run.name) / run.name))


@pytest.fixture
def aevb_run(tiny_mnist_runs, tmp_path_factory) -> Path:
    """The tiny AEVB run of the session, copied for this test."""
    return _copy_of(tiny_mnist_runs("aevb"), tmp_path_factory)


@pytest.fixture
def mcem_run(tiny_mnist_runs, tmp_path_factory) -> Path:
    """The tiny MCEM run of the session (no encoder), copied for this test."""
    return _copy_of(tiny_mnist_runs("mcem"), tmp_path_factory)


@pytest.fixture(scope="session")
def finished_run_of_the_session(tmp_path_factory) -> Path:
    """``tiny_config(samples=2000)`` trained on ``tiny_dataset()`` once per session; read it only."""
    from tests.helpers import tiny_config, tiny_dataset
    from vaebench.train import train

    out = tmp_path_factory.mktemp("finished") / "run"
    train(tiny_config(samples=2000), out, data=tiny_dataset(), progress=False)
    return out


@pytest.fixture
def finished_run(finished_run_of_the_session, tmp_path) -> Path:
    """A finished synthetic run in ``tmp_path / "run"`` (a copy of the session's) for the test to change."""
    return Path(shutil.copytree(finished_run_of_the_session, tmp_path / "run"))


@pytest.fixture
def trained(monkeypatch) -> list[dict]:
    """vaebench.train.train replaced: it writes a finished run (two evaluation points) at once
    and records the torch threads it ran with; a run named in ``fail`` raises instead."""
    import torch

    import vaebench.train
    from vaebench.errors import VaebenchError
    from vaebench.runs import RunFolder

    class Calls(list):
        fail = ()

    calls = Calls()

    def train(cfg, out, *, resume=False, overwrite=False, progress=True, data=None):
        folder = RunFolder(out)
        calls.append({"run": folder.name, "threads": torch.get_num_threads(), "resume": resume})
        if folder.name in calls.fail:
            raise VaebenchError(f"{folder.name}: the loss diverged")
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_metrics(
            [
                {
                    "dataset": cfg.dataset,
                    "algorithm": cfg.algorithm,
                    "estimator": cfg.estimator,
                    "nz": cfg.nz,
                    "hidden": cfg.hidden_units,
                    "seed": cfg.seed,
                    "samples_seen": s,
                    "split": split,
                    "lower_bound": -200.0 + s / 1e4 + cfg.seed,
                    "wall_s": 0.1,
                }
                for s in (500, 1000)
                for split in ("train", "test")
            ]
        )
        folder.write_info(
            {
                "config": cfg.to_dict(),
                "status": "finished",
                "samples_seen": cfg.samples,
                "lr": cfg.lr,
                "train_wall_s": 1.5,
                "eval_wall_s": 0.5,
                "machine": {"cpu": "test", "torch_threads": torch.get_num_threads()},
            }
        )
        return {}

    monkeypatch.setattr(vaebench.train, "train", train)
    return calls


@pytest.fixture
def sweep_command(monkeypatch):
    """`vaebench sweep` in the CLI (where the command table does not have it yet)."""
    from vaebench import cli
    from vaebench.cli import sweep

    modules = cli.command_modules()
    if "sweep" not in modules:
        monkeypatch.setattr(cli, "command_modules", lambda: {**modules, "sweep": sweep})
        monkeypatch.setitem(cli.HELP, "sweep", "train a grid of run settings x seeds")


@pytest.fixture
def validation():
    """Value checks on (ops.set_validation) for the test, restored after it."""
    from vaebench import ops

    old = ops.get_validation()
    ops.set_validation(True)
    yield
    ops.set_validation(old)
