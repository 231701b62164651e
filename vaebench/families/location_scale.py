"""Location-scale: eps from the family's standard member, z = loc + scale * eps (for the
elliptical families z = loc + L eps with L the Cholesky factor of the scale matrix).

Student's t (and the multivariate t) also learn the degrees of freedom: their standard member
is drawn as n / sqrt(G/df) with G ~ chi-squared(df) by the implicitly reparameterized gamma,
as torch.distributions.StudentT.rsample does.
"""

from __future__ import annotations

import math

import scipy.stats as st
import torch
import torch.distributions as D
from torch.distributions import constraints
from torch.distributions import transforms as T

from vaebench.families.base import (
    LOC,
    NV,
    SCALE,
    Family,
    Param,
    check_eps_width,
    f64,
    standard_gamma,
    standard_normal,
    uniform,
)
from vaebench.families.inverse_cdf import LogisticLaw


class LocationScale(Family):
    """z = loc + scale eps, eps from the family's standard member (its ``sample_eps``)."""

    def _rsample(self, p, e):
        return p["loc"] + p["scale"] * e


class Gaussian(
    LocationScale,
    name="gaussian",
    cls="location-scale",
    log_prob="torch Normal",
    kl="torch",
    construction="eps~N(0,1); z = loc + scale*eps",
):
    """eps ~ N(0,1), z = loc + scale eps (torch Normal.rsample does the same)."""

    params = (LOC, SCALE)
    example, prior = {"loc": 0.5, "scale": 1.2}, {"loc": 0.0, "scale": 1.0}
    sample_eps = staticmethod(standard_normal)

    def _dist(self, p):
        return D.Normal(p["loc"], p["scale"], **NV)

    def _scipy(self, p):
        return st.norm(f64(p["loc"]), f64(p["scale"]))


class Laplace(
    LocationScale,
    name="laplace",
    cls="location-scale",
    log_prob="torch Laplace",
    kl="torch",
    construction="eps~Laplace(0,1); z = loc + scale*eps",
):
    """eps ~ Laplace(0,1) (drawn as -sign(v) log(1 - 2|v|), v = u - 1/2), z = loc + scale eps."""

    params = (LOC, SCALE)
    example, prior = {"loc": 0.5, "scale": 1.2}, {"loc": 0.0, "scale": 1.0}

    def sample_eps(self, shape, generator=None, dtype=torch.float64):
        v = uniform(shape, generator, dtype) - 0.5
        return -torch.sign(v) * torch.log1p(-2 * v.abs())

    def _dist(self, p):
        return D.Laplace(p["loc"], p["scale"], **NV)

    def _scipy(self, p):
        return st.laplace(f64(p["loc"]), f64(p["scale"]))


class LogisticLS(
    LocationScale,
    LogisticLaw,
    name="logistic-ls",
    family="logistic",
    cls="location-scale",
    construction="eps~Logistic(0,1); z = loc + scale*eps",
):
    """eps ~ Logistic(0,1) (drawn as log(u/(1-u))), z = loc + scale eps: the same law as the
    inverse-CDF ``logistic`` entry, with eps from the standard member instead of U(0,1)."""

    def sample_eps(self, shape, generator=None, dtype=torch.float64):
        u = uniform(shape, generator, dtype)
        return torch.log(u) - torch.log1p(-u)


def _normal_and_uniform(shape, generator, dtype):
    """eps[..., :-1] ~ N(0,1), eps[..., -1] ~ U(0,1)."""
    e = standard_normal(shape, generator, dtype)
    e[..., -1] = uniform(shape[:-1], generator, dtype)
    return e


def _coordinate_scales(scale_tril):
    """The scale of each coordinate of loc + L eps: the norms of L's rows."""
    return scale_tril.square().sum(-1).sqrt()


def _chi2(df, u):
    """chi-squared(df) = 2 Gamma(df/2, 1), implicitly reparameterized in df."""
    return 2 * standard_gamma(df / 2, u)


