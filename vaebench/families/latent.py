"""The registry's families as the latent distributions of a VAE: q(z|x) and p(z).

- LatentFamily: a registry family (vaebench.families) as the law of z in R^N_z (or
  (0, inf)^N_z), coordinates independent given their parameters. A real parameter (loc) is
  the encoder's output o, a positive one (scale, shape, rate) is exp(o/2), o clamped as
  log sigma^2 is; z = g(eps, params) by the family's own construction. Student's t has
  df = STUDENT_T_DF fixed.
- LatentPrior: p(z) = prod_i p(z_i) from the prior's family at its standard parameters
  (PRIOR_PARAMS: loc 0, scale 1; Gamma shape 1, rate 1).
- check_latent: which SGVB estimator (ESTIMATORS) a posterior/prior pair trains with; B needs
  KL(q || p) in closed form (has_closed_form_kl, latent_kl).
Densities and KLs are computed in float64.
"""

from __future__ import annotations

import functools
import math

import torch

from vaebench import ops
from vaebench.families import REGISTRY, FamilyError, get

# AEVB's latent families (registry keys): the posterior q(z|x) and the prior p(z).
# gaussian/gaussian is the paper's model (the fused ops path of vaebench.models).
LATENT_FAMILIES = ("gaussian", "laplace", "logistic", "student-t", "lognormal", "gamma-implicit")
ESTIMATORS = ("A", "B", "score")  # SGVB A (eq. 6), B (eq. 7, analytic KL), the score function (vaebench.bound)

STUDENT_T_DF = 3.0  # ours: Student's t posterior/prior with fixed df = 3 (heavy tails, finite variance)
FIXED_PARAMS = {"student-t": {"df": STUDENT_T_DF}}
POSITIVE_FAMILIES = ("lognormal", "gamma-implicit")  # support z > 0; the others: the real line
# the prior's parameters per family (the registry's ``prior`` where it has one; the standard member)
PRIOR_PARAMS = {
    "gaussian": {"loc": 0.0, "scale": 1.0},
    "laplace": {"loc": 0.0, "scale": 1.0},
    "logistic": {"loc": 0.0, "scale": 1.0},
    "student-t": {"loc": 0.0, "scale": 1.0, "df": STUDENT_T_DF},
    "lognormal": {"loc": 0.0, "scale": 1.0},
    "gamma-implicit": {"shape": 1.0, "rate": 1.0},
}


class LatentFamily:
    """A registry family as the law of z in R^N_z (or (0, inf)^N_z), coordinates independent
    given their parameters, each a tensor of shape (..., N_z)."""

    def __init__(self, name: str, role: str = "posterior"):
        key = str(name)
        if key not in LATENT_FAMILIES:
            if key in REGISTRY:
                raise FamilyError(
                    f"family {key!r} cannot be the {role} of the VAE (supported: "
                    f"{', '.join(LATENT_FAMILIES)}; for a real gamma shape use gamma-implicit)"
                )
            raise FamilyError(f"unknown {role} family {name!r}; choose one of {', '.join(LATENT_FAMILIES)}")
        self.name, self.role = key, role
        self.family = get(key)
        self.fixed = FIXED_PARAMS.get(key, {})
        self.learned = tuple(p for p in self.family.params if p.name not in self.fixed)
        self.positive = key in POSITIVE_FAMILIES
        self.support = "z > 0" if self.positive else "the real line"

    def __repr__(self) -> str:
        return f"<latent {self.role} {self.name}>"

    def params(self, heads) -> dict:
        """The family's parameters from the encoder's head outputs, one tensor per learned
        parameter: real ones as they are, positive ones exp(clamp(o)/2)."""
        return {
            p.name: (h if p.constraint == "real" else torch.exp(0.5 * ops.clamp_logvar(h)))
            for p, h in zip(self.learned, heads)
        }

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
        return f"<latent prior {self.name} { ({k: v.tolist() for k, v in self.params.items()}) }>"

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
        return (
            f"posterior {q.name!r} lives on the real line but prior {p.name!r} on z > 0, so KL(q || p) is "
            f"infinite; pair it with a prior on the real line "
            f"({', '.join(f for f in LATENT_FAMILIES if f not in POSITIVE_FAMILIES)})"
        )
    return None


@functools.cache
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
        raise FamilyError(
            f"estimator B needs KL(q || p) in closed form, and posterior {q.name!r} with prior "
            f"{p.name!r} has none; use estimator A (the default for this pair)"
        )
    return estimator


def latent_kl(q: LatentFamily, params: dict, prior: LatentPrior) -> torch.Tensor:
    """KL(q(z|params) || p(z)) in closed form, summed over the last dimension (float64 inside,
    returned in the parameters' dtype); a FamilyError naming the pair where there is none."""
    if not has_closed_form_kl(q.name, prior.name):
        check_latent(q.name, prior.name, "B")  # raises the error naming both families
    ref = next(iter(params.values()))
    kl = torch.distributions.kl_divergence(q.dist(params, ref), prior.dist(ref))
    return kl.sum(-1).to(ref.dtype)
