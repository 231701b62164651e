"""Run many training configs, in parallel processes, each resumable; finished runs are skipped.

Each run gets ``threads`` torch CPU threads (default: the CPUs divided by the jobs). Worker
processes stop when the process that started them dies (even by SIGKILL): no orphan keeps
training after ``vaebench reproduce`` is killed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from vaebench.config import RunConfig
from vaebench.errors import VaebenchError
from vaebench.runs import RunFolder

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_S = 0.5


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(jobs: int) -> int:
    """Torch threads per run when ``jobs`` runs share the machine: max(1, CPUs // jobs)."""
    return max(1, available_cpus() // max(1, jobs))


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's CPU threads set to ``n`` (None: unchanged) for the body, then restored."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- worker processes -------------------------------------------------------------------------

def stop_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (its parent) does: SIGTERM from the kernel on
    Linux (prctl PR_SET_PDEATHSIG), and everywhere a daemon thread that watches the parent."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of ``jobs`` spawned processes that stop when this process dies."""
    return ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=stop_with_parent,
                               initargs=(os.getpid(),))


def _train_one(cfg_dict: dict, out: str, threads: int | None) -> str:
    from vaebench.train import train

    with torch_threads(threads):
        train(RunConfig.from_dict(cfg_dict), out, resume=True, progress=False)
    return out


# ---- many runs --------------------------------------------------------------------------------

def run_many(runs: list[tuple[RunConfig, Path]], jobs: int = 1, threads: int | None = None,
             progress: bool = True) -> list[Path]:
    """Train every (config, run folder) not yet finished, ``jobs`` at a time, each with
    ``threads`` torch threads (default: default_threads(jobs)); returns the run folders.

    Each run resumes from its checkpoint if one exists, so an interrupted batch picks up where
    it stopped. A failed run does not stop the others; the failures are raised at the end.
    """
    if jobs < 1 or (threads is not None and threads < 1):
        raise VaebenchError(f"jobs and threads must be at least 1, got jobs={jobs}, threads={threads}")
    threads = threads or default_threads(jobs)
    todo = [(cfg.check(), Path(out)) for cfg, out in runs if not RunFolder(out).is_finished(cfg)]
    skipped = len(runs) - len(todo)
    if skipped and progress:
        print(f"{skipped} of {len(runs)} runs already finished; skipping them "
              "(pass another --out for a fresh reproduction)")
    failed = []
    bar = tqdm(total=len(todo), unit="run", desc="runs", disable=not progress or not todo)
    if jobs <= 1 or len(todo) <= 1:
        for cfg, out in todo:
            bar.set_postfix_str(out.name)
            try:
                _train_one(cfg.to_dict(), str(out), threads)
            except Exception as exc:  # noqa: BLE001 -- reported with the others below
                failed.append((out, exc))
            bar.update()
    elif todo:
        with worker_pool(min(jobs, len(todo))) as pool:
            futures = {pool.submit(_train_one, cfg.to_dict(), str(out), threads): out for cfg, out in todo}
            for fut in as_completed(futures):
                if fut.exception() is not None:
                    failed.append((futures[fut], fut.exception()))
                bar.set_postfix_str(futures[fut].name)
                bar.update()
    bar.close()
    if len(failed) == 1:
        raise failed[0][1]
    if failed:
        raise VaebenchError(f"{len(failed)} of {len(todo)} runs failed: "
                            + "; ".join(f"{out.name}: {type(exc).__name__}: {exc}" for out, exc in failed))
    return [Path(out) for _, out in runs]
