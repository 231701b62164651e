"""Sampling the clean image's posterior p(c|y) under a trained VAE as the prior, for a
corruption model y|c of vaebench.uses.corruption.

Both samplers keep one chain per image, its state a pair (z, c) of a latent value and a
complete clean image, batched over images as tensor operations.

Metropolis-within-Gibbs (``mwg``; Mattei and Frellsen, 2018), targeting p(z, c|y):
    1. propose z' ~ q(z|c), the encoder on the current complete image, and accept it with
       probability min(1, [p(z') p(c|z') q(z|c)] / [p(z) p(c|z) q(z'|c)]): a Metropolis-Hastings
       step that leaves p(z|c) = p(z|c, y) invariant (given c, z does not depend on y);
    2. draw c ~ p(c|y, z) exactly (the corruption model's closed form).
    The chain leaves p(z, c|y) invariant, so it is asymptotically exact for any encoder whose
    support covers the posterior's.

Pseudo-Gibbs (``pseudo-gibbs``; Rezende et al., 2014): the same with every proposal accepted,
i.e. z ~ q(z|c), c ~ p(c|y, z). Exact only if q(z|c) were the true posterior.

HMC (``hmc``, ours: a reference that needs no encoder): Hybrid Monte Carlo on p(z|y) itself,
p(z|y) ∝ p(z) p(y|z) with c integrated out in closed form (every corruption model gives
p(y|z)); the sampler of the appendix D estimator (vaebench.marginal.estimators.hmc_sample: 4 leapfrog
steps, one step size per chain adapted during burn-in towards 90% acceptance, then frozen).
Asymptotically exact, and it mixes where the encoder is a poor proposal.

Quadrature (``grid``, for N_z = 2 only): p(z|y) on an evenly spaced ``grid_points`` x
``grid_points`` grid over [-``grid_span``, ``grid_span``]^2, each node weighted by
p(z) p(y|z): exact up to the grid's resolution; the reference the samplers are judged by on the
models of Figure 4.

Start (all three samplers): the best, by log p(z) + log p(y|z), of ``n_prior`` draws from p(z) and (with
an encoder) the encoder's mean on the observation filled in with the background (the data
set's mean image); the Gibbs chains then draw c ~ p(c|y, z). After ``burn_in`` transitions,
each of ``samples`` transitions
contributes, Rao-Blackwellised over c given z: the posterior mean image
E[c|y] ~ (1/S) sum_s E[c|y, z_s], the variance (1/S) sum_s Var[c|y, z_s] + the variance of
E[c|y, z_s] over s, and the predictive log-likelihood of given hidden values
log p(c_hidden|y) ~ log (1/S) sum_s p(c_hidden|y, z_s). ``keep`` images E[c|y, z_s] at evenly
spaced s are kept as the posterior's samples for figures.

Baselines: ``mean-image`` (the data set's mean image as a prior with independent pixels: each
hidden pixel Bernoulli with the mean intensity, or Gaussian with the training mean and variance;
for inpainting this fills the mean image in) and ``encoder-decoder`` (one pass: z = the
encoder's mean on the observation filled with zeros, p(c|y, z) at that z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaebench import ops
from vaebench.gaussian import log_standard_normal
from vaebench.marginal import estimators as marginal
from vaebench.uses.pixels import PixelDist

METHODS = ("mwg", "pseudo-gibbs", "hmc")
ENCODER_METHODS = ("mwg", "pseudo-gibbs", "encoder-decoder")
BASELINES = ("mean-image", "encoder-decoder")
EXACT = ("grid",)
GRID_POINTS, GRID_SPAN = 121, 4.5
ALL_METHODS = (*METHODS, *EXACT, *BASELINES)


@dataclass
class Posterior:
    """What a method says about the clean images of a batch: E[c|y] and Var[c_i|y] (n, D),
    log p(c_hidden = truth|y) (n,), kept sample images (keep, n, D), acceptance rate (n,)."""

    mean: torch.Tensor
    var: torch.Tensor
    log_pred: torch.Tensor
    kept: torch.Tensor | None = None
    accept: torch.Tensor | None = None


def _encode(model, c):
    mu, logvar = model.encoder(c)
    return mu, ops.clamp_logvar(logvar)


class _Summary:
    """Running Rao-Blackwellised summaries of a chain's states (see the module docstring)."""

    def __init__(self, corruption, y, truth, samples: int, keep: int):
        self.corruption, self.y, self.truth = corruption, y, truth
        n, dtype, device = truth.shape[0], truth.dtype, truth.device
        self.sum_m = torch.zeros(n, corruption.D, dtype=dtype, device=device)
        self.sum_m2, self.sum_v = torch.zeros_like(self.sum_m), torch.zeros_like(self.sum_m)
        self.log_acc = torch.full((n,), -math.inf, dtype=dtype, device=device)
        self.count = 0
        self.keep_at = {int(round(i)) for i in torch.linspace(0, samples - 1, keep).tolist()} if keep else set()
        self.kept = []

    def add(self, dist: PixelDist) -> None:
        c = self.corruption
        m = c.clean_mean(self.y, dist)
        self.sum_m += m
        self.sum_m2 += m.square()
        self.sum_v += c.clean_var(self.y, dist)
        self.log_acc = torch.logaddexp(self.log_acc, c.log_clean(self.truth, self.y, dist))
        if self.count in self.keep_at:
            self.kept.append(m)
        self.count += 1

    def result(self, accept: torch.Tensor) -> Posterior:
        S = self.count
        mean = self.sum_m / S
        var = (self.sum_v / S + self.sum_m2 / S - mean.square()).clamp_min(0)
        return Posterior(mean, var, self.log_acc - math.log(S), torch.stack(self.kept) if self.kept else None, accept)


