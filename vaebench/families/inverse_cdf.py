"""Tractable inverse CDF: u ~ U(0,1), z = F^{-1}(u; params).

Where torch.distributions has the family its log_prob and KL are used; its own rsample is
not (torch draws Exponential(1) or Cauchy noise for some of these; here every one is the
inverse CDF of a uniform, as in the paper).
"""

from __future__ import annotations

import math

import scipy.stats as st
import torch
import torch.distributions as D
from torch.distributions import transforms as T

from vaebench.families.base import LOC, NV, SCALE, Family, Param, check_eps_width, f64


class Exponential(
    Family,
    name="exponential",
    cls="inverse-cdf",
    log_prob="torch Exponential",
    kl="torch",
    construction="u~U(0,1); z = -log(1-u)/rate",
):
    """F(z) = 1 - exp(-rate z);  F^{-1}(u) = -log(1 - u) / rate."""

    params = (Param("rate", "positive", "scale"),)
    example, prior = {"rate": 1.5}, {"rate": 1.0}

    def _rsample(self, p, u):
        return -torch.log1p(-u) / p["rate"]

    def _dist(self, p):
        return D.Exponential(p["rate"], **NV)

    def _scipy(self, p):
        return st.expon(scale=1 / f64(p["rate"]))


class Cauchy(
    Family,
    name="cauchy",
    cls="inverse-cdf",
    log_prob="torch Cauchy",
    kl="torch",
    construction="u~U(0,1); z = loc + scale*tan(pi*(u-1/2))",
):
    """F(z) = 1/2 + atan((z - loc)/scale)/pi;  F^{-1}(u) = loc + scale tan(pi (u - 1/2)).
    No mean: E|z|^m is finite only for m < 1."""

    params = (LOC, SCALE)
    example, prior = {"loc": 0.5, "scale": 1.2}, {"loc": 0.0, "scale": 1.0}

    def _rsample(self, p, u):
        return p["loc"] + p["scale"] * torch.tan(math.pi * (u - 0.5))

    def _dist(self, p):
        return D.Cauchy(p["loc"], p["scale"], **NV)

    def _scipy(self, p):
        return st.cauchy(f64(p["loc"]), f64(p["scale"]))

    def tail_index(self, params):
        return 1.0


class LogisticLaw(Family, log_prob="torch TransformedDistribution(Uniform, [Sigmoid^-1, Affine])"):
    """What the entries with the law Logistic(loc, scale) share (logistic here, logistic-ls in
    location_scale): parameters, log_prob and scipy. Subclasses write the construction."""

    params = (LOC, SCALE)
    example = {"loc": 0.5, "scale": 0.8}

    def _dist(self, p):
        """torch's TransformedDistribution: logit of a uniform, then loc + scale x."""
        loc, scale = torch.broadcast_tensors(p["loc"], p["scale"])
        base = D.Uniform(torch.zeros_like(loc), torch.ones_like(loc), **NV)
        return D.TransformedDistribution(base, [T.SigmoidTransform().inv, T.AffineTransform(loc, scale)], **NV)

    def _scipy(self, p):
        return st.logistic(f64(p["loc"]), f64(p["scale"]))


class Logistic(LogisticLaw, name="logistic", cls="inverse-cdf", construction="u~U(0,1); z = loc + scale*log(u/(1-u))"):
    """F(z) = 1/(1 + exp(-(z - loc)/scale));  F^{-1}(u) = loc + scale log(u/(1-u))."""

    def _rsample(self, p, u):
        return p["loc"] + p["scale"] * (torch.log(u) - torch.log1p(-u))


class Rayleigh(
    Family,
    name="rayleigh",
    cls="inverse-cdf",
    kl="hand-written",
    construction="u~U(0,1); z = scale*sqrt(-2*log(1-u))",
    log_prob="hand-written: TransformedDistribution(Exponential(1/2), [Power(1/2), Affine(0, scale)])",
):
    """F(z) = 1 - exp(-z^2/(2 scale^2));  F^{-1}(u) = scale sqrt(-2 log(1-u)).
    KL(R(s1) || R(s2)) = 2 log(s2/s1) + s1^2/s2^2 - 1."""

    params = (Param("scale", "positive", "scale"),)
    example, prior = {"scale": 1.3}, {"scale": 1.0}

    def _rsample(self, p, u):
        return p["scale"] * torch.sqrt(-2 * torch.log1p(-u))

    def _dist(self, p):
        s = p["scale"]
        base = D.Exponential(torch.full_like(s, 0.5), **NV)  # E with mean 2: sqrt(E) ~ Rayleigh(1)
        return D.TransformedDistribution(
            base, [T.PowerTransform(torch.tensor(0.5, dtype=s.dtype)), T.AffineTransform(0.0, s)], **NV
        )

    def _scipy(self, p):
        return st.rayleigh(scale=f64(p["scale"]))

    def _kl(self, p, q):
        s1, s2 = p["scale"], q["scale"]
        return 2 * torch.log(s2 / s1) + (s1 / s2) ** 2 - 1


