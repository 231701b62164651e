"""Worker plumbing: CPU counts, torch threads, processes that stop with their parent, the
spawned pool and the task every executor runs.

Each run gets ``threads`` torch CPU threads (local default: the CPUs divided by the jobs).
Worker processes of the local pool stop when the process that started them dies (even by
SIGKILL): no orphan keeps training after ``vaebench reproduce`` is killed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from vaebench.config import RunConfig

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
    return ProcessPoolExecutor(
        jobs, mp_context=mp.get_context("spawn"), initializer=stop_with_parent, initargs=(os.getpid(),)
    )


def train_task(cfg_dict: dict, out: str, threads: int | None) -> str:
    """Train (or resume) one run with ``threads`` torch threads: what every executor runs."""
    from vaebench.train import train

    with torch_threads(threads):
        train(RunConfig.from_dict(cfg_dict), out, resume=True, progress=False)
    return out
