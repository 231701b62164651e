"""A trained run, ready to use: its config, its model with the final parameters, its data set
and the digit labels, loaded from a run folder with one-line errors for what is missing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vaebench.errors import VaebenchError
from vaebench.runs import RunFolder


@dataclass
class TrainedRun:
    folder: RunFolder
    cfg: object  # vaebench.config.RunConfig
    model: torch.nn.Module
    data: object  # vaebench.data.Dataset
    samples_seen: int
    device: torch.device

    @property
    def has_encoder(self) -> bool:
        return getattr(self.model, "encoder", None) is not None

    @property
    def name(self) -> str:
        return self.folder.name

    def split(self, split: str) -> torch.Tensor:
        if split not in ("train", "test"):
            raise VaebenchError(f"--split takes train or test, got {split!r}")
        return self.data.train if split == "train" else self.data.test

    def identity(self) -> dict:
        """The columns that say which run a row of results belongs to."""
        return {
            "run": self.name,
            "dataset": self.cfg.dataset,
            "algorithm": self.cfg.algorithm,
            "nz": self.cfg.nz,
            "hidden": self.cfg.hidden_units,
            "samples_seen": self.samples_seen,
        }


def load_trained(run_dir, *, device=None, data_dir=None, data=None) -> TrainedRun:
    """The run in ``run_dir`` with its final parameters (the checkpoint) on ``device``; a one-line
    VaebenchError if it is not a run folder or has no parameters."""
    from vaebench.data import load_run_data
    from vaebench.devices import check_device
    from vaebench.marginal.run import build_run_model

    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise VaebenchError(f"{folder.path} is not a folder")
    cfg = folder.read_config()
    device = check_device(device)
    samples_seen, path, kind = folder.parameters("last")[0]
    if data is None:
        data = load_run_data(cfg, data_dir)
    model = build_run_model(cfg, data.x_dim, data.likelihood)
    try:
        model.load_state_dict(folder.load_parameters(path, kind))
    except (RuntimeError, KeyError) as exc:
        raise VaebenchError(
            f"{path}: the parameters do not fit the run's config ({str(exc).splitlines()[0][:120]})"
        ) from None
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return TrainedRun(folder, cfg, model, data, int(samples_seen), device)


def labels(run: TrainedRun, split: str, n: int | None = None, data_dir=None):
    """The digit labels (numpy int array) of the split's first ``n`` points, or None (Frey Face)."""
    if run.cfg.dataset != "mnist":
        return None
    from vaebench.data import load_mnist_uint8

    arrays, _, _ = load_mnist_uint8(data_dir if data_dir is not None else run.cfg.data_dir)
    lab = arrays["train_labels" if split == "train" else "test_labels"]
    size = run.split(split).shape[0]
    return lab[: size if n is None else min(n, size)].astype("int64")


def output_dir(run: TrainedRun, out) -> Path:
    """Where results go: ``out`` if given, else beside the run (its folder)."""
    if out is None:
        return run.folder.path
    from vaebench.runs import check_out_path

    return check_out_path(out)
