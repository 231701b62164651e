"""A training run's configuration: one typed dataclass, read from TOML or the command line,
checked in one place. Every choice list and default that more than one module needs lives here.

Types are enforced: an integer option rejects booleans, strings and fractions (a whole float
such as TOML's ``1e6`` is accepted for counts), a boolean option rejects anything but a
boolean, and an unknown key -- top level or in an algorithm's ``options`` table -- is an
error naming it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from vaebench.data import BINARIZE, DATASETS
from vaebench.errors import VaebenchError
from vaebench.families.latent import ESTIMATORS, LATENT_FAMILIES, check_latent
from vaebench.ops import BACKENDS

DATASET_DEFAULTS = {  # the paper's hidden units per data set (section 5)
    "mnist": {"hidden": 500},
    "frey": {"hidden": 200},
}
PAPER_STEP_SIZES = (0.01, 0.02, 0.1)
ALGORITHMS = ("aevb", "wake-sleep", "mcem")
DREAMS = ("sample", "mean")
# the global parameters theta: maximum likelihood, MAP with the N(0, I) prior (the paper's
# experiments), or variational Bayes over the decoder's parameters (the paper's appendix F)
THETA = ("ml", "map", "vb")
MAX_SEED = 2**63 - 1

# wake-sleep's default step size: the one of the paper's three that follows its Figure 2 curve
# (MNIST N_z = 20, test bound at 1e6: 0.01 -> -134.6, 0.02 -> -169.2; reproductions/figure2.toml).
# A short "auto" trial can favour a larger step whose early lead does not last.
WAKE_SLEEP_LR = 0.01


# ---- options declared per algorithm ----------------------------------------------------------


@dataclass(frozen=True)
class NoOptions:
    """An algorithm without options of its own."""


@dataclass(frozen=True)
class MCEMOptions:
    """Monte Carlo EM (appendix E): the HMC E-step and the M-step."""

    leapfrog: int = 10  # paper: 10 leapfrog steps
    target_accept: float = 0.9  # paper: step size tuned to a 90% acceptance rate
    updates: int = 5  # paper: 5 weight updates with the acquired sample
    hmc_moves: int = 3  # ours: HMC moves per visit of a datapoint (chains kept between visits);
    # 1 degrades MCEM on N_train = 50,000 (docs/figure3.md)
    init_step_size: float = 0.05  # ours
    adapt_rate: float = 0.05  # ours: log step size += rate * (acceptance - target) per visit

    def check(self):
        _need(
            self.leapfrog >= 1 and self.updates >= 1 and self.hmc_moves >= 1,
            "mcem options leapfrog, updates and hmc_moves must be >= 1",
        )
        _need(0 < self.target_accept < 1, f"mcem option target_accept must be in (0, 1), got {self.target_accept}")
        _need(
            0 < self.init_step_size <= 10, f"mcem option init_step_size must be in (0, 10], got {self.init_step_size}"
        )
        _need(0 <= self.adapt_rate <= 1, f"mcem option adapt_rate must be in [0, 1], got {self.adapt_rate}")


# ---- full VB (appendix F; vaebench.algorithms.full_vb) ---------------------- [full-vb block]
# q(theta) = N(mu, diag sigma^2) over the decoder's parameters, sigma = softplus(rho) or exp(rho).
# Its settings are AEVB's options, taken by theta = "vb" runs only. The appendix F estimator is
# the run's `estimator`: A (all terms sampled) is eq. F.10, B (the four Gaussian terms analytic)
# is eq. F.12; the score-function estimator has no VB form here.
SIGMA_PARAMS = ("softplus", "log")
VB_ESTIMATORS = {"A": "F.10", "B": "F.12"}


@dataclass(frozen=True)
class VBOptions:
    """theta = vb: the initial sigma_theta, its parameterisation and the KL warm-up."""

    sigma_init: float = 1e-3  # ours: sigma_theta of every decoder parameter at the start
    sigma_param: str = "softplus"  # ours: sigma = softplus(rho) ("log": sigma = exp(rho))
    kl_warmup: int = 0  # ours: samples over which KL(q(theta)||p(theta)) / N ramps in from 0

    def check(self):
        _need(
            math.isfinite(self.sigma_init) and 0 < self.sigma_init <= 10,
            f"vb option sigma_init (the initial sigma_theta) must be in (0, 10], got {self.sigma_init}",
        )
        _need(
            self.sigma_param in SIGMA_PARAMS,
            f"unknown vb option sigma_param {self.sigma_param!r}; choose one of {', '.join(SIGMA_PARAMS)}",
        )
        _need(
            0 <= self.kl_warmup <= 10**11, f"vb option kl_warmup must be a number of samples >= 0, got {self.kl_warmup}"
        )


# ---- [end full-vb block] -------------------------------------------------------------------------


ALGORITHM_OPTIONS = {"aevb": VBOptions, "wake-sleep": NoOptions, "mcem": MCEMOptions}


# ---- the typed checker -----------------------------------------------------------------------


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise VaebenchError(message)


def _coerce(key: str, value, kind, where: str):
    """``value`` as ``kind`` (int, float, bool, str, dict, a union of them, or None), or a
    VaebenchError naming ``key``."""
    options = (
        typing.get_args(kind)
        if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union
        else (kind,)
    )
    for opt in options:
        if opt is type(None) and value is None:
            return None
        if opt is bool and isinstance(value, bool):
            return value
        if opt is int and not isinstance(value, bool):
            if isinstance(value, int):
                return value
            if isinstance(value, float) and math.isfinite(value) and value == int(value):
                return int(value)
        if opt is float and not isinstance(value, bool) and isinstance(value, (int, float)):
            return float(value)
        if opt is str and isinstance(value, str):
            return value
        if opt is dict and isinstance(value, dict):
            return value
    names = " or ".join("none" if o is type(None) else ("a whole number" if o is int else o.__name__) for o in options)
    raise VaebenchError(f"{where}{key} must be {names}, got {value!r}")


def typed(cls, values: dict, where: str = ""):
    """An instance of the dataclass ``cls`` from ``values``: unknown keys and wrong types are
    errors naming the key."""
    if not isinstance(values, dict):
        raise VaebenchError(f"{where or 'config'} must be a table of options, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise VaebenchError(
            f"{where}unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
            if fields
            else f"{where}takes no options, got {', '.join(unknown)}"
        )
    return cls(**{k: _coerce(k, v, hints[k], where) for k, v in values.items()})


# ---- the run config --------------------------------------------------------------------------


def option(
    help: str,
    *,
    flag: str | None = None,
    bounds: tuple | None = None,
    choices: tuple | None = None,
    metavar: str | None = None,
) -> dict:
    """A RunConfig field's metadata: its ``vaebench train`` option (``flag``, default --<key with
    dashes>; its ``help``; ``choices``), and for a number its ``bounds`` [lo, hi], which both the
    command line (vaebench.cli.options) and RunConfig.check enforce."""
    return {"option": {"help": help, "flag": flag, "bounds": bounds, "choices": choices, "metavar": metavar}}


@dataclass
class RunConfig:
    """One training run. The fields with an ``option`` in their metadata are the options of
    ``vaebench train`` (their flag, help, choices and bounds are written here only)."""

    dataset: str = field(default="mnist", metadata=option("mnist or frey (default mnist)", choices=DATASETS))
    algorithm: str = field(default="aevb", metadata=option("default aevb", choices=ALGORITHMS))
    # SGVB estimator for AEVB: A, B (analytic KL) or score; check() resolves auto to B where
    # KL(q || p) is closed form (the paper's model), else A
    estimator: str = field(
        default="auto",
        metadata=option(
            "SGVB estimator (default: B, the paper's, where KL(q || p) is closed form, else A)", choices=ESTIMATORS
        ),
    )
    posterior: str = field(
        default="gaussian",
        metadata=option(  # AEVB: the family of q(z|x)
            f"AEVB: the family of q(z|x): {', '.join(LATENT_FAMILIES)} (default gaussian)", metavar="FAMILY"
        ),
    )
    latent_prior: str = field(
        default="gaussian",
        metadata=option(  # paper: N(0, I); `prior` is the legacy theta key
            f"AEVB: the family of p(z): {', '.join(LATENT_FAMILIES)} (default gaussian, N(0, I))",
            flag="--prior",
            metavar="FAMILY",
        ),
    )
    nz: int = field(default=20, metadata=option("latent dimension N_z (default 20)", bounds=(1, 1000)))
    hidden: int | None = field(
        default=None,
        metadata=option(  # None: the paper's (500 MNIST, 200 Frey Face)
            "hidden units of encoder and decoder (default: 500 MNIST, 200 Frey Face)", bounds=(1, 100_000)
        ),
    )
    samples: int = field(
        default=1_000_000,
        metadata=option(  # budget in training samples evaluated
            "budget in training samples evaluated, e.g. 1e6 (default 1e6)", bounds=(1, 10**11)
        ),
    )
    seed: int = field(default=0, metadata=option("random seed in [0, 2^63 - 1] (default 0)", bounds=(0, MAX_SEED)))
    lr: float | str = field(
        default="auto",
        metadata=option(  # Adagrad global step size (paper: best of 0.01, 0.02, 0.1)
            "Adagrad step size, or 'auto' to pick from {0.01, 0.02, 0.1} as the paper (default: auto; 0.01 for "
            "wake-sleep)",
            bounds=(0, 1),
        ),
    )
    batch_size: int = field(default=100, metadata=option("minibatch size M (default 100)", bounds=(1, 100_000)))
    L: int = field(default=1, metadata=option("samples of z per datapoint (default 1)", flag="-L", bounds=(1, 10_000)))
    init_std: float = field(default=0.01, metadata=option("parameters ~ N(0, std^2) (default 0.01)", bounds=(0, 1)))
    binarize: str = field(
        default="none",
        metadata=option("MNIST: none (intensities as Bernoulli means, the paper), static or dynamic", choices=BINARIZE),
    )
    n_train: int | None = field(
        default=None,
        metadata=option(  # keep the first n_train training points (Figure 3)
            "use only the first N training points", bounds=(1, 10**9)
        ),
    )
    theta: str = field(
        default="map",
        metadata=option(  # ml, map (N(0, I) prior as weight decay) or vb (appendix F)
            "the global parameters: ml, map (the N(0, I) prior as weight decay, the paper's; default) or vb "
            "(variational Bayes over the decoder, appendix F)",
            choices=THETA,
        ),
    )
    dreams: str = field(
        default="sample",
        metadata=option("wake-sleep: sleep-phase x sampled from the decoder or its mean", choices=DREAMS),
    )
    snapshots: bool = field(default=False, metadata=option("keep the parameters at every evaluation point"))
    device: str = field(default="cpu", metadata=option("cpu, cuda or cuda:N (default cpu)"))
    backend: str = field(
        default="eager", metadata=option("hot-path ops: eager, numba, triton or compile (default eager)")
    )
    data_dir: str | None = field(
        default=None, metadata=option("folder with the data files (else $VAEBENCH_DATA_DIR, the cache, ...)")
    )
    checkpoint_every_s: float = field(
        default=300.0,
        metadata=option(  # also on this wall-clock interval
            "also checkpoint every this many seconds of training (default 300; 0: only at evaluations)",
            flag="--checkpoint-every",
            bounds=(0, math.inf),
        ),
    )
    evals_per_decade: int = 4
    first_eval: int = 10_000  # first evaluation point, in samples
    lr_trial_samples: int = 50_000  # per candidate, for lr = "auto"
    options: dict = field(default_factory=dict)  # the algorithm's own (ALGORITHM_OPTIONS)

    # keys that may differ between an interrupted run and its resumption (``samples`` may only grow)
    RESUMABLE_OVERRIDES = ("device", "backend", "data_dir", "checkpoint_every_s", "samples")

    @property
    def hidden_units(self) -> int:
        return self.hidden if self.hidden is not None else DATASET_DEFAULTS[self.dataset]["hidden"]

    @property
    def algorithm_options(self):
        """The algorithm's options as their declared dataclass (defaults filled in)."""
        return typed(ALGORITHM_OPTIONS[self.algorithm], self.options, f"[options] of {self.algorithm}: ")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The settings that make two runs the same run (everything but RESUMABLE_OVERRIDES; the
        latent families only when not the paper's, so older checkpoints keep their identity)."""
        return {
            k: v
            for k, v in self.to_dict().items()
            if k not in self.RESUMABLE_OVERRIDES and not (k in ("posterior", "latent_prior") and v == "gaussian")
        }

    @property
    def prior(self) -> bool:
        """Whether the N(0, I) prior on theta enters the objective (MAP and VB; not ML)."""
        return self.theta != "ml"

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> RunConfig:
        """A config from a TOML table or run.json's ``config``: typed, unknown keys refused.
        The key ``prior`` (a boolean; run.json files before ``theta`` existed) reads as
        theta = "map" (true) or "ml" (false)."""
        if isinstance(d, dict) and "prior" in d:
            d = dict(d)
            prior = _coerce("prior", d.pop("prior"), bool, where)
            if "theta" in d and d["theta"] != ("map" if prior else "ml"):
                raise VaebenchError(f"{where}prior = {str(prior).lower()} contradicts theta = {d['theta']!r}")
            d["theta"] = "map" if prior else "ml"
        return typed(cls, d, where)

    @classmethod
    def flag(cls, key: str) -> str:
        """The ``vaebench train`` option of field ``key`` (--<key with dashes> unless it names another)."""
        opt = FIELD_OPTIONS[key]
        return opt["flag"] or "--" + key.replace("_", "-")

    def check(self, where: str = "", flags=()) -> RunConfig:
        """This config, checked: a copy with estimator "auto" resolved (B where KL(q || p) is closed
        form, else A), or a one-line VaebenchError for the first value out of range, naming it by
        ``where`` + its key (a TOML's), or by its option for the keys in ``flags`` (given on the
        command line). A config already checked checks to an equal one."""

        def name(key: str) -> str:
            return self.flag(key) if key in flags else f"{where}{key}"

        def within(key: str, text: str | None = None) -> None:
            lo, hi = FIELD_OPTIONS[key]["bounds"]
            value = getattr(self, key)
            if value is not None and not lo <= value <= hi:
                shown = text or f"[{lo}, {'2^63 - 1' if hi == MAX_SEED else hi}]"
                raise VaebenchError(f"{name(key)} must be in {shown}, got {value}")

        need = _need
        need(self.dataset in DATASET_DEFAULTS, f"unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        need(
            self.algorithm in ALGORITHMS, f"unknown algorithm {self.algorithm!r}; choose one of {', '.join(ALGORITHMS)}"
        )
        need(
            self.estimator in ESTIMATORS + ("auto",),
            f"unknown estimator {self.estimator!r}; choose one of {', '.join(ESTIMATORS)} or auto",
        )
        cfg = dataclasses.replace(self, estimator=check_latent(self.posterior, self.latent_prior, self.estimator))
        need(
            cfg.posterior == cfg.latent_prior == "gaussian" or (cfg.algorithm == "aevb" and cfg.theta != "vb"),
            f"posterior {cfg.posterior!r} / prior {cfg.latent_prior!r}: non-Gaussian latent families are "
            f"implemented for algorithm aevb with theta map or ml, not {cfg.algorithm} with theta {cfg.theta}",
        )
        for key in ("nz", "hidden", "batch_size", "seed", "L", "n_train"):
            within(key)
        need(
            cfg.batch_size <= cfg.samples <= FIELD_OPTIONS["samples"]["bounds"][1],
            f"{name('samples')} must be in [batch size {cfg.batch_size}, 1e11], got {cfg.samples:g}",
        )
        need(
            cfg.lr == "auto" if isinstance(cfg.lr, str) else math.isfinite(cfg.lr) and 0 < cfg.lr <= 1,
            f"{name('lr')} must be a number in (0, 1] or 'auto', got {cfg.lr!r}",
        )
        need(
            math.isfinite(cfg.init_std) and 0 < cfg.init_std <= 1,
            f"{name('init_std')} must be in (0, 1], got {cfg.init_std}",
        )
        need(cfg.binarize in BINARIZE, f"unknown binarize {cfg.binarize!r}; choose one of {', '.join(BINARIZE)}")
        need(cfg.theta in THETA, f"unknown theta {cfg.theta!r}; choose one of {', '.join(THETA)}")
        need(cfg.dreams in DREAMS, f"unknown dreams {cfg.dreams!r}; choose one of {', '.join(DREAMS)}")
        need(
            1 <= cfg.evals_per_decade <= 100, f"{where}evals_per_decade must be in [1, 100], got {cfg.evals_per_decade}"
        )
        need(cfg.first_eval >= 1, f"{where}first_eval must be >= 1, got {cfg.first_eval}")
        need(
            cfg.batch_size <= cfg.lr_trial_samples <= 10**9,
            f"{where}lr_trial_samples must be in [one minibatch, 1e9], got {cfg.lr_trial_samples}",
        )
        need(cfg.backend in BACKENDS, f"unknown backend {cfg.backend!r}; choose one of {', '.join(BACKENDS)}")
        need(
            math.isfinite(cfg.checkpoint_every_s) and cfg.checkpoint_every_s >= 0,
            f"{name('checkpoint_every_s')} must be a number of seconds >= 0, got {cfg.checkpoint_every_s}",
        )
        if cfg.theta == "vb":  # [full-vb block]
            need(
                cfg.algorithm == "aevb", f"theta vb (appendix F) is implemented for algorithm aevb, not {cfg.algorithm}"
            )
            need(
                cfg.estimator in VB_ESTIMATORS,
                f"theta vb takes estimator A (eq. F.10) or B (eq. F.12), not {cfg.estimator!r}",
            )
        elif cfg.algorithm == "aevb" and cfg.options:
            need(
                False,
                f"[options] of aevb ({', '.join(sorted(cfg.options))}) are those of theta = vb; "
                f"this run has theta = {cfg.theta}",
            )
        opts = cfg.algorithm_options
        if hasattr(opts, "check"):
            opts.check()
        return cfg


# each field's ``vaebench train`` option (RunConfig's metadata), by key
FIELD_OPTIONS = {f.name: f.metadata["option"] for f in dataclasses.fields(RunConfig) if "option" in f.metadata}


def default_lr(algorithm: str) -> float | str:
    """The step size a run of ``algorithm`` gets when none is given."""
    return WAKE_SLEEP_LR if algorithm == "wake-sleep" else "auto"


def load_toml(path) -> dict:
    """A TOML file as a dict; a missing file, a folder, bad UTF-8 or bad TOML is one-line error."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib
    path = Path(path)
    if path.is_dir():
        raise VaebenchError(f"config {path} is a folder, not a TOML file")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise VaebenchError(f"config file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise VaebenchError(f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise VaebenchError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VaebenchError(f"config file {path} is not valid TOML: {exc}") from None
