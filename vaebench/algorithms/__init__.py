"""Training algorithms: one update step each (AEVB, wake-sleep, Monte Carlo EM).

An algorithm object holds the model's optimiser(s) and provides
  step(x, generator) -> float   one minibatch update; returns its training objective
  state_dict() / load_state_dict(state)   for checkpoints
and the class attribute ``needs_encoder``.
"""

from __future__ import annotations

import importlib

ALGORITHMS = {
    "aevb": ("vaebench.algorithms.aevb", "AEVB"),
    "wake-sleep": ("vaebench.algorithms.wake_sleep", "WakeSleep"),
    "mcem": ("vaebench.algorithms.mcem", "MCEM"),
}


def algorithm_class(name: str):
    try:
        module_name, cls = ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}") from None
    return getattr(importlib.import_module(module_name), cls)