class Pareto(
    Family,
    name="pareto",
    cls="inverse-cdf",
    log_prob="torch Pareto",
    kl="torch",
    construction="u~U(0,1); z = scale*(1-u)^(-1/alpha)",
):
    """F(z) = 1 - (scale/z)^alpha on z >= scale;  F^{-1}(u) = scale (1-u)^(-1/alpha).
    E z^m is finite only for m < alpha; the support moves with scale."""

    params = (Param("scale", "positive", "scale", moves_support=True), Param("alpha", "positive", "shape"))
    example, prior = {"scale": 1.5, "alpha": 3.0}, {"scale": 1.0, "alpha": 2.0}

    def _rsample(self, p, u):
        return p["scale"] * torch.exp(-torch.log1p(-u) / p["alpha"])

    def _dist(self, p):
        return D.Pareto(p["scale"], p["alpha"], **NV)

    def _scipy(self, p):
        return st.pareto(f64(p["alpha"]), scale=f64(p["scale"]))

    def tail_index(self, params):
        return f64(self.check(params)["alpha"])


class Weibull(
    Family,
    name="weibull",
    cls="inverse-cdf",
    log_prob="torch Weibull",
    kl="hand-written",
    construction="u~U(0,1); z = scale*(-log(1-u))^(1/concentration)",
):
    """F(z) = 1 - exp(-(z/scale)^k);  F^{-1}(u) = scale (-log(1-u))^(1/k).
    KL(W(k1,l1) || W(k2,l2)) = log(k1/l1^k1) - log(k2/l2^k2) + (k1 - k2)(log l1 - gamma_E/k1)
    + (l1/l2)^k2 Gamma(k2/k1 + 1) - 1  (Bauckhage 2013)."""

    params = (Param("scale", "positive", "scale"), Param("concentration", "positive", "shape"))
    example, prior = {"scale": 1.5, "concentration": 1.8}, {"scale": 1.0, "concentration": 1.0}

    def _rsample(self, p, u):
        return p["scale"] * (-torch.log1p(-u)) ** (1 / p["concentration"])

    def _dist(self, p):
        return D.Weibull(p["scale"], p["concentration"], **NV)

    def _scipy(self, p):
        return st.weibull_min(f64(p["concentration"]), scale=f64(p["scale"]))

    def _kl(self, p, q):
        k1, l1, k2, l2 = p["concentration"], p["scale"], q["concentration"], q["scale"]
        euler = 0.5772156649015329
        return (
            torch.log(k1)
            - k1 * torch.log(l1)
            - torch.log(k2)
            + k2 * torch.log(l2)
            + (k1 - k2) * (torch.log(l1) - euler / k1)
            + torch.exp(k2 * (torch.log(l1) - torch.log(l2)) + torch.lgamma(k2 / k1 + 1))
            - 1
        )


class Reciprocal(
    Family,
    name="reciprocal",
    cls="inverse-cdf",
    kl="hand-written",
    construction="u~U(0,1); z = low*(high/low)^u",
    log_prob="hand-written: TransformedDistribution(Uniform(log low, log high), Exp)",
):
    """Log-uniform on [low, high]: q(z) = 1/(z log(high/low)); F^{-1}(u) = low (high/low)^u.
    KL(R(a1,b1) || R(a2,b2)) = log(log(b2/a2) / log(b1/a1)) when [a1,b1] is inside [a2,b2]
    (else inf). Both parameters move the support."""

    params = (
        Param("low", "positive", "scale", moves_support=True),
        Param("high", "greater_than_low", "scale", moves_support=True),
    )
    example, prior = {"low": 0.5, "high": 4.0}, {"low": 0.1, "high": 20.0}

    def _rsample(self, p, u):
        a, b = p["low"], p["high"]
        return torch.exp(torch.log(a) + u * (torch.log(b) - torch.log(a)))

    def _dist(self, p):
        return D.TransformedDistribution(
            D.Uniform(torch.log(p["low"]), torch.log(p["high"]), **NV), T.ExpTransform(), **NV
        )

    def _scipy(self, p):
        return st.loguniform(f64(p["low"]), f64(p["high"]))

    def _kl(self, p, q):
        (a1, b1), (a2, b2) = (p["low"], p["high"]), (q["low"], q["high"])
        kl = torch.log(torch.log(b2 / a2) / torch.log(b1 / a1))
        return torch.where((a1 >= a2) & (b1 <= b2), kl, torch.full_like(kl, math.inf))


