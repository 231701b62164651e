"""AEVB with non-Gaussian posteriors and priors (vaebench.models: FamilyEncoder, LatentPrior):
every family trains, estimator B equals A in expectation where the KL is closed form, the
paper's Gaussian model keeps the fused path bit for bit, importance sampling proposes from the
encoder's own family, and bad input is one clear error naming the family."""

import json
import math

import pytest
import torch

from tests.helpers import tiny_dataset
from vaebench import ops
from vaebench.algorithms.aevb import AEVB
from vaebench.bound import bound_estimator, estimate
from vaebench.cli import main
from vaebench.config import RunConfig
from vaebench.errors import VaebenchError
from vaebench.families import FamilyError
from vaebench.families.latent import LATENT_FAMILIES, LatentFamily, LatentPrior, check_latent
from vaebench.marginal.estimators import importance_log_marginal
from vaebench.models import VAE, FamilyEncoder, GaussianEncoder, build_model
from vaebench.runs import RunFolder

torch.set_num_threads(1)

NON_GAUSSIAN = [
    ("laplace", "gaussian"),
    ("logistic", "gaussian"),
    ("student-t", "gaussian"),
    ("lognormal", "lognormal"),
    ("gamma-implicit", "gamma-implicit"),
]
CLOSED_FORM = [
    ("laplace", "gaussian"),
    ("lognormal", "lognormal"),
    ("gamma-implicit", "gamma-implicit"),
    ("gaussian", "laplace"),
]


def tiny_model(posterior, prior, nz=2, hidden=16, dim=12, seed=0, init_std=0.01):
    return build_model(
        dim,
        nz,
        hidden,
        "bernoulli",
        posterior=posterior,
        prior=prior,
        init_std=init_std,
        generator=torch.Generator().manual_seed(seed),
    )


def bound(model, x, seed=123):
    with torch.no_grad():
        return float(estimate(model, x, bound_estimator(model), 1, torch.Generator().manual_seed(seed)).value.mean())


# ---- training ------------------------------------------------------------------------------


@pytest.mark.parametrize("posterior, prior", NON_GAUSSIAN)
def test_each_posterior_trains_and_raises_its_bound(posterior, prior):
    data = tiny_dataset()
    model = tiny_model(posterior, prior)
    assert isinstance(model.encoder, FamilyEncoder) and model.uses_families
    algo = AEVB(model, lr=0.1, n_train=600, estimator=check_latent(posterior, prior))
    gen = torch.Generator().manual_seed(1)
    before = bound(model, data.test)
    for step in range(300):
        value = algo.step(data.train[(step * 100) % 600 :][:100], gen)
        assert math.isfinite(value)
    after = bound(model, data.test)
    assert after > before + 1.0, (posterior, before, after)
    z = model.encoder.rsample(model.encoder(data.test), model.encoder.sample_eps(model.encoder(data.test), 1))
    assert torch.isfinite(z).all() and (not LatentFamily(posterior).positive or (z > 0).all())


def test_the_estimator_resolves_to_b_where_the_kl_is_closed_form_and_a_otherwise():
    assert RunConfig().check().estimator == "B"
    given = RunConfig()
    assert given.check() is not given and given.estimator == "auto"  # a checked copy; the argument stays
    assert RunConfig(posterior="laplace").check().estimator == "B"
    assert RunConfig(posterior="student-t").check().estimator == "A"
    assert RunConfig(posterior="logistic", estimator="score").check().estimator == "score"
    assert RunConfig(posterior="lognormal", latent_prior="lognormal").check().estimator == "B"
    assert RunConfig(posterior="lognormal", latent_prior="gaussian").check().estimator == "A"


def test_the_papers_model_keeps_its_identity():
    """Runs made before the latent families resume: their identity has no posterior keys."""
    ident = RunConfig().check().identity()
    assert "posterior" not in ident and "latent_prior" not in ident and ident["estimator"] == "B"
    assert RunConfig(posterior="laplace").check().identity()["posterior"] == "laplace"
    assert RunConfig.from_dict({"estimator": "B", "prior": True}).check().identity() == ident


# ---- the estimators ------------------------------------------------------------------------