class StudentT(
    Family,
    name="student-t",
    cls="location-scale",
    log_prob="torch StudentT",
    construction="eps=(n~N(0,1), u~U(0,1)); z = loc + scale*n/sqrt(chi2_df(u)/df)",
):
    """eps = (n, u), n ~ N(0,1), u ~ U(0,1); G = chi2(df) from u (implicit gamma);
    z = loc + scale n / sqrt(G/df). E|z|^m is finite only for m < df."""

    params = (LOC, SCALE, Param("df", "positive", "shape"))
    example = {"loc": 0.5, "scale": 1.2, "df": 3.0}

    def eps_event_shape(self, params):
        return (2,)

    def sample_eps(self, shape, generator=None, dtype=torch.float64):
        return _normal_and_uniform(shape, generator, dtype)

    def _rsample(self, p, e):
        check_eps_width(self, e, 2)
        return p["loc"] + p["scale"] * e[..., 0] * torch.rsqrt(_chi2(p["df"], e[..., 1]) / p["df"])

    def _dist(self, p):
        return D.StudentT(p["df"], p["loc"], p["scale"], **NV)

    def _scipy(self, p):
        return st.t(f64(p["df"]), f64(p["loc"]), f64(p["scale"]))

    def tail_index(self, params):
        return f64(self.check(params)["df"])


class Uniform(
    LocationScale,
    name="uniform",
    cls="location-scale",
    log_prob="torch Uniform(loc - scale, loc + scale)",
    kl="torch",
    construction="eps~U(-1,1); z = loc + scale*eps",
):
    """eps ~ U(-1,1), z = loc + scale eps: uniform on [loc - scale, loc + scale]. Both
    parameters move the support."""

    params = (Param("loc", "real", "loc", moves_support=True), Param("scale", "positive", "scale", moves_support=True))
    example, prior = {"loc": 0.5, "scale": 1.0}, {"loc": 0.0, "scale": 2.0}

    def sample_eps(self, shape, generator=None, dtype=torch.float64):
        return 2 * uniform(shape, generator, dtype) - 1

    def _dist(self, p):
        return D.Uniform(p["loc"] - p["scale"], p["loc"] + p["scale"], **NV)

    def _scipy(self, p):
        loc, scale = f64(p["loc"]), f64(p["scale"])
        return st.uniform(loc - scale, 2 * scale)


class StandardTriangular(D.Distribution):
    """q(x) = 1 - |x| on [-1, 1] (symmetric triangular)."""

    arg_constraints = {}
    support = constraints.interval(-1.0, 1.0)

    def __init__(self, batch_shape=torch.Size()):
        super().__init__(torch.Size(batch_shape), validate_args=False)

    def log_prob(self, x):
        inside = x.abs() < 1
        return torch.where(inside, torch.log1p(-x.abs().clamp(max=1)), torch.full_like(x, -math.inf))


class Triangular(
    LocationScale,
    name="triangular",
    cls="location-scale",
    construction="eps~Tri(-1,0,1); z = loc + scale*eps",
    log_prob="hand-written: TransformedDistribution(StandardTriangular, Affine(loc, scale))",
):
    """eps ~ Triangular(-1, 0, 1) (drawn as u1 - u2), z = loc + scale eps: symmetric triangular
    on [loc - scale, loc + scale]. q vanishes at the edges, so the score-function estimator is
    unbiased, but its score ~ 1/(distance to an edge) has infinite variance."""

    params = (LOC, SCALE)
    example = {"loc": 0.5, "scale": 1.0}
    score_variance_infinite = True

    def sample_eps(self, shape, generator=None, dtype=torch.float64):
        return uniform(shape, generator, dtype) - uniform(shape, generator, dtype)

    def _dist(self, p):
        loc, scale = torch.broadcast_tensors(p["loc"], p["scale"])
        return D.TransformedDistribution(StandardTriangular(loc.shape), T.AffineTransform(loc, scale), **NV)

    def _scipy(self, p):
        loc, scale = f64(p["loc"]), f64(p["scale"])
        return st.triang(0.5, loc - scale, 2 * scale)


