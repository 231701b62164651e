"""Where runs train: ``local`` (vaebench's own process pool, the default) or ``ray`` (one Ray
task per run, on an embedded local instance or an existing cluster).

An executor is a context manager (leaving ``with`` stops what it started) whose ``results(todo,
task)`` runs ``task(config dict, run folder, threads)`` (default train_task: train the run) on
every (config, run folder) of ``todo`` and yields (run folder, its error or None) as each ends,
and None now and then so that the driver can refresh its display. A task is a module-level
function (it is pickled by name). After-training work of a study (Full VB's estimates) runs
through the same executor as the training. Closing that generator early (Ctrl-C on the driver)
cancels the runs still going: each keeps its last checkpoint (and resumes from it next time),
every finished run is whole.

Ray: each run is a task ``ray.remote(num_cpus=threads, num_gpus=gpus_per_run (--device cuda),
max_retries=MAX_RETRIES, retry_exceptions=False)`` with as many torch threads as CPUs. A worker
that dies (killed, out of memory, its node lost) is retried, and the retried task resumes the
run from its last checkpoint (vaebench.train: bit-identical to an uninterrupted run); an error
of the run's own (a bad config, divergence) is reported once. With no address, ``ray.init``
starts an embedded instance of ``jobs * threads`` CPUs; with ``address`` (or $RAY_ADDRESS) it
joins that cluster. Run folders are the same absolute paths on every node. On a shared file
system the workers write them in place; a worker that does not see the driver's folder (no
shared file system) trains into the same path on its own node and the driver collects the
run's files (run.json, metrics.csv, checkpoint.pt with the final parameters, snapshots/).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from vaebench.engine.workers import default_threads, train_task, worker_pool
from vaebench.errors import VaebenchError
from vaebench.fileio import atomic_write_bytes

EXECUTORS = ("local", "ray")
TICK_S = 1.0  # results() yields None this often while runs go on
MAX_RETRIES = 3  # ray: a run is tried again this many times after its worker dies
GPUS_PER_RUN = 0.25  # ray, --device cuda: the share of a GPU each run asks for (4 runs per GPU)
RAY_MISSING = '--executor ray needs Ray: pip install "vaebench[cluster]"'


class Executor:
    """Trains runs somewhere; see the module's docstring."""

    name = ""
    threads = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> None:
        """Get ready (results() calls it; again is harmless)."""

    def stop(self) -> None:
        """Release what start() took."""

    def describe(self) -> str:
        """Where and how the runs train, for the line printed before training."""
        raise NotImplementedError

    def results(self, todo, task=None) -> Iterator[tuple[Path, BaseException | None] | None]:
        """Run ``task`` (None: train_task) on every (config, run folder) of ``todo``; see the module."""
        raise NotImplementedError


class Local(Executor):
    """vaebench's own process pool: ``jobs`` runs at a time in spawned processes that stop
    with this one; a single run (or jobs = 1) trains in this process."""

    name = "local"

    def __init__(self, jobs: int = 1, threads: int | None = None):
        self.jobs, self.threads = jobs, threads or default_threads(jobs)

    def describe(self) -> str:
        return f"{self.jobs} at a time, {self.threads} torch thread{'s' if self.threads > 1 else ''} each"

    def results(self, todo, task=None):
        task = task or train_task
        if self.jobs <= 1 or len(todo) <= 1:
            for cfg, out in todo:
                try:
                    task(cfg.to_dict(), str(out), self.threads)
                except Exception as exc:  # noqa: BLE001 -- the caller reports it with the others
                    yield out, exc
                else:
                    yield out, None
            return
        with worker_pool(min(self.jobs, len(todo))) as pool:
            futures = {pool.submit(task, cfg.to_dict(), str(out), self.threads): out for cfg, out in todo}
            pending = set(futures)
            try:
                while pending:
                    done, pending = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield futures[future], future.exception()
                    if not done:
                        yield None
            finally:
                pool.shutdown(cancel_futures=True)


def require_ray():
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise VaebenchError(RAY_MISSING) from None
    return ray


