"""What a user hits at the edges: wrong runs, interrupted and extended runs, bad input.

Each test here failed on the code before the run folder got one owner (vaebench.runs); the run
folder's own (locks, --overwrite, --out, the files it reads) are in test_runs.py. finished_run:
conftest.py."""

import pytest
import torch

from tests.helpers import interrupt_at, one_line, read_metrics, run_cli, tiny_config, tiny_dataset
from vaebench.errors import TrainingDiverged, VaebenchError
from vaebench.runs import RunFolder
from vaebench.train import Trainer, train

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
    assert long[: len(short)] == short  # earlier rows unchanged
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


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seed", "-1"], "--seed must be in"),
        (["--seed", str(2**63)], "--seed must be in"),
        (["--device", "foo"], "--device 'foo'"),
        (["--threads", "0"], "--threads must be in"),
        (["--samples", "inf"], "whole number"),
    ],
)
def test_bad_train_options(tmp_path, capsys, argv, message):
    if argv == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA is available")
    code, _, err = run_cli(capsys, "train", "--out", tmp_path / "r", "--no-progress", *argv)
    assert code == 2 and one_line(err) and message in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
@pytest.mark.parametrize(
    "command",
    [
        ["train", "--out", "OUT", "--samples", "1000"],
        ["evaluate", "RUN"],
        ["bench", "--ops", "gaussian_kl", "--repeats", "1"],
    ],
)
def test_cuda_without_cuda(tmp_path, finished_run, capsys, command):
    argv = [str(tmp_path / "o") if a == "OUT" else str(finished_run) if a == "RUN" else a for a in command]
    code, _, err = run_cli(capsys, *argv, "--device", "cuda")
    assert code == 2 and one_line(err) and "CUDA is not available" in err, err


@pytest.mark.parametrize(
    "toml, message",
    [
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
    ],
)
def test_config_values_are_typed(tmp_path, capsys, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    code, _, err = run_cli(capsys, "train", "--config", path, "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and one_line(err) and message in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "toml, options, message",
    [
        ("nz = 0", [], "c.toml: nz must be in [1, 1000], got 0"),
        ("samples = 10", [], "c.toml: samples must be in [batch size 100, 1e11], got 10"),
        ("lr = 5.0", [], "c.toml: lr must be a number in (0, 1]"),
        ("checkpoint_every_s = -1.0", [], "c.toml: checkpoint_every_s must be a number of seconds >= 0"),
        ("nz = 3", ["--samples", "10"], "error: --samples must be in [batch size 100, 1e11], got 10"),
        ("nz = 3", ["--lr", "5"], "error: --lr must be a number in (0, 1]"),
    ],
)
def test_a_value_out_of_range_is_named_as_the_user_wrote_it(tmp_path, capsys, toml, options, message):
    """From a TOML its key (with the file), from the command line its flag; one line, exit 2, nothing written."""
    path = tmp_path / "c.toml"
    path.write_text(toml + "\n")
    code, _, err = run_cli(capsys, "train", "--config", path, *options, "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and one_line(err) and message in err, err
    assert not (tmp_path / "r").exists()


def test_config_that_is_a_folder_or_not_utf8(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"nz = 3 # \xff\xfe\n")
    for path, message in ((tmp_path, "is a folder"), (bad, "not UTF-8")):
        code, _, err = run_cli(capsys, "train", "--config", path, "--out", tmp_path / "r", "--no-progress")
        assert code == 2 and one_line(err) and message in err, err


def test_a_checkpoint_of_another_run_is_refused(tmp_path, finished_run):
    other = tmp_path / "other"
    train(tiny_config(samples=1000, nz=3), other, data=tiny_dataset(), progress=False)
    (finished_run / "checkpoint.pt").write_bytes((other / "checkpoint.pt").read_bytes())
    with pytest.raises(VaebenchError, match="belongs to another run"):
        train(tiny_config(samples=3000), finished_run, resume=True, data=tiny_dataset(), progress=False)


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--k", "inf", "must be a whole number"),
        ("--k", "1e12", "must be in"),
        ("--burn-in", "1e12", "must be in"),
        ("--threads", "0", "must be in"),
    ],
)
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
