"""Compositions: z is a function of several reparameterized draws.

The gamma-based ones use the implicitly reparameterized standard gamma (base.standard_gamma:
u ~ U(0,1), G = P^{-1}(alpha, u), dG/dalpha by implicit differentiation, the gradient of
torch.distributions.Gamma.rsample), because a sum of exponentials only gives integer shapes.
"""

from __future__ import annotations

import scipy.stats as st
import torch
import torch.distributions as D
from torch.distributions import constraints

from vaebench.families.base import LOC, NV, SCALE, Family, Param, check_eps_width, f64, standard_gamma, standard_normal
from vaebench.families.inverse_cdf import Exponential, GammaLaw, IntegerShapeGamma
from vaebench.families.location_scale import Gaussian


class LogNormal(
    Family,
    name="lognormal",
    cls="composition",
    log_prob="torch LogNormal",
    kl="torch",
    construction="eps~N(0,1); z = exp(loc + scale*eps)",
):
    """eps ~ N(0,1); z = exp(loc + scale eps), the exp of the Gaussian entry."""

    params = (LOC, SCALE)
    example, prior = {"loc": 0.2, "scale": 0.5}, {"loc": 0.0, "scale": 1.0}
    sample_eps = staticmethod(standard_normal)

    def _rsample(self, p, e):
        return torch.exp(Gaussian()._rsample(p, e))

    def _dist(self, p):
        return D.LogNormal(p["loc"], p["scale"], **NV)

    def _scipy(self, p):
        return st.lognorm(f64(p["scale"]), scale=float(torch.exp(p["loc"])))


class GammaSum(
    IntegerShapeGamma, name="gamma", cls="composition", construction="u_1..u_k~U(0,1); z = sum_i exponential(rate; u_i)"
):
    """Integer shape k: a sum of k Exponential(rate) draws, each by the exponential entry's
    inverse CDF: z = sum_i -log(1 - u_i)/rate. No gradient in the shape."""

    def _rsample(self, p, u):
        check_eps_width(self, u, int(p["shape"]))
        return Exponential()._rsample({"rate": p["rate"].unsqueeze(-1)}, u).sum(-1)


class GammaImplicit(
    GammaLaw,
    name="gamma-implicit",
    family="gamma",
    cls="composition",
    construction="u~U(0,1); z = P^-1(shape, u)/rate (implicit gradient)",
):
    """Real shape: u ~ U(0,1); z = P^{-1}(shape, u)/rate, the (numerical) inverse CDF with the
    implicit gradient in the shape, as torch.distributions.Gamma.rsample."""

    params = (Param("shape", "positive", "shape"), Param("rate", "positive", "scale"))
    example, prior = {"shape": 3.0, "rate": 2.0}, {"shape": 1.0, "rate": 1.0}

    def _rsample(self, p, u):
        return standard_gamma(p["shape"], u) / p["rate"]


class Dirichlet(
    Family,
    name="dirichlet",
    cls="composition",
    multivariate=True,
    log_prob="torch Dirichlet",
    kl="torch",
    construction="u_1..u_K~U(0,1); G_i = gamma(alpha_i; u_i); z = G/sum(G)",
):
    """u_1..u_K ~ U(0,1); G_i = P^{-1}(alpha_i, u_i) ~ Gamma(alpha_i, 1); z = G / sum_j G_j."""

    params = (Param("concentration", "positive", "shape", event_dim=1),)
    example, prior = {"concentration": [2.0, 3.0, 1.5]}, {"concentration": [1.0, 1.0, 1.0]}

    def eps_event_shape(self, params):
        return (self.check(params)["concentration"].shape[-1],)

    def _rsample(self, p, u):
        g = standard_gamma(p["concentration"], u)
        return g / g.sum(-1, keepdim=True)

    def _dist(self, p):
        return D.Dirichlet(p["concentration"], **NV)

    def coordinates(self, z):
        """The first K-1 coordinates (the last is 1 minus their sum)."""
        return z[..., :-1]

    def scipy_marginals(self, params):
        """Beta(alpha_i, sum(alpha) - alpha_i) for the first K-1 coordinates."""
        a = self.check(params)["concentration"]
        return [st.beta(f64(ai), f64(a.sum() - ai)) for ai in a[:-1]]


