"""`vaebench evaluate`: the marginal likelihood of a tiny trained MNIST run, written beside it
(aevb_run and mcem_run: conftest.py; their snapshots are the ones `--snapshot all` evaluates)."""

import csv

from vaebench.cli import main
from vaebench.marginal.run import evaluate_run

FAST = ["--n-points", "20", "--samples-per-point", "10", "--burn-in", "20", "--threads", "1"]


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_hmc_on_every_snapshot_then_resumes(aevb_run, capsys):
    assert main(["evaluate", str(aevb_run), "--snapshot", "all", *FAST]) == 0
    rows = read(aevb_run / "marginal_hmc.csv")
    snapshots = sorted(int(p.stem.split("_")[1]) for p in (aevb_run / "snapshots").glob("params_*.pt"))
    assert [int(r["samples_seen"]) for r in rows] == [s for s in snapshots for _ in (0, 1)]
    assert [r["split"] for r in rows[:2]] == ["train", "test"]
    for r in rows:
        assert r["method"] == "hmc" and r["n_points"] == "20" and r["leapfrog"] == "4"
        assert -800 < float(r["marginal_log_likelihood"]) < 0 and 0 <= float(r["stderr"]) < 5
        assert 0.5 < float(r["mean_accept"]) <= 1
    # the same settings again: nothing recomputed; other settings: rows added, old ones kept
    before = (aevb_run / "marginal_hmc.csv").read_text()
    assert main(["evaluate", str(aevb_run), "--snapshot", "all", *FAST]) == 0
    assert (aevb_run / "marginal_hmc.csv").read_text() == before
    assert main(["evaluate", str(aevb_run), "--split", "test", *FAST[:-2], "--leapfrog", "3"]) == 0
    rows2 = read(aevb_run / "marginal_hmc.csv")
    assert len(rows2) == len(rows) + 1 and rows2[-1]["leapfrog"] == "3" and rows2[-1]["split"] == "test"
    assert int(rows2[-1]["samples_seen"]) == 3000  # --snapshot last: the checkpoint's parameters
    only = evaluate_run(
        aevb_run,
        snapshot="all",
        only=[snapshots[0]],
        n_points=5,
        samples_per_point=5,
        burn_in=5,
        seed=3,
        progress=False,
    )
    assert [(int(r["samples_seen"]), r["split"]) for r in only] == [(snapshots[0], "train"), (snapshots[0], "test")]


def test_importance_agrees_with_hmc_on_train_points(aevb_run):
    assert (
        main(
            ["evaluate", str(aevb_run), "--method", "importance", "--k", "500", "--n-points", "20", "--split", "train"]
        )
        == 0
    )
    imp = read(aevb_run / "marginal_importance.csv")
    assert len(imp) == 1 and imp[0]["k"] == "500"
    assert main(["evaluate", str(aevb_run), "--split", "train", "--n-points", "20", "--threads", "1"]) == 0
    hmc = [r for r in read(aevb_run / "marginal_hmc.csv") if r["samples_per_point"] == "50"]
    # a tiny, barely trained model: its encoder is a good proposal, the two estimates agree
    assert abs(float(imp[0]["marginal_log_likelihood"]) - float(hmc[0]["marginal_log_likelihood"])) < 1.0


def test_user_errors_are_one_line(aevb_run, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["evaluate", str(aevb_run), "--split", "valid"]) == 2
    assert "--split" in capsys.readouterr().err
    assert main(["evaluate", str(aevb_run), "--n-points", "0"]) == 2


def test_importance_refuses_a_model_without_encoder(mcem_run, capsys):
    assert main(["evaluate", str(mcem_run), "--method", "importance"]) == 2
    assert "no encoder" in capsys.readouterr().err
    assert main(["evaluate", str(mcem_run), *FAST, "--split", "train"]) == 0
    assert len(read(mcem_run / "marginal_hmc.csv")) == 1


def test_rerun_on_a_split_smaller_than_n_points_keeps_one_row(aevb_run, capsys):
    """The 200-point training split with --n-points 1e9: keyed by the 200 points used, a rerun
    reuses the row instead of appending a duplicate, and the count reported is right."""
    argv = ["evaluate", str(aevb_run), "--method", "importance", "--k", "20", "--split", "train", "--n-points", "1e6"]
    assert main(argv) == 0
    assert "(1 rows with these settings)" in capsys.readouterr().out
    assert main(argv) == 0
    assert "(1 rows with these settings)" in capsys.readouterr().out
    rows = [r for r in read(aevb_run / "marginal_importance.csv") if r["k"] == "20"]
    assert len(rows) == 1 and rows[0]["n_points"] == "200"
