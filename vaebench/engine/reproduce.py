"""``vaebench reproduce <study>`` and ``vaebench sweep``: check every option before anything is
written, lock the output folder, train the runs (resumable, finished runs skipped) on an
executor, the study's after-training hook, summarize, print the table."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from vaebench.engine.config import build_runs, check_budget, load_config
from vaebench.engine.runs_many import RunOptions, run_many
from vaebench.engine.study import Reproduction, Study
from vaebench.engine.summary import study_folders, summarize, written
from vaebench.engine.workers import torch_threads
from vaebench.runs import check_out_path, lock_folder


def default_out(study: Study, budget: str, seeds: list[int] | None) -> Path:
    """results/<name>/<budget>/, with several seeds results/<name>/<budget>_seeds/."""
    several = seeds is not None and len(seeds) > 1
    return Path("results") / study.name / (f"{budget}_seeds" if several else budget)


def reproduce(
    study: Study,
    *,
    budget: str = "quick",
    config: str | Path | None = None,
    out: str | Path | None = None,
    seeds: list[int] | None = None,
    options: dict | None = None,
    run: RunOptions = RunOptions(),
    command: str | None = None,
) -> int:
    """Reproduce ``study`` at ``budget``: its config (``config``, default the shipped one), its own
    ``options`` (Study.options' values by dest), every run once per seed of ``seeds`` (None: the
    config's), trained as ``run`` says, into ``out`` (default: default_out). ``command`` is what
    provenance.json records. Returns 0."""
    # everything is checked before anything is written
    executor = run.executor_for()
    conf = load_config(study, config)
    check_budget(conf, budget)
    options = options or {}
    selection = study.selection(options, conf)
    out = check_out_path(out if out is not None else default_out(study, budget, seeds))
    runs = build_runs(study, conf, budget, out, run.overrides(), seeds=seeds, **selection)
    settings = {**study.settings(conf, budget), **study.setting_overrides(options)}
    rep = Reproduction(
        conf,
        budget,
        out,
        runs,
        settings,
        run.jobs,
        executor.threads,
        run.device,
        run.data_dir,
        run.progress,
        command,
        executor,
    )
    return run_study(study, rep, what=f"vaebench reproduce {study.cli_name}", hook_threads=run.threads)


def run_study(study: Study, rep: Reproduction, *, what: str, hook_threads: int | None = None) -> int:
    """Lock the output folder, train the runs on ``rep.executor``, the study's hook (with
    ``hook_threads`` torch threads, None: all), summarize, print the table."""
    seeds, executor = sorted({cfg.seed for cfg, _ in rep.runs}), rep.executor
    with executor, lock_folder(rep.out, what):
        print(
            f"{study.name}{f', budget {rep.budget}' if rep.budget else ''}: {len(rep.runs)} runs"
            f"{f' ({len(seeds)} seeds: ' + ', '.join(map(str, seeds)) + ')' if len(seeds) > 1 else ''} into "
            f"{rep.out}/ ({executor.describe()}){study.announce(rep)}",
            flush=True,
        )
        t0 = time.perf_counter()
        try:
            run_many(rep.runs, jobs=rep.jobs, threads=rep.threads, progress=rep.progress, executor=executor)
            with torch_threads(hook_threads):  # the hook runs alone here: all of torch's threads unless given
                study.after_training(rep)
        except BaseException:
            _summarize_what_exists(study, rep, round(time.perf_counter() - t0, 1))
            raise
        wall = round(time.perf_counter() - t0, 1)
        paths = summarize(
            study, rep.out, budget=rep.budget, settings=rep.settings, command=rep.command, reproduce_wall_s=wall
        )
    print(f"done in {wall:.0f} s; " + written(paths))
    print(paths[f"{study.name}_table.md"].read_text(encoding="utf-8").split("### Every budget")[0].rstrip())
    return 0


def _summarize_what_exists(study: Study, rep: Reproduction, wall: float) -> None:
    """After a failure: summarize the runs that exist, without hiding the failure."""
    if not study_folders(study, rep.out):
        return
    try:
        paths = summarize(
            study, rep.out, budget=rep.budget, settings=rep.settings, command=rep.command, reproduce_wall_s=wall
        )
        print(f"summarized what exists: {written(paths)}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 -- the failure that got us here is what matters
        print(f"could not summarize what exists: {exc}", file=sys.stderr)
