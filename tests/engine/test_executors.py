"""vaebench.engine.executors: the choice of executor and its errors, the files a worker without a shared
file system sends back, and Ray (an embedded instance of 2 CPUs): the same numbers as the local
executor, a worker killed by SIGKILL mid-run retried and its run resumed bit-identically, a
run's own error reported once, and an interrupted driver cancelling the runs still going."""

import socket
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import TOY
from vaebench.cli import main
from vaebench.config import RunConfig
from vaebench.engine import executors
from vaebench.engine.runs_many import Board, run_many
from vaebench.errors import TrainingDiverged, VaebenchError
from vaebench.runs import LOCK, RunFolder

KILL_AT = 3000  # samples: the first worker dies at its first checkpoint from here on


def tiny(**keys) -> RunConfig:
    """A run of seconds: MNIST, 8 hidden units, a fixed step size, evaluations from 1,000 samples."""
    return RunConfig(
        **{"nz": 3, "hidden": 8, "n_train": 2000, "samples": 10_000, "first_eval": 1000, "lr": 0.02, **keys}
    )


@pytest.fixture(scope="module")
def mnist_here():
    from vaebench.data import load_dataset

    try:
        load_dataset("mnist", None, binarize="none", n_train=None, seed=0)
    except Exception as exc:  # no wheel, no cache and no network
        pytest.skip(f"MNIST not available: {exc}")


@pytest.fixture(scope="module")
def ray_instance(mnist_here):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        yield ray
    finally:
        ray.shutdown()


def same_run(a: Path, b: Path) -> None:
    """Two run folders hold the same run: metrics (but wall times), final bounds, and the
    checkpoint's parameters, optimiser and random states, bit for bit."""
    ma, mb = RunFolder(a).read_metrics().drop(columns="wall_s"), RunFolder(b).read_metrics().drop(columns="wall_s")
    assert ma.equals(mb) and len(ma) > 4
    assert RunFolder(a).read_info()["final"] == RunFolder(b).read_info()["final"]
    ta, tb = (RunFolder(p).load_checkpoint()["trainer"] for p in (a, b))
    assert ta["samples_seen"] == tb["samples_seen"] and identical(ta, tb)


def identical(a, b) -> bool:
    """Nested dicts, lists and tensors equal bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(identical, a, b))
    return a == b


# ---- choosing an executor -------------------------------------------------------------------------


def test_make_checks_the_options_of_each_executor():
    assert isinstance(executors.make("local", jobs=2, threads=1), executors.Local)
    assert executors.make("local", jobs=2, threads=1).describe() == "2 at a time, 1 torch thread each"
    with pytest.raises(VaebenchError, match="unknown executor"):
        executors.make("slurm")
    with pytest.raises(VaebenchError, match="--address and --gpus-per-run go with --executor ray"):
        executors.make("local", address="10.0.0.1:6379")
    with pytest.raises(VaebenchError, match="cpu or cuda"):
        executors.make("ray", device="cuda:1")
    with pytest.raises(VaebenchError, match="--gpus-per-run goes with --device cuda"):
        executors.make("ray", gpus_per_run=0.5)
    pytest.importorskip("ray")
    ray = executors.make("ray", jobs=3, device="cuda")
    assert (ray.threads, ray.gpus) == (1, executors.GPUS_PER_RUN) and "local Ray instance of 3 CPUs" in ray.describe()
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        with pytest.raises(VaebenchError, match="nothing answers at 127.0.0.1"):
            executors.make("ray", address=f"127.0.0.1:{closed.getsockname()[1]}")


def test_without_ray_the_ray_executor_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    with pytest.raises(VaebenchError, match=r'pip install "vaebench\[cluster\]"'):
        executors.make("ray")
    toy = tmp_path / "toy.toml"
    toy.write_text(TOY)
    assert (
        main(["reproduce", "figure2", "--config", str(toy), "--out", str(tmp_path / "out"), "--executor", "ray"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "vaebench[cluster]"' in err
    assert not (tmp_path / "out").exists()


def test_a_worker_without_the_drivers_folder_sends_the_run_back(tmp_path):
    """No shared file system: the task trains into the same path on its node and returns the
    run's files (not its lock), which the driver writes into its own run folder."""

    def fake_task(cfg_dict, out, threads):
        folder = RunFolder(out)
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.write_info({"config": cfg_dict, "status": "finished"})
        folder.save_snapshot(1000, {"w": torch.ones(2)})
        (folder.path / LOCK).write_text("{}")

    node = tmp_path / "node" / "run"
    files = executors.run_task(fake_task, {"seed": 0}, str(node), 1)
    assert set(files) == {"run.json", "snapshots/params_000000001000.pt"}
    executors.unpack_folder(tmp_path / "driver" / "run", files)
    assert RunFolder(tmp_path / "driver" / "run").read_info()["status"] == "finished"
    assert (tmp_path / "driver" / "run" / "snapshots" / "params_000000001000.pt").read_bytes() == (
        node / "snapshots" / "params_000000001000.pt"
    ).read_bytes()
    assert executors.run_task(fake_task, {"seed": 0}, str(node), 1) is None  # the folder is there: shared