def log_posterior_z(model, corruption, y, z) -> torch.Tensor:
    """log p(z) + log p(y|z) per chain (differentiable in z)."""
    return log_standard_normal(z) + corruption.log_evidence(y, PixelDist.of(model, z))


@torch.no_grad()
def initial_z(model, corruption, y, background=None, *, n_prior: int = 100, generator=None) -> torch.Tensor:
    """The chains' start (see the module docstring)."""
    param = next(model.decoder.parameters())
    n = y.shape[0]
    cands = torch.randn((n_prior, n, model.nz), generator=generator, dtype=param.dtype, device=param.device)
    if getattr(model, "encoder", None) is not None:
        cands = torch.cat([_encode(model, corruption.fill(y, background))[0].unsqueeze(0), cands])
    lp = torch.cat([log_posterior_z(model, corruption, y, c) for c in cands.split(10)])
    return cands[lp.argmax(0), torch.arange(n, device=param.device)]


@torch.no_grad()
def sample_posterior(
    model,
    corruption,
    y: torch.Tensor,
    truth: torch.Tensor,
    *,
    method: str = "mwg",
    burn_in: int = 100,
    samples: int = 100,
    background: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    keep: int = 2,
    n_prior: int = 100,
    leapfrog: int = 4,
) -> Posterior:
    """Run one chain per image (rows of ``y``) and summarise its last ``samples`` states."""
    if method not in METHODS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {', '.join(METHODS)}")
    if samples < 1 or burn_in < 0:
        raise ValueError("samples must be >= 1 and burn_in >= 0")
    n = y.shape[0]
    dtype, device = truth.dtype, truth.device
    z = initial_z(model, corruption, y, background, n_prior=n_prior, generator=generator)
    summary = _Summary(corruption, y, truth, samples, keep)
    if method == "hmc":
        zs, _, acc = marginal.hmc_sample(
            lambda yy, zz: log_posterior_z(model, corruption, yy, zz),
            y,
            z,
            n_samples=samples,
            n_leapfrog=leapfrog,
            burn_in=burn_in,
            thin=1,
            generator=generator,
        )
        for zz in zs:
            summary.add(PixelDist.of(model, zz))
        return summary.result(acc)
    dist = PixelDist.of(model, z)
    c = corruption.clean_sample(y, dist, generator)
    accepted = torch.zeros(n, dtype=dtype, device=device)
    for t in range(burn_in + samples):
        mu, lv = _encode(model, c)
        eps = torch.randn(mu.shape, generator=generator, dtype=dtype, device=device)
        z_new = ops.reparameterize(mu, lv, eps)
        dist_new = PixelDist.of(model, z_new)
        if method == "mwg":
            log_new = log_standard_normal(z_new) + dist_new.log_prob_rows(c) - model.encoder.log_prob(z_new, mu, lv)
            log_old = log_standard_normal(z) + dist.log_prob_rows(c) - model.encoder.log_prob(z, mu, lv)
            log_a = (log_new - log_old).clamp(max=0.0)
            log_a = torch.where(torch.isnan(log_a), torch.full_like(log_a, -math.inf), log_a)
            u = torch.rand(n, generator=generator, dtype=dtype, device=device)
            acc = torch.log(u) < log_a
            z = torch.where(acc.unsqueeze(-1), z_new, z)
            dist = dist.where(acc, dist_new)
        else:
            acc = torch.ones(n, dtype=torch.bool, device=device)
            z, dist = z_new, dist_new
        c = corruption.clean_sample(y, dist, generator)
        if t >= burn_in:
            accepted += acc.to(dtype)
            summary.add(dist)
    return summary.result(accepted / samples)


