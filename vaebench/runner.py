"""Run many training configs, each resumable; finished runs are skipped.

Where the runs train is an executor (vaebench.executors): vaebench's own process pool
(``local``, the default) or Ray tasks (``ray``). Each run gets ``threads`` torch CPU threads
(local default: the CPUs divided by the jobs). Worker processes of the local pool stop when the
process that started them dies (even by SIGKILL): no orphan keeps training after ``vaebench
reproduce`` is killed. The driver shows one progress display for all runs (done, running,
failed, samples per second overall) and a table of the runs at the end.
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
from pathlib import Path

from tqdm.auto import tqdm

from vaebench.config import RunConfig
from vaebench.errors import VaebenchError
from vaebench.runs import LOCK, RunFolder

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


def train_task(cfg_dict: dict, out: str, threads: int | None) -> str:
    """Train (or resume) one run with ``threads`` torch threads: what every executor runs."""
    from vaebench.train import train

    with torch_threads(threads):
        train(RunConfig.from_dict(cfg_dict), out, resume=True, progress=False)
    return out


# ---- many runs --------------------------------------------------------------------------------

def run_many(runs: list[tuple[RunConfig, Path]], jobs: int = 1, threads: int | None = None,
             progress: bool = True, executor="local") -> list[Path]:
    """Train every (config, run folder) not yet finished; returns the run folders.

    ``executor``: "local" (``jobs`` processes at a time, each with ``threads`` torch threads,
    default default_threads(jobs)), "ray" (Ray tasks, ``threads`` CPUs and torch threads each,
    default 1), or an executor object of vaebench.executors. Each run resumes from its
    checkpoint if one exists, so an interrupted batch picks up where it stopped. A failed run
    does not stop the others; the failures are raised at the end.
    """
    from vaebench.executors import make

    if jobs < 1 or (threads is not None and threads < 1):
        raise VaebenchError(f"jobs and threads must be at least 1, got jobs={jobs}, threads={threads}")
    todo = [(cfg.check(), Path(out)) for cfg, out in runs if not RunFolder(out).is_finished(cfg)]
    skipped = len(runs) - len(todo)
    if skipped and progress:
        print(f"{skipped} of {len(runs)} runs already finished; skipping them "
              "(pass another --out for a fresh reproduction)")
    failed = {}
    board = Board([out for _, out in todo], progress)
    with contextlib.ExitStack() as stack:
        if isinstance(executor, str):
            executor = stack.enter_context(make(executor, jobs=jobs, threads=threads))
        try:
            events = stack.enter_context(contextlib.closing(executor.results(todo)))
            for event in events:  # (run folder, its error or None) as runs end; None now and then
                if event is not None:
                    out, error = event
                    if error is not None:
                        failed[out] = error
                    board.done(out, error)
                board.refresh()
        finally:
            board.close()
            if progress and runs:
                print(run_table([out for _, out in runs], failed), flush=True)
    if len(failed) == 1:
        raise next(iter(failed.values()))
    if failed:
        raise VaebenchError(f"{len(failed)} of {len(todo)} runs failed: " + failure_summary(failed))
    return [Path(out) for _, out in runs]


def failure_summary(failed: dict) -> str:
    """The errors of failed runs, each distinct message once with the runs it ended."""
    by_message: dict[str, list[str]] = {}
    for out, exc in failed.items():
        by_message.setdefault(f"{type(exc).__name__}: {exc}", []).append(Path(out).name)
    return "; ".join(f"{', '.join(names) if len(names) <= 3 else f'{len(names)} runs ({names[0]}, ...)'}: {message}"
                     for message, names in by_message.items())


# ---- what the driver shows ----------------------------------------------------------------------

REFRESH_S = 1.0


def _info(out: Path) -> dict:
    """A run's run.json ({} if none yet or unreadable)."""
    try:
        return RunFolder(out).read_info(missing_ok=True) or {}
    except VaebenchError:
        return {}


def _samples(out: Path) -> int:
    return _info(out).get("samples_seen") or 0


class Board:
    """One progress display for many runs: done / running / failed and the samples per second
    of all of them together (from each run.json, on the driver's view of the run folders; a
    run is running while its folder is locked)."""

    def __init__(self, outs: list[Path], enabled: bool = True):
        self.outs, self.enabled, self.ended, self.failed = outs, enabled and bool(outs), set(), 0
        # where each run starts: its checkpoint's count, or 0 for a run trained again from the start
        # (a run.json without parameters, e.g. committed results in a clean clone: its count is
        # not progress until the new run rewrites it)
        self.fresh = {out for out in outs if not RunFolder(out).has_checkpoint()} if self.enabled else set()
        self.start = {out: 0 if out in self.fresh else _samples(out) for out in outs} if self.enabled else {}
        self.seen = dict(self.start)
        self.t0 = self.last = time.monotonic()
        self.bar = tqdm(total=len(outs), unit="run", desc="runs", disable=not self.enabled)

    def done(self, out: Path, error: BaseException | None) -> None:
        if self.enabled:
            self.seen[out] = _samples(out)  # its last count
        self.ended.add(out)
        self.failed += error is not None
        self.bar.update()
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < REFRESH_S):
            return
        self.last = now
        going = [out for out in self.outs if out not in self.ended]
        self.seen.update({out: self._live_samples(out) for out in going})
        running = sum(1 for out in going if (out / LOCK).exists())
        samples = sum(max(0, self.seen[out] - self.start[out]) for out in self.outs)
        self.bar.set_postfix_str(f"running {running}, failed {self.failed}, "
                                 f"{samples / max(now - self.t0, 1e-9):,.0f} samples/s")

    def _live_samples(self, out: Path) -> int:
        info = _info(out)
        stale = out in self.fresh and info.get("status") == "finished"  # the old run's file, not yet rewritten
        return 0 if stale else info.get("samples_seen") or 0

    def close(self) -> None:
        self.bar.close()


def run_table(outs: list[Path], failed: dict) -> str:
    """The runs at the end: status, samples, wall time, samples/s and the final test bound."""
    lines = ["| run | status | samples | wall s | samples/s | final test bound |", "|---|---|---:|---:|---:|---:|"]
    for out in outs:
        info = _info(out)
        status = f"failed: {type(failed[out]).__name__}" if out in failed else info.get("status", "not started")
        wall = (info.get("train_wall_s") or 0) + (info.get("eval_wall_s") or 0)
        test = (info.get("final") or {}).get("test")
        lines.append(f"| {out.name} | {status} | {info.get('samples_seen') or 0:,} | {wall:,.0f} | "
                     f"{info.get('samples_per_s') or 0:,.0f} | {'' if test is None else f'{test:.2f}'} |")
    return "\n".join(lines)