@pytest.mark.parametrize("posterior, prior", CLOSED_FORM)
def test_estimator_b_equals_estimator_a_in_expectation(posterior, prior):
    """Monte Carlo over 20,000 draws each (independent seeds): within 4 standard errors."""
    model = tiny_model(posterior, prior, init_std=0.3, seed=4)
    x = tiny_dataset().test[:1].expand(20_000, -1)
    with torch.no_grad():
        a = estimate(model, x, "A", 1, torch.Generator().manual_seed(1)).value.double()
        b = estimate(model, x, "B", 1, torch.Generator().manual_seed(2)).value.double()
    se = math.sqrt(a.var() / a.numel() + b.var() / b.numel())
    assert abs(float(a.mean() - b.mean())) < 4 * se, (float(a.mean()), float(b.mean()), se)


def test_estimator_b_without_a_closed_form_kl_is_an_error_naming_the_family():
    model = tiny_model("student-t", "gaussian")
    with pytest.raises(FamilyError, match="estimator B.*'student-t'.*'gaussian'"):
        estimate(model, torch.rand(3, 12), "B")


def test_gradients_reach_every_parameter_of_the_encoder():
    for posterior, prior in NON_GAUSSIAN:
        model = tiny_model(posterior, prior, init_std=0.1)
        for est in ("A", "score") + (("B",) if check_latent(posterior, prior) == "B" else ()):
            model.zero_grad()
            estimate(model, torch.rand(5, 12), est, 2, torch.Generator().manual_seed(0)).surrogate.mean().backward()
            g = model.encoder.param_head.weight.grad
            nz = model.nz
            assert g[:nz].abs().sum() > 0 and g[nz:].abs().sum() > 0, (posterior, est)


def _same_weights(family_model, gaussian_model):
    with torch.no_grad():
        enc, src = family_model.encoder, gaussian_model.encoder
        enc.hidden.load_state_dict(src.hidden.state_dict())
        enc.param_head.load_state_dict(src.head.state_dict())
        family_model.decoder.load_state_dict(gaussian_model.decoder.state_dict())