@torch.no_grad()
def grid_posterior(
    model,
    corruption,
    y: torch.Tensor,
    truth: torch.Tensor,
    *,
    points: int = GRID_POINTS,
    span: float = GRID_SPAN,
    chunk: int = 64,
) -> Posterior:
    """The posterior of c given y with p(z|y) by quadrature on a grid (N_z = 2 only)."""
    if model.nz != 2:
        raise ValueError(f"quadrature over z needs N_z = 2, the model has N_z = {model.nz}")
    param = next(model.decoder.parameters())
    g = torch.linspace(-span, span, points, dtype=param.dtype, device=param.device)
    nodes = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    n = y.shape[0]
    log_w, log_c = [], []
    for zc in nodes.split(chunk):
        dist = PixelDist.of(model, zc[:, None, :])  # (chunk, 1, D): broadcast over the images
        log_w.append(log_standard_normal(zc)[:, None] + corruption.log_evidence(y, dist))
        log_c.append(corruption.log_clean(truth, y, dist))
    log_w = torch.cat(log_w)
    w = torch.softmax(log_w, 0)  # (G, n)
    log_pred = torch.logsumexp(torch.log(w) + torch.cat(log_c), 0)
    mean = torch.zeros(n, corruption.D, dtype=truth.dtype, device=truth.device)
    second = torch.zeros_like(mean)
    for wc, zc in zip(w.split(chunk), nodes.split(chunk)):
        dist = PixelDist.of(model, zc[:, None, :])
        m = corruption.clean_mean(y, dist)
        mean += (wc[..., None] * m).sum(0)
        second += (wc[..., None] * (corruption.clean_var(y, dist) + m.square())).sum(0)
    return Posterior(mean, (second - mean.square()).clamp_min(0), log_pred)


@torch.no_grad()
def single(corruption, y: torch.Tensor, truth: torch.Tensor, dist: PixelDist) -> Posterior:
    """The posterior of c given y for one fixed p(c|z) (a baseline)."""
    return Posterior(
        corruption.clean_mean(y, dist), corruption.clean_var(y, dist), corruption.log_clean(truth, y, dist)
    )


def mean_image_prior(data, likelihood: str) -> PixelDist:
    """The data set's mean image (training split) as independent pixels: Bernoulli with the
    Laplace-smoothed mean intensity, or Gaussian with each pixel's mean and variance (floor 1e-4)."""
    x = data.train
    if likelihood == "bernoulli":
        return PixelDist.constant("bernoulli", (x.sum(0) + 1) / (x.shape[0] + 2))
    return PixelDist.constant("gaussian", x.mean(0), x.var(0).clamp_min(1e-4))


@torch.no_grad()
def encoder_decoder(model, corruption, y, truth) -> Posterior:
    """One pass: z = the encoder's mean on the zero-filled observation; p(c|y, z) there."""
    z, _ = _encode(model, corruption.fill(y, None))
    return single(corruption, y, truth, PixelDist.of(model, z))


@torch.no_grad()
def mean_image(prior: PixelDist, corruption, y, truth) -> Posterior:
    n = y.shape[0]
    dist = PixelDist(prior.kind, prior.loc.expand(n, -1), None if prior.logvar is None else prior.logvar.expand(n, -1))
    return single(corruption, y, truth, dist)
