"""Time the hot-path ops on every backend against eager PyTorch (placeholder: helper replaces)."""

from vaebench.bench import add_arguments, run  # noqa: F401
