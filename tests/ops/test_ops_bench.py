"""``vaebench bench``: the command line parses and calls vaebench.bench; bad options are one
line on stderr with exit code 2, before anything is timed; a tiny run writes its CSV."""

from __future__ import annotations

import csv

import pytest
import torch

from vaebench.cli import main


def _error_line(capsys, argv):
    assert main(["bench", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing was timed
    assert err.startswith("vaebench bench: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


def test_out_pointing_at_a_file(tmp_path, capsys):
    f = tmp_path / "taken.csv"
    f.write_text("x\n")
    assert f"--out {f} is a file" in _error_line(capsys, ["--out", str(f), "--repeats", "1"])


def test_unknown_device(capsys, tmp_path):
    assert "--device 'foo' is not a device" in _error_line(capsys, ["--device", "foo", "--out", str(tmp_path)])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(capsys, tmp_path):
    assert "CUDA is not available" in _error_line(capsys, ["--device", "cuda", "--out", str(tmp_path)])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ops", "kl"], "--ops: unknown op 'kl'"),
        (["--backends", "fast"], "--backends: unknown backend 'fast'"),
        (["--sizes", "100by20"], "--sizes: '100by20' is not of the form BxD"),
        (["--repeats", "0"], "--repeats must be >= 1"),
    ],
)
def test_bad_options(capsys, tmp_path, argv, message):
    assert message in _error_line(capsys, [*argv, "--device", "cpu", "--out", str(tmp_path)])


def test_backend_that_does_not_run_here(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    err = _error_line(capsys, ["--backends", "triton", "--device", "cpu", "--out", str(tmp_path)])
    assert "--backends triton does not run on cpu here" in err


def test_tiny_run_writes_the_csv(capsys, tmp_path):
    argv = [
        "bench",
        "--ops",
        "gaussian_kl",
        "--backends",
        "eager",
        "--device",
        "cpu",
        "--sizes",
        "4x3",
        "--modes",
        "fwd",
        "fwdbwd",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--no-plot",
        "--out",
        str(tmp_path / "k"),
    ]
    assert main(argv) == 0
    (path,) = (tmp_path / "k").glob("*.csv")
    rows = list(csv.DictReader(path.open()))
    assert [(r["op"], r["size"], r["mode"], r["backend"]) for r in rows] == [
        ("gaussian_kl", "4x3", "fwd", "eager"),
        ("gaussian_kl", "4x3", "fwdbwd", "eager"),
    ]
    assert f"wrote {path}" in capsys.readouterr().out
