"""The corruption models of vaebench.uses.corruption against direct simulation: the observation
model, the likelihood of z p(y|z), and the clean image's posterior p(c|y, z)."""

import itertools
import math

import numpy as np
import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.uses.corruption import BlockAverage, FlipNoise, GaussianNoise, Inpaint, make_corruption, parse_mask
from vaebench.uses.pixels import PixelDist

N_SIM = 200_000


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _dist(kind, n=3, D=4, seed=0):
    g = _gen(seed)
    if kind == "bernoulli":
        return PixelDist("bernoulli", 2.0 * torch.randn(n, D, generator=g, dtype=torch.float64))
    return PixelDist(
        "gaussian",
        0.5 + 0.2 * torch.randn(n, D, generator=g, dtype=torch.float64),
        torch.log(0.01 + 0.05 * torch.rand(n, D, generator=g, dtype=torch.float64)),
    )


def _noisy_models(kind):
    if kind == "bernoulli":
        return [
            FlipNoise("bernoulli", (2, 2), 0.2),
            BlockAverage("bernoulli", (2, 2), 2, 0.1),
            BlockAverage("bernoulli", (2, 4), 2, 0.05),
        ]
    return [
        GaussianNoise("gaussian", (2, 2), 0.15),
        BlockAverage("gaussian", (2, 2), 2, 0.05),
        BlockAverage("gaussian", (2, 4), 2, 0.1),
    ]


# ---- the observation models, simulated -------------------------------------------------------


def test_flip_noise_flips_with_probability_rho():
    corr = FlipNoise("bernoulli", (28, 28), 0.15)
    x = torch.full((200, 784), 0.3, dtype=torch.float64)
    y, b = corr.corrupt(x, _gen())
    assert set(b.unique().tolist()) <= {0.0, 1.0} and abs(float(b.mean()) - 0.3) < 0.01  # b ~ Bernoulli(x)
    assert abs(float((y != b).double().mean()) - 0.15) < 0.01
    # log p(y|b) counts the flips
    flips = (y != b).sum(-1).double()
    assert torch.allclose(corr.log_obs(y, b), flips * math.log(0.15) + (784 - flips) * math.log(0.85))


def test_gaussian_noise_has_the_stated_std():
    corr = GaussianNoise("gaussian", (28, 20), 0.2)
    x = torch.rand(100, 560, generator=_gen(), dtype=torch.float64)
    y, c = corr.corrupt(x, _gen(1))
    assert torch.equal(c, x)
    r = y - x
    assert abs(float(r.mean())) < 0.005 and abs(float(r.std()) - 0.2) < 0.005


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_block_average_observes_noisy_block_means(kind):
    corr = BlockAverage(kind, (28, 20), 4, 0.05)
    x = torch.rand(300, 560, generator=_gen(), dtype=torch.float64)
    y, c = corr.corrupt(x, _gen(1))
    assert y.shape == (300, 35)
    # block (0, 0) holds pixels (r, col) with r, col < 4
    img = c.reshape(300, 28, 20)
    r = y[:, 0] - img[:, :4, :4].mean((1, 2))
    assert abs(float(r.std()) - 0.05) < 0.006 and abs(float(r.mean())) < 0.01
    if kind == "bernoulli":
        assert set(c.unique().tolist()) <= {0.0, 1.0}
    # fill repeats each block's mean over its block
    assert torch.allclose(
        corr.fill(y).reshape(300, 28, 20)[:, :4, :4], y[:, 0, None, None].clamp(0, 1).expand(300, 4, 4)
    )


def test_masks():
    corr = Inpaint("gaussian", (28, 20), "bottom")
    x = torch.rand(5, 560, generator=_gen())
    y, _ = corr.corrupt(x, _gen())
    img = torch.isnan(y).reshape(5, 28, 20)
    assert img[:, 14:].all() and not img[:, :14].any()
    assert torch.equal(corr.fill(y).reshape(5, 28, 20)[:, 14:], torch.zeros(5, 14, 20))
    for spec, missing in [
        ("top", (slice(0, 14), slice(None))),
        ("left", (slice(None), slice(0, 10))),
        ("right", (slice(None), slice(10, 20))),
        ("square:6", (slice(11, 17), slice(7, 13))),
    ]:
        m = ~parse_mask(spec, (28, 20))[1]
        expect = torch.zeros(28, 20, dtype=torch.bool)
        expect[missing] = True
        assert torch.equal(m, expect), spec
    rnd = Inpaint("bernoulli", (28, 28), "random:0.3")
    y, _ = rnd.corrupt(torch.rand(400, 784, generator=_gen()), _gen(2))
    frac = torch.isnan(y).double().mean(-1)
    assert abs(float(frac.mean()) - 0.3) < 0.01 and frac.std() > 0  # a new mask per image