def test_the_gaussian_model_keeps_the_fused_path_bit_for_bit():
    """The paper's model: GaussianEncoder, and each estimator's value is exactly the eager ops
    formula with the same eps (as before the families existed)."""
    model = tiny_model("gaussian", "gaussian", init_std=0.2, seed=3)
    assert type(model.encoder) is GaussianEncoder and not model.uses_families
    ops.set_default_backend("eager")
    x = tiny_dataset().test[:7]
    for L in (1, 3):
        eps = torch.randn(L, 7, 2, generator=torch.Generator().manual_seed(L))
        mu, logvar = model.encoder(x)
        z = mu + torch.exp(0.5 * ops.clamp_logvar(logvar)) * eps
        if L == 1:
            z1, kl = ops.encoder_head(mu, logvar, eps[0])
            expected_b = model.decoder.log_prob(x, z1.unsqueeze(0)).mean(0) - kl
        else:
            expected_b = model.decoder.log_prob(x, z).mean(0) - ops.gaussian_kl(mu, logvar)
        expected_a = (model.log_joint(x, z) - model.encoder.log_prob(z, mu, logvar)).mean(0)
        assert torch.equal(estimate(model, x, "B", L, eps=eps).value, expected_b)
        assert torch.equal(estimate(model, x, "A", L, eps=eps).value, expected_a)
        assert torch.equal(estimate(model, x, "score", L, eps=eps).value, expected_a.detach())
    # the same initial draw as before: the default build equals the explicit one, bit for bit
    a, b = (
        build_model(12, 2, 16, "bernoulli", generator=torch.Generator().manual_seed(0)).state_dict(),
        tiny_model("gaussian", "gaussian").state_dict(),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_registry_gaussian_agrees_with_the_fused_one():
    """The registry path with the Gaussian family (log sigma^2 head) gives the fused path's values."""
    fused = tiny_model("gaussian", "gaussian", init_std=0.2, seed=3)
    registry = VAE(FamilyEncoder(12, 16, 2, "gaussian"), build_model(12, 2, 16, "bernoulli").decoder, 2)
    _same_weights(registry, fused)
    x = tiny_dataset().test[:7]
    eps = torch.randn(2, 7, 2, generator=torch.Generator().manual_seed(0))
    for est in ("A", "B"):
        assert torch.allclose(
            estimate(registry, x, est, 2, eps=eps).value,
            estimate(fused, x, est, 2, eps=eps).value,
            rtol=1e-5,
            atol=1e-4,
        )


def test_every_family_starts_from_the_same_draw():
    ref = tiny_model("gaussian", "gaussian").state_dict()
    for posterior, prior in NON_GAUSSIAN:
        sd = tiny_model(posterior, prior).state_dict()
        assert torch.equal(sd["encoder.param_head.weight"], ref["encoder.head.weight"])
        assert torch.equal(sd["decoder.out.weight"], ref["decoder.out.weight"])


# ---- importance sampling with the encoder's family -----------------------------------------


@pytest.mark.parametrize(
    "posterior, prior, first, second",
    [
        ("laplace", "gaussian", 0.0, 2.0),
        ("student-t", "gaussian", 0.3, 1.5),
        ("gamma-implicit", "gamma-implicit", 1.0, 0.5),
    ],
)
def test_importance_sampling_uses_the_encoders_family(posterior, prior, first, second):
    """N_z = 1: log p(x) by importance sampling with q(z|x) as proposal against quadrature. The
    encoder is set to one q with tails heavier than the posterior's (Laplace(0, 2), t_3(0.3, 1.5),
    Gamma(1, rate 0.5)), so that the weights have finite variance."""
    model = tiny_model(posterior, prior, nz=1, init_std=0.5, seed=5).double()
    real = LatentFamily(posterior).learned[0].constraint == "real"
    with torch.no_grad():
        model.encoder.param_head.weight.zero_()
        model.encoder.param_head.bias.copy_(
            torch.tensor([first if real else 2 * math.log(first), 2 * math.log(second)])
        )
    x = tiny_dataset().test[:4].double()
    est = importance_log_marginal(model, x, k=20_000, generator=torch.Generator().manual_seed(0))
    if model.latent_prior.positive:
        grid = torch.logspace(-8, 2.5, 40_001, dtype=torch.float64)
    else:
        grid = torch.linspace(-12, 12, 40_001, dtype=torch.float64)
    with torch.no_grad():
        lj = model.log_joint(x, grid[:, None, None].expand(-1, 4, 1))  # (G, 4)
        exact = torch.logsumexp(lj + torch.log(torch.gradient(grid)[0])[:, None], 0)
    assert torch.all((est.log_px - exact).abs() < 4 * est.stderr + 1e-3), (est.log_px, exact, est.stderr)
    assert posterior in est.info["proposal"]


def test_hmc_starts_from_the_family_encoders_location():
    """The appendix D estimator runs on a real latent space with a non-Gaussian encoder (its loc
    is one of HMC's starting candidates) and agrees with importance sampling."""
    from vaebench.marginal.estimators import hmc_log_marginal

    model = tiny_model("laplace", "gaussian", init_std=0.3, seed=5)
    x = tiny_dataset().test[:5]
    hmc = hmc_log_marginal(model, x, samples=30, burn_in=40, generator=torch.Generator().manual_seed(0))
    imp = importance_log_marginal(model, x, k=4000, generator=torch.Generator().manual_seed(1))
    assert abs(hmc.mean - imp.mean) < 0.3, (hmc.mean, imp.mean)


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"posterior": "wishart"}, "unknown posterior family 'wishart'"),
        ({"latent_prior": "cauchy-ish"}, "unknown prior family 'cauchy-ish'"),
        ({"posterior": "gamma"}, "family 'gamma' cannot be the posterior"),
        ({"posterior": "mvn"}, "family 'mvn' cannot be the posterior"),
        ({"posterior": "student-t", "estimator": "B"}, "estimator B needs KL.*'student-t' with prior 'gaussian'"),
        (
            {"posterior": "gaussian", "latent_prior": "gamma-implicit"},
            "posterior 'gaussian' lives on the real line.*'gamma-implicit'",
        ),
        ({"posterior": "laplace", "algorithm": "wake-sleep"}, "posterior 'laplace'.*aevb"),
        ({"posterior": "laplace", "theta": "vb"}, "posterior 'laplace'.*theta map or ml"),
        ({"estimator": "C"}, "unknown estimator 'C'"),
    ],
)
def test_bad_latent_settings_are_one_line_errors(keys, message):
    with pytest.raises(VaebenchError, match=message) as info:
        RunConfig.from_dict(keys).check()
    assert "\n" not in str(info.value)


