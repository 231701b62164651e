"""The training loop: a budget in training samples, evaluations at log-spaced points,
atomic checkpoints, and bit-identical resumption.

A run directory holds
  metrics.csv     one row per (evaluation point, split): the tidy results table
  run.json        config, chosen step size, versions, machine, git commit, data checksums, speed
  checkpoint.pt   everything needed to continue (parameters, optimiser, RNG states, data order)
  snapshots/      parameters at every evaluation point (with ``snapshots = true``)
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vaebench import ops
from vaebench.algorithms import algorithm_class
from vaebench.config import PAPER_STEP_SIZES, RunConfig
from vaebench.data import Dataset, load_dataset
from vaebench.errors import TrainingDiverged, VaebenchError
from vaebench.evaluation import average_lower_bound, eval_schedule
from vaebench.fileio import atomic_torch_save, atomic_write_json, atomic_write_text
from vaebench.models import build_model
from vaebench.provenance import environment

METRIC_COLUMNS = ("dataset", "algorithm", "estimator", "nz", "hidden", "seed", "samples_seen",
                  "split", "lower_bound", "wall_s")
RUN_FILES = ("metrics.csv", "run.json", "checkpoint.pt", "snapshots")
TRAIN_EVAL_NOTE = ("train and test values are the SGVB-B estimate (analytic KL, L = 1, fixed evaluation "
                   "seed) of the average lower bound per datapoint over the whole split, computed with "
                   "the parameters at that point (not a running average of training minibatches)")


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
        idx = self.perm[self.pos:self.pos + self.m]
        self.pos += self.m
        return idx

    def state_dict(self):
        return {"perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state):
        self.perm, self.pos = state["perm"], state["pos"]


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
        self.model = build_model(self.data.x_dim, cfg.nz, cfg.hidden_units, self.data.likelihood,
                                 encoder=cls.needs_encoder, init_std=cfg.init_std, generator=init_gen).to(device)
        self.algorithm = cls(self.model, lr=self.lr, n_train=self.train_x.shape[0], estimator=cfg.estimator,
                             L=cfg.L, prior=cfg.prior, dreams=cfg.dreams, **cfg.options)
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
                (self.cfg.seed * 1_000_003 + self.samples_seen) % (2**63 - 1))
            out[split] = average_lower_bound(self.model, x, generator=gen)
        return out

    def state_dict(self):
        return {"model": self.model.state_dict(), "algorithm": self.algorithm.state_dict(),
                "data_gen": self.data_gen.get_state(), "noise_gen": self.noise_gen.get_state(),
                "stream": self.stream.state_dict(), "samples_seen": self.samples_seen}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["model"])
        self.algorithm.load_state_dict(state["algorithm"])
        self.data_gen.set_state(state["data_gen"])
        self.noise_gen.set_state(state["noise_gen"])
        self.stream.load_state_dict(state["stream"])
        self.samples_seen = state["samples_seen"]


def choose_step_size(cfg: RunConfig, data: Dataset, progress: bool = False) -> tuple[float, dict]:
    """The paper's choice: train briefly with each of 0.01, 0.02, 0.1 from the same start and
    keep the one with the best mean training bound over the trial's last quarter."""
    trial = {}
    for lr in PAPER_STEP_SIZES:
        trainer = Trainer(cfg, data, lr)
        steps = max(1, cfg.lr_trial_samples // cfg.batch_size)
        values = [trainer.step() for _ in tqdm(range(steps), desc=f"step-size trial lr={lr}",
                                                disable=not progress, leave=False)]
        tail = values[-max(1, steps // 4):]
        score = sum(tail) / len(tail)
        trial[str(lr)] = score if math.isfinite(score) else None
    finite = {float(k): v for k, v in trial.items() if v is not None}
    if not finite:
        raise TrainingDiverged("every step size of the paper diverged in the trial")
    return max(finite, key=finite.get), trial


def _metrics_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _prepare_out_dir(out: Path, resume: bool, overwrite: bool) -> bool:
    """Return whether a checkpoint to resume from exists; refuse to clobber an existing run.

    With ``resume`` but no checkpoint (e.g. committed results in a clean clone, which carry no
    parameters) the run starts afresh, and what the old run left (its metrics, run.json and any
    marginal-likelihood estimates) is removed first, so nothing stale is mixed into the new one.
    """
    if resume and (out / "checkpoint.pt").exists():
        return True
    leftovers = [out / name for name in RUN_FILES if (out / name).exists()]
    if not leftovers:
        return False
    if not (resume or overwrite):
        raise VaebenchError(f"{out} already holds a run; pass --resume to continue it or --overwrite to replace it")
    for path in (*leftovers, *out.glob("marginal_*.csv")):
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return False


def read_run_config(out: Path) -> dict | None:
    """The config stored in a run directory's run.json, or None."""
    import json

    path = Path(out) / "run.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())["config"]
    except (ValueError, KeyError) as exc:
        raise VaebenchError(f"{path} is not a vaebench run.json ({exc})") from None


def train(cfg: RunConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, data: Dataset | None = None) -> dict:
    """Train to ``cfg.samples`` samples, writing the run directory ``out``; returns run.json's content."""
    cfg.check()
    out = Path(out)
    has_checkpoint = _prepare_out_dir(out, resume, overwrite)
    ops.set_default_backend(cfg.backend)
    if data is None:
        data = load_dataset(cfg.dataset, cfg.data_dir, binarize=cfg.binarize, n_train=cfg.n_train, seed=cfg.seed)

    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False) if has_checkpoint else None
    if checkpoint is not None:
        meta = checkpoint["meta"]
        lr = meta["lr"]
    else:
        if cfg.lr == "auto":
            lr, trial = choose_step_size(cfg, data, progress)
        else:
            lr, trial = float(cfg.lr), None
        meta = {"lr": lr, "lr_trial": trial, "rows": [], "train_wall_s": 0.0, "eval_wall_s": 0.0,
                "train_samples_timed": 0}

    trainer = Trainer(cfg, data, lr)
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint["trainer"])
    schedule = [s for s in eval_schedule(cfg.samples, cfg.batch_size, cfg.evals_per_decade, cfg.first_eval)
                if s > trainer.samples_seen]

    info = {
        "config": cfg.to_dict(),
        "lr": lr,
        "lr_choice": "auto: best training bound of a short trial of each of the paper's step sizes"
                     if cfg.lr == "auto" else "fixed by the config",
        "lr_trial": meta["lr_trial"],
        "train_eval": TRAIN_EVAL_NOTE,
        "data": {"source": data.source, "checksums": data.checksums, "split": data.split,
                 "n_train": int(data.train.shape[0]), "n_test": int(data.test.shape[0]),
                 "binarize": data.binarize},
        **environment(cfg.device),
    }

    def write_run_json(status: str, **extra):
        timed = meta["train_samples_timed"]
        info.update(status=status, samples_seen=trainer.samples_seen,
                    train_wall_s=round(meta["train_wall_s"], 3), eval_wall_s=round(meta["eval_wall_s"], 3),
                    samples_per_s=round(timed / meta["train_wall_s"], 1) if meta["train_wall_s"] else None,
                    **extra)
        atomic_write_json(out / "run.json", info)

    def save_checkpoint():
        atomic_torch_save(out / "checkpoint.pt", {"trainer": trainer.state_dict(), "meta": meta})

    out.mkdir(parents=True, exist_ok=True)
    write_run_json("running")
    bar = tqdm(total=cfg.samples, initial=trainer.samples_seen, unit="samples", unit_scale=True,
               disable=not progress, desc=f"{cfg.algorithm} {cfg.dataset} nz={cfg.nz}", dynamic_ncols=True)
    last_value = float("nan")
    try:
        for target in schedule:
            t0 = time.perf_counter()
            start = trainer.samples_seen
            while trainer.samples_seen < target:
                last_value = trainer.step()
                if not math.isfinite(last_value):
                    write_run_json("diverged", diverged_at=trainer.samples_seen)
                    raise TrainingDiverged(
                        f"the training objective became {last_value} at {trainer.samples_seen} samples; "
                        f"the last good checkpoint ({out / 'checkpoint.pt'}) is kept")
                if progress and trainer.samples_seen % (50 * cfg.batch_size) == 0:
                    bar.update(trainer.samples_seen - bar.n)
                    bar.set_postfix(bound=f"{last_value:.2f}", refresh=False)
            meta["train_wall_s"] += time.perf_counter() - t0
            meta["train_samples_timed"] += trainer.samples_seen - start

            t0 = time.perf_counter()
            values = trainer.evaluate()
            meta["eval_wall_s"] += time.perf_counter() - t0
            wall = round(meta["train_wall_s"] + meta["eval_wall_s"], 3)
            for split, value in values.items():
                meta["rows"].append({"dataset": cfg.dataset, "algorithm": cfg.algorithm, "estimator": cfg.estimator,
                                     "nz": cfg.nz, "hidden": cfg.hidden_units, "seed": cfg.seed,
                                     "samples_seen": trainer.samples_seen, "split": split,
                                     "lower_bound": repr(value), "wall_s": wall})
            if values and not all(math.isfinite(v) for v in values.values()):
                write_run_json("diverged", diverged_at=trainer.samples_seen)
                raise TrainingDiverged(f"the evaluated bound became {values} at {trainer.samples_seen} samples; "
                                       f"the last good checkpoint ({out / 'checkpoint.pt'}) is kept")
            if cfg.snapshots:
                atomic_torch_save(out / "snapshots" / f"params_{trainer.samples_seen:012d}.pt",
                                  trainer.model.state_dict())
            atomic_write_text(out / "metrics.csv", _metrics_csv(meta["rows"]))
            save_checkpoint()
            write_run_json("running")
            bar.update(trainer.samples_seen - bar.n)
            if "test" in values:
                bar.set_postfix(test_bound=f"{values['test']:.2f}")
    finally:
        bar.close()
    write_run_json("finished", final=({r["split"]: float(r["lower_bound"]) for r in meta["rows"][-2:]}
                                      if meta["rows"] else None))
    return info
