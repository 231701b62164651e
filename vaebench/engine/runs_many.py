"""Many training runs on one executor, each resumable; finished runs are skipped.

Where the runs train is an executor (vaebench.engine.executors): vaebench's own process pool
(``local``, the default) or Ray tasks (``ray``). The driver shows one progress display for all
runs (done, running, failed, samples per second overall) and a table of the runs at the end.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from vaebench.config import RunConfig
from vaebench.engine.executors import Executor, make
from vaebench.errors import VaebenchError
from vaebench.runs import LOCK, RunFolder


@dataclass(frozen=True)
class RunOptions:
    """How a study's or a sweep's runs train (the options of ``vaebench reproduce`` and ``vaebench
    sweep``): ``jobs`` at once with ``threads`` torch threads each (None: the executor's default),
    on ``executor`` (local or ray; ``address`` and ``gpus_per_run`` for Ray), and the run keys set
    for every run (``device``, ``backend``, ``data_dir``)."""

    jobs: int = 2
    threads: int | None = None
    device: str = "cpu"
    backend: str = "eager"
    data_dir: str | None = None
    progress: bool = True
    executor: str = "local"
    address: str | None = None
    gpus_per_run: float | None = None

    def overrides(self) -> dict:
        """The run keys set for every run (None: the config's)."""
        return {"device": self.device, "backend": self.backend, "data_dir": self.data_dir}

    def executor_for(self) -> Executor:
        """The executor, its options checked (nothing started yet)."""
        return make(
            self.executor,
            jobs=self.jobs,
            threads=self.threads,
            address=self.address,
            gpus_per_run=self.gpus_per_run,
            device=self.device,
        )


def run_many(
    runs: list[tuple[RunConfig, Path]],
    jobs: int = 1,
    threads: int | None = None,
    progress: bool = True,
    executor="local",
) -> list[Path]:
    """Train every (config, run folder) not yet finished; returns the run folders.

    ``executor``: "local" (``jobs`` processes at a time, each with ``threads`` torch threads,
    default default_threads(jobs)), "ray" (Ray tasks, ``threads`` CPUs and torch threads each,
    default 1), or an executor object of vaebench.engine.executors. Each run resumes from its
    checkpoint if one exists, so an interrupted batch picks up where it stopped. A failed run
    does not stop the others; the failures are raised at the end.
    """
    if jobs < 1 or (threads is not None and threads < 1):
        raise VaebenchError(f"jobs and threads must be at least 1, got jobs={jobs}, threads={threads}")
    checked = [(cfg.check(), Path(out)) for cfg, out in runs]
    todo = [(cfg, out) for cfg, out in checked if not RunFolder(out).is_finished(cfg)]
    skipped = len(runs) - len(todo)
    if skipped and progress:
        print(
            f"{skipped} of {len(runs)} runs already finished; skipping them "
            "(pass another --out for a fresh reproduction)"
        )
    board = Board([out for _, out in todo], progress)
    failed = {}
    with contextlib.ExitStack() as stack:
        if isinstance(executor, str):
            executor = stack.enter_context(make(executor, jobs=jobs, threads=threads))
        try:
            run_each(executor, todo, board=board, failed=failed)
        finally:
            board.close()
            if progress and runs:
                print(run_table([out for _, out in runs], failed), flush=True)
    raise_failures(failed, len(todo))
    return [Path(out) for _, out in runs]


def run_each(
    executor: Executor,
    todo: list[tuple[RunConfig, Path]],
    task=None,
    *,
    board: Board | None = None,
    failed: dict | None = None,
) -> dict:
    """``task`` (None: training) on every (config, run folder) of ``todo`` on ``executor``, the
    board (if any) told as each ends; returns {run folder: its error} of those that failed
    (filled into ``failed`` as they end, where given)."""
    failed = {} if failed is None else failed
    with contextlib.closing(executor.results(todo, task)) as events:
        for event in events:  # (run folder, its error or None) as runs end; None now and then
            if event is not None:
                out, error = event
                if error is not None:
                    failed[out] = error
                if board is not None:
                    board.done(out, error)
            if board is not None:
                board.refresh()
    return failed


def raise_failures(failed: dict, total: int) -> None:
    """The one failure as it is, several as one VaebenchError naming each distinct message."""
    if len(failed) == 1:
        raise next(iter(failed.values()))
    if failed:
        raise VaebenchError(f"{len(failed)} of {total} runs failed: " + failure_summary(failed))


def failure_summary(failed: dict) -> str:
    """The errors of failed runs, each distinct message once with the runs it ended."""
    by_message: dict[str, list[str]] = {}
    for out, exc in failed.items():
        by_message.setdefault(f"{type(exc).__name__}: {exc}", []).append(Path(out).name)
    return "; ".join(
        f"{', '.join(names) if len(names) <= 3 else f'{len(names)} runs ({names[0]}, ...)'}: {message}"
        for message, names in by_message.items()
    )


# ---- what the driver shows ----------------------------------------------------------------------

REFRESH_S = 1.0


def _samples(out: Path) -> int:
    return RunFolder(out).info_or_empty().get("samples_seen") or 0


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
        self.bar.set_postfix_str(
            f"running {running}, failed {self.failed}, {samples / max(now - self.t0, 1e-9):,.0f} samples/s"
        )

    def _live_samples(self, out: Path) -> int:
        info = RunFolder(out).info_or_empty()
        stale = out in self.fresh and info.get("status") == "finished"  # the old run's file, not yet rewritten
        return 0 if stale else info.get("samples_seen") or 0

    def close(self) -> None:
        self.bar.close()


def run_table(outs: list[Path], failed: dict) -> str:
    """The runs at the end: status, samples, wall time, samples/s and the final test bound."""
    lines = ["| run | status | samples | wall s | samples/s | final test bound |", "|---|---|---:|---:|---:|---:|"]
    for out in outs:
        info = RunFolder(out).info_or_empty()
        status = f"failed: {type(failed[out]).__name__}" if out in failed else info.get("status", "not started")
        wall = (info.get("train_wall_s") or 0) + (info.get("eval_wall_s") or 0)
        test = (info.get("final") or {}).get("test")
        lines.append(
            f"| {out.name} | {status} | {info.get('samples_seen') or 0:,} | {wall:,.0f} | "
            f"{info.get('samples_per_s') or 0:,.0f} | {'' if test is None else f'{test:.2f}'} |"
        )
    return "\n".join(lines)
