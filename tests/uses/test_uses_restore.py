"""Restoration (`vaebench restore`): the samplers against the exact posterior of a
linear-Gaussian model, the baselines, and the command on a tiny trained MNIST run, bad input
included."""

import csv
import math

import numpy as np
import pytest
import torch

from vaebench.cli import main
from vaebench.uses import samplers
from vaebench.uses.corruption import BlockAverage, GaussianNoise, Inpaint
from vaebench.uses.reference import linear_gaussian_vae, marginal_cov
from vaebench.uses.restore import RESTORE_COLUMNS, restore_run

FAST = ["--n-points", "12", "--burn-in", "3", "--samples", "4", "--threads", "1", "--no-progress"]


# ---- exactness on a model whose posterior is known -------------------------------------------


def _exact_clean_posterior(model, corr, y):
    """Mean and covariance of the hidden values given y, for x ~ N(b, W W^T + s^2 I)."""
    b = model.decoder.b.detach()
    C = marginal_cov(model)
    D = b.shape[0]
    if isinstance(corr, Inpaint):
        o = ~torch.isnan(y)
        K = C[~o][:, o] @ torch.linalg.inv(C[o][:, o])
        return b[~o] + K @ (y[o] - b[o]), C[~o][:, ~o] - K @ C[o][:, ~o], ~o
    if isinstance(corr, GaussianNoise):
        H = torch.eye(D, dtype=C.dtype)
    else:
        H = torch.zeros(corr.n_blocks, D, dtype=C.dtype)
        H[torch.arange(corr.n_blocks).repeat_interleave(corr.K), corr.perm] = 1.0 / corr.K
    K = C @ H.T @ torch.linalg.inv(H @ C @ H.T + corr.var * torch.eye(H.shape[0], dtype=C.dtype))
    return b + K @ (y - H @ b), C - K @ H @ C, torch.ones(D, dtype=torch.bool)


@pytest.mark.parametrize("method", ["mwg", "hmc", "pseudo-gibbs", "grid"])
@pytest.mark.parametrize(
    "corr",
    [
        Inpaint("gaussian", (4, 4), "bottom"),
        GaussianNoise("gaussian", (4, 4), 0.2),
        BlockAverage("gaussian", (4, 4), 2, 0.05),
    ],
    ids=lambda c: c.name,
)
def test_sampler_matches_the_exact_posterior_of_a_linear_gaussian_model(corr, method):
    g = torch.Generator().manual_seed(0)
    # the encoder's variances twice the posterior's: a proposal that covers it, and not the posterior
    model = linear_gaussian_vae(D=16, nz=2, noise_std=0.3, encoder_var_scale=2.0, generator=g)
    x = model.decoder(torch.randn(1, 2, generator=g, dtype=torch.float64))[0] + 0.3 * torch.randn(
        1, 16, generator=g, dtype=torch.float64
    )
    y, c = corr.corrupt(x, g)
    mean, cov, hidden = _exact_clean_posterior(model, corr, y[0])
    if method == "grid":  # quadrature: exact up to the grid's resolution
        post = samplers.grid_posterior(model, corr, y, c, points=201, span=5.0)
        assert ((post.mean[0, hidden] - mean).abs() / cov.diagonal().sqrt()).max() < 0.01
        assert ((post.var[0, hidden] / cov.diagonal()) - 1).abs().max() < 0.01
        exact = torch.distributions.MultivariateNormal(mean, cov).log_prob(c[0, hidden])
        assert float(post.log_pred[0]) == pytest.approx(float(exact), abs=0.01)
        return
    chains = 1000  # one chain per copy of the same observation, pooled
    post = samplers.sample_posterior(
        model, corr, y.expand(chains, -1), c.expand(chains, -1), method=method, burn_in=50, samples=200, generator=g
    )
    est_mean = post.mean[:, hidden].mean(0)
    est_var = post.var[:, hidden].mean(0) + post.mean[:, hidden].var(0)  # within + between chains
    mean_err = ((est_mean - mean).abs() / cov.diagonal().sqrt()).max()
    var_err = ((est_var / cov.diagonal()) - 1).abs().max()
    if method == "pseudo-gibbs":  # not exact: with this encoder its posterior is too wide
        assert var_err > 0.08
        return
    assert mean_err < 0.05 and var_err < 0.04
    assert (0.3 if method == "mwg" else 0.8) < float(post.accept.mean()) < 1.0


def test_baselines_are_the_posterior_under_their_pixel_models():
    g = torch.Generator().manual_seed(1)
    model = linear_gaussian_vae(D=16, nz=2, generator=g)
    corr = Inpaint("gaussian", (4, 4), "left")
    x = torch.rand(5, 16, generator=g, dtype=torch.float64)
    y, c = corr.corrupt(x, g)
    prior = samplers.PixelDist.constant(
        "gaussian", torch.full((16,), 0.5, dtype=torch.float64), torch.full((16,), 0.04, dtype=torch.float64)
    )
    post = samplers.mean_image(prior, corr, y, c)
    hidden = corr.hidden(y)
    assert torch.allclose(post.mean[hidden], torch.full_like(post.mean[hidden], 0.5))
    assert torch.equal(post.mean[~hidden], x[~hidden])
    expect = (-0.5 * (math.log(2 * math.pi * 0.04) + (x - 0.5).square() / 0.04) * hidden).sum(-1)
    assert torch.allclose(post.log_pred, expect)
    ed = samplers.encoder_decoder(model, corr, y, c)
    z = model.encoder(corr.fill(y))[0]
    assert torch.allclose(ed.mean[hidden], model.decoder(z)[0][hidden])


