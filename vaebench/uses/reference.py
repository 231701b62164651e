"""A model whose posteriors are known in closed form, to check the samplers and the
per-datapoint posterior optimisation against: the linear-Gaussian VAE (probabilistic PCA)

    z ~ N(0, I_nz),   x|z ~ N(W z + b, s^2 I_D),

with a linear Gaussian encoder q(z|x) = N(A x + a, diag(exp(l))). It has the interface of
vaebench.models.VAE (``nz``, ``log_joint``, ``encoder``, ``decoder`` with ``likelihood``
'gaussian' returning (mean, log-variance)), so every use of a trained model runs on it.

Closed forms: p(z|x) = N(S W^T (x - b) / s^2, S) with S = (I + W^T W / s^2)^-1;
p(x) = N(b, W W^T + s^2 I). The best diagonal Gaussian q for one x (maximal ELBO, i.e. minimal
KL(q || p(z|x))) has the posterior's mean and variances 1 / diag(S^-1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vaebench.gaussian import log_normal
from vaebench.models import VAE, log_diag_normal


class LinearGaussianDecoder(nn.Module):
    likelihood = "gaussian"

    def __init__(self, W: torch.Tensor, b: torch.Tensor, noise_std: float):
        super().__init__()
        self.W, self.b = nn.Parameter(W.clone()), nn.Parameter(b.clone())
        self.logvar = nn.Parameter(torch.full_like(b, 2 * math.log(noise_std)))

    def forward(self, z):
        mean = z @ self.W.T + self.b
        return mean, self.logvar.expand_as(mean)

    def log_prob(self, x, z):
        mean, logvar = self(z)
        return log_normal(x, mean, logvar)

    def mean(self, z):
        return self(z)[0]


class LinearGaussianEncoder(nn.Module):
    def __init__(self, A: torch.Tensor, a: torch.Tensor, logvar: torch.Tensor):
        super().__init__()
        self.A, self.a, self.lv = nn.Parameter(A.clone()), nn.Parameter(a.clone()), nn.Parameter(logvar.clone())
        self.nz = a.shape[0]

    def forward(self, x):
        mu = x @ self.A.T + self.a
        return mu, self.lv.expand_as(mu)

    def log_prob(self, z, mu, logvar):
        return log_diag_normal(z, mu, logvar)


def linear_gaussian_vae(
    D: int = 16,
    nz: int = 2,
    noise_std: float = 0.3,
    *,
    encoder_scale: float = 1.0,
    encoder_var_scale: float = 1.0,
    generator: torch.Generator | None = None,
    dtype=torch.float64,
) -> VAE:
    """A random linear-Gaussian VAE; its encoder is the exact posterior mean map times
    ``encoder_scale`` with the posterior's marginal variances times ``encoder_var_scale``."""
    W = torch.randn(D, nz, generator=generator, dtype=dtype) * 0.5
    b = 0.5 + 0.1 * torch.randn(D, generator=generator, dtype=dtype)
    dec = LinearGaussianDecoder(W, b, noise_std)
    S = posterior_cov(dec)
    A = encoder_scale * S @ W.T / noise_std**2
    enc = LinearGaussianEncoder(A, -A @ b, torch.log(encoder_var_scale * S.diagonal()))
    model = VAE(enc, dec, nz).to(dtype)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _parts(dec: LinearGaussianDecoder):
    W, b = dec.W.detach(), dec.b.detach()
    s2 = float(torch.exp(dec.logvar.detach()[0]))
    return W, b, s2


def posterior_cov(dec: LinearGaussianDecoder) -> torch.Tensor:
    W, b, s2 = _parts(dec)
    return torch.linalg.inv(torch.eye(W.shape[1], dtype=W.dtype) + W.T @ W / s2)


def posterior_z(model, x: torch.Tensor):
    """(mean (n, nz), covariance (nz, nz)) of p(z|x)."""
    W, b, s2 = _parts(model.decoder)
    S = posterior_cov(model.decoder)
    return (x - b) @ W @ S.T / s2, S


def best_diagonal(model, x: torch.Tensor):
    """(mean, variance) of the diagonal Gaussian q maximising the ELBO of each row of x."""
    mean, S = posterior_z(model, x)
    return mean, (1.0 / torch.linalg.inv(S).diagonal()).expand_as(mean)


def marginal_cov(model) -> torch.Tensor:
    W, b, s2 = _parts(model.decoder)
    return W @ W.T + s2 * torch.eye(W.shape[0], dtype=W.dtype)


def log_marginal(model, x: torch.Tensor) -> torch.Tensor:
    W, b, s2 = _parts(model.decoder)
    return torch.distributions.MultivariateNormal(b, marginal_cov(model)).log_prob(x)
