"""Figure 3: its config, and the summary (CSV, figure, obtained-versus-paper table) on fake run folders."""

import csv
import json
import math
from pathlib import Path

import pytest

from vaebench.algorithms.mcem import MCEM
from vaebench.algorithms.wake_sleep import WakeSleep
from vaebench.config import RunConfig
from vaebench.engine.config import build_runs, load_config
from vaebench.engine.study import BUDGETS
from vaebench.engine.summary import collect, study_folders, summarize
from vaebench.errors import VaebenchError
from vaebench.figures import figure3
from vaebench.resources import config_path
from vaebench.runs import RunFolder

STUDY = figure3.STUDY


@pytest.mark.parametrize("budget", BUDGETS)
def test_every_config_parses_with_the_papers_settings(budget):
    conf = load_config(STUDY)
    runs = build_runs(STUDY, conf, budget, "OUT")
    assert len(runs) == 6  # N_train 1000, 50000 x AEVB, wake-sleep, MCEM
    assert {(c.n_train, c.algorithm) for c, _ in runs} == {(n, a) for n in (1000, 50000) for a in figure3.ALGORITHMS}
    for cfg, out in runs:
        assert isinstance(cfg, RunConfig) and cfg.check() == cfg
        assert cfg.dataset == "mnist" and cfg.nz == 3 and cfg.hidden_units == 100  # the paper's
        assert cfg.batch_size == 100 and cfg.init_std == 0.01 and cfg.prior and cfg.snapshots
        assert out == Path("OUT") / f"ntrain{cfg.n_train}_{cfg.algorithm}"
    mcem = next(c for c, _ in runs if c.algorithm == "mcem")
    assert mcem.options["leapfrog"] == 10 and mcem.options["updates"] == 5 and mcem.options["target_accept"] == 0.9
    ws = next(c for c, _ in runs if c.algorithm == "wake-sleep")
    assert ws.dreams == WakeSleep.default_dreams  # as Figure 2
    assert ws.lr == 0.02  # measured for this model (the config's note); Figure 2 uses 0.01
    settings = STUDY.settings(conf, budget)
    assert settings["method"] == "hmc" and settings["samples_per_point"] == 50 and settings["leapfrog"] == 4
    assert settings["n_points"] == (100 if budget == "quick" else 1000)


def test_budgets_and_subsets():
    conf = load_config(STUDY)
    samples = [build_runs(STUDY, conf, b, "OUT")[0][0].samples for b in BUDGETS]
    assert samples[0] < samples[1] == 10**7 < samples[2] == 6 * 10**7
    only = build_runs(STUDY, conf, "medium", "OUT", n_train=[1000], algorithms=["mcem"])
    assert [(c.n_train, c.algorithm) for c, _ in only] == [(1000, "mcem")]
    assert figure3.parse_n_train("1000", conf) == [1000]
    with pytest.raises(VaebenchError, match="n-train"):
        figure3.parse_n_train("123", conf)
    with pytest.raises(VaebenchError, match="budget"):
        build_runs(STUDY, conf, "huge", "OUT")
    with pytest.raises(VaebenchError, match="unknown algorithm"):
        build_runs(STUDY, conf, "quick", "OUT", algorithms=["vae"])
    assert MCEM.needs_encoder is False and MCEM.wants_indices is True


def test_a_bad_config_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[budgets.quick]\nsamples = 1e5\n[algorithms.vae]\nlr = 0.1\n")
    with pytest.raises(VaebenchError, match="unknown algorithm"):
        load_config(STUDY, bad)
    bad.write_text("[budgets.quick]\nsamples = 1e5\n[algorithms.aevb]\n[marginal]\nleapfrogs = 3\n")
    with pytest.raises(VaebenchError, match="leapfrogs"):
        load_config(STUDY, bad)
    bad.write_text("[budgets.quick]\nsamples = 1e5\n[budgets.quick.marginal]\nburnin = 3\n[algorithms.aevb]\n")
    with pytest.raises(VaebenchError, match=r"budgets.quick.marginal.*burnin"):
        load_config(STUDY, bad)


# ---- the summary on fake run folders ----------------------------------------------------------


