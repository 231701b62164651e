"""Regression against the paper's Figure 2 (slow: `nox -s regression`, i.e. `pytest -m slow`).

MNIST N_z = 3 and 20, both algorithms, 10^7 samples: AEVB's test bound is no more than 3 nats
below the paper's value at 10^7, and not above the paper's value at 10^8 + 3 nats (a bound that
good that early means a bug); wake-sleep is below AEVB. Frey Face N_z = 2 at 5 x 10^6 samples:
AEVB above wake-sleep. The expected values are read from reproductions/paper/ at test time.

Seeds: MNIST at the quick budget (10^6 samples) with seeds 0, 1, 2: AEVB's seed mean is no more
than 3 nats + 2 standard deviations over seeds below the paper's value at 10^6, and wake-sleep's
seed mean is below AEVB's by more than their spreads (the paper's ordering). These reuse
results/figure2/quick_seeds/ (`vaebench reproduce figure2 --datasets mnist --budget quick
--seeds 0,1,2`) where its runs are finished, else train into the cache folder below.

The runs are the medium-budget runs of reproductions/figure2.toml. Finished runs of the same
config in results/figure2/medium/ (from `vaebench reproduce figure2 --budget medium`) are
reused; otherwise the runs are trained (2 at a time, resumable) into $VAEBENCH_REGRESSION_DIR
(default runs/regression/figure2/, ignored by git), where later sessions reuse them.
"""

import math
import os
import statistics
from pathlib import Path

import pytest

from vaebench.config import RunConfig
from vaebench.engine.config import build_runs, load_config
from vaebench.engine.runs_many import run_many
from vaebench.figures import figure2
from vaebench.figures.common import interpolate
from vaebench.runs import RunFolder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MEDIUM = ROOT / "results" / "figure2" / "medium"
QUICK_SEEDS = ROOT / "results" / "figure2" / "quick_seeds"
SEEDS = [0, 1, 2]
CACHE = Path(os.environ.get("VAEBENCH_REGRESSION_DIR", ROOT / "runs" / "regression" / "figure2"))
SHARED_DATA = ROOT.parent / "shared" / "data"
JOBS = int(os.environ.get("VAEBENCH_REGRESSION_JOBS", "2"))
MARGIN = 3.0  # nats, as the issue says

MNIST_SAMPLES = 10**7
FREY_SAMPLES = 5 * 10**6


def _reusable(run_dir: Path, cfg: RunConfig) -> bool:
    """A finished run of the same config, with at least cfg.samples samples (the training is the
    same whatever the budget: the budget only adds an evaluation point at its end)."""
    folder = RunFolder(run_dir)
    info = folder.read_info(missing_ok=True)
    if info is None:
        return False
    stored = folder.read_config()
    return info.get("status") == "finished" and stored.identity() == cfg.identity() and stored.samples >= cfg.samples


def _data_dir():
    if os.environ.get("VAEBENCH_DATA_DIR"):
        return os.environ["VAEBENCH_DATA_DIR"]
    return str(SHARED_DATA) if SHARED_DATA.is_dir() else None


def _train_or_reuse(dataset: str, nzs, samples: int) -> dict:
    """{(nz, algorithm): test bound at ``samples``} from reused or newly trained runs."""
    conf = load_config(figure2.STUDY)
    todo, dirs = [], {}
    for cfg, _ in build_runs(
        figure2.STUDY, conf, "medium", MEDIUM, {"data_dir": _data_dir()}, datasets=[dataset], nzs=nzs
    ):
        cfg.samples = samples
        name = figure2.run_name(cfg.dataset, cfg.nz, cfg.algorithm)
        if _reusable(MEDIUM / name, cfg):
            dirs[(cfg.nz, cfg.algorithm)] = MEDIUM / name
        else:
            out = CACHE / f"samples_{samples}" / name
            todo.append((cfg, out))
            dirs[(cfg.nz, cfg.algorithm)] = out
    if todo:
        run_many(todo, jobs=JOBS, progress=True)
    values = {}
    for key, run_dir in dirs.items():
        m = RunFolder(run_dir).read_metrics()
        test = m[m.split == "test"]
        values[key] = interpolate(test.samples_seen.tolist(), test.lower_bound.tolist(), samples, log=True)
    return values


def _seed_bounds(dataset: str, budget: str) -> dict:
    """{(nz, algorithm): [test bound at the budget's end, one per seed]}, from reused or newly
    trained runs (one per seed, folders <run>_seed<N>)."""
    conf = load_config(figure2.STUDY)
    runs = build_runs(
        figure2.STUDY, conf, budget, QUICK_SEEDS, {"data_dir": _data_dir()}, datasets=[dataset], seeds=SEEDS
    )
    todo, dirs = [], {}
    for cfg, out in runs:
        if not _reusable(out, cfg):
            out = CACHE / f"{budget}_seeds" / out.name
            todo.append((cfg, out))
        dirs.setdefault((cfg.nz, cfg.algorithm), []).append((cfg.samples, out))
    if todo:
        run_many(todo, jobs=JOBS, progress=True)
    values = {}
    for key, outs in dirs.items():
        values[key] = []
        for samples, out in outs:
            m = RunFolder(out).read_metrics()
            test = m[m.split == "test"]
            values[key].append(interpolate(test.samples_seen.tolist(), test.lower_bound.tolist(), samples, log=True))
    return values


def _mean_sd(xs):
    return statistics.mean(xs), statistics.stdev(xs)


@pytest.fixture(scope="module")
def mnist_quick_seeds():
    return _seed_bounds("mnist", "quick")


