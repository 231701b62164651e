"""AEVB (Algorithm 1): ascend the SGVB estimate of the bound in theta and phi jointly."""

from __future__ import annotations

from vaebench.algorithms.optim import paper_adagrad
from vaebench.bound import estimate


class AEVB:
    needs_encoder = True

    def __init__(self, model, *, lr: float, n_train: int, estimator: str = "B", L: int = 1, prior: bool = True):
        self.model = model
        self.estimator = estimator
        self.L = L
        self.optimizer = paper_adagrad(model.parameters(), lr, n_train, prior)

    def step(self, x, generator) -> float:
        """One Adagrad step on the minibatch; returns its mean bound per datapoint."""
        bound = estimate(self.model, x, self.estimator, self.L, generator)
        loss = -bound.surrogate.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(bound.value.detach().mean())

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state["optimizer"])
