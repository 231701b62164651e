"""The training loop: it learns, it resumes bit for bit, and bad input gets a one-line error."""

import json
import math
from pathlib import Path

import pytest
import torch

from tests.helpers import interrupt_at, read_metrics, run_cli, tiny_config, tiny_dataset
from vaebench.bound import eval_schedule
from vaebench.cli import main
from vaebench.config import RunConfig
from vaebench.errors import TrainingDiverged, VaebenchError
from vaebench.train import Trainer, train

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_eval_schedule_is_log_spaced_and_ends_at_budget():
    points = eval_schedule(1_000_000, 100, per_decade=4, first=10_000)
    assert points[0] == 10_000 and points[-1] == 1_000_000
    assert len(points) == 9  # 1e4 .. 1e6 at 4 per decade
    assert all(p % 100 == 0 for p in points) and points == sorted(set(points))
    assert eval_schedule(123_456, 100)[-1] == 123_400  # whole minibatches


def test_short_run_improves_the_bound(tmp_path):
    info = train(tiny_config(samples=20_000), tmp_path / "run", data=tiny_dataset(), progress=False)
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    test = [float(r["lower_bound"]) for r in rows if r["split"] == "test"]
    assert test[-1] > test[0] + 0.5, test
    assert info["status"] == "finished" and info["samples_seen"] == 20_000
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["lr"] == 0.1 and run["samples_per_s"] > 0 and run["config"]["nz"] == 2
    assert "train_eval" in run and run["versions"]["torch"] and run["machine"]["cpu"]


