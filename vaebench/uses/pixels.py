"""The decoder's distribution over the pixels of the clean image, p(x|z) = prod_i p(x_i|z), as
tensors one can index, combine and evaluate element by element.

- Bernoulli (MNIST): logits l_i(z); p(x_i|z) = pi_i^x_i (1 - pi_i)^(1 - x_i), pi = sigmoid(l),
  also for intensities x_i in [0, 1] (the paper's use of MNIST intensities as Bernoulli means);
- Gaussian (Frey Face): mean m_i(z) and log-variance v_i(z) (clamped as everywhere in vaebench).

Shapes: (..., n, D) with any leading sample dimensions. ``PixelDist.of(model, z)`` runs the
decoder; ``PixelDist.constant(...)`` makes a distribution that does not depend on z (the data
set's mean image as a baseline). Per-row sums over pixels (``log_prob_rows``) go through
vaebench.ops, so the kernel backends apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vaebench import ops
from vaebench.gaussian import log_normal

LIKELIHOODS = ("bernoulli", "gaussian")


@dataclass
class PixelDist:
    """p(x|z) per pixel: ``kind`` 'bernoulli' (``loc`` = logits) or 'gaussian' (``loc`` = mean,
    ``logvar`` = log-variance)."""

    kind: str
    loc: torch.Tensor
    logvar: torch.Tensor | None = None

    @classmethod
    def of(cls, model, z: torch.Tensor) -> PixelDist:
        """The decoder's p(x|z) at ``z`` (..., nz)."""
        out = model.decoder(z)
        if model.decoder.likelihood == "bernoulli":
            return cls("bernoulli", out)
        mean, logvar = out
        return cls("gaussian", mean, ops.clamp_logvar(logvar))

    @classmethod
    def constant(cls, kind: str, mean: torch.Tensor, var: torch.Tensor | None = None) -> PixelDist:
        """Independent pixels with the given mean (and variance, Gaussian), e.g. a data set's mean image."""
        if kind == "bernoulli":
            p = mean.clamp(1e-6, 1 - 1e-6)
            return cls("bernoulli", torch.log(p) - torch.log1p(-p))
        return cls("gaussian", mean, ops.clamp_logvar(torch.log(var)))

    @property
    def bernoulli(self) -> bool:
        return self.kind == "bernoulli"

    # ---- moments ------------------------------------------------------------------------------
    def mean(self) -> torch.Tensor:
        return torch.sigmoid(self.loc) if self.bernoulli else self.loc

    def var(self) -> torch.Tensor:
        if self.bernoulli:
            p = torch.sigmoid(self.loc)
            return p * (1 - p)
        return torch.exp(self.logvar)

    def log_p1(self) -> torch.Tensor:
        """Bernoulli: log pi (stable in the logits)."""
        return -F.softplus(-self.loc)

    def log_p0(self) -> torch.Tensor:
        """Bernoulli: log(1 - pi)."""
        return -F.softplus(self.loc)

    # ---- densities ----------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_i|z) element by element (x broadcasts against the parameters)."""
        if self.bernoulli:
            return x * self.loc - F.softplus(self.loc)
        return log_normal(x, self.loc, self.logvar, summed=False)

    def log_prob_rows(self, x: torch.Tensor) -> torch.Tensor:
        """sum_i log p(x_i|z) per row, through vaebench.ops (the backend's kernel)."""
        loc = self.loc
        shape = loc.shape[:-1]
        x = x.expand_as(loc).reshape(-1, loc.shape[-1]).contiguous()
        if self.bernoulli:
            return ops.bernoulli_log_likelihood(loc.reshape(-1, loc.shape[-1]).contiguous(), x).reshape(shape)
        return ops.gaussian_log_likelihood(
            loc.reshape(-1, loc.shape[-1]).contiguous(),
            self.logvar.expand_as(loc).reshape(-1, loc.shape[-1]).contiguous(),
            x,
        ).reshape(shape)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.bernoulli:
            return torch.bernoulli(torch.sigmoid(self.loc), generator=generator)
        eps = torch.randn(self.loc.shape, generator=generator, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + torch.exp(0.5 * self.logvar) * eps

    # ---- combining ----------------------------------------------------------------------------
    def where(self, keep_new: torch.Tensor, new: PixelDist) -> PixelDist:
        """Row by row: ``new`` where ``keep_new`` (..., n) is true, else this one."""
        k = keep_new.unsqueeze(-1)
        lv = None if self.logvar is None else torch.where(k, new.logvar, self.logvar)
        return PixelDist(self.kind, torch.where(k, new.loc, self.loc), lv)

    def rows(self, index) -> PixelDist:
        return PixelDist(self.kind, self.loc[index], None if self.logvar is None else self.logvar[index])
