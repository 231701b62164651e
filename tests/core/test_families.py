"""The reparameterizable families (vaebench.families) against scipy.stats as the oracle:
rsample draws the right law (KS at 20,000 draws; moments for the multivariate ones), log_prob
matches scipy, every parameter's pathwise (and, where valid, score-function) gradient of E[f(z)]
matches the exact gradient, closed-form KLs match Monte Carlo, and bad input is one clear error.

The oracle below is written here, independently of the families' own scipy mappings."""

import argparse
import json
import math

import numpy as np
import pytest
import scipy.stats as st
import torch

from vaebench import families
from vaebench.errors import VaebenchError
from vaebench.families import FamilyError
from vaebench.families import measure as M

torch.set_num_threads(1)
N = 20_000
ALL = families.names()
UNIVARIATE = [n for n in ALL if not families.get(n).multivariate]
MULTIVARIATE = [n for n in ALL if families.get(n).multivariate]
WITH_KL = [n for n in ALL if families.get(n).has_kl]


def _cov(scale_tril):
    L = np.asarray(scale_tril, float)
    return L @ L.T


def oracle(name, p):
    """Frozen scipy.stats law of one registry entry at parameters ``p`` (floats, lists or tensors):
    the distribution for a scalar family; (joint, marginals of the free coordinates) otherwise."""
    p = {k: (v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, float)) for k, v in p.items()}
    f = lambda k: float(p[k])  # noqa: E731
    if name == "mvn":
        cov = _cov(p["scale_tril"])
        return (
            st.multivariate_normal(p["loc"], cov),
            [st.norm(m, math.sqrt(c)) for m, c in zip(p["loc"], np.diag(cov))],
        )
    if name == "mvt":
        cov = _cov(p["scale_tril"])
        return (
            st.multivariate_t(p["loc"], cov, df=f("df")),
            [st.t(f("df"), m, math.sqrt(c)) for m, c in zip(p["loc"], np.diag(cov))],
        )
    if name == "dirichlet":
        a = p["concentration"]
        return st.dirichlet(a), [st.beta(ai, a.sum() - ai) for ai in a[:-1]]
    return {
        "exponential": lambda: st.expon(scale=1 / f("rate")),
        "cauchy": lambda: st.cauchy(f("loc"), f("scale")),
        "logistic": lambda: st.logistic(f("loc"), f("scale")),
        "logistic-ls": lambda: st.logistic(f("loc"), f("scale")),
        "rayleigh": lambda: st.rayleigh(scale=f("scale")),
        "pareto": lambda: st.pareto(f("alpha"), scale=f("scale")),
        "weibull": lambda: st.weibull_min(f("concentration"), scale=f("scale")),
        "reciprocal": lambda: st.reciprocal(f("low"), f("high")),
        "gompertz": lambda: st.gompertz(f("eta"), scale=1 / f("b")),
        "gumbel": lambda: st.gumbel_r(f("loc"), f("scale")),
        "erlang": lambda: st.erlang(int(f("shape")), scale=1 / f("rate")),
        "gaussian": lambda: st.norm(f("loc"), f("scale")),
        "laplace": lambda: st.laplace(f("loc"), f("scale")),
        "student-t": lambda: st.t(f("df"), f("loc"), f("scale")),
        "uniform": lambda: st.uniform(f("loc") - f("scale"), 2 * f("scale")),
        "triangular": lambda: st.triang(0.5, f("loc") - f("scale"), 2 * f("scale")),
        "lognormal": lambda: st.lognorm(f("scale"), scale=math.exp(f("loc"))),
        "gamma": lambda: st.gamma(f("shape"), scale=1 / f("rate")),
        "gamma-implicit": lambda: st.gamma(f("shape"), scale=1 / f("rate")),
        "beta": lambda: st.beta(f("a"), f("b")),
        "chi2": lambda: st.chi2(f("df")),
        "f": lambda: st.f(f("d1"), f("d2")),
    }[name]()


def logpdf(ref, name, z):
    """scipy's log density at draws z (N, ...): scipy's dirichlet wants them as columns."""
    return ref.logpdf(z.T) if name == "dirichlet" else ref.logpdf(z)


def oracle_marginals(name):
    return lambda p: oracle(name, p)[1] if families.get(name).multivariate else [oracle(name, p)]


