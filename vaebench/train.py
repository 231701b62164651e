"""The training loop: a budget in training samples, evaluations at log-spaced points,
checkpoints at every evaluation point and on a wall-clock interval, and bit-identical
resumption (also past the original budget: a finished run can be extended).

Everything is checked before anything is written; the run folder (vaebench.runs) is locked
while training; with ``overwrite`` the old run is moved aside and restored if the new one fails
before its first checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaebench import ops
from vaebench.algorithms import algorithm_class
from vaebench.bound import average_lower_bound, eval_schedule
from vaebench.config import PAPER_STEP_SIZES, RunConfig, default_lr, load_toml
from vaebench.data import Dataset, load_run_data
from vaebench.devices import check_device
from vaebench.errors import TrainingDiverged, VaebenchError
from vaebench.models import build_model
from vaebench.provenance import environment
from vaebench.runs import RunFolder, check_out_path

TRAIN_EVAL_NOTE = (
    "train and test values are the SGVB-B estimate (analytic KL, L = 1, fixed evaluation "
    "seed) of the average lower bound per datapoint over the whole split, computed with "
    "the parameters at that point (not a running average of training minibatches)"
)


class MinibatchStream:
    """Minibatches of M rows drawn without replacement, reshuffled each epoch (a partial last
    batch is dropped). Its position is part of the checkpoint."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        if n < batch_size:
            raise VaebenchError(f"the training set has {n} points, fewer than one minibatch of {batch_size}")
        self.n, self.m, self.gen = n, batch_size, generator
        self.perm, self.pos = torch.randperm(n, generator=generator), 0

    def next_indices(self) -> torch.Tensor:
        if self.pos + self.m > self.n:
            self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.perm[self.pos : self.pos + self.m]
        self.pos += self.m
        return idx

    def state_dict(self):
        return {"perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state):
        self.perm, self.pos = state["perm"], state["pos"]


def algorithm_kwargs(cfg: RunConfig) -> dict:
    """The settings of ``cfg`` that its algorithm takes, besides lr, n_train and prior."""
    if cfg.algorithm == "aevb":
        return {"estimator": cfg.estimator, "L": cfg.L}
    if cfg.algorithm == "wake-sleep":
        return {"dreams": cfg.dreams}
    return dataclasses.asdict(cfg.algorithm_options)


@dataclass
class Trainer:
    """One model, one algorithm, one data set: steps and their random state."""

    cfg: RunConfig
    data: Dataset
    lr: float

    def __post_init__(self):
        cfg, device = self.cfg, torch.device(self.cfg.device)
        self.device = device
        self.train_x = self.data.train.to(device)
        self.test_x = self.data.test.to(device)
        init_gen = torch.Generator().manual_seed(cfg.seed)
        cls = algorithm_class(cfg.algorithm)
        if cfg.theta == "vb":  # q(theta) over the decoder (appendix F): vaebench.algorithms.full_vb
            from vaebench.algorithms.full_vb import build_vb

            self.model, self.algorithm = build_vb(
                cfg,
                self.data.x_dim,
                self.data.likelihood,
                lr=self.lr,
                n_train=self.train_x.shape[0],
                generator=init_gen,
                device=device,
            )
        else:
            self.model = build_model(
                self.data.x_dim,
                cfg.nz,
                cfg.hidden_units,
                self.data.likelihood,
                encoder=cls.needs_encoder,
                init_std=cfg.init_std,
                generator=init_gen,
                posterior=cfg.posterior,
                prior=cfg.latent_prior,
            ).to(device)
            self.algorithm = cls(
                self.model, lr=self.lr, n_train=self.train_x.shape[0], prior=cfg.prior, **algorithm_kwargs(cfg)
            )
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 2)
        self.stream = MinibatchStream(self.train_x.shape[0], cfg.batch_size, self.data_gen)
        self.samples_seen = 0

    def step(self) -> float:
        idx = self.stream.next_indices().to(self.device)
        x = self.train_x[idx]
        if self.data.binarize == "dynamic":
            x = torch.bernoulli(x, generator=self.noise_gen)
        if getattr(self.algorithm, "wants_indices", False):  # e.g. MCEM keeps a chain per datapoint
            value = self.algorithm.step(x, self.noise_gen, indices=idx)
        else:
            value = self.algorithm.step(x, self.noise_gen)
        self.samples_seen += x.shape[0]
        return value

    def evaluate(self) -> dict[str, float]:
        """The average lower bound on each split, with an evaluation seed fixed by (seed, samples)."""
        if self.model.encoder is None:
            return {}
        out = {}
        for split, x in (("train", self.train_x), ("test", self.test_x)):
            gen = torch.Generator(device=self.device).manual_seed(
                (self.cfg.seed * 1_000_003 + self.samples_seen) % (2**63 - 1)
            )
            out[split] = average_lower_bound(self.model, x, generator=gen)
        return out

    def state_dict(self):
        return {
            "model": self.model.state_dict(),
            "algorithm": self.algorithm.state_dict(),
            "data_gen": self.data_gen.get_state(),
            "noise_gen": self.noise_gen.get_state(),
            "stream": self.stream.state_dict(),
            "samples_seen": self.samples_seen,
        }

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.algorithm.load_state_dict(state["algorithm"])
        self.data_gen.set_state(state["data_gen"])
        self.noise_gen.set_state(state["noise_gen"])
        self.stream.load_state_dict(state["stream"])
        self.samples_seen = state["samples_seen"]


