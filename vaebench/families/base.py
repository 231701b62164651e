"""What every family shares: parameter specs (constraint, unconstrained parameterisation,
checks), the Family interface, drawing eps, and the implicitly reparameterized standard gamma.

A family writes z ~ q(z | params) as z = g(eps, params) with eps from a fixed distribution
(the paper's section 2.4). ``rsample(params, eps)`` is g; ``sample_eps(shape, generator)`` draws
eps; ``log_prob`` and ``kl`` come from torch.distributions where it has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F

from vaebench.errors import VaebenchError


class FamilyError(VaebenchError):
    """An unknown family, or a parameter outside its family's support."""


# constraint key -> (words, unconstrained parameterisation an encoder would output, short form)
CONSTRAINTS = {
    "real": ("real", "identity", "real"),
    "positive": ("> 0", "softplus(raw)", ">0"),
    "positive_integer": ("integer >= 1", "fixed (not learnable)", "int>=1 fixed"),
    "lower_cholesky": ("lower triangular, diagonal > 0", "tril(raw, -1) + diag(softplus(diag raw))", "Cholesky"),
    "greater_than_low": ("> low", "low + softplus(raw)", ">low"),
}


@dataclass(frozen=True)
class Param:
    """One parameter of a family.

    kind: "loc" (dz/dparam bounded, score ~ 1/|z| in heavy tails), "scale" or "shape"
    (dz/dparam ~ |z| up to logs, score bounded up to logs), or "fixed" (no gradient).
    moves_support: the support depends on it, so the score-function estimator misses the
    boundary term and is biased.
    event_dim: 0 scalar, 1 vector, 2 matrix.
    """

    name: str
    constraint: str
    kind: str = "shape"
    moves_support: bool = False
    event_dim: int = 0

    @property
    def learnable(self) -> bool:
        return self.constraint != "positive_integer"

    def describe(self) -> str:
        words, raw, _ = CONSTRAINTS[self.constraint]
        return f"{self.name} ({words}; {raw})"

    def short(self) -> str:
        return f"{self.name} {CONSTRAINTS[self.constraint][2]}"


# the usual parameters of a location-scale family
LOC = Param("loc", "real", "loc")
SCALE = Param("scale", "positive", "scale")

# keyword arguments of every torch.distributions object here: the parameters are checked by
# Family.check, not again by torch
NV = dict(validate_args=False)


def uniform(shape, generator=None, dtype=torch.float64) -> torch.Tensor:
    """U(0,1) draws kept off 0 and 1 (so that log u and log(1-u) are finite)."""
    u = torch.rand(shape, generator=generator, dtype=dtype)
    eps = torch.finfo(dtype).eps
    return u.clamp(eps / 2, 1 - eps / 2)


def standard_normal(shape, generator=None, dtype=torch.float64) -> torch.Tensor:
    """N(0,1) draws (the eps of the Gaussian-based families)."""
    return torch.randn(shape, generator=generator, dtype=dtype)


class _StandardGammaICDF(torch.autograd.Function):
    """z = P^{-1}(alpha, u), the inverse of the regularised lower incomplete gamma function
    (scipy.special.gammaincinv), so z ~ Gamma(alpha, 1) for u ~ U(0,1). No closed form, so the
    gradient is implicit: P(alpha, z) = u gives dz/dalpha = -(dP/dalpha) / p(z; alpha), computed
    by torch._standard_gamma_grad, the gradient torch.distributions.Gamma.rsample uses
    (Figurnov et al. 2018)."""

    @staticmethod
    def forward(ctx, alpha, u):
        a, u = torch.broadcast_tensors(alpha, u)
        z = scipy.special.gammaincinv(a.detach().cpu().double().numpy(), u.detach().cpu().double().numpy())
        z = torch.as_tensor(np.asarray(z), dtype=alpha.dtype, device=alpha.device)
        z = z.clamp_min(torch.finfo(z.dtype).tiny)
        ctx.save_for_backward(a, z)
        ctx.alpha_shape = alpha.shape
        return z

    @staticmethod
    def backward(ctx, grad):
        a, z = ctx.saved_tensors
        return (grad * torch._standard_gamma_grad(a, z)).sum_to_size(ctx.alpha_shape), None