class Gompertz(
    Family,
    name="gompertz",
    cls="inverse-cdf",
    construction="u~U(0,1); z = log(1 - log(1-u)/eta)/b",
    log_prob="hand-written: TransformedDistribution(Exponential(eta), [Affine(1,1), Log, Affine(0,1/b)])",
):
    """F(z) = 1 - exp(-eta (exp(b z) - 1)) on z >= 0;  F^{-1}(u) = log(1 - log(1-u)/eta) / b."""

    params = (Param("eta", "positive", "shape"), Param("b", "positive", "scale"))
    example = {"eta": 0.7, "b": 1.5}

    def _rsample(self, p, u):
        return torch.log1p(-torch.log1p(-u) / p["eta"]) / p["b"]

    def _dist(self, p):
        eta, b = torch.broadcast_tensors(p["eta"], p["b"])
        return D.TransformedDistribution(
            D.Exponential(eta, **NV),
            [T.AffineTransform(1.0, 1.0), T.ExpTransform().inv, T.AffineTransform(0.0, 1 / b)],
            **NV,
        )

    def _scipy(self, p):
        return st.gompertz(f64(p["eta"]), scale=1 / f64(p["b"]))


class Gumbel(
    Family,
    name="gumbel",
    cls="inverse-cdf",
    log_prob="torch Gumbel",
    kl="torch",
    construction="u~U(0,1); z = loc - scale*log(-log(u))",
):
    """F(z) = exp(-exp(-(z - loc)/scale));  F^{-1}(u) = loc - scale log(-log u)."""

    params = (LOC, SCALE)
    example, prior = {"loc": 0.5, "scale": 1.2}, {"loc": 0.0, "scale": 1.0}

    def _rsample(self, p, u):
        return p["loc"] - p["scale"] * torch.log(-torch.log(u))

    def _dist(self, p):
        return D.Gumbel(p["loc"], p["scale"], **NV)

    def _scipy(self, p):
        return st.gumbel_r(f64(p["loc"]), f64(p["scale"]))


class GammaLaw(Family, log_prob="torch Gamma", kl="torch"):
    """What the entries with the law Gamma(shape, rate) share (erlang here; gamma and
    gamma-implicit in composition): log_prob, KL and scipy. Subclasses write the construction."""

    def _dist(self, p):
        return D.Gamma(p["shape"], p["rate"], **NV)

    def _scipy(self, p):
        return st.gamma(f64(p["shape"]), scale=1 / f64(p["rate"]))


class IntegerShapeGamma(GammaLaw):
    """Gamma with a fixed integer shape k, drawn from k uniforms (eps has a last dimension of
    k): the erlang and gamma entries."""

    params = (Param("shape", "positive_integer", "fixed"), Param("rate", "positive", "scale"))
    example, prior = {"shape": 3, "rate": 2.0}, {"shape": 1, "rate": 1.0}

    def eps_event_shape(self, params):
        return (int(self.check(params)["shape"]),)


class Erlang(
    IntegerShapeGamma, name="erlang", cls="inverse-cdf", construction="u_1..u_k~U(0,1); z = -log(prod_i (1-u_i))/rate"
):
    """Gamma with integer shape k: a sum of k exponentials, each by its inverse CDF,
    z = sum_i -log(1 - u_i)/rate = -log(prod_i (1 - u_i))/rate. (The same law as the
    ``gamma`` entry; the paper lists Erlang under inverse CDF and gamma under composition.)"""

    def _rsample(self, p, u):
        check_eps_width(self, u, int(p["shape"]))
        return -torch.log1p(-u).sum(-1) / p["rate"]


FAMILIES = (Exponential, Cauchy, Logistic, Rayleigh, Pareto, Weibull, Reciprocal, Gompertz, Gumbel, Erlang)
