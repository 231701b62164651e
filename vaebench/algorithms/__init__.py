"""Training algorithms: one update step each (AEVB, wake-sleep, Monte Carlo EM).

An algorithm object holds the model's optimiser(s) and provides
  step(x, generator) -> float   one minibatch update; returns its training objective
  state_dict() / load_state_dict(state)   for checkpoints
and the class attribute ``needs_encoder``. Their options are declared in vaebench.config.
"""

from __future__ import annotations

from vaebench.config import ALGORITHMS


def algorithm_class(name: str):
    """The class of the algorithm called ``name`` (one of vaebench.config.ALGORITHMS)."""
    from vaebench.algorithms.aevb import AEVB
    from vaebench.algorithms.mcem import MCEM
    from vaebench.algorithms.wake_sleep import WakeSleep

    classes = {"aevb": AEVB, "wake-sleep": WakeSleep, "mcem": MCEM}
    assert set(classes) == set(ALGORITHMS)
    try:
        return classes[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}") from None
