"""Posterior inference of z (`vaebench infer`): the per-datapoint optimisation and the gap
decomposition against a linear-Gaussian model's closed forms, and on tiny trained runs."""

import csv
import json
import math

import pytest
import torch

from vaebench.cli import main
from vaebench.uses import posterior
from vaebench.uses.infer import INFERENCE_COLUMNS, NO_ENCODER_NOTE
from vaebench.uses.reference import best_diagonal, linear_gaussian_vae, log_marginal, posterior_z

FAST = [
    "--n-points",
    "20",
    "--samples-per-point",
    "20",
    "--burn-in",
    "30",
    "--k",
    "200",
    "--elbo-samples",
    "50",
    "--threads",
    "1",
    "--no-progress",
]


def kl_to_posterior(model, x, mu, var):
    """KL(N(mu, diag var) || p(z|x)) per row, in closed form."""
    m, S = posterior_z(model, x)
    P = torch.linalg.inv(S)
    d = mu - m
    nz = mu.shape[1]
    return 0.5 * ((P.diagonal() * var).sum(-1) + ((d @ P) * d).sum(-1) - nz + torch.logdet(S) - torch.log(var).sum(-1))


@pytest.fixture(scope="module")
def linear():
    g = torch.Generator().manual_seed(0)
    # an encoder whose means are 20% short and whose variances are 3x too large
    model = linear_gaussian_vae(D=16, nz=3, noise_std=0.3, encoder_scale=0.8, encoder_var_scale=3.0, generator=g)
    z = torch.randn(100, 3, generator=g, dtype=torch.float64)
    x = model.decoder(z)[0] + 0.3 * torch.randn(100, 16, generator=g, dtype=torch.float64)
    return model, x


def test_local_optimisation_recovers_the_best_diagonal_gaussian(linear):
    model, x = linear
    mu0, lv0 = model.encoder(x)
    m, v = best_diagonal(model, x)
    fit = posterior.optimise_local(
        model, x, mu0, lv0, train_samples=32, tol=1e-4, generator=torch.Generator().manual_seed(1)
    )
    sd = v.sqrt()
    assert ((fit.mu - m).abs() / sd).max() < 0.05
    rel = (fit.logvar.exp() / v - 1).abs()
    assert rel.median() < 0.05 and rel.max() < 0.2
    # in the ELBO: within 0.01 nats of the optimum for every point (it started 2 to 10 nats away)
    excess = kl_to_posterior(model, x, fit.mu, fit.logvar.exp()) - kl_to_posterior(model, x, m, v)
    start = kl_to_posterior(model, x, mu0, lv0.exp()) - kl_to_posterior(model, x, m, v)
    assert excess.max() < 0.01 and start.min() > 0.5
    assert ((fit.steps > 0) & (fit.steps < 3000)).all()  # every point stopped improving
    # the defaults (2 draws per step, looser tolerance): the ELBO within about 0.01 nats on average
    fit = posterior.optimise_local(model, x, mu0, lv0, generator=torch.Generator().manual_seed(2))
    excess = kl_to_posterior(model, x, fit.mu, fit.logvar.exp()) - kl_to_posterior(model, x, m, v)
    assert excess.mean() < 0.02 and excess.max() < 0.1


def test_decomposition_against_closed_forms(linear):
    model, x = linear
    res = posterior.decompose(model, x, generator=torch.Generator().manual_seed(3), k=2000, hmc={"burn_in": 100})
    lp = log_marginal(model, x)
    assert abs(float((res["log_px_hmc"] - lp).mean())) < 0.05
    assert abs(float((res["log_px_is"] - lp).mean())) < 0.2
    # by construction
    assert torch.allclose(res["inference_gap"], res["approximation_gap"] + res["amortisation_gap"])
    # the true gaps: approximation = KL(q* || p(z|x)), amortisation = KL(q_enc || p) - KL(q* || p)
    m, v = best_diagonal(model, x)
    mu0, lv0 = model.encoder(x)
    true_approx = kl_to_posterior(model, x, m, v)
    true_amort = kl_to_posterior(model, x, mu0, lv0.exp()) - true_approx
    se = lambda key: float(res[f"{key}_stderr"].square().sum().sqrt() / x.shape[0])  # noqa: E731
    assert abs(float(res["amortisation_gap"].mean() - true_amort.mean())) < 4 * se("amortisation_gap") + 0.02
    approx_se = math.hypot(se("log_px_hmc"), se("elbo_optimised"))
    assert abs(float(res["approximation_gap"].mean() - true_approx.mean())) < 4 * approx_se + 0.05
    # HMC posterior moments (100 autocorrelated draws per point: errors of about 0.1 sd)
    pm, S = posterior_z(model, x)
    assert ((res["hmc_mean"] - pm).abs() / S.diagonal().sqrt()).mean() < 0.2
    assert abs(float((res["hmc_std"] / S.diagonal().sqrt()).mean()) - 1) < 0.1
    rows = posterior.posterior_summary(res)
    assert len(rows) == 3 and all(r["encoder_log_std_ratio"] > 0.4 for r in rows)  # sqrt(3) too wide
    assert all(abs(r["optimised_log_std_ratio"]) < 0.3 for r in rows)


