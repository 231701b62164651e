"""The reproduction engine (vaebench.engine) behind `vaebench reproduce <study>`: shipped
configs, the shared options (threads, jobs, device, --out), the output folder's lock, the
summary and provenance. Training is replaced by a fake that writes a finished run at once
(trained: conftest.py)."""

import json
import shlex
from pathlib import Path

import pytest
import torch

from tests.helpers import TOY
from vaebench.cli import build_parser, main
from vaebench.engine import workers
from vaebench.engine.config import build_runs, load_config
from vaebench.engine.summary import seed_statistics
from vaebench.engine.workers import default_threads
from vaebench.figures import figure2
from vaebench.figures.registry import STUDIES
from vaebench.resources import config_path, reproductions_dir
from vaebench.runs import RunFolder, lock_folder


@pytest.fixture
def toy(tmp_path) -> Path:
    path = tmp_path / "toy.toml"
    path.write_text(TOY)
    return path


def reproduce(toy, out, *extra) -> int:
    """`vaebench reproduce figure2` on ``toy``: its exit status (a usage error's too)."""
    try:
        return main(["reproduce", "figure2", "--config", str(toy), "--out", str(out), "--no-progress", *extra])
    except SystemExit as exc:
        return exc.code


def one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


# ---- the shipped configs ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STUDIES))
def test_every_study_config_ships_with_the_package_and_parses(name):
    study = STUDIES[name]
    path = config_path(study.config_name or study.name)
    assert path.is_file() and path.parent == reproductions_dir()
    conf = load_config(study)
    assert conf.path == path
    for budget in conf["budgets"]:
        runs = build_runs(study, conf, budget, "OUT")
        assert runs and all(study.run_key(out.name) is not None for _, out in runs)
        assert len({out for _, out in runs}) == len(runs)


def test_the_registry_is_what_reproduce_offers():
    for name in STUDIES:
        args = build_parser().parse_args(["reproduce", name])
        assert args._study is STUDIES[name] and args.budget == "quick" and args.jobs == 2 and args.threads is None


# ---- options, checked before anything is written ----------------------------------------------


@pytest.mark.parametrize("option", ["--threads", "--jobs"])
@pytest.mark.parametrize("value", ["0", "-1", "1.5"])
def test_threads_and_jobs_below_one_are_one_line_errors(toy, tmp_path, capsys, option, value):
    assert reproduce(toy, tmp_path / "out", option, value) == 2
    one_line_error(capsys, option)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("device", ["foo", "tpu", "cuda:x"])
def test_a_bad_device_is_a_one_line_error_before_anything_is_written(toy, tmp_path, capsys, trained, device):
    assert reproduce(toy, tmp_path / "out", "--device", device) == 2
    one_line_error(capsys, "--device")
    assert not (tmp_path / "out").exists() and not trained


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_one_line_error(toy, tmp_path, capsys, trained):
    assert reproduce(toy, tmp_path / "out", "--device", "cuda") == 2
    one_line_error(capsys, "CUDA")
    assert not (tmp_path / "out").exists() and not trained


def test_bad_out_folders_are_one_line_errors(toy, tmp_path, capsys, trained):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for out in (a_file, a_file / "out", ""):
        assert reproduce(toy, out) == 2
        one_line_error(capsys, "--out")
    assert not trained and a_file.read_text() == "x"


def test_a_second_reproduce_into_the_same_folder_is_refused(toy, tmp_path, capsys, trained):
    out = tmp_path / "out"
    with lock_folder(out, "vaebench reproduce figure2"):
        assert reproduce(toy, out) == 2
        one_line_error(capsys, "in use", "vaebench reproduce figure2")
    assert not trained and not (out / "figure2.csv").exists()


# ---- threads ----------------------------------------------------------------------------------


def test_threads_reach_every_run_and_are_restored(toy, tmp_path, trained):
    before = torch.get_num_threads()
    out = tmp_path / "out"
    assert reproduce(toy, out, "--jobs", "1", "--threads", "3") == 0
    assert [c["threads"] for c in trained] == [3, 3] and all(c["resume"] for c in trained)
    assert torch.get_num_threads() == before
    prov = json.loads((out / "provenance.json").read_text())
    assert {r["torch_threads"] for r in prov["runs"].values()} == {3}


def test_default_threads_are_the_cpus_shared_by_the_jobs(toy, tmp_path, trained, monkeypatch):
    monkeypatch.setattr(workers, "available_cpus", lambda: 6)
    assert [default_threads(j) for j in (1, 2, 4, 6, 12)] == [6, 3, 1, 1, 1]
    one_run = tmp_path / "one.toml"
    one_run.write_text(TOY.replace("[algorithms.wake-sleep]\nlr = 0.01\n", ""))
    assert reproduce(one_run, tmp_path / "out", "--jobs", "2") == 0  # one run: trained in this process
    assert [c["threads"] for c in trained] == [3]


# ---- the run and its summary ------------------------------------------------------------------