def test_parameters_outside_the_support_name_the_family_and_parameter():
    with pytest.raises(FamilyError, match="family 'laplace': parameter 'scale' must be > 0"):
        LatentPrior("laplace", {"loc": 0.0, "scale": -1.0})
    with pytest.raises(FamilyError, match="family 'gamma-implicit': parameter 'rate' must be > 0"):
        LatentFamily("gamma-implicit").check({"shape": torch.ones(3), "rate": torch.tensor([1.0, 0.0, 2.0])})
    with pytest.raises(FamilyError, match="family 'student-t': parameter 'loc'"):
        LatentFamily("student-t").check({"loc": torch.tensor([math.nan]), "scale": torch.ones(1)})


def test_a_gaussian_encoder_with_another_prior_is_refused():
    with pytest.raises(FamilyError, match="prior 'laplace'"):
        VAE(GaussianEncoder(12, 16, 2), build_model(12, 2, 16, "bernoulli").decoder, 2, prior="laplace")


def test_hmc_on_a_positive_latent_space_is_refused(tmp_path):
    from vaebench.marginal.run import evaluate_run

    cfg = RunConfig(posterior="lognormal", latent_prior="lognormal", nz=2, hidden=16, samples=1000).check()
    RunFolder(tmp_path / "r").write_info({"config": cfg.to_dict(), "status": "finished"})
    with pytest.raises(VaebenchError, match="prior 'lognormal' lives on z > 0; use --method importance"):
        evaluate_run(tmp_path / "r", method="hmc", progress=False)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--posterior", "wishart"], "unknown posterior family 'wishart'"),
        (["--posterior", "student-t", "--estimator", "B"], "'student-t' with prior 'gaussian' has none"),
        (["--posterior", "laplace", "--prior", "lognormal"], "posterior 'laplace' lives on the real line"),
    ],
)
def test_bad_latent_options_on_the_command_line(tmp_path, capsys, argv, message):
    code = main(["train", "--out", str(tmp_path / "r"), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_the_command_line_sets_posterior_and_prior():
    import argparse

    from vaebench.cli.options import add_run_options, given_run_options

    p = argparse.ArgumentParser()
    add_run_options(p)
    given = given_run_options(p.parse_args(["--posterior", "gamma-implicit", "--prior", "gamma-implicit"]))
    assert given == {"posterior": "gamma-implicit", "latent_prior": "gamma-implicit"}
    assert RunConfig.from_dict(given).check().estimator == "B"
    assert set(LATENT_FAMILIES) >= {"gaussian", "laplace", "logistic", "student-t", "lognormal", "gamma-implicit"}


# ---- through the training loop (vaebench.train) --------------------------------------------


def tiny_config(**kw):
    return RunConfig(**{**dict(nz=2, hidden=16, samples=3000, lr=0.1, first_eval=1000, evals_per_decade=4), **kw})


@pytest.mark.parametrize(
    "posterior, prior, estimator", [("student-t", "gaussian", "A"), ("gamma-implicit", "gamma-implicit", "B")]
)
def test_train_records_the_estimator_and_builds_the_family(tmp_path, posterior, prior, estimator):
    from vaebench.train import train

    info = train(
        tiny_config(posterior=posterior, latent_prior=prior), tmp_path / "r", data=tiny_dataset(), progress=False
    )
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["config"]["estimator"] == estimator and run["config"]["posterior"] == posterior
    assert run["config"]["latent_prior"] == prior and math.isfinite(info["final"]["test"])
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=False)["trainer"]["model"]
    assert "encoder.param_head.weight" in state  # the family's encoder, not the Gaussian one


def test_a_family_run_resumes_bit_for_bit(tmp_path, monkeypatch):
    from vaebench.train import Trainer, train

    data, cfg = tiny_dataset(), tiny_config(posterior="student-t")
    train(cfg, tmp_path / "whole", data=data, progress=False)
    original, calls = Trainer.step, {"n": 0}

    def step(self):
        calls["n"] += 1
        if calls["n"] == 17:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "step", step)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "split", data=data, progress=False)
    monkeypatch.setattr(Trainer, "step", original)
    train(cfg, tmp_path / "split", resume=True, data=data, progress=False)
    read = lambda p: [r.split(",")[:-1] for r in (p / "metrics.csv").read_text().splitlines()]  # noqa: E731
    assert read(tmp_path / "whole") == read(tmp_path / "split")