def fake_run(out: Path, n_train: int, algorithm: str, values: dict, n_points=1000, method="hmc", seed=None):
    folder = RunFolder(out / (figure3.run_name(n_train, algorithm) + (f"_seed{seed}" if seed is not None else "")))
    folder.path.mkdir(parents=True, exist_ok=True)
    cfg = RunConfig(algorithm=algorithm, nz=3, hidden=100, n_train=n_train, samples=max(values), snapshots=True)
    folder.write_info(
        {
            "config": cfg.to_dict(),
            "status": "finished",
            "lr": 0.02,
            "samples_seen": max(values),
            "machine": {"cpu": "test"},
        }
    )
    folder.write_marginal(
        method,
        [
            {
                "run": folder.name,
                "dataset": "mnist",
                "algorithm": algorithm,
                "n_train": n_train,
                "nz": 3,
                "hidden": 100,
                "samples_seen": samples,
                "split": split,
                "method": method,
                "n_points": n_points,
                "marginal_log_likelihood": v,
                "stderr": 0.05 if method == "hmc" else 0.1,
                **(
                    {"samples_per_point": 50, "leapfrog": 4, "burn_in": 200, "thin": 2, "mean_accept": 0.9}
                    if method == "hmc"
                    else {"k": 1000}
                ),
                "seed": 0,
                "wall_s": 1.0,
            }
            for samples, (train, test) in sorted(values.items())
            for split, v in (("train", train), ("test", test))
            if v is not None
        ],
    )
    return folder.path