def test_reproduce_summarizes_and_records_the_command(toy, tmp_path, trained, capsys):
    out = tmp_path / "out"
    assert reproduce(toy, out, "--jobs", "1", "--threads", "1", "--datasets", "mnist") == 0
    text = capsys.readouterr().out
    assert "figure2, budget quick: 2 runs" in text and "1 torch thread each" in text and "## Figure 2" in text
    for name in ("figure2.csv", "figure2.png", "figure2_table.md", "figure2_table.csv", "provenance.json"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / ".lock").exists()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["figure"] == "figure2" and prov["budget"] == "quick" and prov["reproduce_wall_s"] >= 0
    assert prov["runs"]["mnist_nz3_aevb"]["wall_s"] == 2.0 and prov["total_run_wall_s"] == 4.0
    words = shlex.split(prov["command"])
    assert words[:3] == ["vaebench", "reproduce", "figure2"] and "--no-progress" in words
    again = build_parser().parse_args(words[1:])  # the recorded command is a valid command line
    assert (again.jobs, again.threads, again.datasets, again.out, again.config) == (1, 1, "mnist", str(out), str(toy))
    assert not {"--seeds", "--executor", "--address", "--gpus-per-run"} & set(words)  # as before these options


def test_a_failed_run_still_summarizes_the_others(toy, tmp_path, trained, capsys):
    trained.fail = {"mnist_nz3_wake-sleep"}
    out = tmp_path / "out"
    assert reproduce(toy, out, "--jobs", "1") == 2
    assert "diverged" in capsys.readouterr().err
    assert [c["run"] for c in trained] == ["mnist_nz3_aevb", "mnist_nz3_wake-sleep"]  # the first did not stop the rest
    assert set(json.loads((out / "provenance.json").read_text())["runs"]) == {"mnist_nz3_aevb"}
    assert not (out / ".lock").exists()


def test_summarize_alone_keeps_the_recorded_command(toy, tmp_path, trained, capsys):
    out = tmp_path / "quick"
    assert reproduce(toy, out, "--jobs", "1") == 0
    command = json.loads((out / "provenance.json").read_text())["command"]
    assert figure2.main([str(out)]) == 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["command"] == command and prov["budget"] == "quick"
    capsys.readouterr()
    assert figure2.main([str(tmp_path / "nothing")]) == 2
    one_line_error(capsys, "not a folder")
    with lock_folder(out, "another summary"):
        assert figure2.main([str(out)]) == 2
    one_line_error(capsys, "in use")


# ---- seeds ------------------------------------------------------------------------------------


def test_several_seeds_train_every_run_per_seed_and_the_table_is_over_seeds(toy, tmp_path, trained, capsys):
    out = tmp_path / "out"
    assert reproduce(toy, out, "--jobs", "1", "--seeds", "0,1,2") == 0
    assert "figure2, budget quick: 6 runs (3 seeds: 0, 1, 2) into" in capsys.readouterr().out
    assert [c["run"] for c in trained] == [f"mnist_nz3_{a}_seed{s}" for a in ("aevb", "wake-sleep") for s in (0, 1, 2)]
    assert RunFolder(out / "mnist_nz3_aevb_seed2").read_config().seed == 2
    import pandas as pd

    ours = pd.read_csv(out / "figure2.csv")
    assert list(ours.seed[:4]) == [0, 0, 0, 0] and set(ours.run) == {c["run"] for c in trained}
    table = pd.read_csv(out / "figure2_table.csv")  # empty: 1,000 samples reach no budget of the paper's table
    assert table.empty and list(table.columns[5:10]) == ["ours", "ours_std", "ours_min", "ours_max", "seeds"]
    prov = json.loads((out / "provenance.json").read_text())
    assert "--seeds 0,1,2" in prov["command"] and len(prov["runs"]) == 6


def test_one_seed_keeps_the_run_names_and_several_get_their_own_default_folder(toy, tmp_path, trained, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "figure2", "--config", str(toy), "--no-progress", "--jobs", "1", "--seeds", "4"]) == 0
    assert RunFolder(tmp_path / "results/figure2/quick/mnist_nz3_aevb").read_config().seed == 4
    assert main(["reproduce", "figure2", "--config", str(toy), "--no-progress", "--jobs", "1", "--seeds", "0,1"]) == 0
    assert (tmp_path / "results/figure2/quick_seeds/mnist_nz3_aevb_seed1/run.json").is_file()


@pytest.mark.parametrize("seeds", ["0,0", "1,x", "-1", ",", "1.5"])
def test_bad_seeds_are_one_line_errors(toy, tmp_path, capsys, trained, seeds):
    assert reproduce(toy, tmp_path / "out", "--seeds", seeds) == 2
    one_line_error(capsys, "--seeds")
    assert not trained and not (tmp_path / "out").exists()


def test_seed_statistics_of_a_table_per_seed():
    import pandas as pd

    per_seed = pd.DataFrame(
        {
            "run": ["a", "a", "a", "b"],
            "samples": [10, 10, 10, 10],
            "ours": [1.0, 2.0, 6.0, 5.0],
            "paper": [0.0, 0.0, 0.0, 1.0],
            "difference": [1.0, 2.0, 6.0, 4.0],
            "ours_exact": [True, False, True, True],
        }
    )
    table = seed_statistics(per_seed)
    assert list(table.columns) == [
        "run",
        "samples",
        "ours",
        "ours_std",
        "ours_min",
        "ours_max",
        "seeds",
        "paper",
        "difference",
        "ours_exact",
    ]
    a, b = table.to_dict("records")
    assert (a["ours"], a["ours_std"], a["ours_min"], a["ours_max"], a["seeds"]) == (
        3.0,
        2.6457513110645907,
        1.0,
        6.0,
        3,
    )
    assert (a["difference"], a["ours_exact"], b["ours"], b["difference"], b["seeds"]) == (3.0, False, 5.0, 4.0, 1)
