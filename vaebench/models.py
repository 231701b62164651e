"""Encoder and decoders of the paper (appendix C): MLPs with one tanh hidden layer.

- GaussianEncoder:  h = tanh(W1 x + b1); mu = W2 h + b2; log sigma^2 = W3 h + b3
- BernoulliDecoder: logits = W5 tanh(W4 z + b4) + b5; log p(x|z) from the logits
- GaussianDecoder:  h = tanh(W4 z + b4); mean = sigmoid(W5 h + b5);
                    log sigma^2 = W6 h + b6
All weights and biases start from N(0, init_std^2) (paper: N(0, 0.01), read
as a standard deviation of 0.01).

Non-Gaussian latent families (``build_model(posterior=..., prior=...)``; names are registry
keys of vaebench.families, the list is vaebench.config.LATENT_FAMILIES):
- FamilyEncoder: h = tanh(W1 x + b1); one linear head with a block of N_z outputs per learned
  parameter of the posterior's family; a real parameter (loc) is its output o, a positive one
  (scale, shape, rate) is exp(o/2), o clamped as log sigma^2 is (so for the Gaussian family the
  head is exactly log sigma^2 and every positive parameter starts near 1). z = g(eps, params)
  by the family's own construction (``Family.rsample``); Student's t has df = STUDENT_T_DF fixed.
- LatentPrior: p(z) = prod_i p(z_i) from the prior's family at its standard parameters
  (PRIOR_PARAMS: loc 0, scale 1; Gamma shape 1, rate 1).
The paper's model -- Gaussian posterior and N(0, I) prior -- keeps GaussianEncoder and the
fused ops path (bit-identical to the runs made before the families); any other pair goes
through the registry. Densities and KLs of the registry path are computed in float64.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from vaebench import families, ops
from vaebench.config import ESTIMATORS, LATENT_FAMILIES
from vaebench.families import FamilyError

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


# ---- latent families through the registry (vaebench.families) ----------------------------------

STUDENT_T_DF = 3.0  # ours: Student's t posterior/prior with fixed df = 3 (heavy tails, finite variance)
FIXED_PARAMS = {"student-t": {"df": STUDENT_T_DF}}
POSITIVE_FAMILIES = ("lognormal", "gamma-implicit")  # support z > 0; the others: the real line
# the prior's parameters per family (the registry's ``prior`` where it has one; the standard member)
PRIOR_PARAMS = {"gaussian": {"loc": 0.0, "scale": 1.0}, "laplace": {"loc": 0.0, "scale": 1.0},
                "logistic": {"loc": 0.0, "scale": 1.0}, "student-t": {"loc": 0.0, "scale": 1.0, "df": STUDENT_T_DF},
                "lognormal": {"loc": 0.0, "scale": 1.0}, "gamma-implicit": {"shape": 1.0, "rate": 1.0}}


class LatentFamily:
    """A registry family as the law of z in R^N_z (or (0, inf)^N_z), coordinates independent
    given their parameters, each a tensor of shape (..., N_z)."""

    def __init__(self, name: str, role: str = "posterior"):
        key = str(name)
        if key not in LATENT_FAMILIES:
            if key in families.REGISTRY:
                raise FamilyError(f"family {key!r} cannot be the {role} of the VAE (supported: "
                                  f"{', '.join(LATENT_FAMILIES)}; for a real gamma shape use gamma-implicit)")
            raise FamilyError(f"unknown {role} family {name!r}; choose one of {', '.join(LATENT_FAMILIES)}")
        self.name, self.role = key, role
        self.family = families.get(key)
        self.fixed = FIXED_PARAMS.get(key, {})
        self.learned = tuple(p for p in self.family.params if p.name not in self.fixed)
        self.positive = key in POSITIVE_FAMILIES
        self.support = "z > 0" if self.positive else "the real line"

    def __repr__(self) -> str:
        return f"<latent {self.role} {self.name}>"

    def params(self, heads) -> dict:
        """The family's parameters from the encoder's head outputs, one tensor per learned
        parameter: real ones as they are, positive ones exp(clamp(o)/2)."""
        return {p.name: (h if p.constraint == "real" else torch.exp(0.5 * ops.clamp_logvar(h)))
                for p, h in zip(self.learned, heads)}

    def _full(self, params: dict, ref: torch.Tensor, dtype=None) -> dict:
        dtype = dtype or ref.dtype
        out = {k: v.to(dtype) for k, v in params.items()}
        out.update({k: torch.tensor(v, dtype=dtype, device=ref.device) for k, v in self.fixed.items()})
        return out

    def check(self, params: dict) -> dict:
        """``params`` (the learned ones) checked against the family's supports: a FamilyError
        naming the family and the parameter otherwise."""
        return self.family.check({**params, **self.fixed})

    def sample_eps(self, params: dict, L: int, generator=None) -> torch.Tensor:
        """L draws of eps per z: (L, ..., N_z) plus the family's eps event shape."""
        ref = next(iter(params.values()))
        full = self._full(params, ref)
        shape = (L, *ref.shape) + self.family.eps_event_shape({k: v.detach() for k, v in full.items()})
        with torch.device(ref.device):
            return self.family.sample_eps(shape, generator, ref.dtype)

    def rsample(self, params: dict, eps: torch.Tensor) -> torch.Tensor:
        """z = g(eps, params) (the registry's construction), differentiable in the parameters."""
        ref = next(iter(params.values()))
        return self.family._rsample(self._full(params, ref), eps)

    def dist(self, params: dict, ref: torch.Tensor, dtype=torch.float64):
        return self.family._dist(self._full(params, ref, dtype))

    def log_prob(self, params: dict, z: torch.Tensor) -> torch.Tensor:
        """log q(z | params) summed over the last dimension (in float64, returned in z's dtype)."""
        ref = next(iter(params.values()))
        return self.dist(params, ref).log_prob(z.double()).sum(-1).to(z.dtype)

    def location(self, params: dict) -> torch.Tensor:
        """A central point of q: loc (real families), exp(loc) (lognormal), shape/rate (gamma)."""
        if "loc" in params:
            return torch.exp(params["loc"]) if self.name == "lognormal" else params["loc"]
        return params["shape"] / params["rate"]


