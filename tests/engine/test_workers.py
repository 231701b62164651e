"""vaebench.engine.workers and runs_many: worker processes die with their parent; threads per run; failures."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from vaebench.config import RunConfig
from vaebench.engine.runs_many import Board, failure_summary, run_many
from vaebench.errors import VaebenchError

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_stop_when_the_reproduce_process_is_killed(tmp_path):
    """A parent like `vaebench reproduce` runs a long job in runner's worker pool; SIGKILL on the
    parent (no cleanup runs) must not leave the worker training as an orphan."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent("""
        import os, sys, time
        from vaebench.engine.workers import worker_pool

        def train_forever(pid_file):
            with open(pid_file + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.replace(pid_file + ".tmp", pid_file)
            time.sleep(600)

        if __name__ == "__main__":
            with worker_pool(1) as pool:
                pool.submit(train_forever, sys.argv[1]).result()
    """)
    )
    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen(
        [sys.executable, str(script), str(pid_file)], cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists():
            assert parent.poll() is None, "the parent exited early"
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.1)
        worker = int(pid_file.read_text())
        assert worker != parent.pid and _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        gone = not _alive(worker)
        if not gone:
            os.kill(worker, signal.SIGKILL)
        assert gone, "the worker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_stop_with_parent_is_harmless_while_the_parent_lives():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, time; from vaebench.engine.workers import stop_with_parent; "
            "stop_with_parent(os.getppid()); time.sleep(1.2); print('alive')",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0 and out.stdout.strip() == "alive", out.stderr


@pytest.fixture
def fake_train(monkeypatch):
    import vaebench.train

    calls = []

    def train(cfg, out, *, resume=False, overwrite=False, progress=True, data=None):
        calls.append((Path(out).name, torch.get_num_threads()))
        if Path(out).name.startswith("bad"):
            raise VaebenchError(f"{Path(out).name} failed")
        return {}

    monkeypatch.setattr(vaebench.train, "train", train)
    return calls


def test_each_run_gets_the_threads_and_they_are_restored(tmp_path, fake_train):
    before = torch.get_num_threads()
    cfg = RunConfig(samples=1000)
    run_many([(cfg, tmp_path / "a"), (cfg, tmp_path / "b")], jobs=1, threads=3, progress=False)
    assert fake_train == [("a", 3), ("b", 3)] and torch.get_num_threads() == before


def test_run_many_reports_every_failure_after_running_the_others(tmp_path, fake_train):
    cfg = RunConfig(samples=1000)
    with pytest.raises(VaebenchError, match="2 of 3 runs failed: bad1: .*; bad2: "):
        run_many(
            [(cfg, tmp_path / "bad1"), (cfg, tmp_path / "ok"), (cfg, tmp_path / "bad2")],
            jobs=1,
            threads=1,
            progress=False,
        )
    assert [name for name, _ in fake_train] == ["bad1", "ok", "bad2"]
    with pytest.raises(VaebenchError, match="at least 1"):
        run_many([(cfg, tmp_path / "ok")], jobs=1, threads=0)


def test_the_same_error_of_many_runs_is_reported_once():
    failed = {Path(f"r{i}"): VaebenchError("MNIST not found") for i in range(30)}
    failed[Path("other")] = ValueError("bad lr")
    text = failure_summary(failed)
    assert text.count("MNIST not found") == 1 and "30 runs (r0, ...): VaebenchError: MNIST not found" in text
    assert "other: ValueError: bad lr" in text


def test_the_driver_shows_one_display_and_a_table_of_the_runs(tmp_path, fake_train, capsys):
    cfg = RunConfig(samples=1000)
    with pytest.raises(VaebenchError, match="bad1 failed"):
        run_many([(cfg, tmp_path / "ok"), (cfg, tmp_path / "bad1")], jobs=1, threads=1, progress=True)
    out = capsys.readouterr()
    assert "| ok | not started | 0 |" in out.out and "| bad1 | failed: VaebenchError |" in out.out
    assert "2/2" in out.err and "failed 1" in out.err


def test_the_display_counts_running_runs_and_samples_per_second(tmp_path):
    from vaebench.runs import LOCK, RunFolder

    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_info({"config": {}, "status": "running", "samples_seen": 1000})
    board = Board([folder.path, tmp_path / "other"])
    folder.write_info({"config": {}, "status": "running", "samples_seen": 6000})
    (folder.path / LOCK).write_text("{}")
    board.refresh(force=True)
    running, failed, rate = board.bar.postfix.split(", ")
    assert (running, failed) == ("running 1", "failed 0") and float(rate.split()[0].replace(",", "")) > 0
    board.done(folder.path, VaebenchError("x"))
    assert board.bar.postfix.startswith("running 0, failed 1") and board.bar.n == 1
    board.close()


def test_a_run_trained_again_from_committed_results_counts_from_zero(tmp_path):
    """A run.json without parameters (results in a clean clone) is trained from the start: the
    display counts its samples from 0, not from the committed run's final count."""
    from vaebench.runs import RunFolder

    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.write_info({"config": {}, "status": "finished", "samples_seen": 1_000_000})
    board = Board([folder.path])

    def rate():
        board.refresh(force=True)
        return float(board.bar.postfix.split(", ")[2].split()[0].replace(",", ""))

    assert rate() == 0  # the committed file, not yet rewritten by the new run: no progress
    folder.write_info({"config": {}, "status": "running", "samples_seen": 5000})
    assert rate() > 0
    board.close()
