"""The marginal-likelihood estimators and MCEM against exact answers.

- linear-Gaussian model p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I): log p(x) = log N(x; b, WW^T + s^2 I)
  and the posterior N(mu, Sigma) in closed form;
- a 1-D latent Bernoulli decoder: log p(x) by quadrature on a fine grid.
"""

import copy
import math

import pytest
import torch
from torch import nn

from vaebench.algorithms.mcem import MCEM
from vaebench.hmc import HMCState, hmc_transition
from vaebench.marginal.estimators import (
    fit_gaussian,
    gaussian_log_density,
    hmc_log_marginal,
    hmc_sample,
    importance_log_marginal,
)
from vaebench.models import build_model, log_standard_normal

DT = torch.float64


class LinearGaussianDecoder(nn.Module):
    def __init__(self, W, b, s):
        super().__init__()
        self.W = nn.Parameter(W.clone())
        self.b = nn.Parameter(b.clone())
        self.s = float(s)

    def log_prob(self, x, z):
        mean = z @ self.W.T + self.b
        return -0.5 * (((x - mean) / self.s).square() + math.log(2 * math.pi * self.s**2)).sum(-1)


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I); exact marginal and posterior."""

    def __init__(self, W, b, s):
        super().__init__()
        self.decoder = LinearGaussianDecoder(W, b, s)
        self.encoder = None
        self.nz = W.shape[1]

    def log_prior(self, z):
        return log_standard_normal(z)

    def log_joint(self, x, z):
        return self.log_prior(z) + self.decoder.log_prob(x, z)

    @torch.no_grad()
    def exact_log_marginal(self, x):
        W, b, s = self.decoder.W, self.decoder.b, self.decoder.s
        cov = W @ W.T + s**2 * torch.eye(W.shape[0], dtype=W.dtype)
        return torch.distributions.MultivariateNormal(b, covariance_matrix=cov).log_prob(x)

    @torch.no_grad()
    def posterior(self, x):
        W, b, s = self.decoder.W, self.decoder.b, self.decoder.s
        prec = torch.eye(self.nz, dtype=W.dtype) + W.T @ W / s**2
        cov = torch.linalg.inv(prec)
        mean = (x - b) @ W @ cov / s**2  # cov symmetric
        return mean, cov


class ExactPosteriorEncoder(nn.Module):
    """q(z|x): the exact posterior mean with the posterior's marginal variances times ``inflate``."""

    def __init__(self, model, inflate=2.0):
        super().__init__()
        self.model = [model]  # not a submodule
        self.inflate = inflate

    def forward(self, x):
        mean, cov = self.model[0].posterior(x)
        logvar = torch.log(self.inflate * cov.diagonal()).expand_as(mean)
        return mean, logvar

    def log_prob(self, z, mu, logvar):
        return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).square() * torch.exp(-logvar)).sum(-1)


def linear_gaussian(D=6, nz=2, s=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D, nz, generator=g, dtype=DT)
    b = 0.5 * torch.randn(D, generator=g, dtype=DT)
    return LinearGaussian(W, b, s)


