"""vaebench.runs, the run folder: one writer per folder (its lock), --overwrite that never loses the
old run, the --out path, the files it reads (checkpoint, run.json, marginal CSVs) and seeds in run
names. The other edges a user hits (training's resume and checkpoints, bad options) are in
test_reliability.py; finished_run: conftest.py."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import one_line, run_cli, tiny_config, tiny_dataset
from vaebench.config import RunConfig
from vaebench.errors import RunLocked, VaebenchError
from vaebench.runs import RunFolder, lock_folder, split_seed, with_seeds
from vaebench.train import Trainer, train


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---- --overwrite never loses the old run (RunFolder.replacing) ------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "frey", "--data-dir", "EMPTY"], "frey_rawface.mat"),
        (["--n-train", "50"], "fewer than one minibatch"),
        (["--device", "foo"], "--device 'foo'"),
    ],
)
def test_overwrite_that_fails_keeps_the_old_run(finished_run, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setenv("VAEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VAEBENCH_FREY_URL", "http://127.0.0.1:9/frey_rawface.mat")
    (tmp_path / "EMPTY").mkdir()
    before = snapshot(finished_run)
    extra = [str(tmp_path / "EMPTY") if a == "EMPTY" else a for a in extra]
    code, _, err = run_cli(
        capsys,
        "train",
        "--out",
        finished_run,
        "--overwrite",
        "--nz",
        "2",
        "--hidden",
        "10",
        "--samples",
        "1000",
        "--lr",
        "0.1",
        "--no-progress",
        *extra,
    )
    assert code == 2 and one_line(err) and message in err, err
    assert snapshot(finished_run) == before
    assert not [p for p in finished_run.iterdir() if p.name.startswith(".")]


def test_overwrite_interrupted_before_first_checkpoint_restores_the_old_run(finished_run, monkeypatch):
    before = snapshot(finished_run)
    monkeypatch.setattr(Trainer, "step", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(samples=3000, seed=1), finished_run, overwrite=True, data=tiny_dataset(), progress=False)
    assert snapshot(finished_run) == before


# ---- one writer per run folder (lock_folder) ------------------------------------------------


def test_a_live_lock_refuses_a_second_writer(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".lock").write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "since": "now"}))
        code, _, err = run_cli(capsys, "train", "--out", out, "--nz", "2", "--samples", "1000", "--no-progress")
        assert code == 2 and one_line(err) and f"PID {sleeper.pid}" in err
        assert not (out / "run.json").exists()
        with pytest.raises(RunLocked):
            with lock_folder(out):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stale_lock_is_taken_over_and_released(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    train(tiny_config(samples=1000), out, data=tiny_dataset(), progress=False)
    assert RunFolder(out).read_info()["status"] == "finished" and not (out / ".lock").exists()


def test_lock_holder_blocks_a_second_in_process_writer(tmp_path):
    with lock_folder(tmp_path / "r", "test"):
        with pytest.raises(RunLocked, match="in use by test"):
            train(tiny_config(samples=1000), tmp_path / "r", data=tiny_dataset(), progress=False)


def test_evaluate_waits_for_no_one_it_refuses_a_locked_run(finished_run, capsys):
    with lock_folder(finished_run, "vaebench train"):
        code, _, err = run_cli(capsys, "evaluate", finished_run, "--n-points", "5")
    assert code == 2 and one_line(err) and "in use by vaebench train" in err, err
    assert not (finished_run / "marginal_hmc.csv").exists()


# ---- --out (check_out_path) -----------------------------------------------------------------


def test_bad_out_paths(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, message in ((a_file, "is a file"), (a_file / "sub", "which is a file"), ("", "--out is empty")):
        code, _, err = run_cli(capsys, "train", "--out", out, "--samples", "1000", "--no-progress")
        assert code == 2 and one_line(err) and message in err, (out, err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_out(tmp_path, capsys):
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    code, _, err = run_cli(capsys, "train", "--out", locked / "r", "--no-progress")
    assert code == 2 and "not writable" in err


# ---- the files it reads: one line naming the file -------------------------------------------


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "truncated or not a torch file"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: torch.save({"weights": torch.zeros(2)}, p), "not a vaebench checkpoint"),
    ],
)
def test_bad_checkpoints_on_resume_and_evaluate(finished_run, capsys, damage, message):
    damage(finished_run / "checkpoint.pt")
    code, _, err = run_cli(capsys, "train", "--out", finished_run, "--resume", "--samples", "3000", "--no-progress")
    assert code == 2 and one_line(err) and message in err, err
    code, _, err = run_cli(capsys, "evaluate", finished_run, "--n-points", "5")
    assert code == 2 and one_line(err) and message in err, err


def test_run_json_that_is_not_an_object(finished_run, capsys):
    (finished_run / "run.json").write_text("[1, 2]\n")
    for argv in (["evaluate", finished_run], ["train", "--out", finished_run, "--resume"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and one_line(err) and "a JSON object expected" in err, err


def test_marginal_csv_missing_a_column(finished_run):
    (finished_run / "marginal_hmc.csv").write_text("run,split\nx,train\n")
    with pytest.raises(VaebenchError, match="lacks the column"):
        RunFolder(finished_run).read_marginal("hmc")


# ---- seeds in run names (with_seeds, split_seed) --------------------------------------------


def test_seeds_name_the_run_folders():
    sweep_runs = [(RunConfig(), Path("OUT/a"))]
    assert with_seeds(sweep_runs, None) == sweep_runs
    ((cfg, out),) = with_seeds(sweep_runs, [7])
    assert (cfg.seed, out.name) == (7, "a")  # one seed: the name as it is
    assert [(c.seed, o.name) for c, o in with_seeds(sweep_runs, [0, 2])] == [(0, "a_seed0"), (2, "a_seed2")]
    assert split_seed("nz-3_seed12") == ("nz-3", 12) and split_seed("nz-3") == ("nz-3", None)