class MultivariateNormal(
    Family,
    name="mvn",
    family="elliptical",
    cls="location-scale",
    multivariate=True,
    log_prob="torch MultivariateNormal",
    kl="torch",
    construction="eps~N(0,I_d); z = loc + L@eps (L: Cholesky factor)",
):
    """Elliptical: eps ~ N(0, I_d), z = loc + L eps, covariance L L^T (L lower Cholesky)."""

    params = (Param("loc", "real", "loc", event_dim=1), Param("scale_tril", "lower_cholesky", "scale", event_dim=2))
    example = {"loc": [0.5, -0.3], "scale_tril": [[1.2, 0.0], [0.6, 0.8]]}
    prior = {"loc": [0.0, 0.0], "scale_tril": [[1.0, 0.0], [0.0, 1.0]]}
    sample_eps = staticmethod(standard_normal)

    def eps_event_shape(self, params):
        return (self.check(params)["loc"].shape[-1],)

    def _rsample(self, p, e):
        return p["loc"] + (p["scale_tril"] @ e.unsqueeze(-1)).squeeze(-1)

    def _dist(self, p):
        return D.MultivariateNormal(p["loc"], scale_tril=p["scale_tril"], **NV)

    def scipy_marginals(self, params):
        p = self.check(params)
        return [st.norm(f64(m), f64(s)) for m, s in zip(p["loc"], _coordinate_scales(p["scale_tril"]))]


class MultivariateStudentTDist(D.Distribution):
    """log q(z) = lgamma((df+d)/2) - lgamma(df/2) - d/2 log(df pi) - log|L|
    - (df+d)/2 log(1 + |L^{-1}(z - loc)|^2 / df)."""

    arg_constraints = {}
    support = constraints.real_vector

    def __init__(self, loc, scale_tril, df):
        self.loc, self.scale_tril, self.df = loc, scale_tril, df
        batch = torch.broadcast_shapes(loc.shape[:-1], scale_tril.shape[:-2], df.shape)
        super().__init__(batch, loc.shape[-1:], validate_args=False)

    def log_prob(self, z):
        d = z.shape[-1]
        y = torch.linalg.solve_triangular(self.scale_tril, (z - self.loc).unsqueeze(-1), upper=False).squeeze(-1)
        half_logdet = self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        nu = self.df
        return (
            torch.lgamma((nu + d) / 2)
            - torch.lgamma(nu / 2)
            - d / 2 * torch.log(nu * math.pi)
            - half_logdet
            - (nu + d) / 2 * torch.log1p(y.square().sum(-1) / nu)
        )


class MultivariateStudentT(
    Family,
    name="mvt",
    family="elliptical",
    cls="location-scale",
    multivariate=True,
    log_prob="hand-written MultivariateStudentTDist",
    construction="eps=(n~N(0,I_d), u~U(0,1)); z = loc + L@n/sqrt(chi2_df(u)/df)",
):
    """Elliptical: eps = (n ~ N(0, I_d), u ~ U(0,1)); z = loc + L n / sqrt(chi2_df(u)/df).
    E|z|^m is finite only for m < df."""

    params = (
        Param("loc", "real", "loc", event_dim=1),
        Param("scale_tril", "lower_cholesky", "scale", event_dim=2),
        Param("df", "positive", "shape"),
    )
    example = {"loc": [0.5, -0.3], "scale_tril": [[1.2, 0.0], [0.6, 0.8]], "df": 5.0}

    def eps_event_shape(self, params):
        return (self.check(params)["loc"].shape[-1] + 1,)

    def sample_eps(self, shape, generator=None, dtype=torch.float64):
        return _normal_and_uniform(shape, generator, dtype)

    def _rsample(self, p, e):
        d = p["loc"].shape[-1]
        check_eps_width(self, e, d + 1)
        n, g = e[..., :d], _chi2(p["df"], e[..., d])
        return p["loc"] + (p["scale_tril"] @ n.unsqueeze(-1)).squeeze(-1) * torch.rsqrt(g / p["df"]).unsqueeze(-1)

    def _dist(self, p):
        return MultivariateStudentTDist(p["loc"], p["scale_tril"], p["df"])

    def scipy_marginals(self, params):
        p = self.check(params)
        return [st.t(f64(p["df"]), f64(m), f64(s)) for m, s in zip(p["loc"], _coordinate_scales(p["scale_tril"]))]

    def tail_index(self, params):
        return f64(self.check(params)["df"])


FAMILIES = (Gaussian, Laplace, LogisticLS, StudentT, Uniform, Triangular, MultivariateNormal, MultivariateStudentT)