def draws(name, n=N, seed=0):
    fam = families.get(name)
    return fam.sample(fam.example, (n,), torch.Generator().manual_seed(seed))


# ---- the registry -------------------------------------------------------------------------------


def test_registry_holds_the_papers_catalogue():
    reg = families.REGISTRY
    by_class = {c: {f.family for f in reg.values() if f.cls == c} for c in families.CLASSES}
    assert by_class["inverse-cdf"] == {
        "exponential",
        "cauchy",
        "logistic",
        "rayleigh",
        "pareto",
        "weibull",
        "reciprocal",
        "gompertz",
        "gumbel",
        "erlang",
    }
    assert by_class["location-scale"] == {
        "gaussian",
        "laplace",
        "elliptical",
        "student-t",
        "logistic",
        "uniform",
        "triangular",
    }
    assert by_class["composition"] == {"lognormal", "gamma", "dirichlet", "beta", "chi-squared", "F"}
    assert len({f.family for f in reg.values()}) == 22 and len(reg) == 25
    assert {reg["logistic"].cls, reg["logistic-ls"].cls} == {"inverse-cdf", "location-scale"}
    assert {n for n, f in reg.items() if f.family == "elliptical"} == {"mvn", "mvt"}
    assert {n for n, f in reg.items() if f.family == "gamma"} == {"gamma", "gamma-implicit"}
    for f in reg.values():
        assert f.construction and f.log_prob_source and all(p.describe() for p in f.params)


# ---- sampling and densities ---------------------------------------------------------------------