# ---- Ray -------------------------------------------------------------------------------------------


def test_a_tiny_sweep_on_ray_gives_the_same_numbers_as_the_local_executor(
    tmp_path, ray_instance, sweep_command, capsys
):
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(
        "seeds = [0, 1]\n[base]\nnz = 3\nhidden = 8\nn_train = 2000\nsamples = 10000\n"
        'first_eval = 1000\nlr = 0.02\n[grid]\nalgorithm = ["aevb", "wake-sleep"]\n'
    )
    for executor in ("local", "ray"):  # local: 2 processes of vaebench's pool
        assert (
            main(
                [
                    "sweep",
                    str(sweep),
                    "--out",
                    str(tmp_path / executor),
                    "--executor",
                    executor,
                    "--jobs",
                    "2",
                    "--threads",
                    "1",
                    "--no-progress",
                ]
            )
            == 0
        )
    assert "(Ray tasks on the Ray instance this process has started, 1 CPU each)" in capsys.readouterr().out
    for name in (
        "algorithm-aevb_seed0",
        "algorithm-aevb_seed1",
        "algorithm-wake-sleep_seed0",
        "algorithm-wake-sleep_seed1",
    ):
        same_run(tmp_path / "local" / name, tmp_path / "ray" / name)
        assert RunFolder(tmp_path / "ray" / name).read_info()["machine"]["torch_threads"] == 1
    tables = [(tmp_path / executor / "sweep_table.csv").read_text() for executor in ("local", "ray")]
    assert tables[0] == tables[1]


def test_a_worker_killed_mid_run_is_retried_and_the_run_resumes_bit_identically(tmp_path, ray_instance):
    def killed_once(cfg_dict, out, threads):
        """The first attempt dies by SIGKILL right after a checkpoint at KILL_AT samples or later;
        the second records where it resumes from."""
        import os
        import signal
        from pathlib import Path

        from vaebench.engine.workers import train_task
        from vaebench.runs import RunFolder

        marker = Path(out).parent / "killed_at"
        if not marker.exists():
            save = RunFolder.save_checkpoint

            def save_then_die(self, state):
                save(self, state)
                if state["trainer"]["samples_seen"] >= KILL_AT:
                    marker.write_text(str(state["trainer"]["samples_seen"]))
                    os.kill(os.getpid(), signal.SIGKILL)

            RunFolder.save_checkpoint = save_then_die
        else:
            seen = RunFolder(out).load_checkpoint()["trainer"]["samples_seen"]
            (Path(out).parent / "resumed_from").write_text(str(seen))
        return train_task(cfg_dict, out, threads)

    cfg = tiny(checkpoint_every_s=0.05)  # wall-clock checkpoints between the evaluations too
    run_many([(cfg, tmp_path / "uninterrupted" / "run")], jobs=1, threads=1, progress=False)
    run_many([(cfg, tmp_path / "killed" / "run")], progress=False, executor=executors.Ray(threads=1, task=killed_once))
    killed_at = int((tmp_path / "killed" / "killed_at").read_text())
    assert KILL_AT <= killed_at < cfg.samples
    assert int((tmp_path / "killed" / "resumed_from").read_text()) == killed_at  # resumed, not restarted
    same_run(tmp_path / "uninterrupted" / "run", tmp_path / "killed" / "run")
    assert not (tmp_path / "killed" / "run" / LOCK).exists()  # the dead worker's lock was taken over


def test_a_runs_own_error_is_reported_once_not_retried(tmp_path, ray_instance):
    def diverges(cfg_dict, out, threads):
        from pathlib import Path

        from vaebench.errors import TrainingDiverged

        with open(Path(out).parent / "attempts", "a") as f:
            f.write("1\n")
        raise TrainingDiverged("the training objective became nan at 500 samples")

    with pytest.raises(TrainingDiverged, match="became nan"):
        run_many([(tiny(), tmp_path / "run")], progress=False, executor=executors.Ray(threads=1, task=diverges))
    assert (tmp_path / "attempts").read_text() == "1\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_on_the_driver_cancels_the_runs_still_going(tmp_path, ray_instance, monkeypatch):
    """One run finishes, the other would train for minutes: an interrupt on the driver stops
    that one's worker, and the finished run stays whole."""

    def slow_or_not(cfg_dict, out, threads):
        import os
        import time
        from pathlib import Path

        from vaebench.engine.workers import train_task

        if Path(out).name == "slow":
            (Path(out).parent / "slow.pid").write_text(str(os.getpid()))
            time.sleep(600)
        return train_task(cfg_dict, out, threads)

    def interrupt(self, out, error):
        raise KeyboardInterrupt

    monkeypatch.setattr(Board, "done", interrupt)
    cfg = tiny(samples=2000)
    with pytest.raises(KeyboardInterrupt):
        run_many(
            [(cfg, tmp_path / "slow"), (cfg, tmp_path / "quick")],
            progress=False,
            executor=executors.Ray(threads=1, task=slow_or_not),
        )
    assert RunFolder(tmp_path / "quick").is_finished(cfg)
    pid = int((tmp_path / "slow.pid").read_text())
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), (
        "the cancelled run's worker still runs"
    )
