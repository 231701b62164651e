"""The run folder: the one module that knows its files, reads them, writes them and checks them.

A run folder holds

  run.json            ``schema_version``, the config, the chosen step size and its trial,
                      versions, machine, git commit, data checksums, speed, status
  metrics.csv         one row per (evaluation point, split): METRIC_COLUMNS
  checkpoint.pt       everything needed to continue (parameters, optimiser, RNG states, data order)
  lr_trial.pt         the ``lr = "auto"`` trial's finished candidates, while it runs
  snapshots/params_<samples_seen:012d>.pt   parameters at every evaluation point (``snapshots``)
  marginal_<method>.csv   marginal-likelihood estimates: MARGINAL_COLUMNS
  .lock               while a process works on the folder: its PID, host and start time

Every write is atomic (vaebench.fileio). Errors are one-line VaebenchErrors naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from vaebench.config import RunConfig
from vaebench.errors import RunLocked, VaebenchError
from vaebench.fileio import atomic_path, atomic_torch_save, atomic_write_csv, atomic_write_json

SCHEMA_VERSION = 1  # run.json written before the field existed reads as version 1
RUN_JSON, METRICS_CSV, CHECKPOINT, LR_TRIAL, SNAPSHOTS, LOCK = (
    "run.json",
    "metrics.csv",
    "checkpoint.pt",
    "lr_trial.pt",
    "snapshots",
    ".lock",
)
RUN_FILES = (RUN_JSON, METRICS_CSV, CHECKPOINT, LR_TRIAL, SNAPSHOTS)
# fmt: off
METRIC_COLUMNS = ("dataset", "algorithm", "estimator", "nz", "hidden", "seed", "samples_seen", "split", "lower_bound",
                  "wall_s")
# fmt: on
MARGINAL_METHODS = ("hmc", "importance")
# fmt: off
MARGINAL_COLUMNS = ("run", "dataset", "algorithm", "n_train", "nz", "hidden", "samples_seen", "split", "method",
                    "n_points", "marginal_log_likelihood", "stderr", "samples_per_point", "leapfrog", "burn_in", "thin",
                    "k", "seed", "mean_accept", "wall_s")
# fmt: on
# the columns that identify an estimate (a stored row is reused only if they all match);
# n_points is the number of points actually used, so a split smaller than asked keys one row
MARGINAL_SETTING_KEYS = ("method", "n_points", "samples_per_point", "leapfrog", "burn_in", "thin", "k", "seed")
STATUSES = ("lr-trial", "running", "finished", "diverged")
_SNAPSHOT_RE = re.compile(r"params_(\d+)\.pt$")


def check_out_path(path) -> Path:
    """``path`` as a folder a run can be written to, or a one-line error: empty, a file, under
    a file, or not writable."""
    if path is None or str(path).strip() == "":
        raise VaebenchError("--out is empty; give a folder for the run")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise VaebenchError(f"--out {path} is a file, not a folder")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise VaebenchError(f"--out {path} lies under {parent}, which is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VaebenchError(f"--out {path}: {parent} is not writable")
    return path


class RunFolder:
    """One run's folder (it need not exist yet)."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    # ---- paths ------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def marginal_path(self, method: str) -> Path:
        return self.path / f"marginal_{method}.csv"

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.is_file()

    def has_run(self) -> bool:
        """Whether anything of a run is here (run.json, metrics, checkpoint, trial, snapshots)."""
        return any((self.path / name).exists() for name in RUN_FILES)

    # ---- run.json ---------------------------------------------------------------------------
    def read_info(self, missing_ok: bool = False) -> dict | None:
        """run.json, checked: a JSON object of a known schema version with a ``config`` table."""
        path = self.path / RUN_JSON
        if not path.is_file():
            if missing_ok:
                return None
            raise VaebenchError(f"{self.path} is not a run folder (no {RUN_JSON})")
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise VaebenchError(f"{path} is not valid JSON ({exc})") from None
        if not isinstance(info, dict):
            raise VaebenchError(
                f"{path} is not a vaebench run.json (a JSON object expected, got {type(info).__name__})"
            )
        version = info.get("schema_version", 1)
        if version != SCHEMA_VERSION:
            raise VaebenchError(f"{path} has schema_version {version!r}; this vaebench reads {SCHEMA_VERSION}")
        if not isinstance(info.get("config"), dict):
            raise VaebenchError(f"{path} is not a vaebench run.json (no 'config' table)")
        return info

    def info_or_empty(self, warn: bool = False) -> dict:
        """run.json, or {} where there is none yet or it is unreadable (``warn``: said on stderr)."""
        try:
            return self.read_info(missing_ok=True) or {}
        except VaebenchError as exc:
            if warn:
                print(f"warning: {exc}; going on without it", file=sys.stderr)
            return {}

    def read_config(self):
        """The RunConfig stored in run.json."""
        return RunConfig.from_dict(self.read_info()["config"], where=f"{self.path / RUN_JSON}: config.")

    def write_info(self, info: dict) -> None:
        atomic_write_json(self.path / RUN_JSON, {"schema_version": SCHEMA_VERSION, **info})

    # ---- metrics.csv ------------------------------------------------------------------------
    def write_metrics(self, rows: list[dict]) -> None:
        atomic_write_csv(self.path / METRICS_CSV, METRIC_COLUMNS, rows)

    def read_metrics(self):
        """metrics.csv as a DataFrame (METRIC_COLUMNS; empty if the file is missing)."""
        import pandas as pd

        path = self.path / METRICS_CSV
        if not path.is_file():
            return pd.DataFrame(columns=list(METRIC_COLUMNS))
        df = pd.read_csv(path)
        _require_columns(path, df.columns, METRIC_COLUMNS)
        return df

    # ---- checkpoints and parameters ---------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        atomic_torch_save(self.checkpoint_path, state)

    def load_checkpoint(self, map_location="cpu") -> dict:
        """checkpoint.pt, checked: readable, written by vaebench (trainer and meta)."""
        state = _load_torch(self.checkpoint_path, map_location)
        if not (
            isinstance(state, dict)
            and isinstance(state.get("trainer"), dict)
            and "meta" in state
            and "samples_seen" in state["trainer"]
            and "model" in state["trainer"]
        ):
            raise VaebenchError(f"{self.checkpoint_path} is not a vaebench checkpoint (no trainer state)")
        return state

    def save_trial(self, state: dict) -> None:
        atomic_torch_save(self.path / LR_TRIAL, state)

    def load_trial(self) -> dict | None:
        path = self.path / LR_TRIAL
        return _load_torch(path, "cpu") if path.is_file() else None

    def drop_trial(self) -> None:
        (self.path / LR_TRIAL).unlink(missing_ok=True)

    def save_snapshot(self, samples_seen: int, state: dict) -> None:
        atomic_torch_save(self.path / SNAPSHOTS / f"params_{samples_seen:012d}.pt", state)

    def snapshots(self) -> list[tuple[int, Path]]:
        """(samples_seen, file) of every snapshot, in order."""
        found = [
            (int(m.group(1)), p)
            for p in (self.path / SNAPSHOTS).glob("params_*.pt")
            if (m := _SNAPSHOT_RE.search(p.name))
        ]
        return sorted(found)

    def parameters(self, snapshot: str = "last", min_samples: float = 0) -> list[tuple[int, Path, str]]:
        """(samples_seen, file, kind) of the parameters to evaluate: the final ones ('last', from
        the checkpoint) or every snapshot ('all'); kind is 'snapshot' or 'checkpoint'."""
        if snapshot == "all":
            found = self.snapshots()
            if found:
                return [(s, p, "snapshot") for s, p in found if s >= min_samples]
        if not self.has_checkpoint():
            raise VaebenchError(
                f"{self.path} has no {CHECKPOINT}"
                + (" and no snapshots" if snapshot == "all" else "")
                + " (the committed results carry no parameters: train the run again)"
            )
        return [(int(self.load_checkpoint()["trainer"]["samples_seen"]), self.checkpoint_path, "checkpoint")]

    def load_parameters(self, path: Path, kind: str) -> dict:
        """The model's state dict from a checkpoint or a snapshot file."""
        if kind == "checkpoint":
            return self.load_checkpoint()["trainer"]["model"]
        state = _load_torch(path, "cpu")
        if not isinstance(state, dict):
            raise VaebenchError(f"{path} is not a vaebench parameter snapshot")
        return state

    # ---- marginal-likelihood estimates ------------------------------------------------------
    def read_marginal(self, method: str) -> list[dict]:
        path = self.marginal_path(method)
        if not path.is_file():
            return []
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            _require_columns(path, reader.fieldnames or [], MARGINAL_COLUMNS)
            return list(reader)

    def write_marginal(self, method: str, rows: list[dict]) -> None:
        atomic_write_csv(self.marginal_path(method), MARGINAL_COLUMNS, rows)

    def drop_marginal(self) -> None:
        for method in MARGINAL_METHODS:
            self.marginal_path(method).unlink(missing_ok=True)

    # ---- state ------------------------------------------------------------------------------
    def is_finished(self, cfg) -> bool:
        """Whether this folder holds a finished run of exactly ``cfg``'s identity (once checked:
        estimator "auto" resolved), made here (its checkpoint is present: committed results without
        parameters are trained again)."""
        if not self.has_checkpoint():
            return False
        try:
            info = self.read_info(missing_ok=True)
            stored = self.read_config() if info else None
            cfg = cfg.check()
        except VaebenchError:
            return False
        return (
            info is not None
            and info.get("status") == "finished"
            and stored.identity() == cfg.identity()
            and stored.samples >= cfg.samples
        )

    @contextlib.contextmanager
    def lock(self, what: str = "a vaebench process") -> Iterator[None]:
        """Hold the folder's lock file; another live holder is a RunLocked error, a stale one
        (its process gone, on this host) is taken over."""
        with lock_folder(self.path, what):
            yield

    @contextlib.contextmanager
    def replacing(self) -> Iterator[callable]:
        """For ``--overwrite``: move the old run aside; yields ``commit()``, to be called once
        the new run has written its first checkpoint (it deletes the old run). If the body
        fails before that, the old run is moved back."""
        aside = self.path / f".replaced-{os.getpid()}"
        moved = []
        if self.has_run():
            aside.mkdir()
            for name in (*RUN_FILES, *(f"marginal_{m}.csv" for m in MARGINAL_METHODS)):
                if (self.path / name).exists():
                    os.replace(self.path / name, aside / name)
                    moved.append(name)
        state = {"committed": not moved}

        def commit():
            if not state["committed"]:
                shutil.rmtree(aside, ignore_errors=True)
                state["committed"] = True

        try:
            yield commit
        finally:
            if not state["committed"]:
                for name in RUN_FILES + tuple(f"marginal_{m}.csv" for m in MARGINAL_METHODS):
                    target = self.path / name
                    if target.exists() and name not in moved:
                        shutil.rmtree(target) if target.is_dir() else target.unlink()
                for name in moved:
                    target = self.path / name
                    if target.exists():
                        shutil.rmtree(target) if target.is_dir() else target.unlink()
                    os.replace(aside / name, target)
                shutil.rmtree(aside, ignore_errors=True)

    def clear(self) -> None:
        """Remove every file of a run (a fresh start in the same folder)."""
        for name in (*RUN_FILES, *(f"marginal_{m}.csv" for m in MARGINAL_METHODS)):
            target = self.path / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)


