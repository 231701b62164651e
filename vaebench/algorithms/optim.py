"""The paper's optimiser: Adagrad with a N(0, I) prior on the parameters (MAP).

The objective per datapoint is  mean_minibatch(bound) + log p(theta) / N_train,
log p(theta) = -1/2 ||theta||^2 + const, so the prior adds theta / N_train to the
gradient of the loss: Adagrad's weight decay of 1 / N_train.
"""

from __future__ import annotations

import torch


def paper_adagrad(params, lr: float, n_train: int, prior: bool = True) -> torch.optim.Adagrad:
    """Adagrad(lr) whose weight decay is the N(0, I) parameter prior scaled to one datapoint."""
    params = list(params)
    # the fused kernel does one pass over the parameters instead of five (same arithmetic)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adagrad(params, lr=lr, weight_decay=(1.0 / n_train) if prior else 0.0, fused=fused)