def standard_gamma(alpha: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Gamma(alpha, 1) from u ~ U(0,1): numerical inverse CDF, implicit gradient in alpha."""
    return _StandardGammaICDF.apply(alpha, u)


def _as_tensor(value, dtype) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else value.to(dtype)
    return torch.as_tensor(value, dtype=dtype)


class Family:
    """One family and one construction of z = g(eps, params). Subclasses set the attributes
    and write ``_rsample`` and ``_dist`` (and ``_kl`` for a hand-written closed-form KL)."""

    name: str = ""  # registry key
    family: str = ""  # the distribution (logistic and gamma have two entries)
    cls: str = ""  # "inverse-cdf" | "location-scale" | "composition"
    construction: str = ""  # eps and g, in words/maths
    params: tuple = ()  # Param, ...
    log_prob_source: str = ""  # which torch.distributions class (or hand-written) gives log_prob
    example: dict = {}  # parameter values used by the listing, tests and measurement
    prior: dict | None = None  # prior parameters of the closed-form KL
    kl_source: str | None = None  # "torch" | "hand-written" | None (no closed form)
    multivariate: bool = False

    def __init_subclass__(entry, *, log_prob: str | None = None, kl: str | None = None, **attributes):
        """An entry's metadata as class keywords, ``class Gumbel(Family, name="gumbel",
        cls="inverse-cdf", log_prob="torch Gumbel", kl="torch", construction="...")``: ``log_prob``
        and ``kl`` set log_prob_source and kl_source, the others the attribute of their name;
        ``family`` defaults to ``name``."""
        super().__init_subclass__()
        unknown = sorted(a for a in attributes if not hasattr(Family, a) or callable(getattr(Family, a)))
        if unknown:
            raise TypeError(f"{entry.__name__}: unknown family attribute(s) {', '.join(unknown)}")
        if "name" in attributes:
            attributes.setdefault("family", attributes["name"])
        if log_prob is not None:
            attributes["log_prob_source"] = log_prob
        if kl is not None:
            attributes["kl_source"] = kl
        for key, value in attributes.items():
            setattr(entry, key, value)

    # ---- parameters ------------------------------------------------------------------------
    def check(self, params: dict, dtype=torch.float64) -> dict:
        """Tensors of ``params``, after checking names and supports (FamilyError otherwise)."""
        names = [p.name for p in self.params]
        if not isinstance(params, dict):
            raise FamilyError(f"family {self.name!r}: parameters must be a dict of {names}")
        unknown = sorted(set(params) - set(names))
        missing = [n for n in names if n not in params]
        if unknown or missing:
            raise FamilyError(
                f"family {self.name!r}: parameter(s) {', '.join(missing + unknown)} "
                f"{'missing' if missing else 'unknown'} (expects {', '.join(names)})"
            )
        out = {}
        for p in self.params:
            v = _as_tensor(params[p.name], dtype)
            if v.dim() < p.event_dim:
                raise FamilyError(
                    f"family {self.name!r}: parameter {p.name!r} needs {p.event_dim} dimension(s), "
                    f"got shape {tuple(v.shape)}"
                )
            self._check_support(p, v, out)
            out[p.name] = v
        return out

    def _check_support(self, p: Param, v: torch.Tensor, done: dict) -> None:
        x = v.detach()
        words = CONSTRAINTS[p.constraint][0]
        if p.constraint == "real":
            ok = bool(torch.isfinite(x).all())
        elif p.constraint == "positive":
            ok = bool((torch.isfinite(x) & (x > 0)).all())
        elif p.constraint == "positive_integer":
            ok = x.numel() == 1 and bool(torch.isfinite(x).all()) and float(x) >= 1 and float(x) == round(float(x))
            words = "a single integer >= 1"
        elif p.constraint == "lower_cholesky":
            d = x.shape[-1]
            ok = (
                x.shape[-2] == d
                and bool(torch.isfinite(x).all())
                and bool((x.triu(1) == 0).all())
                and bool((x.diagonal(dim1=-2, dim2=-1) > 0).all())
            )
        elif p.constraint == "greater_than_low":
            ok = bool((torch.isfinite(x) & (x > done["low"].detach())).all())
        else:  # pragma: no cover - a registry bug
            raise AssertionError(p.constraint)
        if not ok:
            shown = x.tolist() if x.numel() <= 9 else f"a tensor of shape {tuple(x.shape)}"
            raise FamilyError(f"family {self.name!r}: parameter {p.name!r} must be {words}, got {shown}")

    def from_unconstrained(self, raw: dict) -> dict:
        """Parameters from an encoder's unconstrained outputs (integer parameters pass through)."""
        out = {}
        for p in self.params:
            r = _as_tensor(raw[p.name], torch.float64)
            if p.constraint == "positive":
                out[p.name] = F.softplus(r)
            elif p.constraint == "lower_cholesky":
                out[p.name] = r.tril(-1) + torch.diag_embed(F.softplus(r.diagonal(dim1=-2, dim2=-1)))
            elif p.constraint == "greater_than_low":
                out[p.name] = out["low"] + F.softplus(r)
            else:
                out[p.name] = r
        return self.check(out)

    def example_params(self, dtype=torch.float64) -> dict:
        return self.check(self.example, dtype)

    # ---- sampling --------------------------------------------------------------------------
    def eps_event_shape(self, params: dict) -> tuple:
        """The trailing shape of eps for one draw (beyond the batch shape)."""
        return ()

    def sample_eps(self, shape, generator=None, dtype=torch.float64) -> torch.Tensor:
        """eps of the given full shape from the base distribution (U(0,1) unless overridden)."""
        return uniform(shape, generator, dtype)

    def rsample(self, params: dict, eps: torch.Tensor) -> torch.Tensor:
        """z = g(eps, params), differentiable in the (learnable) parameters."""
        return self._rsample(self.check(params, eps.dtype), eps)

    def sample(self, params: dict, sample_shape=(), generator=None) -> torch.Tensor:
        """rsample with fresh eps: sample_shape + batch shape (+ event shape)."""
        params = self.check(params)
        batch = tuple(self._dist(params).batch_shape)
        eps = self.sample_eps(tuple(sample_shape) + batch + self.eps_event_shape(params), generator)
        return self._rsample(params, eps)

    # ---- densities -------------------------------------------------------------------------
    def dist(self, params: dict) -> torch.distributions.Distribution:
        """The torch.distributions object (for log_prob; its own rsample is not used)."""
        return self._dist(self.check(params))

    def log_prob(self, params: dict, z: torch.Tensor) -> torch.Tensor:
        """log q(z | params), for z in the support."""
        return self._dist(self.check(params, z.dtype)).log_prob(z)

    @property
    def has_kl(self) -> bool:
        return self.kl_source is not None

    def kl(self, params: dict, prior: dict | None = None) -> torch.Tensor:
        """KL(q(params) || q(prior)) in closed form (``prior`` defaults to ``self.prior``)."""
        if not self.has_kl:
            raise FamilyError(f"family {self.name!r}: no closed-form KL (estimate it by Monte Carlo)")
        p = self.check(params)
        q = self.check(self.prior if prior is None else prior)
        if self.kl_source == "torch":
            return torch.distributions.kl_divergence(self._dist(p), self._dist(q))
        return self._kl(p, q)

    # ---- what the measurement needs ---------------------------------------------------------
    def coordinates(self, z: torch.Tensor) -> torch.Tensor:
        """The free coordinates of a multivariate z (a test function is summed over them)."""
        return z

    def scipy_marginals(self, params: dict) -> list:
        """Frozen scipy.stats distributions of each free coordinate of z (one for a scalar family)."""
        return [self._scipy(self.check(params))]

    def tail_index(self, params: dict) -> float:
        """alpha with E|z|^m finite iff m < alpha (inf: all moments finite)."""
        return math.inf

    score_variance_infinite: bool = False  # the score itself has infinite variance (triangular)

    # ---- to write in subclasses ------------------------------------------------------------
    def _rsample(self, params, eps):  # pragma: no cover
        raise NotImplementedError

    def _dist(self, params):  # pragma: no cover
        raise NotImplementedError

    def _scipy(self, params):  # pragma: no cover
        raise NotImplementedError

    def _kl(self, p, q):  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<family {self.name}: {self.cls}, {self.construction}>"


def check_eps_width(family: Family, eps: torch.Tensor, width: int) -> None:
    """eps's last dimension must hold ``width`` draws per z."""
    if eps.dim() == 0 or eps.shape[-1] != width:
        raise FamilyError(
            f"family {family.name!r}: eps needs a last dimension of {width} "
            f"(see eps_event_shape), got shape {tuple(eps.shape)}"
        )


def f64(x) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)