def list_runs(root) -> list[RunFolder]:
    """The run folders directly under ``root`` (those with a run.json or metrics.csv), by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [
        RunFolder(p)
        for p in sorted(root.iterdir())
        if p.is_dir() and ((p / RUN_JSON).is_file() or (p / METRICS_CSV).is_file())
    ]


# ---- the lock -----------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def lock_folder(folder, what: str = "a vaebench process") -> Iterator[None]:
    """An exclusive lock on ``folder`` (created if needed): the file ``.lock`` holds the owner's
    PID, host and start; a lock whose process is gone on this host is stale and taken over."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    host = socket.gethostname()
    me = {"pid": os.getpid(), "host": host, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "what": what}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text())
            except (OSError, ValueError):
                owner = {}
            if owner.get("host") == host and isinstance(owner.get("pid"), int) and not _pid_alive(owner["pid"]):
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            if not owner:  # being written right now, or garbage: look again
                time.sleep(0.2)
                try:
                    owner = json.loads(path.read_text())
                except (OSError, ValueError):
                    owner = {"pid": "?", "host": "?"}
            raise RunLocked(
                f"{folder} is in use by {owner.get('what', 'another process')} (PID {owner.get('pid')} on "
                f"{owner.get('host')}, since {owner.get('since', '?')}); wait for it, or delete {path} "
                "if that process is gone"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise RunLocked(f"could not take the lock {path}")
    try:
        yield
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


# ---- helpers ------------------------------------------------------------------------------


def _require_columns(path: Path, have, need) -> None:
    missing = [c for c in need if c not in set(have)]
    if missing:
        raise VaebenchError(f"{path} lacks the column(s) {', '.join(missing)}; it was not written by this vaebench")


def _load_torch(path: Path, map_location):
    """torch.load with every way a file can be bad turned into a one-line error."""
    import pickle
    import zipfile

    import torch

    try:
        if path.stat().st_size == 0:
            raise VaebenchError(f"{path} is empty")
        return torch.load(path, weights_only=False, map_location=map_location)
    except VaebenchError:
        raise
    except FileNotFoundError:
        raise VaebenchError(f"{path} does not exist") from None
    except (
        RuntimeError,
        EOFError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        AttributeError,
        ImportError,
        TypeError,
    ) as exc:
        raise VaebenchError(
            f"{path} is truncated or not a torch file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:120] if str(exc) else 'unreadable'})"
        ) from None


# ---- seeds in run folders' names ----------------------------------------------------------------

_SEED_SUFFIX = re.compile(r"^(.+)_seed(\d+)$")


def with_seeds(runs: list[tuple[RunConfig, Path]], seeds: list[int] | None) -> list[tuple[RunConfig, Path]]:
    """Each run once per seed: ``<name>_seed<N>`` with several seeds; one seed keeps the name
    (and sets the seed); none keeps the runs as they are."""
    if not seeds:
        return runs
    if len(seeds) == 1:
        return [(dataclasses.replace(cfg, seed=seeds[0]), out) for cfg, out in runs]
    return [
        (dataclasses.replace(cfg, seed=seed), out.with_name(f"{out.name}_seed{seed}"))
        for cfg, out in runs
        for seed in seeds
    ]


def split_seed(name: str) -> tuple[str, int | None]:
    """A run folder's name as (the run's name, its seed suffix or None): "a_seed2" -> ("a", 2)."""
    m = _SEED_SUFFIX.match(name)
    return (m.group(1), int(m.group(2))) if m else (name, None)


__all__ = [
    "RunFolder",
    "list_runs",
    "lock_folder",
    "check_out_path",
    "atomic_path",
    "SCHEMA_VERSION",
    "METRIC_COLUMNS",
    "MARGINAL_COLUMNS",
    "MARGINAL_SETTING_KEYS",
    "MARGINAL_METHODS",
    "RUN_FILES",
    "with_seeds",
    "split_seed",
]
