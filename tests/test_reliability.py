"""What a user hits at the edges: data loss, wrong runs, concurrent writers, bad input.

Each test here failed on the code before the run folder got one owner (vaebench.runs)."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from vaebench.cli import main
from vaebench.errors import RunLocked, TrainingDiverged, VaebenchError
from vaebench.runs import RunFolder, lock_folder
from vaebench.train import Trainer, train

from tests.test_train import interrupt_at, read_metrics, tiny_config, tiny_dataset


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture
def finished_run(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(samples=2000), out, data=tiny_dataset(), progress=False)
    return out


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---- --overwrite never loses the old run ----------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    (["--dataset", "frey", "--data-dir", "EMPTY"], "frey_rawface.mat"),
    (["--n-train", "50"], "fewer than one minibatch"),
    (["--device", "foo"], "--device 'foo'"),
])
def test_overwrite_that_fails_keeps_the_old_run(finished_run, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setenv("VAEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VAEBENCH_FREY_URL", "http://127.0.0.1:9/frey_rawface.mat")
    (tmp_path / "EMPTY").mkdir()
    before = snapshot(finished_run)
    extra = [str(tmp_path / "EMPTY") if a == "EMPTY" else a for a in extra]
    code, _, err = run_cli(capsys, "train", "--out", finished_run, "--overwrite", "--nz", "2", "--hidden", "10",
                           "--samples", "1000", "--lr", "0.1", "--no-progress", *extra)
    assert code == 2 and one_line(err) and message in err, err
    assert snapshot(finished_run) == before
    assert not [p for p in finished_run.iterdir() if p.name.startswith(".")]


def test_overwrite_interrupted_before_first_checkpoint_restores_the_old_run(finished_run, monkeypatch):
    before = snapshot(finished_run)
    monkeypatch.setattr(Trainer, "step", lambda self: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(samples=3000, seed=1), finished_run, overwrite=True, data=tiny_dataset(), progress=False)
    assert snapshot(finished_run) == before


# ---- --resume never invents a run -----------------------------------------------------------

@pytest.mark.parametrize("make", ["missing", "empty"])
def test_resume_with_nothing_to_resume_refuses(tmp_path, capsys, make):
    out = tmp_path / "r"
    if make == "empty":
        out.mkdir()
    code, _, err = run_cli(capsys, "train", "--out", out, "--resume", "--no-progress")
    assert code == 2 and one_line(err) and "nothing to resume" in err
    assert not (out / "run.json").exists()


def test_interrupted_step_size_trial_resumes_with_the_stored_config(tmp_path, monkeypatch):
    data = tiny_dataset()
    cfg = tiny_config(lr="auto", lr_trial_samples=1000, samples=2000)
    whole = train(cfg, tmp_path / "whole", data=data, progress=False)

    undo = interrupt_at(monkeypatch, 15)  # during the second candidate of the trial (10 steps each)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "split", data=data, progress=False)
    undo()
    folder = RunFolder(tmp_path / "split")
    assert folder.read_info()["status"] == "lr-trial" and set(folder.load_trial()["trial"]) == {"0.01"}
    assert folder.read_config().lr == "auto"  # what `--resume` continues with
    resumed = train(folder.read_config(), tmp_path / "split", resume=True, data=data, progress=False)
    assert resumed["lr_trial"] == whole["lr_trial"] and resumed["lr"] == whole["lr"]
    assert read_metrics(tmp_path / "split" / "metrics.csv") == read_metrics(tmp_path / "whole" / "metrics.csv")
    assert not (tmp_path / "split" / "lr_trial.pt").exists()


# ---- one writer per run folder --------------------------------------------------------------

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


# ---- checkpoints: wall clock, divergence, extension -----------------------------------------

def test_wall_clock_checkpoints_resume_bit_identically(tmp_path, monkeypatch):
    data = tiny_dataset()
    cfg = tiny_config(samples=3000)
    train(cfg, tmp_path / "whole", data=data, progress=False)
    timed = tiny_config(samples=3000, checkpoint_every_s=1e-9)  # a checkpoint after every step
    undo = interrupt_at(monkeypatch, 23)  # between the evaluation points 1800 and 3000
    with pytest.raises(KeyboardInterrupt):
        train(timed, tmp_path / "split", data=data, progress=False)
    undo()
    assert RunFolder(tmp_path / "split").load_checkpoint()["trainer"]["samples_seen"] == 2200  # not an eval point
    train(timed, tmp_path / "split", resume=True, data=data, progress=False)
    assert read_metrics(tmp_path / "whole" / "metrics.csv") == read_metrics(tmp_path / "split" / "metrics.csv")
    a = RunFolder(tmp_path / "whole").load_checkpoint()["trainer"]["model"]
    b = RunFolder(tmp_path / "split").load_checkpoint()["trainer"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_divergence_before_any_checkpoint_says_nothing_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "step", lambda self: float("nan"))
    with pytest.raises(TrainingDiverged) as exc:
        train(tiny_config(), tmp_path / "r", data=tiny_dataset(), progress=False)
    assert "no checkpoint had been written" in str(exc.value) and "last good" not in str(exc.value)
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_a_finished_run_extends_bit_identically(tmp_path, capsys):
    data = tiny_dataset()
    train(tiny_config(samples=10_000), tmp_path / "straight", data=data, progress=False)
    train(tiny_config(samples=5_000), tmp_path / "extended", data=data, progress=False)
    short = read_metrics(tmp_path / "extended" / "metrics.csv")
    info = train(tiny_config(samples=10_000), tmp_path / "extended", resume=True, data=data, progress=False)
    assert info["status"] == "finished" and info["samples_seen"] == 10_000
    long = read_metrics(tmp_path / "extended" / "metrics.csv")
    assert long[:len(short)] == short  # earlier rows unchanged
    straight = read_metrics(tmp_path / "straight" / "metrics.csv")
    assert [r for r in long if r["samples_seen"] != "5000"] == [r for r in straight if r["samples_seen"] != "5000"]
    a = RunFolder(tmp_path / "straight").load_checkpoint()["trainer"]["model"]
    b = RunFolder(tmp_path / "extended").load_checkpoint()["trainer"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(VaebenchError, match="already at 10,000 samples"):
        train(tiny_config(samples=2_000), tmp_path / "extended", resume=True, data=data, progress=False)


def test_cli_extends_a_finished_run(tmp_path, capsys):
    out = tmp_path / "r"
    base = ["train", "--nz", "2", "--hidden", "10", "--n-train", "500", "--lr", "0.1", "--out", out, "--no-progress"]
    assert run_cli(capsys, *base, "--samples", "1000")[0] == 0
    code, stdout, err = run_cli(capsys, "train", "--out", out, "--resume", "--samples", "2000", "--no-progress")
    assert code == 0 and "2,000 samples" in stdout, err


# ---- one line and exit 2 for bad input -----------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "--seed must be in"),
    (["--seed", str(2**63)], "--seed must be in"),
    (["--device", "foo"], "--device 'foo'"),
    (["--threads", "0"], "--threads must be in"),
    (["--samples", "inf"], "whole number"),
])
def test_bad_train_options(tmp_path, capsys, argv, message):
    if argv == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA is available")
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "r", "--no-progress", *argv)
    assert code == 2 and one_line(err) and message in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
@pytest.mark.parametrize("command", [["train", "--out", "OUT", "--samples", "1000"], ["evaluate", "RUN"],
                                     ["bench", "--ops", "gaussian_kl", "--repeats", "1"]])
def test_cuda_without_cuda(tmp_path, finished_run, capsys, command):
    argv = [str(tmp_path / "o") if a == "OUT" else str(finished_run) if a == "RUN" else a for a in command]
    code, _, err = run_cli(capsys, *argv, "--device", "cuda")
    assert code == 2 and one_line(err) and "CUDA is not available" in err, err


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


@pytest.mark.parametrize("toml, message", [
    ('hidden = "abc"', "hidden must be"),
    ('batch_size = "x"', "batch_size must be"),
    ("L = 1.5", "L must be"),
    ("nz = true", "nz must be"),
    ('prior = "no"', "prior must be"),
    ("colour = 3", "unknown key(s) colour"),
    ('algorithm = "mcem"\n[options]\nleapfrogs = 3', "unknown key(s) leapfrogs"),
    ('algorithm = "mcem"\n[options]\nleapfrog = "ten"', "leapfrog must be"),
    ('algorithm = "mcem"\n[options]\nhmc_moves = 0', "hmc_moves must be >= 1"),
    ('algorithm = "mcem"\n[options]\ntarget_accept = 1.0', "target_accept must be in (0, 1)"),
    ('algorithm = "wake-sleep"\n[options]\nleapfrog = 3', "takes no options"),
])
def test_config_values_are_typed(tmp_path, capsys, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    code, _, err = run_cli(capsys, "train", "--config", path, "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and one_line(err) and message in err, err
    assert not (tmp_path / "r").exists()


def test_config_that_is_a_folder_or_not_utf8(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"nz = 3 # \xff\xfe\n")
    for path, message in ((tmp_path, "is a folder"), (bad, "not UTF-8")):
        code, _, err = run_cli(capsys, "train", "--config", path, "--out", tmp_path / "r", "--no-progress")
        assert code == 2 and one_line(err) and message in err, err


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:200]), "truncated or not a torch file"),
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: torch.save({"weights": torch.zeros(2)}, p), "not a vaebench checkpoint"),
])
def test_bad_checkpoints_on_resume_and_evaluate(finished_run, capsys, damage, message):
    damage(finished_run / "checkpoint.pt")
    code, _, err = run_cli(capsys, "train", "--out", finished_run, "--resume", "--samples", "3000", "--no-progress")
    assert code == 2 and one_line(err) and message in err, err
    code, _, err = run_cli(capsys, "evaluate", finished_run, "--n-points", "5")
    assert code == 2 and one_line(err) and message in err, err


def test_a_checkpoint_of_another_run_is_refused(tmp_path, finished_run):
    other = tmp_path / "other"
    train(tiny_config(samples=1000, nz=3), other, data=tiny_dataset(), progress=False)
    (finished_run / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())
    with pytest.raises(VaebenchError, match="belongs to another run"):
        train(tiny_config(samples=3000), finished_run, resume=True, data=tiny_dataset(), progress=False)


def test_run_json_that_is_not_an_object(finished_run, capsys):
    (finished_run / "run.json").write_text("[1, 2]\n")
    for argv in (["evaluate", finished_run], ["train", "--out", finished_run, "--resume"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and one_line(err) and "a JSON object expected" in err, err


def test_marginal_csv_missing_a_column(finished_run):
    (finished_run / "marginal_hmc.csv").write_text("run,split\nx,train\n")
    with pytest.raises(VaebenchError, match="lacks the column"):
        RunFolder(finished_run).read_marginal("hmc")


@pytest.mark.parametrize("flag, value, message", [
    ("--k", "inf", "must be a whole number"),
    ("--k", "1e12", "must be in"),
    ("--burn-in", "1e12", "must be in"),
    ("--threads", "0", "must be in"),
])
def test_evaluate_counts_are_bounded(finished_run, capsys, flag, value, message):
    code, _, err = run_cli(capsys, "evaluate", finished_run, flag, value)
    assert code == 2 and one_line(err) and f"{flag} {message}" in err, err


def test_ctrl_c_while_importing_is_one_line(capsys, monkeypatch):
    import vaebench.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "command_modules", interrupted)
    assert cli.main(["train", "--help"]) == 130
    assert one_line(capsys.readouterr().err)


def test_evaluate_waits_for_no_one_it_refuses_a_locked_run(finished_run, capsys):
    with lock_folder(finished_run, "vaebench train"):
        code, _, err = run_cli(capsys, "evaluate", finished_run, "--n-points", "5")
    assert code == 2 and one_line(err) and "in use by vaebench train" in err, err
    assert not (finished_run / "marginal_hmc.csv").exists()