def choose_step_size(
    cfg: RunConfig, data: Dataset, folder: RunFolder | None = None, progress: bool = False
) -> tuple[float, dict]:
    """The paper's choice: train briefly with each of 0.01, 0.02, 0.1 from the same start and
    keep the one with the best mean training bound over the trial's last quarter.

    Each finished candidate is saved in the run folder (lr_trial.pt), so an interrupted trial
    resumes with the candidates still to do (each candidate starts from the same state, so the
    choice is the same as without the interruption)."""
    stored = folder.load_trial() if folder is not None else None
    trial = dict(stored["trial"]) if stored and stored.get("config") == cfg.identity() else {}
    for lr in PAPER_STEP_SIZES:
        if str(lr) in trial:
            continue
        trainer = Trainer(cfg, data, lr)
        steps = max(1, cfg.lr_trial_samples // cfg.batch_size)
        values = [
            trainer.step()
            for _ in tqdm(range(steps), desc=f"step-size trial lr={lr}", disable=not progress, leave=False)
        ]
        tail = values[-max(1, steps // 4) :]
        score = sum(tail) / len(tail)
        trial[str(lr)] = score if math.isfinite(score) else None
        if folder is not None:
            folder.save_trial({"config": cfg.identity(), "trial": trial})
    finite = {float(k): v for k, v in trial.items() if v is not None}
    if not finite:
        raise TrainingDiverged("every step size of the paper diverged in the trial")
    return max(finite, key=finite.get), trial


def _resume_state(folder: RunFolder, cfg: RunConfig) -> dict:
    """The checkpoint to continue from, checked against ``cfg`` (same run, budget not below it)."""
    state = folder.load_checkpoint()
    stored = state["meta"].get("config")
    if stored != cfg.identity():
        diff = sorted(
            k for k in set(stored or {}) | set(cfg.identity()) if (stored or {}).get(k) != cfg.identity().get(k)
        )
        raise VaebenchError(
            f"{folder.checkpoint_path} belongs to another run (differs in: "
            f"{', '.join(diff) or 'everything'}); use a new --out or --overwrite"
        )
    seen = state["trainer"]["samples_seen"]
    if cfg.samples < seen:
        raise VaebenchError(f"the run in {folder.path} is already at {seen:,} samples; --samples must be at least that")
    return state


class _Run:
    """One training run writing its folder: run.json, metrics.csv, checkpoints, snapshots."""

    def __init__(self, cfg: RunConfig, folder: RunFolder, data: Dataset, lr: float, meta: dict, on_checkpoint):
        self.cfg, self.folder, self.data, self.meta = cfg, folder, data, meta
        self.trainer = Trainer(cfg, data, lr)
        self.on_checkpoint = on_checkpoint
        self.last_save = time.monotonic()
        self.info = {
            "config": cfg.to_dict(),
            "lr": lr,
            "lr_choice": "auto: best training bound of a short trial of each of the paper's step sizes"
            if cfg.lr == "auto"
            else "fixed by the config",
            "lr_trial": meta["lr_trial"],
            "train_eval": TRAIN_EVAL_NOTE,
            "data": {
                "source": data.source,
                "checksums": data.checksums,
                "split": data.split,
                "n_train": int(data.train.shape[0]),
                "n_test": int(data.test.shape[0]),
                "binarize": data.binarize,
            },
            **environment(cfg.device),
        }

    def write_info(self, status: str, **extra) -> None:
        meta = self.meta
        self.info.update(
            status=status,
            samples_seen=self.trainer.samples_seen,
            train_wall_s=round(meta["train_wall_s"], 3),
            eval_wall_s=round(meta["eval_wall_s"], 3),
            samples_per_s=round(meta["train_samples_timed"] / meta["train_wall_s"], 1)
            if meta["train_wall_s"]
            else None,
            **extra,
        )
        self.folder.write_info(self.info)

    def save_checkpoint(self) -> None:
        self.folder.save_checkpoint({"trainer": self.trainer.state_dict(), "meta": self.meta})
        self.last_save = time.monotonic()
        self.on_checkpoint()

    def diverged(self, what: str) -> TrainingDiverged:
        self.write_info("diverged", diverged_at=self.trainer.samples_seen)
        if self.folder.has_checkpoint():
            kept = (
                f"the last good checkpoint ({self.folder.checkpoint_path}, at "
                f"{self.meta['checkpoint_samples']:,} samples) is kept"
            )
        else:
            kept = "no checkpoint had been written yet, so there is nothing to resume (run.json records the divergence)"
        return TrainingDiverged(f"{what} at {self.trainer.samples_seen:,} samples; {kept}")

    def train_to(self, target: int, bar, progress: bool) -> None:
        cfg, trainer, meta = self.cfg, self.trainer, self.meta
        t0, start = time.perf_counter(), trainer.samples_seen
        while trainer.samples_seen < target:
            value = trainer.step()
            if not math.isfinite(value):
                raise self.diverged(f"the training objective became {value}")
            if cfg.checkpoint_every_s and time.monotonic() - self.last_save >= cfg.checkpoint_every_s:
                meta["train_wall_s"] += time.perf_counter() - t0
                meta["train_samples_timed"] += trainer.samples_seen - start
                t0, start = time.perf_counter(), trainer.samples_seen
                meta["checkpoint_samples"] = trainer.samples_seen
                self.save_checkpoint()
            if progress and trainer.samples_seen % (50 * cfg.batch_size) == 0:
                bar.update(trainer.samples_seen - bar.n)
                bar.set_postfix(bound=f"{value:.2f}", refresh=False)
        meta["train_wall_s"] += time.perf_counter() - t0
        meta["train_samples_timed"] += trainer.samples_seen - start

    def evaluate(self) -> dict:
        cfg, trainer, meta = self.cfg, self.trainer, self.meta
        t0 = time.perf_counter()
        values = trainer.evaluate()
        meta["eval_wall_s"] += time.perf_counter() - t0
        wall = round(meta["train_wall_s"] + meta["eval_wall_s"], 3)
        for split, value in values.items():
            meta["rows"].append(
                {
                    "dataset": cfg.dataset,
                    "algorithm": cfg.algorithm,
                    "estimator": cfg.estimator,
                    "nz": cfg.nz,
                    "hidden": cfg.hidden_units,
                    "seed": cfg.seed,
                    "samples_seen": trainer.samples_seen,
                    "split": split,
                    "lower_bound": repr(value),
                    "wall_s": wall,
                }
            )
        if values and not all(math.isfinite(v) for v in values.values()):
            raise self.diverged(f"the evaluated bound became {values}")
        if cfg.snapshots:
            self.folder.save_snapshot(trainer.samples_seen, trainer.model.state_dict())
        self.folder.write_metrics(meta["rows"])
        meta["checkpoint_samples"] = trainer.samples_seen
        self.save_checkpoint()
        self.write_info("running")
        return values


def run_config_for(out, given: dict, *, config: str | Path | None = None, resume: bool = False) -> RunConfig:
    """A run's config: defaults < the run stored in ``out`` (``resume``) or the TOML ``config`` <
    ``given`` (the options given on the command line; errors name them by their flags).

    --resume continues the run stored in --out (only the device, backend, data folder,
    checkpoint interval and a larger budget may change); with no run stored it starts the
    config the user gives, and with none given it refuses: it never invents a run."""
    folder = RunFolder(check_out_path(out))
    info = folder.read_info(missing_ok=True) if resume else None
    if info is not None and info.get("config"):
        stored = folder.read_config().to_dict()
        if config is not None:
            raise VaebenchError("--config and --resume exclude each other (the run's config is in its run.json)")
        fixed = {k: v for k, v in given.items() if k not in RunConfig.RESUMABLE_OVERRIDES and stored.get(k) != v}
        if fixed:
            changes = ", ".join(f"{k}={v!r} (run has {stored.get(k)!r})" for k, v in fixed.items())
            raise VaebenchError(f"cannot resume with different settings: {changes}; use a new --out or --overwrite")
        return RunConfig.from_dict({**stored, **given}).check(flags=given)
    if resume and not given and config is None:
        raise VaebenchError(
            f"nothing to resume in {out} (no run.json or checkpoint); pass the run's options or --config to start it"
        )
    base = load_toml(config) if config is not None else {}
    merged = {**base, **given}
    merged.setdefault("lr", default_lr(merged.get("algorithm", "aevb")))
    where = f"{config}: " if config is not None else ""
    return RunConfig.from_dict(merged, where=where).check(where, flags=given)


def train(
    cfg: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    data: Dataset | None = None,
) -> dict:
    """Train to ``cfg.samples`` samples, writing the run folder ``out``; returns run.json's content.

    ``resume``: continue the run's checkpoint if there is one (``cfg.samples`` may extend a
    finished run), else start ``cfg`` afresh, replacing what the folder holds (for example
    committed results without parameters). ``overwrite``: replace the run in ``out``.
    """
    cfg = cfg.check()
    if resume and overwrite:
        raise VaebenchError("--resume and --overwrite exclude each other")
    folder = RunFolder(check_out_path(out))
    check_device(cfg.device)
    ops.set_default_backend(cfg.backend)
    with folder.lock("vaebench train"):
        state = _resume_state(folder, cfg) if resume and folder.has_checkpoint() else None
        trial = folder.load_trial() if resume and state is None else None
        continuing = state is not None or (trial is not None and trial.get("config") == cfg.identity())
        if folder.has_run() and not continuing and not (resume or overwrite):
            raise VaebenchError(
                f"{folder.path} already holds a run; pass --resume to continue it or --overwrite to replace it"
            )
        if data is None:  # before anything of an old run is touched
            data = load_run_data(cfg)
        replacing = folder.replacing() if folder.has_run() and not continuing else contextlib.nullcontext(lambda: None)
        with replacing as commit:
            return _train(cfg, folder, data, state, commit, progress)


def _train(cfg, folder, data, state, commit, progress) -> dict:
    if state is not None:
        meta = state["meta"]
    else:
        if cfg.lr == "auto":
            folder.write_info({"config": cfg.to_dict(), "status": "lr-trial"})
            lr, trial = choose_step_size(cfg, data, folder, progress)
        else:
            lr, trial = float(cfg.lr), None
        meta = {
            "config": cfg.identity(),
            "lr": lr,
            "lr_trial": trial,
            "rows": [],
            "train_wall_s": 0.0,
            "eval_wall_s": 0.0,
            "train_samples_timed": 0,
            "checkpoint_samples": None,
        }
    run = _Run(cfg, folder, data, meta["lr"], meta, commit)
    if state is not None:
        try:
            run.trainer.load_state_dict(state["trainer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise VaebenchError(
                f"{folder.checkpoint_path} does not fit this run's model ({str(exc).splitlines()[0][:160]})"
            ) from None
    schedule = [
        s
        for s in eval_schedule(cfg.samples, cfg.batch_size, cfg.evals_per_decade, cfg.first_eval)
        if s > run.trainer.samples_seen
    ]
    run.write_info("running")
    bar = tqdm(
        total=cfg.samples,
        initial=run.trainer.samples_seen,
        unit="samples",
        unit_scale=True,
        disable=not progress,
        desc=f"{cfg.algorithm} {cfg.dataset} nz={cfg.nz}",
        dynamic_ncols=True,
    )
    try:
        for target in schedule:
            run.train_to(target, bar, progress)
            values = run.evaluate()
            bar.update(run.trainer.samples_seen - bar.n)
            if "test" in values:
                bar.set_postfix(test_bound=f"{values['test']:.2f}")
    finally:
        bar.close()
    if not schedule and state is None:  # nothing to train (cannot happen with a checked config)
        run.save_checkpoint()
    folder.drop_trial()
    rows = meta["rows"]
    run.write_info("finished", final=({r["split"]: float(r["lower_bound"]) for r in rows[-2:]} if rows else None))
    return run.info
