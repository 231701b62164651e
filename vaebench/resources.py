"""The files that ship with vaebench: the reproduction configs and the paper's values.

They live in the top-level ``reproductions/`` folder of the source tree, which the wheel
carries as the package ``vaebench.reproductions``; both an editable and a regular install
find them through ``importlib.resources``, from any working directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from vaebench.errors import VaebenchError


def reproductions_dir() -> Path:
    """The folder of the reproduction configs (``<name>.toml``) and ``paper/``."""
    return Path(str(resources.files("vaebench.reproductions")))


def paper_dir() -> Path:
    """The paper's values: its curves and its figures read at fixed budgets."""
    return reproductions_dir() / "paper"


def config_path(name: str, override=None) -> Path:
    """The config of a figure or study (``reproductions/<name>.toml``), or ``override``."""
    if override is not None:
        return Path(override)
    path = reproductions_dir() / f"{name}.toml"
    if not path.is_file():
        raise VaebenchError(f"no shipped config for {name!r} (looked for {path})")
    return path