def test_mask_file(tmp_path):
    arr = np.ones((28, 28), dtype=np.uint8)
    arr[10:20, 5:9] = 0
    np.save(tmp_path / "m.npy", arr)
    corr = Inpaint("bernoulli", (28, 28), str(tmp_path / "m.npy"))
    assert corr.name == "inpaint-mask-m" and int((~corr.observed).sum()) == 40


# ---- the likelihood of z and the clean image's posterior, against simulation -----------------


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_likelihood_and_posterior_match_importance_sampling_from_the_prior(kind):
    """p(y|z) = E_{c ~ p(c|z)}[p(y|c)] and E[c|y, z] = E[c p(y|c)] / p(y|z), by simulation."""
    for corr in _noisy_models(kind):
        dist = _dist(kind, D=corr.D)
        g = _gen(3)
        y, _ = corr.corrupt(dist.sample(g), g)  # an observation per row
        cs = PixelDist(
            dist.kind,
            dist.loc.expand(N_SIM, *dist.loc.shape),
            None if dist.logvar is None else dist.logvar.expand(N_SIM, *dist.loc.shape),
        ).sample(g)
        logw = corr.log_obs(y, cs)  # (N_SIM, n)
        mc_evidence = torch.logsumexp(logw, 0) - math.log(N_SIM)
        assert torch.allclose(mc_evidence, corr.log_evidence(y, dist), atol=0.03), corr.name
        w = torch.softmax(logw, 0).unsqueeze(-1)
        assert torch.allclose((w * cs).sum(0), corr.clean_mean(y, dist), atol=0.02), corr.name
        second = (w * cs.square()).sum(0) - corr.clean_mean(y, dist).square()
        assert torch.allclose(second, corr.clean_var(y, dist), atol=0.02), corr.name


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_posterior_draws_have_the_posterior_moments(kind):
    for corr in _noisy_models(kind) + [Inpaint(kind, (2, 2), "left")]:
        dist = _dist(kind, D=corr.D)
        g = _gen(4)
        y, _ = corr.corrupt(dist.sample(g), g)
        big = PixelDist(
            dist.kind,
            dist.loc.expand(50_000, *dist.loc.shape),
            None if dist.logvar is None else dist.logvar.expand(50_000, *dist.loc.shape),
        )
        draws = corr.clean_sample(y, big, g)
        scale = corr.clean_var(y, dist).sqrt().clamp_min(0.02)
        assert ((draws.mean(0) - corr.clean_mean(y, dist)).abs() / scale).max() < 0.05, corr.name
        assert torch.allclose(draws.var(0), corr.clean_var(y, dist), rtol=0.05, atol=1e-3), corr.name


def test_bernoulli_posteriors_by_enumeration():
    """Discrete clean images: log_clean is a normalised posterior, and matches enumeration."""
    configs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)  # (16, 4)
    for corr in (FlipNoise("bernoulli", (2, 2), 0.2), BlockAverage("bernoulli", (2, 2), 2, 0.1)):
        dist = _dist("bernoulli", D=4)
        y, c = corr.corrupt(dist.sample(_gen(5)), _gen(6))
        joint = dist.log_prob(configs[:, None]).sum(-1) + corr.log_obs(y, configs[:, None])  # (16, n)
        post = corr.log_clean(configs[:, None], y, dist)
        assert torch.allclose(post, joint - torch.logsumexp(joint, 0), atol=1e-9)
        assert torch.allclose(torch.logsumexp(joint, 0), corr.log_evidence(y, dist), atol=1e-9)