# ---- the command on tiny trained runs (aevb_run, mcem_run: conftest.py) -----------------------


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_infer_decomposes_and_the_gaps_are_non_negative(aevb_run, capsys):
    assert main(["infer", str(aevb_run), *FAST]) == 0
    rows = _read(aevb_run / "inference_test.csv")
    assert len(rows) == 20 and list(rows[0]) == list(INFERENCE_COLUMNS)
    assert {r["label"] for r in rows} <= set("0123456789") and rows[0]["note"] == ""
    f = lambda r, k: float(r[k])  # noqa: E731
    for r in rows:
        assert f(r, "inference_gap") == pytest.approx(f(r, "approximation_gap") + f(r, "amortisation_gap"), abs=1e-4)
        assert f(r, "log_px_hmc") - f(r, "elbo_encoder") == pytest.approx(f(r, "inference_gap"), abs=1e-4)
        # non-negative within Monte Carlo error, point by point
        assert f(r, "amortisation_gap") > -4 * f(r, "amortisation_gap_stderr") - 0.05
        assert f(r, "approximation_gap") > -4 * math.hypot(f(r, "log_px_hmc_stderr"), f(r, "elbo_optimised_stderr"))
    summary = json.loads((aevb_run / "inference_test.json").read_text())
    mean, se = summary["mean"], summary["mc_stderr"]
    assert mean["amortisation_gap"] > -3 * se["amortisation_gap"]
    assert mean["approximation_gap"] > -3 * se["approximation_gap"]
    assert abs(mean["log_px_hmc"] - mean["log_px_is"]) < 2.0  # the cross-check agrees
    post = _read(aevb_run / "posterior_test.csv")
    assert [int(r["dim"]) for r in post] == [0, 1] and all(float(r["hmc_std"]) > 0 for r in post)
    assert (aevb_run / "latent_scatter_test.png").stat().st_size > 5000
    assert "wrote" in capsys.readouterr().out


def test_infer_without_encoder_uses_hmc_only(mcem_run, tmp_path, capsys):
    out = tmp_path / "mcem_out"
    assert main(["infer", str(mcem_run), *FAST, "--out", str(out)]) == 0
    rows = _read(out / "inference_test.csv")
    assert all(r["note"] == NO_ENCODER_NOTE and r["elbo_encoder"] == "" and r["inference_gap"] == "" for r in rows)
    assert all(math.isfinite(float(r["log_px_hmc"])) for r in rows)
    summary = json.loads((out / "inference_test.json").read_text())
    assert summary["has_encoder"] is False and set(summary["mean"]) == {"log_px_hmc"}
    assert "HMC only" in capsys.readouterr().out
    # restoring without an encoder: HMC and the mean image only
    assert (
        main(
            [
                "restore",
                str(mcem_run),
                "--task",
                "inpaint",
                "--n-points",
                "4",
                "--burn-in",
                "2",
                "--samples",
                "2",
                "--grid",
                "0",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert [r["method"] for r in _read(out / "restore_inpaint-bottom.csv")] == ["hmc", "mean-image"]
    assert main(["restore", str(mcem_run), "--task", "inpaint", "--methods", "mwg", "--out", str(out)]) == 2
    assert "trains no encoder" in capsys.readouterr().err


def test_infer_bad_input_writes_nothing(aevb_run, tmp_path, capsys):
    no_params = tmp_path / "no_params"
    no_params.mkdir()
    for name in ("run.json", "metrics.csv"):
        (no_params / name).write_bytes((aevb_run / name).read_bytes())
    out = tmp_path / "never"
    assert main(["infer", str(no_params), *FAST, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and err.count("\n") == 1
    assert main(["infer", str(aevb_run), "--n-points", "0", "--out", str(out)]) == 2
    assert main(["infer", str(aevb_run), "--split", "valid", "--out", str(out)]) == 2
    assert main(["infer", str(tmp_path), "--out", str(out)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in no_params.iterdir()) == ["metrics.csv", "run.json"]
