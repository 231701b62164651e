"""vaebench.engine.sweep, vaebench.figures.sweep and `vaebench sweep`: the sweep file, its runs' names and
seeds, and the summary (CSV, table over seeds, figure, provenance). Training is a fake (trained, sweep_command:
conftest.py);
seeds in run names are tested with the run folder (core/test_runs.py)."""

import csv
import json
import shlex
from pathlib import Path

import pytest

from vaebench.cli import main
from vaebench.engine.sweep import load_sweep
from vaebench.errors import VaebenchError
from vaebench.runs import RunFolder, with_seeds

ROOT = Path(__file__).resolve().parents[2]
SWEEP = """name = "toy"
seeds = [0, 1]
[base]
hidden = 8
samples = 1000
first_eval = 500
lr = 0.02
[grid]
nz = [3, 5]
algorithm = ["aevb", "wake-sleep"]
"""


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(SWEEP)
    return path


def run_sweep(path, out, *extra, progress=False) -> int:
    try:
        return main(["sweep", str(path), "--out", str(out), *([] if progress else ["--no-progress"]), *extra])
    except SystemExit as exc:
        return exc.code


# ---- the sweep file -----------------------------------------------------------------------------


def test_the_example_sweep_parses():
    sweep = load_sweep(ROOT / "reproductions" / "sweeps" / "example.toml")
    assert list(sweep.points()) == ["nz-3_lr-0.01", "nz-3_lr-0.1", "nz-10_lr-0.01", "nz-10_lr-0.1"]
    assert sweep.seeds == [0, 1, 2] and sweep.name == "example"
    runs = with_seeds(sweep.runs("OUT"), sweep.seeds)
    assert len(runs) == 12 and runs[1][1].name == "nz-3_lr-0.01_seed1" and runs[1][0].seed == 1
    assert {(c.nz, c.lr, c.hidden, c.samples) for c, _ in runs} == {
        (nz, lr, 100, 200_000) for nz in (3, 10) for lr in (0.01, 0.1)
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("[grid]\nnz = 3\n", "nz must be a non-empty list"),
        ("[grid]\nseed = [0, 1]\n", "seeds = "),
        ("seeds = [0, 0]\n", "distinct seeds"),
        ("runs = 3\n", "unknown key.*runs"),
        ("[grid]\nnz = [3]\nlearning_rate = [0.1]\n", "nz-3_learning_rate-0.1: unknown key.*learning_rate"),
        ("[grid]\nnz = [0]\n", "nz must be in"),
        ('[grid]\nlr = [0.1, "0.1"]\n', "the same run name"),
        ('name = "a/b"\n', "name must be"),
    ],
)
def test_sweep_file_errors_are_one_line_and_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(VaebenchError, match=message) as info:
        load_sweep(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# ---- vaebench sweep -----------------------------------------------------------------------------


def test_sweep_trains_every_point_and_seed_and_summarizes_over_seeds(toy, tmp_path, trained, sweep_command, capsys):
    out = tmp_path / "out"
    assert run_sweep(toy, out, "--jobs", "1", "--threads", "1", progress=True) == 0
    text = capsys.readouterr().out
    assert "sweep: 8 runs (2 seeds: 0, 1) into" in text and "1 at a time, 1 torch thread each" in text
    assert "| nz-3_algorithm-aevb_seed1 | finished |" in text  # the table of runs at the end
    names = sorted(c["run"] for c in trained)
    assert names[:2] == ["nz-3_algorithm-aevb_seed0", "nz-3_algorithm-aevb_seed1"] and len(names) == 8
    assert RunFolder(out / "nz-5_algorithm-wake-sleep_seed1").read_config().seed == 1

    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 * 4 and rows[0]["point"] == "nz-3_algorithm-aevb" and rows[0]["seed"] == "0"
    with open(out / "sweep_table.csv") as f:
        table = list(csv.DictReader(f))
    first = table[0]  # the fake's bound: -200 + samples / 1e4 + seed: seeds 0 and 1 give -199.9 and -198.9
    assert (first["point"], first["split"], first["samples"], first["seeds"]) == (
        "nz-3_algorithm-aevb",
        "train",
        "1000",
        "2",
    )
    assert [float(first[c]) for c in ("ours", "ours_std", "ours_min", "ours_max")] == pytest.approx(
        [-199.4, 2**-0.5, -199.9, -198.9], abs=1e-4
    )  # the table's CSV has 4 decimals
    md = (out / "sweep_table.md").read_text()
    assert "| 3 | aevb | 1e3 | -199.40 ± 0.71 | -199.40 ± 0.71 |" in md and "over 2 seeds" in md
    assert (out / "sweep.png").stat().st_size > 0 and not (out / ".lock").exists()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["sweep"]["grid"] == {"nz": [3, 5], "algorithm": ["aevb", "wake-sleep"]} and len(prov["runs"]) == 8
    words = shlex.split(prov["command"])
    assert words[:3] == ["vaebench", "sweep", str(toy)] and "--executor" not in words and "--no-progress" not in words


def test_seeds_on_the_command_line_win(toy, tmp_path, trained, sweep_command):
    out = tmp_path / "out"
    assert run_sweep(toy, out, "--jobs", "1", "--seeds", "7") == 0
    assert sorted(c["run"] for c in trained)[0] == "nz-3_algorithm-aevb"  # one seed: no suffix
    assert RunFolder(out / "nz-3_algorithm-aevb").read_config().seed == 7
    assert "±" not in (out / "sweep_table.md").read_text()


def test_sweep_errors_are_one_line(toy, tmp_path, trained, sweep_command, capsys):
    assert run_sweep(tmp_path / "missing.toml", tmp_path / "out") == 2
    assert "not found" in capsys.readouterr().err
    assert run_sweep(toy, tmp_path / "out", "--seeds", "1,x") == 2
    err = capsys.readouterr().err
    assert "--seeds" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not trained