def test_summary_writes_csv_figure_and_table(tmp_path):
    out = tmp_path / "medium"
    fake_run(out, 1000, "aevb", {1_000_000: (-128.0, -146.0), 3_000_000: (-118.0, -143.0)})
    fake_run(out, 1000, "wake-sleep", {1_000_000: (-140.0, -150.0), 3_000_000: (-133.0, -148.0)})
    fake_run(out, 1000, "mcem", {1_000_000: (-139.0, -152.0), 3_000_000: (-130.0, -146.0)})
    fake_run(out, 50000, "aevb", {5_000_000: (-138.0, -144.0)})
    (out / "not_a_run").mkdir()
    fake_run(out, 1000, "aevb", {3_000_000: (-118.5, None)}, method="importance")
    paths = summarize(STUDY, out)
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    with open(paths["figure3.csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 14 and {r["budget"] for r in rows} == {"medium"}
    assert rows[0]["algorithm"] == "aevb" and rows[0]["split"] == "train" and rows[0]["n_train"] == "1000"
    with open(paths["figure3_table.csv"]) as f:
        table = list(csv.DictReader(f))
    # AEVB train at 2e6: interpolated linearly between our 1e6 and 3e6 snapshots
    r = next(
        t
        for t in table
        if t["algorithm"] == "aevb" and t["n_train"] == "1000" and t["split"] == "train" and t["samples"] == "2000000"
    )
    paper = figure3.paper_value(1000, "aevb", "train", 2_000_000)
    assert math.isclose(float(r["ours"]), -123.0) and math.isclose(float(r["paper"]), paper)
    assert math.isclose(float(r["difference"]), -123.0 - paper, abs_tol=1e-3)
    md = paths["figure3_table.md"].read_text()
    assert (
        "| 1,000 | AEVB | 3e6 |" not in md
        and "| 1,000 | AEVB | 2e6 |" in md
        and "| 50,000 | AEVB | 5e6 | -138.0 | -137.7 | -0.3 |" in md
    )
    assert "| ntrain1000_aevb | 3e6 | train | -118.00 ± 0.050 | -118.50 ± 0.100 (k = 1000) |" in md
    prov = json.loads(paths["provenance.json"].read_text())
    assert prov["figure"] == "figure3" and set(prov["runs"]) == {
        "ntrain1000_aevb",
        "ntrain1000_wake-sleep",
        "ntrain1000_mcem",
        "ntrain50000_aevb",
    }


def test_a_run_short_of_every_tabulated_budget_is_compared_with_the_papers_curve(tmp_path):
    """The quick budget (5e5) reaches no budget of figure3_reference.csv: the table compares its
    last snapshot with the paper's plotted curve read there, marked, and only where it is drawn."""
    out = tmp_path / "quick"
    fake_run(out, 1000, "aevb", {100_000: (-150.0, -160.0), 500_000: (-130.0, -145.0)})
    fake_run(out, 50000, "aevb", {100_000: (-160.0, -161.0), 500_000: (-140.0, -141.0)})
    paths = summarize(STUDY, out, budget="quick")
    with open(paths["figure3_table.csv"]) as f:
        table = list(csv.DictReader(f))
    assert {(t["n_train"], t["split"]) for t in table} == {("1000", "train"), ("1000", "test")}
    curve = figure3.paper_curves()
    for t in table:
        c = curve[
            (curve.n_train == 1000)
            & (curve.algorithm == "aevb")
            & (curve.split == t["split"])
            & curve.shown_in_figure.astype(bool)
        ].sort_values("samples_seen")
        before, after = c[c.samples_seen <= 500_000].iloc[-1], c[c.samples_seen >= 500_000].iloc[0]
        assert t["samples"] == "500000" and t["from_curve"] == "True"
        assert (
            min(before.marginal_log_likelihood, after.marginal_log_likelihood)
            <= float(t["paper"])
            <= max(before.marginal_log_likelihood, after.marginal_log_likelihood)
        )
    assert "| 1,000 | AEVB | 5e5 | -130.0 |" in paths["figure3_table.md"].read_text()
    assert "‡" in paths["figure3_table.md"].read_text()


def test_summary_keeps_only_the_requested_settings(tmp_path):
    out = tmp_path / "quick"
    fake_run(out, 1000, "aevb", {1_000_000: (-128.0, -146.0)}, n_points=100)
    settings = {**figure3.MARGINAL_DEFAULTS, "n_points": 1000}
    folders = study_folders(STUDY, out)
    assert collect(STUDY, folders, "quick", settings).empty
    assert len(collect(STUDY, folders, "quick", {**settings, "n_points": 100})) == 2
    with pytest.raises(VaebenchError, match="no Figure 3 results"):
        summarize(STUDY, tmp_path / "empty")


def test_paper_reference_has_every_curve():
    ref = figure3.paper_reference()
    assert set(ref.algorithm) == set(figure3.ALGORITHMS) and set(ref.n_train) == {1000, 50000}
    assert figure3.paper_value(1000, "aevb", "train", 60_000_000) == pytest.approx(-109.1)


def test_reproduce_end_to_end_on_a_tiny_budget(tmp_path, capsys):
    """`vaebench reproduce figure3` with a tiny config: trains, estimates, summarizes."""
    from vaebench.cli import main
    from vaebench.errors import DataError

    conf = (
        config_path("figure3")
        .read_text()
        .replace("samples = 5e5", "samples = 2000\nfirst_eval = 1000\nevals_per_decade = 2\nlr_trial_samples = 200")
        .replace("n_points = 100 ", "n_points = 8\nburn_in = 10\nsamples_per_point = 5\nimportance_k = 20 ")
        .replace("min_samples = 1e5", "min_samples = 1000")
    )
    path = tmp_path / "tiny.toml"
    path.write_text(conf)
    out = tmp_path / "out"
    try:
        from vaebench.data import load_dataset

        load_dataset("mnist", n_train=1000)
    except DataError as exc:  # pragma: no cover
        pytest.skip(f"MNIST not available: {exc}")
    argv = [
        "reproduce",
        "figure3",
        "--config",
        str(path),
        "--out",
        str(out),
        "--n-train",
        "1000",
        "--jobs",
        "1",
        "--threads",
        "1",
        "--no-progress",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "8 points per split" in text
    with open(out / "figure3.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["algorithm"] for r in rows} == set(figure3.ALGORITHMS)
    assert {int(r["samples_seen"]) for r in rows} == {1000, 2000}  # the snapshots from min_samples
    assert all(r["n_points"] == "8" and math.isfinite(float(r["marginal_log_likelihood"])) for r in rows)
    assert (out / "ntrain1000_aevb" / "marginal_importance.csv").exists()
    assert not (out / "ntrain1000_mcem" / "marginal_importance.csv").exists()
    assert (out / "figure3.png").stat().st_size > 0 and (out / "figure3_table.md").exists()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["budget"] == "quick" and prov["marginal_likelihood"]["n_points"] == 8
    assert "--n-train 1000 --jobs 1 --threads 1" in prov["command"]
    assert prov["runs"]["ntrain1000_aevb"]["marginal_wall_s"] > 0
    # run again: everything is reused, the outputs rewritten identically
    before = (out / "figure3.csv").read_text()
    assert main(argv) == 0
    assert (out / "figure3.csv").read_text() == before


def test_summary_over_seeds(tmp_path):
    for seed, shift in ((0, 0.0), (1, 1.0), (2, 5.0)):
        fake_run(tmp_path, 1000, "aevb", {1_000_000: (-128.0 + shift, -146.0 + shift)}, seed=seed)
    paths = summarize(STUDY, tmp_path, budget="medium")
    with open(paths["figure3_table.csv"]) as f:
        table = list(csv.DictReader(f))
    test = next(r for r in table if r["split"] == "test")
    assert (float(test["ours"]), float(test["ours_min"]), float(test["ours_max"]), test["seeds"]) == (
        -144.0,
        -146.0,
        -141.0,
        "3",
    )
    assert "| 1,000 | AEVB | 1e6 | -126.0 ± 2.6 |" in paths["figure3_table.md"].read_text()
    with open(paths["figure3.csv"]) as f:
        assert [r["run"] for r in csv.DictReader(f)][:3] == ["ntrain1000_aevb_seed0"] * 2 + ["ntrain1000_aevb_seed1"]