@pytest.mark.parametrize("name", UNIVARIATE)
def test_rsample_matches_scipy_ks(name):
    z = draws(name).numpy()
    assert st.kstest(z, oracle(name, families.get(name).example).cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", ALL)
def test_sample_is_rsample_of_sample_eps(name):
    fam = families.get(name)
    p = fam.example_params()
    shape = (5,) + fam.eps_event_shape(p)
    eps = fam.sample_eps(shape, torch.Generator().manual_seed(3))
    assert torch.equal(fam.rsample(p, eps), fam.sample(p, (5,), torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("name", MULTIVARIATE)
def test_multivariate_moments_and_marginals(name):
    fam = families.get(name)
    joint, marginals = oracle(name, fam.example)
    z = draws(name).numpy()
    mean, cov = {
        "mvn": lambda: (joint.mean, joint.cov),
        "mvt": lambda: (joint.loc, joint.shape * joint.df / (joint.df - 2)),
        "dirichlet": lambda: (joint.mean(), joint.cov()),
    }[name]()
    se_mean = z.std(0) / math.sqrt(N)
    assert np.all(np.abs(z.mean(0) - mean) < 4 * se_mean)
    c = z - z.mean(0)
    prods = c[:, :, None] * c[:, None, :]
    se_cov = prods.std(0) / math.sqrt(N)
    assert np.all(np.abs(prods.mean(0) - cov) < 4 * se_cov + 1e-12)
    for i, m in enumerate(marginals):
        assert st.kstest(z[:, i], m.cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", ALL)
def test_log_prob_matches_scipy(name):
    fam = families.get(name)
    z = draws(name, n=300, seed=1)
    ref = oracle(name, fam.example)
    ref = ref[0] if fam.multivariate else ref
    np.testing.assert_allclose(fam.log_prob(fam.example, z).numpy(), logpdf(ref, name, z.numpy()), rtol=1e-9, atol=1e-9)


# ---- gradients ----------------------------------------------------------------------------------


def test_exact_gradient_quadrature_against_closed_forms():
    """d/dmu E[sin z] = cos(mu) exp(-s^2/2) (normal), cos(mu) exp(-s) (Cauchy); d/ds E[z^2] = 2s."""
    mu, s = 0.5, 1.2
    sin, sq = M.TEST_FUNCTIONS["sin(z)"], M.TEST_FUNCTIONS["z^2"]
    p = {"loc": torch.tensor(mu, dtype=torch.float64), "scale": torch.tensor(s, dtype=torch.float64)}
    assert M.exact_gradient(oracle_marginals("gaussian"), p, "loc", (), sin) == pytest.approx(
        math.cos(mu) * math.exp(-s * s / 2), abs=1e-9
    )
    assert M.exact_gradient(oracle_marginals("gaussian"), p, "scale", (), sq) == pytest.approx(2 * s, abs=1e-9)
    assert M.exact_gradient(oracle_marginals("cauchy"), p, "loc", (), sin) == pytest.approx(
        math.cos(mu) * math.exp(-s), abs=1e-9
    )
    assert M.exact_gradient(oracle_marginals("cauchy"), p, "scale", (), sin) == pytest.approx(
        -math.sin(mu) * math.exp(-s), abs=1e-9
    )


@pytest.mark.parametrize("name", ALL)
def test_gradients_match_exact(name):
    """Every learnable parameter: the pathwise gradient of E[f(z)], f = z/(1+|z|) summed over the free
    coordinates (a bounded f with a decaying f', so finite variance everywhere), is within 4 standard
    errors of the exact one; so is the score-function gradient wherever theory says it is unbiased
    with finite variance."""
    fam = families.get(name)
    p = fam.example_params()
    fn = M.TEST_FUNCTIONS["z/(1+|z|)"]
    eps = fam.sample_eps((N,) + fam.eps_event_shape(p), torch.Generator().manual_seed(2))
    grads = M.per_draw_gradients(fam, p, eps, [fn])
    elements = M.elements(fam, p)
    assert elements and len(elements) == sum(
        1
        if q.event_dim == 0
        else p[q.name].shape[-1] * (p[q.name].shape[-1] + 1) // 2
        if q.event_dim == 2
        else p[q.name].shape[-1]
        for q in fam.params
        if q.learnable
    )
    for label, index in elements:
        exact = M.exact_gradient(oracle_marginals(name), p, label.split("[")[0], index, fn)
        flags = M.theory(fam, p, label, fn)
        assert flags["pathwise_variance_finite"]
        checks = ["pathwise"] + (["score"] if flags["score_unbiased"] and flags["score_variance_finite"] else [])
        for est in checks:
            h = grads[fn.name, est][label]
            se = float(h.std()) / math.sqrt(N)
            assert abs(float(h.mean()) - exact) < 4 * se + 1e-9, (label, est, float(h.mean()), exact, se)


def test_score_estimator_is_biased_when_the_support_moves():
    fam = families.get("uniform")
    p = fam.example_params()
    fn = M.TEST_FUNCTIONS["z"]
    eps = fam.sample_eps((N,), torch.Generator().manual_seed(0))
    g = M.per_draw_gradients(fam, p, eps, [fn])
    assert float(g["z", "pathwise"]["loc"].mean()) == pytest.approx(1.0)
    assert float(g["z", "score"]["loc"].abs().max()) == 0.0  # log q does not depend on loc inside the support


def test_theory_flags_heavy_tails():
    t = families.get("student-t")
    p = t.example_params()  # df = 3
    fl = lambda label, f: M.theory(t, p, label, M.TEST_FUNCTIONS[f])  # noqa: E731
    assert fl("loc", "z^2")["pathwise_variance_finite"] and not fl("scale", "z^2")["pathwise_variance_finite"]
    c = families.get("cauchy")
    fc = M.theory(c, c.example_params(), "scale", M.TEST_FUNCTIONS["sin(z)"])
    assert fc["expectation_finite"] and not fc["pathwise_variance_finite"] and fc["score_variance_finite"]
    assert not fc["pathwise_mean_finite"]  # E|cos(z) eps| diverges (log): not even integrable
    assert not M.theory(c, c.example_params(), "loc", M.TEST_FUNCTIONS["z"])["expectation_finite"]
    tri = families.get("triangular")
    assert not M.theory(tri, tri.example_params(), "loc", M.TEST_FUNCTIONS["sin(z)"])["score_variance_finite"]


# ---- KL -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", WITH_KL)
def test_kl_matches_monte_carlo(name):
    fam = families.get(name)
    z = draws(name, seed=4).numpy()
    q, p = oracle(name, fam.example), oracle(name, fam.prior)
    if fam.multivariate:
        q, p = q[0], p[0]
    terms = logpdf(q, name, z) - logpdf(p, name, z)
    kl = float(fam.kl(fam.example))
    assert abs(terms.mean() - kl) < 4 * terms.std() / math.sqrt(N) + 1e-9, (terms.mean(), kl)


def test_kl_without_closed_form_is_an_error():
    with pytest.raises(FamilyError, match="'logistic'.*no closed-form KL"):
        families.get("logistic").kl(families.get("logistic").example)


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params, bad",
    [
        ("gaussian", {"loc": 0.0, "scale": -1.0}, "scale"),
        ("gaussian", {"loc": float("nan"), "scale": 1.0}, "loc"),
        ("erlang", {"shape": 2.5, "rate": 1.0}, "shape"),
        ("erlang", {"shape": 0, "rate": 1.0}, "shape"),
        ("dirichlet", {"concentration": [1.0, 0.0, 2.0]}, "concentration"),
        ("reciprocal", {"low": 2.0, "high": 1.0}, "high"),
        ("mvn", {"loc": [0.0, 0.0], "scale_tril": [[1.0, 0.5], [0.0, 1.0]]}, "scale_tril"),
        ("mvt", {"loc": [0.0, 0.0], "scale_tril": [[1.0, 0.0], [0.0, 1.0]], "df": 0.0}, "df"),
        ("gaussian", {"loc": 0.0}, "scale"),
        ("gaussian", {"loc": 0.0, "scale": 1.0, "sigma": 1.0}, "sigma"),
        ("mvn", {"loc": 0.0, "scale_tril": [[1.0]]}, "loc"),
    ],
)
def test_bad_parameters_are_one_clear_error(name, params, bad):
    fam = families.get(name)
    for call in (lambda: fam.log_prob(params, torch.zeros(2)), lambda: fam.sample(params, (3,))):
        with pytest.raises(VaebenchError) as info:
            call()
        assert f"'{name}'" in str(info.value) and bad in str(info.value) and "\n" not in str(info.value)


def test_unknown_family_and_wrong_eps():
    with pytest.raises(FamilyError, match="unknown family 'weibul'.*weibull"):
        families.get("weibul")
    erlang = families.get("erlang")
    with pytest.raises(FamilyError, match="'erlang'.*last dimension of 3"):
        erlang.rsample(erlang.example, torch.rand(10, 2, dtype=torch.float64))


@pytest.mark.parametrize("name", ALL)
def test_from_unconstrained_gives_valid_parameters(name):
    fam = families.get(name)
    g = torch.Generator().manual_seed(5)
    raw = {}
    for p in fam.params:
        ex = torch.as_tensor(fam.example[p.name], dtype=torch.float64)
        raw[p.name] = ex if not p.learnable else 3 * torch.randn(ex.shape, generator=g, dtype=torch.float64)
    params = fam.from_unconstrained(raw)
    assert torch.isfinite(fam.log_prob(params, fam.sample(params, (100,), g))).all()


# ---- the command --------------------------------------------------------------------------------


def test_cli_lists_the_registry(capsys):
    from vaebench.cli import families as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    assert cmd.run(p.parse_args([])) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in ALL) and "25 entries, 22 families" in out


def test_cli_measure_writes_outputs(tmp_path, capsys):
    import pandas as pd

    from vaebench.cli import families as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    out = tmp_path / "fam"
    args = p.parse_args(["--measure", "--out", str(out), "--repeats", "3", "--seed", "1", "--only", "gaussian,cauchy"])
    assert cmd.run(args) == 0
    df = pd.read_csv(out / "gradient_variance.csv")
    assert set(df["entry"]) == {"gaussian", "cauchy"} and set(df["L"]) == {1, 100}
    assert set(df["estimator"]) == {"pathwise", "score"}
    row = lambda e, q, f: df[(df.entry == e) & (df.parameter == q) & (df.f == f)].iloc[0]  # noqa: E731
    assert row("cauchy", "loc", "z")["status"] == "E[f] undefined"
    assert row("cauchy", "scale", "sin(z)")["status"].startswith("pathwise not integrable")
    assert row("gaussian", "scale", "z^2")["status"] == "finite"
    assert (out / "gradient_variance.png").stat().st_size > 1000
    assert "pathwise not integrable" in (out / "gradient_variance.md").read_text()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 1 and "--measure" in prov["command"] and prov["versions"]["torch"]
