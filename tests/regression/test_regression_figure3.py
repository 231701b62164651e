"""Slow regression test against the paper's Figure 3 (nox -s regression).

N_train = 1,000, N_z = 3, 100 hidden units, 10^7 training samples: AEVB's estimated marginal
log-likelihood on the training points is above wake-sleep's and within 3 nats of the paper's
value at 10^7 samples (or above it), and both overfit as the paper shows (train well above
test). Reuses the committed runs and estimates in results/figure3/medium/ when present (training
both runs from scratch takes about 20 minutes on one CPU core, the estimates a few more).
"""

import statistics
from pathlib import Path

import pytest

from vaebench.engine.config import build_runs, load_config
from vaebench.engine.runs_many import run_many
from vaebench.figures import figure3
from vaebench.marginal.run import evaluate_run
from vaebench.runs import RunFolder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "figure3" / "medium"
BUDGET = 10_000_000
TOLERANCE = 3.0  # nats below the paper's value allowed
OVERFIT_GAP = 10.0  # nats: train above test (the paper: 28.5 for AEVB, 18.3 for wake-sleep at 1e7)


def _committed_rows(run_dir: Path, s: dict) -> list[dict]:
    """The rows of run_dir/marginal_hmc.csv made with the config's estimator settings."""
    keys = ("n_points", "samples_per_point", "leapfrog", "burn_in", "thin", "seed")
    return [r for r in RunFolder(run_dir).read_marginal("hmc") if all(str(r[k]) == str(s[k]) for k in keys)]


def _committed_only(run_dir: Path) -> bool:
    """A clone's committed run: its estimates, but not its parameters (git-ignored)."""
    has_parameters = (run_dir / "snapshots").is_dir() or (run_dir / "checkpoint.pt").exists()
    return (run_dir / "marginal_hmc.csv").exists() and not has_parameters


@pytest.fixture(scope="module")
def estimates(tmp_path_factory):
    conf = load_config(figure3.STUDY)
    out = RESULTS if RESULTS.exists() else tmp_path_factory.mktemp("figure3")
    runs = build_runs(figure3.STUDY, conf, "medium", out, n_train=[1000], algorithms=["aevb", "wake-sleep"])
    assert all(cfg.samples == BUDGET for cfg, _ in runs)
    run_many([(cfg, d) for cfg, d in runs if not _committed_only(d)], jobs=1, threads=1, progress=False)
    s = figure3.STUDY.settings(conf, "medium")
    values = {}
    for cfg, run_dir in runs:
        if not _committed_only(run_dir):
            rows = evaluate_run(
                run_dir,
                method="hmc",
                n_points=s["n_points"],
                samples_per_point=s["samples_per_point"],
                leapfrog=s["leapfrog"],
                burn_in=s["burn_in"],
                thin=s["thin"],
                seed=s["seed"],
                snapshot="all",
                min_samples=BUDGET,
                progress=False,
            )
        else:  # a clone holds the committed estimates, not the parameters (git-ignored)
            rows = _committed_rows(run_dir, s)
        for r in rows:
            if int(r["samples_seen"]) == BUDGET:
                values[(cfg.algorithm, r["split"])] = float(r["marginal_log_likelihood"])
    return values


def test_aevb_reaches_the_papers_train_marginal_likelihood(estimates):
    paper = figure3.paper_value(1000, "aevb", "train", BUDGET)
    assert estimates[("aevb", "train")] >= paper - TOLERANCE, (estimates, paper)


def test_aevb_is_above_wake_sleep_on_the_training_points(estimates):
    assert estimates[("aevb", "train")] > estimates[("wake-sleep", "train")], estimates


@pytest.mark.parametrize("algorithm", ["aevb", "wake-sleep"])
def test_train_is_well_above_test_as_the_paper_shows(estimates, algorithm):
    assert estimates[(algorithm, "train")] > estimates[(algorithm, "test")] + OVERFIT_GAP, estimates


# ---- seeds: results/figure3/medium_seeds/ (`vaebench reproduce figure3 --budget medium --n-train 1000
# --seeds 0,1,2`); read from the committed estimates, never trained here (9 runs: hours of CPU)

SEEDS_RESULTS = ROOT / "results" / "figure3" / "medium_seeds"
SEEDS = (0, 1, 2)


def _seed_values(algorithm: str, split: str) -> list[float]:
    """log p(x) at 10^7 of each seed's N_train = 1,000 run (config's estimator settings); skips
    the test unless every seed has one."""
    s = figure3.STUDY.settings(load_config(figure3.STUDY), "medium")
    values = []
    for seed in SEEDS:
        run_dir = SEEDS_RESULTS / f"{figure3.run_name(1000, algorithm)}_seed{seed}"
        rows = _committed_rows(run_dir, s) if (run_dir / "marginal_hmc.csv").exists() else []
        at = [
            float(r["marginal_log_likelihood"])
            for r in rows
            if int(r["samples_seen"]) == BUDGET and r["split"] == split
        ]
        if not at:
            pytest.skip(f"{run_dir.name}: no estimate at 1e7 yet")
        values.append(at[0])
    return values


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values)


@pytest.mark.parametrize("algorithm", ["aevb", "wake-sleep", "mcem"])
def test_seed_mean_reaches_the_papers_train_value(algorithm):
    mean, sd = _mean_sd(_seed_values(algorithm, "train"))
    paper = figure3.paper_value(1000, algorithm, "train", BUDGET)
    assert mean >= paper - (TOLERANCE + 2 * sd), f"{algorithm}: seed mean {mean:.2f} (sd {sd:.2f}), paper {paper}"


def test_aevb_seed_mean_above_wake_sleep_beyond_the_spread():
    (aevb, sd_a), (ws, sd_w) = _mean_sd(_seed_values("aevb", "train")), _mean_sd(_seed_values("wake-sleep", "train"))
    assert aevb - ws > sd_a + sd_w, f"AEVB {aevb:.2f} (sd {sd_a:.2f}), wake-sleep {ws:.2f} (sd {sd_w:.2f})"