def test_same_seed_same_numbers_and_resume_is_bit_identical(tmp_path, monkeypatch):
    data = tiny_dataset()
    cfg = tiny_config()
    train(cfg, tmp_path / "whole", data=data, progress=False)

    undo = interrupt_at(monkeypatch, 37)  # between evaluation points 3100 and 5600
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "split", data=data, progress=False)
    undo()
    assert json.loads((tmp_path / "split" / "run.json").read_text())["status"] == "running"
    train(cfg, tmp_path / "split", resume=True, data=data, progress=False)

    assert read_metrics(tmp_path / "whole" / "metrics.csv") == read_metrics(tmp_path / "split" / "metrics.csv")
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["trainer"]["model"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["trainer"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_auto_step_size_tries_the_papers_three(tmp_path):
    info = train(
        tiny_config(lr="auto", lr_trial_samples=2000, samples=1000), tmp_path / "r", data=tiny_dataset(), progress=False
    )
    assert set(info["lr_trial"]) == {"0.01", "0.02", "0.1"}
    assert info["lr"] == max((float(k) for k in info["lr_trial"]), key=lambda k: info["lr_trial"][str(k)])


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = Trainer.step
    calls = {"n": 0}

    def poisoned(self):
        calls["n"] += 1
        if calls["n"] == 25:
            with torch.no_grad():
                self.model.decoder.out.weight[0, 0] = float("nan")
        return original(self)

    monkeypatch.setattr(Trainer, "step", poisoned)
    with pytest.raises(TrainingDiverged, match="at 2,500 samples"):
        train(tiny_config(), tmp_path / "r", data=tiny_dataset(), progress=False)
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)
    assert ckpt["trainer"]["samples_seen"] == 1800  # the last evaluation point before the NaN
    assert all(torch.isfinite(p).all() for p in ckpt["trainer"]["model"].values())
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["status"] == "diverged" and run["diverged_at"] == 2500


def test_existing_run_is_not_overwritten(tmp_path):
    out = tmp_path / "r"
    train(tiny_config(samples=1000), out, data=tiny_dataset(), progress=False)
    before = (out / "metrics.csv").read_bytes()
    with pytest.raises(VaebenchError, match="already holds a run"):
        train(tiny_config(samples=2000), out, data=tiny_dataset(), progress=False)
    assert (out / "metrics.csv").read_bytes() == before
    train(tiny_config(samples=2000), out, overwrite=True, data=tiny_dataset(), progress=False)
    assert read_metrics(out / "metrics.csv")[-1]["samples_seen"] == "2000"


def test_resume_without_parameters_starts_afresh_and_drops_stale_files(tmp_path):
    """A committed run in a clean clone (metrics, run.json, estimates; no checkpoint): --resume
    trains it again from the start, and the old estimates are not kept beside the new run."""
    out = tmp_path / "r"
    train(tiny_config(samples=1000), out, data=tiny_dataset(), progress=False)

    def curve():
        return [(r["samples_seen"], r["split"], r["lower_bound"]) for r in read_metrics(out / "metrics.csv")]

    expected = curve()
    (out / "checkpoint.pt").unlink()
    (out / "metrics.csv").write_text("stale\n")
    (out / "marginal_hmc.csv").write_text("stale\n")
    train(tiny_config(samples=1000), out, resume=True, data=tiny_dataset(), progress=False)
    assert curve() == expected
    assert (out / "checkpoint.pt").exists() and not (out / "marginal_hmc.csv").exists()


# ---- the command line -------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["--algorithm", "vi"], "invalid choice: 'vi'"),
        (["--nz", "0"], "--nz must be"),
        (["--samples", "10"], "--samples must be"),
        (["--lr", "5"], "--lr must be"),
        (["--lr", "-0.1"], "--lr must be"),
        (["--estimator", "Z"], "invalid choice: 'Z'"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(tmp_path, capsys, argv, message):
    code, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "r"), *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_unparseable_option_is_one_line_exit_2(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--samples", "lots"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "must be a number" in err


def test_cli_refuses_to_overwrite_and_resumes(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["train", *"--dataset mnist --nz 2 --hidden 20 --samples 2000 --n-train 1000 --lr 0.02".split()]
    args += ["--out", str(out), "--no-progress"]
    code, stdout, _ = run_cli(capsys, *args)
    assert code == 0 and "finished aevb on mnist" in stdout
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "already holds a run" in err and "--resume" in err
    code, _, err = run_cli(capsys, "train", "--out", str(out), "--resume", "--nz", "5", "--no-progress")
    assert code == 2 and "cannot resume with different settings" in err
    code, stdout, _ = run_cli(capsys, "train", "--out", str(out), "--resume", "--no-progress")
    assert code == 0 and "2,000 samples" in stdout


def test_missing_data_says_where_it_looked(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VAEBENCH_FREY_URL", "http://127.0.0.1:9/frey_rawface.mat")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(
        capsys,
        "train",
        "--dataset",
        "frey",
        "--data-dir",
        str(tmp_path / "empty"),
        "--out",
        str(tmp_path / "r"),
        "--no-progress",
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(tmp_path / "empty") in err and "frey_rawface.mat" in err


@pytest.mark.skipif(not (SHARED_DATA / "frey_rawface.mat").exists(), reason="../shared/data/frey_rawface.mat absent")
def test_corrupt_frey_file_gets_a_one_line_checksum_error(tmp_path, capsys):
    bad = tmp_path / "data"
    bad.mkdir()
    raw = bytearray((SHARED_DATA / "frey_rawface.mat").read_bytes())
    raw[5000] ^= 0xFF
    (bad / "frey_rawface.mat").write_bytes(bytes(raw))
    code, _, err = run_cli(
        capsys, "train", "--dataset", "frey", "--data-dir", str(bad), "--out", str(tmp_path / "r"), "--no-progress"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "b4a0e78320a773275001219c6648458e290925612cfa097700b0b9357573a0ce" in err
    assert not (tmp_path / "r" / "metrics.csv").exists()


def test_frey_face_trains_with_the_gaussian_decoder(tmp_path):
    if not (SHARED_DATA / "frey_rawface.mat").exists():
        pytest.skip("../shared/data/frey_rawface.mat absent")
    info = train(
        RunConfig(dataset="frey", nz=2, hidden=50, samples=3000, lr=0.02, first_eval=1000, data_dir=str(SHARED_DATA)),
        tmp_path / "f",
        progress=False,
    )
    assert math.isfinite(info["final"]["test"]) and info["data"]["n_test"] == 200


@pytest.mark.parametrize("backend", ["numba"])
def test_training_gives_the_same_curve_on_a_kernel_backend(tmp_path, backend):
    pytest.importorskip(backend)
    data = tiny_dataset()
    train(tiny_config(samples=3000), tmp_path / "eager", data=data, progress=False)
    info = train(tiny_config(samples=3000, backend=backend), tmp_path / backend, data=data, progress=False)
    assert info["config"]["backend"] == backend
    eager = [float(r["lower_bound"]) for r in read_metrics(tmp_path / "eager" / "metrics.csv")]
    other = [float(r["lower_bound"]) for r in read_metrics(tmp_path / backend / "metrics.csv")]
    assert other == pytest.approx(eager, rel=1e-4)  # fp32 kernels vs eager, 30 Adagrad steps


@pytest.mark.parametrize(
    "argv, lr",
    [
        (["--algorithm", "wake-sleep"], 0.01),
        (["--algorithm", "wake-sleep", "--lr", "0.02"], 0.02),
        (["--algorithm", "aevb"], "auto"),
    ],
)
def test_step_size_defaults_per_algorithm(tmp_path, argv, lr):
    import argparse

    from vaebench.cli.train import add_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert config_from_args(p.parse_args([*argv, "--out", str(tmp_path)])).lr == lr
