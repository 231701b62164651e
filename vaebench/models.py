"""Encoder and decoders of the paper (appendix C): MLPs with one tanh hidden layer.

- GaussianEncoder:  h = tanh(W1 x + b1); mu = W2 h + b2; log sigma^2 = W3 h + b3
- BernoulliDecoder: logits = W5 tanh(W4 z + b4) + b5; log p(x|z) from the logits
- GaussianDecoder:  h = tanh(W4 z + b4); mean = sigmoid(W5 h + b5);
                    log sigma^2 = W6 h + b6
All weights and biases start from N(0, init_std^2) (paper: N(0, 0.01), read
as a standard deviation of 0.01).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vaebench import ops

_LOG_2PI = math.log(2.0 * math.pi)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.square().sum(-1) + z.shape[-1] * _LOG_2PI)


def log_diag_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension."""
    lv = ops.clamp_logvar(logvar)
    return -0.5 * (_LOG_2PI + lv + (z - mu).square() * torch.exp(-lv)).sum(-1)


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, t.shape[-1])


class GaussianEncoder(nn.Module):
    """q(z|x) = N(mu(x), diag(exp(logvar(x))))."""

    def __init__(self, x_dim: int, hidden: int, nz: int):
        super().__init__()
        self.hidden = nn.Linear(x_dim, hidden)
        self.head = nn.Linear(hidden, 2 * nz)  # mu and log sigma^2 in one matmul
        self.nz = nz

    def forward(self, x):
        mu, logvar = self.head(torch.tanh(self.hidden(x))).chunk(2, dim=-1)
        return mu, logvar

    def log_prob(self, z, mu, logvar):
        return log_diag_normal(z, mu, logvar)


class BernoulliDecoder(nn.Module):
    """p(x|z) = prod_i Bernoulli(x_i | sigmoid(logits_i(z)))."""

    likelihood = "bernoulli"

    def __init__(self, nz: int, hidden: int, x_dim: int):
        super().__init__()
        self.hidden = nn.Linear(nz, hidden)
        self.out = nn.Linear(hidden, x_dim)

    def forward(self, z):
        return self.out(torch.tanh(self.hidden(z)))

    def log_prob(self, x, z):
        """log p(x|z) per row; z is (..., nz), x broadcasts to (..., D)."""
        logits = self(z)
        x = x.expand_as(logits)
        return ops.bernoulli_log_likelihood(_flat(logits), _flat(x)).reshape(logits.shape[:-1])

    def mean(self, z):
        return torch.sigmoid(self(z))

    def sample(self, z, generator=None):
        return torch.bernoulli(self.mean(z), generator=generator)


class GaussianDecoder(nn.Module):
    """p(x|z) = N(x | sigmoid(W h + b), diag(exp(W' h + b'))), h = tanh(W4 z + b4)."""

    likelihood = "gaussian"

    def __init__(self, nz: int, hidden: int, x_dim: int):
        super().__init__()
        self.hidden = nn.Linear(nz, hidden)
        self.out = nn.Linear(hidden, 2 * x_dim)

    def forward(self, z):
        pre_mean, logvar = self.out(torch.tanh(self.hidden(z))).chunk(2, dim=-1)
        return torch.sigmoid(pre_mean), logvar

    def log_prob(self, x, z):
        mean, logvar = self(z)
        x = x.expand_as(mean)
        return ops.gaussian_log_likelihood(_flat(mean), _flat(logvar), _flat(x)).reshape(mean.shape[:-1])

    def mean(self, z):
        return self(z)[0]

    def sample(self, z, generator=None):
        mean, logvar = self(z)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + torch.exp(0.5 * ops.clamp_logvar(logvar)) * eps


class VAE(nn.Module):
    """Encoder q(z|x), decoder p(x|z) and prior p(z) = N(0, I)."""

    def __init__(self, encoder: GaussianEncoder | None, decoder: nn.Module, nz: int):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.nz = nz

    def log_prior(self, z):
        return log_standard_normal(z)

    def log_joint(self, x, z):
        """log p(x, z) = log p(z) + log p(x|z), per row."""
        return self.log_prior(z) + self.decoder.log_prob(x, z)


DECODERS = {"bernoulli": BernoulliDecoder, "gaussian": GaussianDecoder}


def init_normal_(module: nn.Module, std: float, generator: torch.Generator | None = None) -> None:
    """Draw every parameter from N(0, std^2) (the paper's initialisation)."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std, generator=generator)


def build_model(x_dim: int, nz: int, hidden: int, likelihood: str, *, encoder: bool = True,
                init_std: float = 0.01, generator: torch.Generator | None = None) -> VAE:
    """The paper's VAE for data of dimension x_dim, parameters drawn from N(0, init_std^2)."""
    enc = GaussianEncoder(x_dim, hidden, nz) if encoder else None
    dec = DECODERS[likelihood](nz, hidden, x_dim)
    model = VAE(enc, dec, nz)
    init_normal_(model, init_std, generator)
    return model
