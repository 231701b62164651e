"""How results/figure3/mcem_hmc_moves/ was made: MCEM with N_train = 50,000 to 3.16e6 samples with
another step size or more HMC moves per visit, to see why the committed medium run degrades.

    python studies/figure3_mcem_hmc_moves.py 0.02 1   # step size 0.02, 1 HMC move per visit
    python studies/figure3_mcem_hmc_moves.py 0.1 3    # step size 0.1, 3 HMC moves per visit

Trains into runs/mcem_probe/lr<lr>_moves<m>/ (the medium config of reproductions/figure3.toml
otherwise) and estimates log p(x) (appendix D, medium settings) at the snapshots from 1e6 on.
"""

import sys
from pathlib import Path

from vaebench.engine.config import build_runs, load_config
from vaebench.engine.runs_many import run_many
from vaebench.engine.workers import torch_threads
from vaebench.figures import figure3

lr, moves = float(sys.argv[1]), int(sys.argv[2])
conf = load_config(figure3.STUDY)
((cfg, run_dir),) = build_runs(
    figure3.STUDY, conf, "medium", Path(f"runs/mcem_probe/lr{lr}_moves{moves}"), n_train=[50000], algorithms=["mcem"]
)
cfg.lr, cfg.samples = lr, 3_162_300
cfg.options = {**cfg.options, "hmc_moves": moves}
with torch_threads(1):
    run_many([(cfg, run_dir)], jobs=1, threads=1, progress=False)
    figure3.estimate_all([(cfg, run_dir)], {**figure3.STUDY.settings(conf, "medium"), "min_samples": 1_000_000})
