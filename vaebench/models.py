"""Encoder and decoders of the paper (appendix C): MLPs with one tanh hidden layer.

- GaussianEncoder:  h = tanh(W1 x + b1); mu = W2 h + b2; log sigma^2 = W3 h + b3
- BernoulliDecoder: logits = W5 tanh(W4 z + b4) + b5; log p(x|z) from the logits
- GaussianDecoder:  h = tanh(W4 z + b4); mean = sigmoid(W5 h + b5);
                    log sigma^2 = W6 h + b6
All weights and biases start from N(0, init_std^2) (paper: N(0, 0.01), read
as a standard deviation of 0.01).

Non-Gaussian latent families (``build_model(posterior=..., prior=...)``; names are registry
keys of vaebench.families, the list is vaebench.families.latent.LATENT_FAMILIES):
- FamilyEncoder: h = tanh(W1 x + b1); one linear head with a block of N_z outputs per learned
  parameter of the posterior's family (vaebench.families.latent.LatentFamily: a real parameter
  is the output o, a positive one exp(o/2), o clamped as log sigma^2 is; so for the Gaussian
  family the head is exactly log sigma^2 and every positive parameter starts near 1).
- p(z): a vaebench.families.latent.LatentPrior.
The paper's model -- Gaussian posterior and N(0, I) prior -- keeps GaussianEncoder and the
fused ops path (bit-identical to the runs made before the families); any other pair goes
through the registry. Densities and KLs of the registry path are computed in float64.
"""

from __future__ import annotations

import torch
from torch import nn

from vaebench import ops
from vaebench.families import FamilyError
from vaebench.families.latent import LatentFamily, LatentPrior, check_latent
from vaebench.gaussian import log_normal, log_standard_normal


def log_diag_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension."""
    lv = ops.clamp_logvar(logvar)
    return log_normal(z, mu, lv)


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


class FamilyEncoder(nn.Module):
    """q(z|x) of a registry family: h = tanh(W1 x + b1); the learned parameters from one head
    of N_z outputs per parameter (see the module docstring). ``forward`` returns the family's
    parameters as a dict of (B, N_z) tensors."""

    def __init__(self, x_dim: int, hidden: int, nz: int, posterior: str):
        super().__init__()
        self.latent = LatentFamily(posterior, "posterior")
        self.hidden = nn.Linear(x_dim, hidden)
        self.param_head = nn.Linear(
            hidden, len(self.latent.learned) * nz
        )  # not "head": Gaussian checkpoints do not load
        self.nz = nz

    def forward(self, x) -> dict:
        heads = self.param_head(torch.tanh(self.hidden(x))).chunk(len(self.latent.learned), dim=-1)
        return self.latent.params(heads)

    def sample_eps(self, params: dict, L: int, generator=None) -> torch.Tensor:
        return self.latent.sample_eps(params, L, generator)

    def rsample(self, params: dict, eps: torch.Tensor) -> torch.Tensor:
        return self.latent.rsample(params, eps)

    def log_prob(self, z, params: dict) -> torch.Tensor:
        return self.latent.log_prob(params, z)


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
    """Encoder q(z|x), decoder p(x|z) and prior p(z) (paper: N(0, I); else a LatentPrior)."""

    def __init__(
        self,
        encoder: GaussianEncoder | FamilyEncoder | None,
        decoder: nn.Module,
        nz: int,
        prior: str | LatentPrior = "gaussian",
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.nz = nz
        self.latent_prior = prior if isinstance(prior, LatentPrior) else LatentPrior(prior)
        if self.latent_prior.name != "gaussian" and isinstance(encoder, GaussianEncoder):
            raise FamilyError(
                f"prior {self.latent_prior.name!r} needs the registry path: "
                f"use FamilyEncoder(..., 'gaussian') (build_model does)"
            )

    @property
    def uses_families(self) -> bool:
        """Whether the estimators go through the families registry (not the fused Gaussian ops)."""
        return isinstance(self.encoder, FamilyEncoder)

    def log_prior(self, z):
        if self.latent_prior.name == "gaussian":
            return log_standard_normal(z)
        return self.latent_prior.log_prob(z)

    def log_joint(self, x, z):
        """log p(x, z) = log p(z) + log p(x|z), per row."""
        return self.log_prior(z) + self.decoder.log_prob(x, z)


DECODERS = {"bernoulli": BernoulliDecoder, "gaussian": GaussianDecoder}


def init_normal_(module: nn.Module, std: float, generator: torch.Generator | None = None) -> None:
    """Draw every parameter from N(0, std^2) (the paper's initialisation)."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std, generator=generator)


def build_model(
    x_dim: int,
    nz: int,
    hidden: int,
    likelihood: str,
    *,
    encoder: bool = True,
    init_std: float = 0.01,
    generator: torch.Generator | None = None,
    posterior: str = "gaussian",
    prior: str = "gaussian",
) -> VAE:
    """The paper's VAE for data of dimension x_dim, parameters drawn from N(0, init_std^2);
    ``posterior`` and ``prior`` name the latent families (the paper's: gaussian, gaussian).
    Every posterior has two heads of N_z, so a seed gives every family the same initial draw."""
    check_latent(posterior, prior)
    paper = LatentFamily(posterior).name == "gaussian" and LatentFamily(prior, "prior").name == "gaussian"
    if not encoder:
        enc = None
    else:
        enc = GaussianEncoder(x_dim, hidden, nz) if paper else FamilyEncoder(x_dim, hidden, nz, posterior)
    dec = DECODERS[likelihood](nz, hidden, x_dim)
    model = VAE(enc, dec, nz, prior)
    init_normal_(model, init_std, generator)
    return model