@pytest.mark.parametrize("nz", [3, 5, 10, 20, 200])
def test_mnist_aevb_seed_mean_at_1e6_agrees_with_the_paper(mnist_quick_seeds, nz):
    bounds = mnist_quick_seeds[(nz, "aevb")]
    assert len(bounds) == len(SEEDS) and all(math.isfinite(b) for b in bounds), bounds
    mean, sd = _mean_sd(bounds)
    paper = figure2.paper_value("mnist", nz, "aevb", "test", 10**6)
    tolerance = MARGIN + 2 * sd
    assert mean >= paper - tolerance, (
        f"AEVB N_z={nz}: seed mean {mean:.2f} (sd {sd:.2f}) at 1e6, paper {paper}: more than {tolerance:.2f} nats below"
    )
    at_1e8 = figure2.paper_value("mnist", nz, "aevb", "test", 10**8)
    assert mean <= at_1e8 + tolerance, f"AEVB N_z={nz}: seed mean {mean:.2f} at 1e6 above the paper's 1e8 {at_1e8}"


# Measured (results/figure2/quick_seeds, docs/figure2.md, "Three seeds"): at 10^6 with N_z = 3 the step-size trial
# picks 0.02 for seed 0 and 0.01 for seeds 1 and 2, which end 8 nats lower; AEVB's lead over
# wake-sleep (2.4 nats; the paper's is 2.1) is inside that spread. Strict: a pass means it changed.
NZ3_SPREAD = pytest.mark.xfail(
    strict=True,
    reason="N_z = 3 at 1e6: AEVB's seed spread (the step-size trial's pick) exceeds its lead over wake-sleep",
)


@pytest.mark.parametrize("nz", [pytest.param(3, marks=NZ3_SPREAD), 5, 10, 20, 200])
def test_mnist_wake_sleep_seed_mean_below_aevb_beyond_the_spread(mnist_quick_seeds, nz):
    (aevb, sd_a), (ws, sd_w) = (
        _mean_sd(mnist_quick_seeds[(nz, "aevb")]),
        _mean_sd(mnist_quick_seeds[(nz, "wake-sleep")]),
    )
    assert aevb - ws > sd_a + sd_w, f"N_z={nz}: AEVB {aevb:.2f} ± {sd_a:.2f}, wake-sleep {ws:.2f} ± {sd_w:.2f}"


@pytest.fixture(scope="module")
def mnist_1e7():
    return _train_or_reuse("mnist", [3, 20], MNIST_SAMPLES)


@pytest.fixture(scope="module")
def frey_5e6():
    return _train_or_reuse("frey", [2], FREY_SAMPLES)


@pytest.mark.parametrize("nz", [3, 20])
def test_mnist_aevb_test_bound_at_1e7_agrees_with_the_paper(mnist_1e7, nz):
    ours = mnist_1e7[(nz, "aevb")]
    at_1e7 = figure2.paper_value("mnist", nz, "aevb", "test", MNIST_SAMPLES)
    at_1e8 = figure2.paper_value("mnist", nz, "aevb", "test", 10**8)
    assert math.isfinite(ours)
    assert ours >= at_1e7 - MARGIN, f"AEVB N_z={nz}: {ours:.2f} at 1e7, paper {at_1e7} (more than {MARGIN} nats below)"
    assert ours <= at_1e8 + MARGIN, (
        f"AEVB N_z={nz}: {ours:.2f} at 1e7 is above the paper's value at 1e8 ({at_1e8}) + {MARGIN}: too good to be true"
    )


@pytest.mark.parametrize("nz", [3, 20])
def test_mnist_wake_sleep_below_aevb_at_1e7(mnist_1e7, nz):
    ws, aevb = mnist_1e7[(nz, "wake-sleep")], mnist_1e7[(nz, "aevb")]
    assert math.isfinite(ws) and ws < aevb, f"N_z={nz}: wake-sleep {ws:.2f}, AEVB {aevb:.2f}"


def test_frey_nz2_aevb_above_wake_sleep_at_5e6(frey_5e6):
    ws, aevb = frey_5e6[(2, "wake-sleep")], frey_5e6[(2, "aevb")]
    assert math.isfinite(ws) and math.isfinite(aevb) and aevb > ws, f"Frey N_z=2: AEVB {aevb:.2f}, wake-sleep {ws:.2f}"


def test_committed_medium_results_meet_the_done_criterion():
    """Where results/figure2/medium/ holds finished MNIST runs: AEVB's final test bound on every
    such panel is within 3 nats of the paper's value at 1e7 or above it, and above wake-sleep's."""
    conf = load_config(figure2.STUDY)
    checked = 0
    for nz in conf["datasets"]["mnist"]["nz"]:
        finals = {}
        for alg in ("aevb", "wake-sleep"):
            info = RunFolder(MEDIUM / figure2.run_name("mnist", nz, alg)).read_info(missing_ok=True) or {}
            if info.get("status") == "finished" and info.get("samples_seen") == MNIST_SAMPLES:
                finals[alg] = info["final"]["test"]
        if "aevb" not in finals:
            continue
        checked += 1
        paper = figure2.paper_value("mnist", nz, "aevb", "test", MNIST_SAMPLES)
        assert finals["aevb"] >= paper - MARGIN, f"N_z={nz}: AEVB {finals['aevb']:.2f}, paper {paper}"
        if "wake-sleep" in finals:
            assert finals["aevb"] > finals["wake-sleep"], f"N_z={nz}: {finals}"
    if not checked:
        pytest.skip(f"no finished medium-budget MNIST runs in {MEDIUM}")