class Beta(
    Family,
    name="beta",
    cls="composition",
    log_prob="torch Beta",
    kl="torch",
    construction="u1,u2~U(0,1); X = gamma(a; u1), Y = gamma(b; u2); z = X/(X+Y)",
):
    """u1, u2 ~ U(0,1); X = P^{-1}(a, u1), Y = P^{-1}(b, u2); z = X/(X + Y)."""

    params = (Param("a", "positive", "shape"), Param("b", "positive", "shape"))
    example, prior = {"a": 2.0, "b": 3.0}, {"a": 1.0, "b": 1.0}

    def eps_event_shape(self, params):
        return (2,)

    def _rsample(self, p, u):
        check_eps_width(self, u, 2)
        x, y = standard_gamma(p["a"], u[..., 0]), standard_gamma(p["b"], u[..., 1])
        return x / (x + y)

    def _dist(self, p):
        return D.Beta(p["a"], p["b"], **NV)

    def _scipy(self, p):
        return st.beta(f64(p["a"]), f64(p["b"]))


class Chi2(
    Family,
    name="chi2",
    family="chi-squared",
    cls="composition",
    log_prob="torch Chi2",
    kl="torch",
    construction="u~U(0,1); z = 2*gamma(df/2; u)",
):
    """chi-squared(df) = Gamma(df/2, rate 1/2): u ~ U(0,1); z = 2 P^{-1}(df/2, u). (For an
    integer df, the law of a sum of df squared standard normals, which has no df gradient.)"""

    params = (Param("df", "positive", "shape"),)
    example, prior = {"df": 4.0}, {"df": 2.0}

    def _rsample(self, p, u):
        return 2 * standard_gamma(p["df"] / 2, u)

    def _dist(self, p):
        return D.Chi2(p["df"], **NV)

    def _scipy(self, p):
        return st.chi2(f64(p["df"]))


class FisherSnedecorDist(D.Distribution):
    """log q(z) = (d1/2) log(d1/d2) + (d1/2 - 1) log z - ((d1+d2)/2) log(1 + d1 z/d2)
    - log B(d1/2, d2/2), z > 0."""

    arg_constraints = {}
    support = constraints.positive

    def __init__(self, d1, d2):
        self.d1, self.d2 = torch.broadcast_tensors(d1, d2)
        super().__init__(self.d1.shape, validate_args=False)

    def log_prob(self, z):
        d1, d2 = self.d1, self.d2
        log_beta = torch.lgamma(d1 / 2) + torch.lgamma(d2 / 2) - torch.lgamma((d1 + d2) / 2)
        return (
            d1 / 2 * torch.log(d1 / d2)
            + (d1 / 2 - 1) * torch.log(z)
            - (d1 + d2) / 2 * torch.log1p(d1 * z / d2)
            - log_beta
        )


class FisherF(
    Family,
    name="f",
    family="F",
    cls="composition",
    log_prob="hand-written FisherSnedecorDist",
    construction="u1,u2~U(0,1); z = (chi2_d1(u1)/d1)/(chi2_d2(u2)/d2)",
):
    """u1, u2 ~ U(0,1); X_i = 2 P^{-1}(d_i/2, u_i) ~ chi2(d_i); z = (X1/d1)/(X2/d2).
    E z^m is finite only for m < d2/2."""

    params = (Param("d1", "positive", "shape"), Param("d2", "positive", "shape"))
    example = {"d1": 5.0, "d2": 8.0}

    def eps_event_shape(self, params):
        return (2,)

    def _rsample(self, p, u):
        check_eps_width(self, u, 2)
        x1 = 2 * standard_gamma(p["d1"] / 2, u[..., 0])
        x2 = 2 * standard_gamma(p["d2"] / 2, u[..., 1])
        return (x1 / p["d1"]) / (x2 / p["d2"])

    def _dist(self, p):
        return FisherSnedecorDist(p["d1"], p["d2"])

    def _scipy(self, p):
        return st.f(f64(p["d1"]), f64(p["d2"]))

    def tail_index(self, params):
        return f64(self.check(params)["d2"]) / 2


FAMILIES = (LogNormal, GammaSum, GammaImplicit, Dirichlet, Beta, Chi2, FisherF)
