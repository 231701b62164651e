"""How results/figure3/wake_sleep_step_size/ was made (the choice of wake-sleep's step size for Figure 3).

    python studies/figure3_wake_sleep_step_size.py 0.01   # and 0.02, 0.1 (one process each)
    python studies/figure3_wake_sleep_step_size.py --table

Trains the N_train = 1000 wake-sleep run of reproductions/figure3.toml (medium budget, 1e7
samples) with the given step size into runs/fig3_ws/lr<lr>/, estimates log p(x) with the
appendix D estimator at every snapshot (and, as the reproduction does, the importance-sampling
cross-check), and with --table compares the three with the paper.
"""

import sys
from pathlib import Path

import pandas as pd

from vaebench.engine.config import build_runs, load_config
from vaebench.engine.runs_many import run_many
from vaebench.engine.summary import frame
from vaebench.engine.workers import torch_threads
from vaebench.figures import figure3
from vaebench.figures.common import interpolate
from vaebench.runs import RunFolder

RESULTS = Path(__file__).resolve().parents[1] / "results" / "figure3" / "wake_sleep_step_size"
BUDGETS = (2e6, 5e6, 1e7)


def measure(lr: float) -> None:
    conf = load_config(figure3.STUDY)
    ((cfg, run_dir),) = build_runs(
        figure3.STUDY, conf, "medium", Path(f"runs/fig3_ws/lr{lr}"), n_train=[1000], algorithms=["wake-sleep"]
    )
    cfg.lr = lr
    with torch_threads(1):
        run_many([(cfg, run_dir)], jobs=1, threads=1, progress=False)
        figure3.estimate_all([(cfg, run_dir)], figure3.STUDY.settings(conf, "medium"))


def table(lrs=("0.01", "0.02", "0.1")) -> pd.DataFrame:
    rows = []
    for lr in lrs:
        est = frame(RunFolder(f"runs/fig3_ws/lr{lr}/ntrain1000_wake-sleep").read_marginal("hmc"))
        for split in ("train", "test"):
            d = est[est.split == split]
            for b in BUDGETS:
                ours = interpolate(d.samples_seen, d.marginal_log_likelihood, b)
                paper = figure3.paper_value(1000, "wake-sleep", split, b)
                rows.append(
                    dict(
                        lr=lr,
                        split=split,
                        samples_seen=int(b),
                        ours=round(ours, 2),
                        paper=paper,
                        difference=round(ours - paper, 2),
                    )
                )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        t = table()
        t.to_csv(RESULTS / "wake_sleep_step_size.csv", index=False)
        print(t.to_string(index=False))
        print(t.assign(a=t.difference.abs()).groupby("lr").a.mean().round(2).to_string())
    else:
        measure(float(sys.argv[1]))
