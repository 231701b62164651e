"""SGVB estimators on a linear-Gaussian model whose bound is known in closed form.

Model: p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I); q(z|x) = N(m, diag(v)) with fixed m, v.
ELBO = -D/2 log(2 pi s^2) - (||x - W m - b||^2 + tr(W diag(v) W^T)) / (2 s^2)
       - 1/2 sum(m^2 + v - log v - 1)
"""

import math

import pytest
import torch
from torch import nn

from vaebench.bound import estimate
from vaebench.models import VAE, log_diag_normal

D, NZ, S = 20, 2, 0.7


class FixedEncoder(nn.Module):
    def __init__(self, m, logv):
        super().__init__()
        self.m, self.logv = nn.Parameter(m.clone()), nn.Parameter(logv.clone())

    def forward(self, x):
        return self.m.expand(x.shape[0], -1), self.logv.expand(x.shape[0], -1)

    def log_prob(self, z, mu, logvar):
        return log_diag_normal(z, mu, logvar)


class LinearGaussianDecoder(nn.Module):
    def __init__(self, W, b):
        super().__init__()
        self.W, self.b = nn.Parameter(W.clone()), nn.Parameter(b.clone())

    def log_prob(self, x, z):
        mean = z @ self.W.T + self.b
        return -0.5 * ((x - mean).square() / S**2 + math.log(2 * math.pi * S**2)).sum(-1)


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(D, NZ, generator=g, dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    x = torch.randn(1, D, generator=g, dtype=torch.float64)
    m = torch.tensor([0.3, -0.5], dtype=torch.float64)
    logv = torch.tensor([-0.4, 0.2], dtype=torch.float64)
    model = VAE(FixedEncoder(m, logv), LinearGaussianDecoder(W, b), NZ)
    v = logv.exp()
    recon = -D / 2 * math.log(2 * math.pi * S**2) - ((x[0] - W @ m - b).square().sum() + (W.square() * v).sum()) / (
        2 * S**2
    )
    kl = 0.5 * (m.square() + v - logv - 1).sum()
    return model, x, float(recon - kl)


def _draws(model, x, estimator, n=20000, seed=1):
    g = torch.Generator().manual_seed(seed)
    return estimate(model, x.expand(n, -1), estimator, 1, g).value.detach()


@pytest.mark.parametrize("estimator", ["A", "B"])
def test_estimator_is_unbiased(problem, estimator):
    model, x, exact = problem
    values = _draws(model, x, estimator)
    stderr = values.std() / math.sqrt(values.numel())
    assert abs(values.mean() - exact) < 4 * stderr, (values.mean().item(), exact, stderr.item())


def test_estimator_b_has_lower_variance_than_a(problem):
    model, x, _ = problem
    var_a, var_b = _draws(model, x, "A").var(), _draws(model, x, "B").var()
    assert var_b < var_a, (var_a.item(), var_b.item())


def test_l_samples_average_the_draws(problem):
    model, x, exact = problem
    g = torch.Generator().manual_seed(3)
    values = estimate(model, x.expand(2000, -1), "B", 10, g).value.detach()
    single = _draws(model, x, "B", n=2000)
    assert values.var() < single.var() / 5  # averaging 10 draws divides the variance by ~10
    assert abs(values.mean() - exact) < 4 * values.std() / math.sqrt(2000)


def _encoder_grads(model, x, estimator, n=2000):
    g = torch.Generator().manual_seed(5)
    grads = []
    for _ in range(n):
        model.zero_grad()
        estimate(model, x, estimator, 1, g).surrogate.sum().backward()
        grads.append(model.encoder.m.grad.clone())
    return torch.stack(grads)


def test_score_function_gradient_is_unbiased_with_far_higher_variance(problem):
    model, x, _ = problem
    reparam, score = _encoder_grads(model, x, "B"), _encoder_grads(model, x, "score")
    # the exact gradient of the bound in m: W^T (x - W m - b) / s^2 - m
    W, b, m = model.decoder.W, model.decoder.b, model.encoder.m
    exact = (W.T @ (x[0] - W @ m - b) / S**2 - m).detach()
    for grads in (reparam, score):
        stderr = grads.std(0) / math.sqrt(grads.shape[0])
        assert torch.all((grads.mean(0) - exact).abs() < 4 * stderr), (grads.mean(0), exact)
    ratio = (score.var(0).sum() / reparam.var(0).sum()).item()
    assert ratio > 10, f"score-function / reparameterised gradient variance ratio: {ratio:.1f}"
    print(f"score-function / reparameterised gradient variance ratio: {ratio:.1f}")


def test_unknown_estimator_is_refused(problem):
    model, x, _ = problem
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate(model, x, "C")