class Ray(Executor):
    """One Ray task per run; see the module's docstring. ``task`` is what a task runs
    (train_task; tests give a wrapper)."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        jobs: int = 1,
        threads: int = 1,
        gpus: float = 0.0,
        max_retries: int = MAX_RETRIES,
        task=train_task,
    ):
        self.ray = require_ray()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        if self.address and not answers(self.address):  # else ray.init would wait for it forever
            raise VaebenchError(
                f"--executor ray: nothing answers at {self.address} (start the cluster with "
                "`ray start --head`, or give no --address and no $RAY_ADDRESS for a local instance)"
            )
        self.jobs, self.threads, self.gpus, self.max_retries, self.task = jobs, threads, gpus, max_retries, task
        self.started = False

    def describe(self) -> str:
        cpus = self.jobs * self.threads
        where = (
            f"the Ray cluster at {self.address}"
            if self.address
            else "the Ray instance this process has started"
            if self.ray.is_initialized()
            else f"a local Ray instance of {cpus} CPU{'s' if cpus > 1 else ''}"
        )
        gpus = f" and {self.gpus:g} GPU" if self.gpus else ""
        return f"Ray tasks on {where}, {self.threads} CPU{'s' if self.threads > 1 else ''}{gpus} each"

    def start(self) -> None:
        if self.ray.is_initialized():
            return
        where = (
            {"address": self.address}
            if self.address
            else {"num_cpus": self.jobs * self.threads, "include_dashboard": False}
        )
        try:
            self.ray.init(**where, log_to_driver=False, logging_level="warning")
        except Exception as exc:  # noqa: BLE001 -- a bad address, no cluster there, ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VaebenchError(
                f"--executor ray: cannot start or join Ray{f' at {self.address}' if self.address else ''}: {first}"
            ) from None
        self.started = True

    def stop(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False

    def results(self, todo, task=None):
        if not todo:
            return
        task = task or self.task
        ray = self.ray
        self.start()
        remote = ray.remote(run_task).options(
            num_cpus=self.threads, num_gpus=self.gpus, max_retries=self.max_retries, retry_exceptions=False
        )
        refs = {}
        for cfg, out in todo:
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)  # a worker that sees it shares the driver's file system
            refs[remote.remote(task, cfg.to_dict(), str(out.absolute()), self.threads)] = out
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1, timeout=TICK_S)
                for ref in ready:
                    yield refs[ref], self._outcome(ref, refs[ref])
                if not ready:
                    yield None
        finally:  # Ctrl-C or an early close: stop the runs still going
            for ref in pending:
                ray.cancel(ref, force=True)

    def _outcome(self, ref, out: Path) -> BaseException | None:
        """None for a finished run (its files collected if they came back), else its error."""
        try:
            files = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # the run's own error: reported once
            return exc.cause if isinstance(exc.cause, BaseException) else exc
        except self.ray.exceptions.RayError as exc:  # its workers died MAX_RETRIES + 1 times, ...
            return exc
        if files:
            unpack_folder(out, files)
        return None


def answers(address: str, timeout_s: float = 5.0) -> bool:
    """Whether a Ray head's HOST:PORT takes a connection (other forms, e.g. ray://..., auto: True)."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or "/" in address:
        return True
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def run_task(task, cfg_dict: dict, out: str, threads: int) -> dict[str, bytes] | None:
    """A Ray task: ``task`` trains the run in ``out``. If this node did not see ``out`` (the
    driver made it before submitting: no shared file system), the run's files go back."""
    shared = Path(out).is_dir()
    task(cfg_dict, out, threads)
    return None if shared else pack_folder(out)


def pack_folder(path) -> dict[str, bytes]:
    """Every file of a run folder (relative path: bytes), less the lock and temporary files."""
    root = Path(path)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def unpack_folder(path, files: dict[str, bytes]) -> None:
    """Write what pack_folder returned into the run folder ``path``, each file atomically."""
    for name, data in files.items():
        atomic_write_bytes(Path(path) / name, data)


def make(
    name: str = "local",
    *,
    jobs: int = 1,
    threads: int | None = None,
    address: str | None = None,
    gpus_per_run: float | None = None,
    device: str | None = "cpu",
) -> Executor:
    """An executor by name, its options checked (nothing is started yet). Local runs check
    ``device`` here; Ray runs take cpu or cuda (the GPU a run gets is Ray's choice)."""
    from vaebench.devices import check_device

    if name not in EXECUTORS:
        raise VaebenchError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    if name == "local":
        if address or gpus_per_run:
            raise VaebenchError("--address and --gpus-per-run go with --executor ray")
        check_device(device)
        return Local(jobs, threads)
    device = device or "cpu"
    if device not in ("cpu", "cuda"):
        raise VaebenchError(f"--device {device!r}: with --executor ray give cpu or cuda (Ray assigns each run its GPU)")
    if gpus_per_run and device != "cuda":
        raise VaebenchError("--gpus-per-run goes with --device cuda")
    return Ray(address, jobs, threads or 1, (gpus_per_run or GPUS_PER_RUN) if device == "cuda" else 0.0)