def sample_x(model, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    dec = model.decoder
    z = torch.randn(n, model.nz, generator=g, dtype=DT)
    with torch.no_grad():
        return z @ dec.W.T + dec.b + dec.s * torch.randn(n, dec.W.shape[0], generator=g, dtype=DT)


def test_gaussian_density_fit_recovers_a_gaussian():
    g = torch.Generator().manual_seed(0)
    A = torch.tensor([[1.0, 0.0], [0.8, 0.5]], dtype=DT)
    z = torch.randn(4000, 1, 2, generator=g, dtype=DT) @ A.T + torch.tensor([1.0, -2.0], dtype=DT)
    mean, chol = fit_gaussian(z)
    assert torch.allclose(mean[0], torch.tensor([1.0, -2.0], dtype=DT), atol=0.06)
    assert torch.allclose(chol[0] @ chol[0].T, A @ A.T, atol=0.08)
    ref = torch.distributions.MultivariateNormal(mean[0], scale_tril=chol[0]).log_prob(z[:5, 0])
    assert torch.allclose(gaussian_log_density(z[:5], mean, chol)[:, 0], ref, atol=1e-10)


def test_hmc_leaves_the_exact_posterior_invariant():
    """Chains started at exact posterior draws stay distributed as the posterior."""
    model = linear_gaussian()
    x = sample_x(model, 1)
    mean, cov = model.posterior(x)
    n = 4000
    g = torch.Generator().manual_seed(2)
    chol = torch.linalg.cholesky(cov)
    z0 = mean + torch.randn(n, 2, generator=g, dtype=DT) @ chol.T
    xs = x.expand(n, -1)
    state = HMCState.start(model.log_joint, xs, z0)
    step = torch.full((n,), 0.6 * float(cov.diagonal().sqrt().min()), dtype=DT)
    acc_total = 0.0
    for _ in range(15):
        state, acc = hmc_transition(model.log_joint, xs, state, step, 4, g)
        acc_total += float(acc.mean())
    z = state.z
    assert 0.3 < acc_total / 15 < 0.999  # a real Metropolis test, moves accepted and rejected
    assert (z - z0).abs().mean() > 0.1 * cov.diagonal().sqrt().min()  # the chains moved
    se = (cov.diagonal() / n).sqrt()
    assert ((z.mean(0) - mean[0]).abs() < 4.5 * se).all(), (z.mean(0), mean)
    emp = torch.cov(z.T)
    assert torch.allclose(emp, cov, atol=0.08 * float(cov.diagonal().max())), (emp, cov)


def test_hmc_sampler_with_adaptation_reaches_the_posterior_from_far_away():
    model = linear_gaussian(seed=3)
    x = sample_x(model, 1, seed=4)
    mean, cov = model.posterior(x)
    n = 500
    g = torch.Generator().manual_seed(5)
    zs, step, acc = hmc_sample(
        model.log_joint,
        x.expand(n, -1),
        torch.full((n, 2), 4.0, dtype=DT),
        n_samples=20,
        n_leapfrog=4,
        burn_in=100,
        thin=2,
        target_accept=0.9,
        generator=g,
    )
    assert 0.8 < float(acc.mean()) < 0.97
    z = zs.reshape(-1, 2)
    assert torch.allclose(z.mean(0), mean[0], atol=0.08 * float(cov.diagonal().sqrt().max()) + 0.02)
    assert torch.allclose(torch.cov(z.T), cov, atol=0.1 * float(cov.diagonal().max()))


def test_hmc_estimator_matches_the_closed_form_marginal():
    model = linear_gaussian()
    x = sample_x(model, 200)
    exact = model.exact_log_marginal(x)
    est = hmc_log_marginal(
        model, x, samples=50, n_leapfrog=4, burn_in=100, thin=2, generator=torch.Generator().manual_seed(6)
    )
    assert est.log_px.shape == (200,) and torch.isfinite(est.log_px).all()
    err = est.log_px - exact
    assert abs(est.mean - float(exact.mean())) < 4 * est.mean_stderr + 0.01, (est.mean, float(exact.mean()))
    assert float((err.abs() < 4 * est.stderr + 0.02).double().mean()) > 0.95
    assert 0.8 < est.info["mean_accept"] < 0.97


def test_importance_estimator_matches_the_closed_form_marginal():
    model = linear_gaussian()
    model.encoder = ExactPosteriorEncoder(model, inflate=3.0)
    x = sample_x(model, 200)
    exact = model.exact_log_marginal(x)
    est = importance_log_marginal(
        model, x, k=1000, generator=torch.Generator().manual_seed(7), max_elements=20_000
    )  # forces batching over points and samples
    assert abs(est.mean - float(exact.mean())) < 4 * est.mean_stderr + 0.005, (est.mean, float(exact.mean()))
    assert float(((est.log_px - exact).abs() < 4 * est.stderr + 0.01).double().mean()) > 0.95
    hmc = hmc_log_marginal(model, x, burn_in=100, generator=torch.Generator().manual_seed(8))
    assert abs(hmc.mean - est.mean) < 4 * math.hypot(hmc.mean_stderr, est.mean_stderr) + 0.01


# ---- 1-D latent Bernoulli decoder, marginal by quadrature ------------------------------------

GRID = torch.linspace(-10.0, 10.0, 8001, dtype=DT)


def quadrature_log_joint(model, x):
    """log p(x, z) on GRID for every row of x: (n, G)."""
    with torch.no_grad():
        return model.log_joint(x.unsqueeze(1), GRID[None, :, None].expand(x.shape[0], -1, 1))


class QuadratureEncoder(nn.Module):
    """q(z|x): the posterior's mean and variance by quadrature, the variance times ``inflate``."""

    def __init__(self, model, inflate=2.0):
        super().__init__()
        self.model = [model]
        self.inflate = inflate

    def forward(self, x):
        w = torch.softmax(quadrature_log_joint(self.model[0], x), dim=-1)
        mean = (w * GRID).sum(-1, keepdim=True)
        var = (w * (GRID - mean).square()).sum(-1, keepdim=True)
        return mean, torch.log(self.inflate * var)

    def log_prob(self, z, mu, logvar):
        return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).square() * torch.exp(-logvar)).sum(-1)


