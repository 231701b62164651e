"""Evaluation of trained models: the average variational lower bound per datapoint."""

from __future__ import annotations

import math

import torch

from vaebench.estimators import bound_estimator, estimate


def eval_schedule(budget: int, batch_size: int, per_decade: int = 4, first: int = 10_000) -> list[int]:
    """Log-spaced evaluation points (in samples) from ``first`` to ``budget``, ``per_decade``
    per decade, each rounded to whole minibatches, and always the budget itself."""
    last_step = budget // batch_size
    points, k = set(), math.ceil(per_decade * math.log10(max(first, batch_size)) - 1e-9)
    while True:
        s = 10 ** (k / per_decade)
        if s > budget:
            break
        points.add(max(1, round(s / batch_size)))
        k += 1
    points.add(last_step)
    return [p * batch_size for p in sorted(p for p in points if p <= last_step)]


@torch.no_grad()
def average_lower_bound(model, data: torch.Tensor, *, generator: torch.Generator | None = None,
                        L: int = 1, chunk: int = 10_000) -> float:
    """Mean over the rows of ``data`` of the SGVB-B estimate of the bound (analytic KL, L draws);
    SGVB A for a posterior/prior pair without a closed-form KL (estimators.bound_estimator)."""
    total = 0.0
    for start in range(0, data.shape[0], chunk):
        x = data[start:start + chunk]
        total += float(estimate(model, x, bound_estimator(model), L, generator).value.double().sum())
    return total / data.shape[0]
