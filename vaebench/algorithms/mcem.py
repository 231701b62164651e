"""Monte Carlo EM (paper appendix E): no encoder; HMC posterior samples, then weight updates.

Per minibatch:
  E-step: one HMC move of each datapoint's chain z_i ~ p(z|x_i) (target log p(z) + log p(x_i|z),
          gradient by autograd), ``leapfrog`` = 10 leapfrog steps, each datapoint's step size
          tuned toward ``target_accept`` = 90% acceptance (a Robbins-Monro step on its log at every
          visit). The chains (and step sizes) are kept per datapoint between visits, so the
          trainer passes the minibatch's indices (``wants_indices``).
  M-step: ``updates`` = 5 Adagrad updates of the decoder's weights theta ascending the mean of
          log p(x|z) over the minibatch at the acquired sample, with the paper's optimiser
          (Adagrad, N(0, I) parameter prior as weight decay 1/N_train).
Training samples are counted as for AEVB: M per minibatch.
"""

from __future__ import annotations

import math

import torch

from vaebench.algorithms.optim import paper_adagrad
from vaebench.config import MCEMOptions
from vaebench.hmc import HMCState, adapt_log_step, hmc_transition

_DEFAULTS = MCEMOptions()  # the declared options (vaebench.config), with the paper's values


class MCEM:
    needs_encoder = False
    wants_indices = True

    def __init__(
        self,
        model,
        *,
        lr: float,
        n_train: int,
        prior: bool = True,
        leapfrog: int = _DEFAULTS.leapfrog,
        target_accept: float = _DEFAULTS.target_accept,
        updates: int = _DEFAULTS.updates,
        hmc_moves: int = _DEFAULTS.hmc_moves,
        init_step_size: float = _DEFAULTS.init_step_size,
        adapt_rate: float = _DEFAULTS.adapt_rate,
    ):
        if leapfrog < 1 or updates < 1 or hmc_moves < 1:
            raise ValueError("MCEM needs leapfrog, updates and hmc_moves >= 1")
        self.model = model
        self.n_train = int(n_train)
        self.leapfrog, self.target_accept = int(leapfrog), float(target_accept)
        self.updates, self.hmc_moves = int(updates), int(hmc_moves)
        self.init_step_size, self.adapt_rate = float(init_step_size), float(adapt_rate)
        self.optimizer = paper_adagrad(model.parameters(), lr, n_train, prior)
        self.chains: torch.Tensor | None = None  # (n_train, nz): the current z of every datapoint
        self.log_step: torch.Tensor | None = None  # (n_train,)
        self.last_accept = float("nan")

    def _init_chains(self, like: torch.Tensor, generator) -> None:
        nz = self.model.nz
        self.chains = torch.randn((self.n_train, nz), generator=generator, dtype=like.dtype, device=like.device)
        self.log_step = torch.full((self.n_train,), math.log(self.init_step_size), dtype=like.dtype, device=like.device)

    def step(self, x, generator, indices=None) -> float:
        """HMC move(s) of the minibatch's chains, then the weight updates; returns the mean
        log p(x, z) of the minibatch at the acquired sample (before the updates)."""
        if indices is None:
            raise ValueError(
                "MCEM keeps a chain per datapoint: step(x, generator, indices=...) needs the "
                "minibatch's row indices into the training set"
            )
        if self.chains is None:
            self._init_chains(x, generator)
        idx = indices.to(self.chains.device)
        log_joint = self.model.log_joint
        state = HMCState.start(log_joint, x, self.chains[idx])
        log_step = self.log_step[idx]
        acc_total = 0.0
        for _ in range(self.hmc_moves):
            state, acc = hmc_transition(log_joint, x, state, log_step.exp(), self.leapfrog, generator)
            log_step = adapt_log_step(log_step, acc, self.target_accept, self.adapt_rate)
            acc_total += float(acc.mean())
        self.last_accept = acc_total / self.hmc_moves
        self.chains[idx] = state.z
        self.log_step[idx] = log_step
        z = state.z.detach()
        for _ in range(self.updates):
            loss = -self.model.decoder.log_prob(x, z).mean()  # log p(z) has no parameters
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return float(state.logp.mean())

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict(), "chains": self.chains, "log_step": self.log_step}

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state["optimizer"])
        self.chains = None if state.get("chains") is None else state["chains"].clone()
        self.log_step = None if state.get("log_step") is None else state["log_step"].clone()