# ---- the command on a tiny trained run (aevb_run: conftest.py) --------------------------------


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    "task, options, setting",
    [
        ("inpaint", ["--mask", "bottom"], "inpaint-bottom"),
        ("denoise", ["--rho", "0.1"], "denoise-rho0.1"),
        ("superres", ["--k", "4"], "superres-k4"),
    ],
)
def test_restore_writes_a_table_and_a_grid(aevb_run, tmp_path, task, options, setting, capsys):
    out = tmp_path / "out"
    # every method on inpainting (quadrature included: the tiny run has N_z = 2); the others skip it
    methods = ["--methods", ",".join(m for m in samplers.ALL_METHODS if task == "inpaint" or m != "grid")]
    assert (
        main(["restore", str(aevb_run), "--task", task, *options, *FAST, *methods, "--grid", "3", "--out", str(out)])
        == 0
    )
    rows = _read(out / f"restore_{setting}.csv")
    assert [r["method"] for r in rows] == [m for m in samplers.ALL_METHODS if task == "inpaint" or m != "grid"]
    assert list(rows[0]) == list(RESTORE_COLUMNS)
    for r in rows:
        assert r["setting"] == setting and r["n_images"] == "12" and r["split"] == "test"
        assert math.isfinite(float(r["heldout_loglik"])) and 0 <= float(r["mse"]) <= 1
        assert float(r["psnr"]) == pytest.approx(10 * math.log10(1 / float(r["mse"])), abs=1e-2)
    assert float(rows[0]["hidden_per_image"]) == (392 if task == "inpaint" else 784)
    assert (out / f"restore_{setting}.png").stat().st_size > 1000
    assert not (out / ".lock").exists()
    assert "wrote" in capsys.readouterr().out


def test_restore_is_reproducible_and_writes_beside_the_run(aevb_run):
    settings = dict(mask="random:0.5", n_points=6, burn_in=2, samples=3, grid=0, methods=("mwg", "mean-image"))
    rows = restore_run(aevb_run, "inpaint", **settings, progress=False)
    again = restore_run(aevb_run, "inpaint", **settings, progress=False)
    key = ("heldout_loglik", "mse", "accept_rate")
    assert [[r[k] for k in key] for r in rows] == [[r[k] for k in key] for r in again]
    assert (aevb_run / "restore_inpaint-random0.5.csv").is_file()


def _snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_bad_input_is_one_line_and_writes_nothing(aevb_run, tmp_path, capsys):
    np.save(tmp_path / "frey_shaped.npy", np.ones((28, 20)))
    np.save(tmp_path / "nothing.npy", np.zeros((28, 28)))
    no_params = tmp_path / "no_params"
    no_params.mkdir()
    for name in ("run.json", "metrics.csv"):
        (no_params / name).write_bytes((aevb_run / name).read_bytes())
    before = _snapshot(aevb_run)
    out = tmp_path / "never"
    cases = [
        (["--task", "inpaint", "--mask", str(tmp_path / "frey_shaped.npy")], "shape (28, 20)"),
        (["--task", "inpaint", "--mask", str(tmp_path / "nothing.npy")], "observes nothing"),
        (["--task", "denoise", "--rho", "0.7"], "--rho"),
        (["--task", "denoise", "--noise-std", "0.1"], "Frey Face"),
        (["--task", "superres", "--k", "3"], "--k"),
        (["--task", "superres", "--obs-noise", "0"], "--obs-noise"),
        (["--task", "inpaint", "--rho", "0.1"], "does not apply"),
        (["--task", "inpaint", "--methods", "mwg,magic"], "--methods"),
    ]
    for args, message in cases:
        assert main(["restore", str(aevb_run), *args, *FAST, "--out", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)
    assert main(["restore", str(no_params), "--task", "inpaint", *FAST]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and err.count("\n") == 1
    assert main(["restore", str(tmp_path / "absent"), "--task", "inpaint", *FAST]) == 2
    capsys.readouterr()
    assert main(["restore", str(aevb_run), "--task", "inpaint", "--n-points", "0"]) == 2
    assert (
        not out.exists()
        and _snapshot(aevb_run) == before
        and sorted(p.name for p in no_params.iterdir()) == ["metrics.csv", "run.json"]
    )


def test_library_errors():
    with pytest.raises(ValueError, match="unknown sampler"):
        samplers.sample_posterior(None, None, torch.zeros(1, 4), torch.zeros(1, 4), method="gibbs")