@pytest.fixture(scope="module")
def bernoulli_1d():
    g = torch.Generator().manual_seed(10)
    model = build_model(16, 1, 8, "bernoulli", encoder=False, init_std=0.8, generator=g).to(DT)
    with torch.no_grad():
        z = torch.randn(100, 1, generator=g, dtype=DT)
        x = model.decoder.sample(z, generator=g)
    dz = float(GRID[1] - GRID[0])
    exact = torch.logsumexp(quadrature_log_joint(model, x), dim=-1) + math.log(dz)
    return model, x, exact


def test_hmc_estimator_matches_quadrature_on_a_bernoulli_decoder(bernoulli_1d):
    model, x, exact = bernoulli_1d
    est = hmc_log_marginal(model, x, generator=torch.Generator().manual_seed(11))
    assert abs(est.mean - float(exact.mean())) < 4 * est.mean_stderr + 0.02, (est.mean, float(exact.mean()))
    assert float(((est.log_px - exact).abs() < 4 * est.stderr + 0.05).double().mean()) > 0.9


def test_importance_estimator_matches_quadrature_on_a_bernoulli_decoder(bernoulli_1d):
    model, x, exact = bernoulli_1d
    model = copy.copy(model)
    model.encoder = QuadratureEncoder(model)
    est = importance_log_marginal(model, x, k=1000, generator=torch.Generator().manual_seed(12))
    assert abs(est.mean - float(exact.mean())) < 4 * est.mean_stderr + 0.01, (est.mean, float(exact.mean()))
    assert float(((est.log_px - exact).abs() < 4 * est.stderr + 0.02).double().mean()) > 0.95


def test_importance_needs_an_encoder(bernoulli_1d):
    with pytest.raises(ValueError, match="encoder"):
        importance_log_marginal(bernoulli_1d[0], bernoulli_1d[1])


# ---- Monte Carlo EM ----------------------------------------------------------------------------


def _mcem_setup(n=200, seed=20):
    truth = linear_gaussian(D=6, nz=2, s=0.5, seed=seed)
    x = sample_x(truth, n, seed=seed + 1)
    g = torch.Generator().manual_seed(seed + 2)
    start = LinearGaussian(0.1 * torch.randn(6, 2, generator=g, dtype=DT), torch.zeros(6, dtype=DT), 0.5)
    return start, x


def test_mcem_increases_the_exact_marginal_likelihood():
    model, x = _mcem_setup()
    before = float(model.exact_log_marginal(x).mean())
    alg = MCEM(model, lr=0.1, n_train=x.shape[0])
    gen, data_gen = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    values = []
    for _epoch in range(15):
        perm = torch.randperm(x.shape[0], generator=data_gen)
        for idx in perm.split(50):
            values.append(alg.step(x[idx], gen, indices=idx))
    after = float(model.exact_log_marginal(x).mean())
    assert all(math.isfinite(v) for v in values)
    assert after > before + 1.0, (before, after)
    assert alg.chains.shape == (200, 2) and 0.6 < alg.last_accept <= 1.0


def test_mcem_needs_indices_and_resumes_exactly():
    model, x = _mcem_setup(n=100)
    alg = MCEM(model, lr=0.05, n_train=100, leapfrog=3)
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="indices"):
        alg.step(x[:10], gen)
    idx = torch.arange(0, 20)
    alg.step(x[idx], gen, indices=idx)
    saved_model, saved_alg = copy.deepcopy(model.state_dict()), copy.deepcopy(alg.state_dict())
    saved_gen = gen.get_state()
    a = [alg.step(x[idx + 20 * k], gen, indices=idx + 20 * k) for k in range(1, 4)]

    model2, _ = _mcem_setup(n=100)
    model2.load_state_dict(saved_model)
    alg2 = MCEM(model2, lr=0.05, n_train=100, leapfrog=3)
    alg2.load_state_dict(saved_alg)
    gen2 = torch.Generator()
    gen2.set_state(saved_gen)
    b = [alg2.step(x[idx + 20 * k], gen2, indices=idx + 20 * k) for k in range(1, 4)]
    assert a == b
    assert torch.equal(alg.chains, alg2.chains) and torch.equal(alg.log_step, alg2.log_step)