def test_gaussian_posteriors_in_closed_form():
    dist = _dist("gaussian", n=2, D=4)
    m, v = dist.loc, dist.var()
    corr = BlockAverage("gaussian", (2, 2), 2, 0.1)
    y, c = corr.corrupt(dist.sample(_gen(7)), _gen(8))
    a = torch.full((4,), 0.25, dtype=torch.float64)
    for i in range(2):  # condition N(m, diag v) on a.c + noise = y
        cov = torch.diag(v[i])
        s = a @ cov @ a + 0.01
        mean = m[i] + cov @ a * (y[i, 0] - a @ m[i]) / s
        post_cov = cov - torch.outer(cov @ a, cov @ a) / s
        exact = torch.distributions.MultivariateNormal(mean, post_cov)
        assert torch.allclose(corr.clean_mean(y, dist)[i], mean) and torch.allclose(
            corr.clean_var(y, dist)[i], post_cov.diagonal()
        )
        assert abs(float(corr.log_clean(c, y, dist)[i] - exact.log_prob(c[i]))) < 1e-8
    gn = GaussianNoise("gaussian", (2, 2), 0.15)
    y, c = gn.corrupt(dist.sample(_gen(9)), _gen(10))
    pv = v * 0.0225 / (v + 0.0225)
    pm = (0.0225 * m + v * y) / (v + 0.0225)
    expect = -0.5 * (math.log(2 * math.pi) + torch.log(pv) + (c - pm).square() / pv).sum(-1)
    assert torch.allclose(gn.log_clean(c, y, dist), expect)


def test_inpaint_likelihood_counts_only_observed_pixels():
    corr = Inpaint("bernoulli", (2, 2), "top")
    dist = _dist("bernoulli", D=4)
    x = torch.rand(3, 4, generator=_gen(), dtype=torch.float64)
    y, c = corr.corrupt(x, _gen())
    lp = dist.log_prob(x)
    assert torch.allclose(corr.log_evidence(y, dist), lp[:, 2:].sum(-1))
    assert torch.allclose(corr.log_clean(c, y, dist), lp[:, :2].sum(-1))
    assert torch.equal(corr.hidden(y)[0], torch.tensor([True, True, False, False]))
    assert torch.equal(corr.log_obs(y, c), torch.zeros(3, dtype=torch.float64))


# ---- bad settings: one-line errors ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(task="denoise", rho=0.5), "--rho"),
        (dict(task="denoise", rho=-0.1), "--rho"),
        (dict(task="denoise", noise_std=0.1), "Frey Face"),
        (dict(task="superres", k=3), "--k"),
        (dict(task="superres", k=2, obs_noise=0.0), "--obs-noise"),
        (dict(task="inpaint", mask="random:1"), "random"),
        (dict(task="inpaint", mask="square:28"), "square"),
        (dict(task="inpaint", mask="diagonal"), "unknown mask"),
        (dict(task="inpaint", k=2), "does not apply"),
        (dict(task="blur"), "unknown task"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, message):
    task = kwargs.pop("task")
    with pytest.raises(VaebenchError, match=message) as exc:
        make_corruption(task, "bernoulli", (28, 28), **kwargs)
    assert "\n" not in str(exc.value)
    with pytest.raises(VaebenchError, match="--rho"):
        make_corruption("denoise", "gaussian", (28, 20), rho=0.1)
    with pytest.raises(VaebenchError, match="--noise-std"):
        make_corruption("denoise", "gaussian", (28, 20), noise_std=1.5)


def test_bad_mask_files(tmp_path):
    np.save(tmp_path / "wrong.npy", np.ones((28, 20)))
    np.save(tmp_path / "none.npy", np.zeros((28, 28)))
    np.save(tmp_path / "all.npy", np.ones((28, 28)))
    np.save(tmp_path / "half.npy", np.full((28, 28), 0.5))
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    for name, message in [
        ("wrong", "shape"),
        ("none", "observes nothing"),
        ("all", "hides nothing"),
        ("half", "only 0 and 1"),
        ("junk", "not a readable"),
        ("absent", "does not exist"),
    ]:
        with pytest.raises(VaebenchError, match=message):
            parse_mask(str(tmp_path / f"{name}.npy"), (28, 28))
