"""A training run's configuration: one dataclass, read from TOML or the CLI, checked in one place."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from vaebench.errors import VaebenchError

DATASET_DEFAULTS = {  # the paper's hidden units per data set (section 5)
    "mnist": {"hidden": 500},
    "frey": {"hidden": 200},
}
PAPER_STEP_SIZES = (0.01, 0.02, 0.1)
ESTIMATORS = ("A", "B", "score")
ALGORITHMS = ("aevb", "wake-sleep", "mcem")
BINARIZE = ("none", "static", "dynamic")
DREAMS = ("sample", "mean")


@dataclass
class RunConfig:
    dataset: str = "mnist"
    algorithm: str = "aevb"
    estimator: str = "B"          # SGVB estimator for AEVB: A, B (analytic KL) or score
    nz: int = 20
    hidden: int | None = None     # None: the paper's (500 MNIST, 200 Frey Face)
    samples: int = 1_000_000      # budget in training samples evaluated
    seed: int = 0
    lr: float | str = "auto"      # Adagrad global step size, or "auto" (paper: best of 0.01, 0.02, 0.1)
    batch_size: int = 100         # M
    L: int = 1                    # samples of z per datapoint
    init_std: float = 0.01        # parameters ~ N(0, init_std^2)
    prior: bool = True            # N(0, I) prior on the parameters (MAP), as the paper
    binarize: str = "none"        # MNIST: intensities as Bernoulli means (paper), or static/dynamic
    n_train: int | None = None    # keep the first n_train training points (Figure 3)
    device: str = "cpu"
    backend: str = "eager"        # hot-path ops: eager, numba, triton, compile
    evals_per_decade: int = 4
    first_eval: int = 10_000      # first evaluation point, in samples
    lr_trial_samples: int = 50_000  # per candidate, for lr = "auto"
    dreams: str = "sample"        # wake-sleep: sleep-phase x sampled from the decoder, or its mean
    snapshots: bool = False       # keep the parameters at every evaluation point
    data_dir: str | None = None
    options: dict = field(default_factory=dict)  # algorithm-specific (e.g. MCEM's HMC settings)

    # keys that may differ between an interrupted run and its resumption
    RESUMABLE_OVERRIDES = ("device", "backend", "data_dir")

    @property
    def hidden_units(self) -> int:
        return self.hidden if self.hidden is not None else DATASET_DEFAULTS[self.dataset]["hidden"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise VaebenchError(f"unknown config key(s): {', '.join(unknown)}")
        cfg = cls(**d)
        cfg.samples = int(float(cfg.samples))
        if cfg.n_train is not None:
            cfg.n_train = int(cfg.n_train)
        return cfg

    def check(self) -> "RunConfig":
        """Raise a one-line VaebenchError for any value out of range."""
        def need(ok, msg):
            if not ok:
                raise VaebenchError(msg)

        need(self.dataset in DATASET_DEFAULTS, f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASET_DEFAULTS)}")
        need(self.algorithm in ALGORITHMS, f"unknown algorithm {self.algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
        need(self.estimator in ESTIMATORS, f"unknown estimator {self.estimator!r}; choose one of {', '.join(ESTIMATORS)}")
        need(isinstance(self.nz, int) and 1 <= self.nz <= 1000, f"--nz must be an integer in [1, 1000], got {self.nz}")
        need(self.hidden is None or 1 <= self.hidden <= 100_000, f"--hidden must be in [1, 100000], got {self.hidden}")
        need(1 <= self.batch_size <= 100_000, f"--batch-size must be in [1, 100000], got {self.batch_size}")
        need(math.isfinite(self.samples) and self.batch_size <= self.samples <= 10**11,
             f"--samples must be in [batch size {self.batch_size}, 1e11], got {self.samples:g}")
        if isinstance(self.lr, str):
            need(self.lr == "auto", f"--lr must be a number in (0, 1] or 'auto', got {self.lr!r}")
        else:
            need(math.isfinite(self.lr) and 0 < self.lr <= 1, f"--lr must be a number in (0, 1] or 'auto', got {self.lr}")
        need(1 <= self.L <= 10_000, f"-L must be in [1, 10000], got {self.L}")
        need(math.isfinite(self.init_std) and 0 < self.init_std <= 1, f"--init-std must be in (0, 1], got {self.init_std}")
        need(self.binarize in BINARIZE, f"unknown binarize {self.binarize!r}; choose one of {', '.join(BINARIZE)}")
        need(self.dreams in DREAMS, f"unknown dreams {self.dreams!r}; choose one of {', '.join(DREAMS)}")
        need(self.evals_per_decade >= 1, "evals_per_decade must be >= 1")
        need(self.first_eval >= 1, "first_eval must be >= 1")
        need(self.lr_trial_samples >= self.batch_size, "lr_trial_samples must be at least one minibatch")
        from vaebench.ops import BACKENDS
        need(self.backend in BACKENDS, f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        return self


def load_toml(path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise VaebenchError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise VaebenchError(f"config file {path} is not valid TOML: {exc}") from None