class LatentPrior:
    """p(z) = prod_i p(z_i), one registry family at fixed parameters (PRIOR_PARAMS by default;
    ``params`` outside the family's support is a FamilyError naming the family and parameter)."""

    def __init__(self, name: str = "gaussian", params: dict | None = None):
        self.latent = LatentFamily(name, "prior")
        self.name, self.positive, self.support = self.latent.name, self.latent.positive, self.latent.support
        given = dict(PRIOR_PARAMS[self.name] if params is None else params)
        given.update({k: v for k, v in self.latent.fixed.items() if k not in given})
        self.params = self.latent.family.check(given)  # float64 scalars (or tensors)

    def __repr__(self) -> str:
        return f"<latent prior {self.name} {({k: v.tolist() for k, v in self.params.items()})}>"

    def dist(self, ref: torch.Tensor, dtype=torch.float64):
        return self.latent.family._dist({k: v.to(device=ref.device, dtype=dtype) for k, v in self.params.items()})

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the last dimension; -inf outside the support."""
        zz = z.double()
        lp = self.dist(z).log_prob(zz)
        if self.positive:
            lp = torch.where(zz > 0, lp, torch.full_like(lp, -math.inf))
        return lp.sum(-1).to(z.dtype)


def _support_error(q: LatentFamily, p: LatentPrior) -> str | None:
    if not q.positive and p.positive:
        return (f"posterior {q.name!r} lives on the real line but prior {p.name!r} on z > 0, so KL(q || p) is "
                f"infinite; pair it with a prior on the real line "
                f"({', '.join(f for f in LATENT_FAMILIES if f not in POSITIVE_FAMILIES)})")
    return None


@functools.lru_cache(maxsize=None)
def has_closed_form_kl(posterior: str, prior: str) -> bool:
    """Whether KL(q || p) of the pair is closed form (torch.distributions.kl_divergence has it)."""
    q, p = LatentFamily(posterior), LatentPrior(prior)
    ref = torch.zeros(3, dtype=torch.float64)
    example = q.params(tuple(torch.tensor([-0.3, 0.1, 0.4], dtype=torch.float64) for _ in q.learned))
    try:
        kl = torch.distributions.kl_divergence(q.dist(example, ref), p.dist(ref))
    except NotImplementedError:
        return False
    return bool(torch.isfinite(kl).all())


def check_latent(posterior: str = "gaussian", prior: str = "gaussian", estimator: str = "auto") -> str:
    """The SGVB estimator a model with this posterior and prior trains with: ``estimator``, or
    for "auto" B where KL(q || p) is closed form and A otherwise. One-line FamilyError for an
    unknown family, supports that do not nest, or B without a closed-form KL."""
    q, p = LatentFamily(posterior, "posterior"), LatentPrior(prior)
    error = _support_error(q, p)
    if error:
        raise FamilyError(error)
    closed = has_closed_form_kl(q.name, p.name)
    if estimator == "auto":
        return "B" if closed else "A"
    if estimator == "B" and not closed:
        raise FamilyError(f"estimator B needs KL(q || p) in closed form, and posterior {q.name!r} with prior "
                          f"{p.name!r} has none; use estimator A (the default for this pair)")
    if estimator not in ESTIMATORS:
        raise FamilyError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)} or auto")
    return estimator


def latent_kl(q: LatentFamily, params: dict, prior: LatentPrior) -> torch.Tensor:
    """KL(q(z|params) || p(z)) in closed form, summed over the last dimension (float64 inside,
    returned in the parameters' dtype); a FamilyError naming the pair where there is none."""
    if not has_closed_form_kl(q.name, prior.name):
        check_latent(q.name, prior.name, "B")  # raises the error naming both families
    ref = next(iter(params.values()))
    kl = torch.distributions.kl_divergence(q.dist(params, ref), prior.dist(ref))
    return kl.sum(-1).to(ref.dtype)


class FamilyEncoder(nn.Module):
    """q(z|x) of a registry family: h = tanh(W1 x + b1); the learned parameters from one head
    of N_z outputs per parameter (see the module docstring). ``forward`` returns the family's
    parameters as a dict of (B, N_z) tensors."""

    def __init__(self, x_dim: int, hidden: int, nz: int, posterior: str):
        super().__init__()
        self.latent = LatentFamily(posterior, "posterior")
        self.hidden = nn.Linear(x_dim, hidden)
        self.param_head = nn.Linear(hidden, len(self.latent.learned) * nz)  # not "head": Gaussian checkpoints do not load
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

    def __init__(self, encoder: GaussianEncoder | FamilyEncoder | None, decoder: nn.Module, nz: int,
                 prior: str | LatentPrior = "gaussian"):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.nz = nz
        self.latent_prior = prior if isinstance(prior, LatentPrior) else LatentPrior(prior)
        if self.latent_prior.name != "gaussian" and isinstance(encoder, GaussianEncoder):
            raise FamilyError(f"prior {self.latent_prior.name!r} needs the registry path: "
                              f"use FamilyEncoder(..., 'gaussian') (build_model does)")

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


def build_model(x_dim: int, nz: int, hidden: int, likelihood: str, *, encoder: bool = True,
                init_std: float = 0.01, generator: torch.Generator | None = None,
                posterior: str = "gaussian", prior: str = "gaussian") -> VAE:
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
