"""Run many training configs, in parallel processes, each resumable; finished runs are skipped."""

from __future__ import annotations

import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm.auto import tqdm

from vaebench.config import RunConfig


def is_finished(out: Path, cfg: RunConfig) -> bool:
    """Whether ``out`` holds a finished run of exactly this config, made here.

    "Made here" means its final checkpoint is present: the committed results of a clean clone
    (metrics and run.json, no parameters) are trained again, not taken for this machine's runs.
    """
    path = Path(out) / "run.json"
    if not path.exists() or not (Path(out) / "checkpoint.pt").exists():
        return False
    info = json.loads(path.read_text())
    stored = {k: v for k, v in info.get("config", {}).items() if k not in RunConfig.RESUMABLE_OVERRIDES}
    wanted = {k: v for k, v in cfg.to_dict().items() if k not in RunConfig.RESUMABLE_OVERRIDES}
    return info.get("status") == "finished" and stored == wanted


def _train_one(cfg_dict: dict, out: str, threads: int | None) -> str:
    import torch

    from vaebench.train import train

    if threads:
        torch.set_num_threads(threads)
    train(RunConfig.from_dict(cfg_dict), out, resume=True, progress=False)
    return out


def run_many(runs: list[tuple[RunConfig, Path]], jobs: int = 1, progress: bool = True) -> list[Path]:
    """Train every (config, out dir) not yet finished, ``jobs`` at a time; returns the out dirs.

    Each run resumes from its checkpoint if one exists, so an interrupted batch picks up where
    it stopped. With jobs > 1 each process gets an equal share of the CPU threads.
    """
    todo = [(cfg.check(), Path(out)) for cfg, out in runs if not is_finished(out, cfg)]
    skipped = len(runs) - len(todo)
    if skipped and progress:
        print(f"{skipped} of {len(runs)} runs already finished; skipping them "
              "(pass another --out for a fresh reproduction)")
    if not todo:
        return [Path(out) for _, out in runs]
    import torch

    threads = max(1, torch.get_num_threads() // jobs) if jobs > 1 else None
    bar = tqdm(total=len(todo), unit="run", desc="runs", disable=not progress)
    if jobs <= 1:
        for cfg, out in todo:
            bar.set_postfix_str(out.name)
            _train_one(cfg.to_dict(), str(out), None)
            bar.update()
    else:
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_train_one, cfg.to_dict(), str(out), threads): out for cfg, out in todo}
            for fut in as_completed(futures):
                fut.result()
                bar.set_postfix_str(futures[fut].name)
                bar.update()
    bar.close()
    return [Path(out) for _, out in runs]
