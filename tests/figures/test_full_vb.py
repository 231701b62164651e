"""Full VB over the decoder's parameters (appendix F): the estimators against a closed form, the
reductions VB -> MAP -> ML, training, resumption and bad input."""

import copy
import json
import math

import pytest
import torch
from torch import nn

from tests.helpers import interrupt_at, read_metrics, run_cli, tiny_config, tiny_dataset
from vaebench.algorithms.aevb import AEVB
from vaebench.algorithms.full_vb import (
    VBVAE,
    FullVB,
    ThetaPosterior,
    build_vb_model,
    objective,
    rho_of,
    sigma_of,
    vb_estimate,
)
from vaebench.config import RunConfig
from vaebench.marginal import vb as vb_evaluation
from vaebench.models import build_model
from vaebench.train import Trainer, train

LOG_2PI = math.log(2 * math.pi)


# ---- a model with a closed-form bound ---------------------------------------------------------


class LinearEncoder(nn.Module):
    """q(z|x) = N(A x + a, diag exp(B x + b)): any fixed map of x will do."""

    def __init__(self, d, k):
        super().__init__()
        self.mu, self.lv = nn.Linear(d, k), nn.Linear(d, k)

    def forward(self, x):
        return self.mu(x), self.lv(x)

    def log_prob(self, z, mu, logvar):
        return -0.5 * (LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar)).sum(-1)


class LinearGaussianDecoder(nn.Module):
    """p(x|z, theta) = N(x; W z + b, I), theta = (W, b)."""

    likelihood = "gaussian"

    def __init__(self, k, d):
        super().__init__()
        self.lin = nn.Linear(k, d)

    def log_prob(self, x, z):
        return -0.5 * ((x - self.lin(z)).square() + LOG_2PI).sum(-1)


def linear_gaussian_vb(seed=0, n=8, d=3, k=2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    enc, dec = LinearEncoder(d, k).to(dtype), LinearGaussianDecoder(k, d).to(dtype)
    with torch.no_grad():
        for p in [*enc.parameters(), *dec.parameters()]:
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=dtype))
    q = ThetaPosterior(dec, sigma_init=0.3, sigma_param="log").to(dtype)
    with torch.no_grad():
        for r in q.rho.values():
            r.add_(0.3 * torch.randn(r.shape, generator=g, dtype=dtype))
    x = torch.randn((n, d), generator=g, dtype=dtype)
    return VBVAE(enc, dec, k, q), x


def closed_form_bound(model, x) -> float:
    """L(phi; X) / N (eq. F.2 with the bound of F.3-F.4 inside) for the linear-Gaussian model:
    E_q(theta) E_q(z|x) log N(x; W z + b, I) - KL(q(z|x)||p(z)), averaged, - KL(q(theta)||p(theta)) / N."""
    with torch.no_grad():
        m, lv = model.encoder(x)
        v = lv.exp()
        sig = model.q_theta.sigmas()
        W, b = model.decoder.lin.weight, model.decoder.lin.bias  # (d, k), (d,)
        sW, sb = sig["lin.weight"], sig["lin.bias"]
        r = x - m @ W.T - b  # residual at the means
        # Var(w_d . z) for independent w_d ~ N(W_d, sW_d^2), z ~ N(m, v): sum_k (W^2 + sW^2)(m^2 + v) - W^2 m^2
        var = (
            (W.square() + sW.square()).unsqueeze(0) * (m.square() + v).unsqueeze(1)
            - W.square().unsqueeze(0) * m.square().unsqueeze(1)
        ).sum(-1)  # (n, d)
        expected_sq = (r.square() + var + sb.square()).sum(-1)
        data = -0.5 * (x.shape[1] * LOG_2PI + expected_sq)
        kl_z = 0.5 * (m.square() + v - 1 - lv).sum(-1)
        kl_theta = model.q_theta.kl(model.decoder_means())
        return float((data - kl_z).mean() - kl_theta / x.shape[0])


def sample_objective(model, x, estimator, reps, batch, seed=1):
    """``reps`` minibatch estimates of L(phi; X) / N: a random minibatch of ``batch`` points (without
    replacement), one theta, the per-datapoint scaling of the trainer."""
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    out = []
    with torch.no_grad():
        for _ in range(reps):
            idx = torch.randperm(n, generator=g)[:batch]
            est = vb_estimate(model, x[idx], estimator, 1, g)
            out.append(float(est.data.mean() + est.theta_term / n))
    return torch.tensor(out, dtype=torch.float64)


def test_f10_and_f12_are_unbiased_and_f12_has_the_lower_variance():
    """Minibatches of 4 of the 8 points (the N/M scaling) and the whole set (the estimators' own
    variance, without the minibatch's)."""
    model, x = linear_gaussian_vb()
    truth = closed_form_bound(model, x)
    stats = {}
    for batch in (4, 8):
        for est in ("A", "B"):  # A: eq. F.10, B: eq. F.12
            s = sample_objective(model, x, est, reps=2000, batch=batch)
            mean, se = float(s.mean()), float(s.std() / math.sqrt(len(s)))
            stats[batch, est] = (mean, se, float(s.var()))
            assert abs(mean - truth) < 4 * se, (batch, est, mean, truth, se)
    ratios = {b: stats[b, "A"][2] / stats[b, "B"][2] for b in (4, 8)}
    message = (
        f"closed form {truth:.4f}; F.10 {stats[8, 'A'][0]:.4f} ± {stats[8, 'A'][1]:.4f}, F.12 "
        f"{stats[8, 'B'][0]:.4f} ± {stats[8, 'B'][1]:.4f}; variance ratio F.10 / F.12 = {ratios[8]:.1f} "
        f"(whole set), {ratios[4]:.2f} (minibatches of 4 of 8)"
    )
    assert ratios[8] > 1.2 and ratios[4] > 1.2, message  # 2000 draws: the ratio is known to about ±0.06
    print(message)


def test_the_closed_form_itself_against_brute_force():
    """The closed form's expectation, checked by brute Monte Carlo with its own sampler."""
    model, x = linear_gaussian_vb(seed=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        m, lv = model.encoder(x)
        sig = model.q_theta.sigmas()
        R = 200_000
        W = model.decoder.lin.weight + sig["lin.weight"] * torch.randn(
            (R, *sig["lin.weight"].shape), generator=g, dtype=x.dtype
        )
        b = model.decoder.lin.bias + sig["lin.bias"] * torch.randn(
            (R, *sig["lin.bias"].shape), generator=g, dtype=x.dtype
        )
        z = m + (0.5 * lv).exp() * torch.randn((R, *m.shape), generator=g, dtype=x.dtype)  # (R, n, k)
        mean = torch.einsum("rdk,rnk->rnd", W, z) + b.unsqueeze(1)
        data = -0.5 * ((x - mean).square() + LOG_2PI).sum(-1).mean(0)
        kl_z = 0.5 * (m.square() + lv.exp() - 1 - lv).sum(-1)
        brute = float((data - kl_z).mean() - model.q_theta.kl(model.decoder_means()) / x.shape[0])
    assert closed_form_bound(model, x) == pytest.approx(brute, abs=0.02)


# ---- VB -> MAP -> ML --------------------------------------------------------------------------


def small_models(n_train=500, sigma=1e-30, seed=0, dim=12, estimator="B"):
    data = tiny_dataset(dim=dim)
    opts = RunConfig(theta="vb", options={"sigma_init": sigma, "sigma_param": "log"}).algorithm_options
    vb = build_vb_model(dim, 2, 16, "bernoulli", generator=torch.Generator().manual_seed(seed), options=opts)
    point = build_model(dim, 2, 16, "bernoulli", generator=torch.Generator().manual_seed(seed))
    return vb, point, data.train[:50]


def grads(loss, params):
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize("estimator", ["B", "A"])
def test_vb_objective_and_gradients_reduce_to_maps_as_sigma_goes_to_zero(estimator):
    vb, point, x = small_models()
    assert all(
        torch.equal(a, b) for a, b in zip(point.parameters(), [*vb.encoder.parameters(), *vb.decoder.parameters()])
    )
    n = 500
    g = torch.Generator().manual_seed(7)
    eps = torch.randn((1, x.shape[0], 2), generator=g)
    zeta = {k: torch.randn(p.shape, generator=g) for k, p in vb.decoder.named_parameters()}
    f_vb = objective(vb, x, theta="vb", n_train=n, estimator=estimator, eps=eps, zeta=zeta)
    f_map = objective(point, x, theta="map", n_train=n, estimator=estimator, eps=eps)
    # what depends on sigma only: H[q] (F.12), -log q(theta) = H[q] + sum(zeta^2 - 1) / 2 (F.10)
    h = vb.q_theta.entropy()
    if estimator == "A":
        h = h + 0.5 * sum((z.square() - 1).sum() for z in zeta.values())
    assert float((f_vb - h / n).detach()) == pytest.approx(float(f_map.detach()), abs=1e-4)
    mine = [*vb.encoder.parameters(), *vb.decoder.parameters()]
    for a, b in zip(grads(f_vb, mine), grads(f_map, list(point.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_a_vb_step_with_sigma_near_zero_is_a_map_step():
    """The trainer's steps: the same draws of z, the same updates of phi and mu_theta (sigma_theta
    moves on its own)."""
    vb, point, x = small_models()
    fvb = FullVB(vb, lr=0.1, n_train=500)
    fmap = AEVB(point, lr=0.1, n_train=500, prior=True)
    for seed in range(3):
        fvb.step(x, torch.Generator().manual_seed(seed))
        fmap.step(x, torch.Generator().manual_seed(seed))
    for a, b in zip([*vb.encoder.parameters(), *vb.decoder.parameters()], point.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def adagrad_by_hand(model, x, theta, n, seeds, lr=0.1):
    """Plain Adagrad (torch's arithmetic) on the gradient of ``objective``."""
    params = list(model.parameters())
    acc = [torch.zeros_like(p) for p in params]
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        loss = -objective(model, x, theta=theta, n_train=n, generator=g)
        with torch.no_grad():
            for p, a, d in zip(params, acc, grads(loss, params)):
                a.add_(d * d)
                p.sub_(lr * d / (a.sqrt() + 1e-10))


@pytest.mark.parametrize("theta", ["map", "ml"])
def test_the_papers_optimiser_ascends_the_map_and_ml_objectives(theta):
    """MAP's weight decay 1/N is the gradient of log p(theta) / N; without the prior (ML) it is 0."""
    _, point, x = small_models()
    by_hand = copy.deepcopy(point)
    algo = AEVB(point, lr=0.1, n_train=500, prior=theta == "map")
    for seed in range(3):
        algo.step(x, torch.Generator().manual_seed(seed))
    adagrad_by_hand(by_hand, x, theta, 500, range(3))
    for a, b in zip(point.parameters(), by_hand.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_map_objective_without_the_prior_is_mls():
    _, point, x = small_models()
    eps = torch.randn((1, x.shape[0], 2), generator=torch.Generator().manual_seed(1))
    f_map = objective(point, x, theta="map", n_train=500, eps=eps)
    f_ml = objective(point, x, theta="ml", n_train=500, eps=eps)
    log_prior = -0.5 * sum(float(p.detach().square().sum()) + p.numel() * LOG_2PI for p in point.parameters())
    assert float(f_map) - log_prior / 500 == pytest.approx(float(f_ml), abs=1e-5)
    params = list(point.parameters())
    for gm, gl, p in zip(grads(f_map, params), grads(f_ml, params), params):
        torch.testing.assert_close(gm, gl - p / 500)


def test_sigma_parameterisations_invert():
    for param in ("log", "softplus"):
        for s in (1e-8, 1e-3, 0.5, 3.0):
            assert float(sigma_of(torch.tensor(rho_of(s, param), dtype=torch.float64), param)) == pytest.approx(s)
    with pytest.raises(ValueError):
        rho_of(0.0, "log")


# ---- training --------------------------------------------------------------------------------


def vb_config(**kw):
    return tiny_config(theta="vb", **kw)


def test_short_vb_run_on_mnist_raises_its_dataset_level_bound(tmp_path):
    from vaebench.data import load_dataset

    data = load_dataset("mnist", None, n_train=500, seed=0)
    cfg = RunConfig(
        theta="vb", nz=3, hidden=50, n_train=500, samples=60_000, lr=0.1, first_eval=10_000, snapshots=True
    ).check()
    train(cfg, tmp_path / "r", data=data, progress=False)
    snaps = sorted((tmp_path / "r" / "snapshots").glob("params_*.pt"))
    first, last = (
        vb_evaluation.load_model(cfg, data.x_dim, data.likelihood, torch.load(p), "cpu") for p in (snaps[0], snaps[-1])
    )
    g = torch.Generator().manual_seed(0)
    before, se0 = vb_evaluation.dataset_bound(first, data.train, S=20, generator=g)
    after, se1 = vb_evaluation.dataset_bound(last, data.train, S=20, generator=g)
    assert after > before + 10 * (se0 + se1) and after > before + 5, (before, after)
    # sigma_theta moved away from its start, and the snapshots carry it
    sig = torch.cat([s.flatten() for s in last.q_theta.sigmas().values()])
    assert float(sig.max()) > 10 * cfg.algorithm_options.sigma_init


def test_vb_resume_is_bit_identical(tmp_path, monkeypatch):
    data = tiny_dataset()
    cfg = vb_config(options={"kl_warmup": 3000})  # the warm-up's clock is in the checkpoint too
    train(cfg, tmp_path / "whole", data=data, progress=False)
    undo = interrupt_at(monkeypatch, 37)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "split", data=data, progress=False)
    undo()
    train(cfg, tmp_path / "split", resume=True, data=data, progress=False)
    assert read_metrics(tmp_path / "whole" / "metrics.csv") == read_metrics(tmp_path / "split" / "metrics.csv")
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["trainer"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)["trainer"]
    assert any(k.startswith("q_theta.") for k in a["model"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["algorithm"]["samples"] == b["algorithm"]["samples"] == cfg.samples


def test_the_three_treatments_start_from_the_same_parameters():
    data = tiny_dataset()
    models = {t: Trainer(tiny_config(theta=t).check(), data, 0.1).model for t in ("ml", "map", "vb")}
    ref = models["map"].state_dict()
    for t in ("ml", "vb"):
        sd = models[t].state_dict()
        assert all(torch.equal(ref[k], sd[k]) for k in ref)


def test_kl_warmup_weights_the_theta_term():
    vb, _, x = small_models(sigma=0.1)
    algo = FullVB(vb, lr=0.1, n_train=500, kl_warmup=1000)
    assert algo.kl_weight() == 0.0
    algo.step(x, torch.Generator().manual_seed(0))
    assert algo.kl_weight() == pytest.approx(50 / 1000)


def test_train_theta_vb_from_the_cli_and_from_a_config(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["train", *"--theta vb --nz 2 --hidden 20 --samples 2000 --n-train 1000 --lr 0.02".split()]
    args += ["--out", str(out), "--no-progress", "--threads", "1"]
    code, stdout, err = run_cli(capsys, *args)
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["config"]["theta"] == "vb"
    code, stdout, _ = run_cli(capsys, "train", "--out", str(out), "--resume", "--samples", "3000", "--no-progress")
    assert code == 0 and "3,000 samples" in stdout
    toml = tmp_path / "vb.toml"
    toml.write_text(
        'theta = "vb"\nestimator = "A"\nnz = 2\nhidden = 20\nsamples = 1000\nn_train = 1000\n'
        'lr = 0.02\n[options]\nsigma_init = 0.01\nsigma_param = "log"\nkl_warmup = 500\n'
    )
    code, stdout, err = run_cli(capsys, "train", "--config", str(toml), "--out", str(tmp_path / "c"), "--no-progress")
    assert code == 0, err
    cfg = json.loads((tmp_path / "c" / "run.json").read_text())["config"]
    assert cfg["options"] == {"sigma_init": 0.01, "sigma_param": "log", "kl_warmup": 500} and cfg["estimator"] == "A"


@pytest.mark.parametrize(
    "argv, toml, message",
    [
        (["--theta", "bayes"], None, "invalid choice: 'bayes'"),
        (["--theta", "vb", "--estimator", "score"], None, "theta vb takes estimator A (eq. F.10) or B (eq. F.12)"),
        (["--theta", "vb", "--algorithm", "mcem"], None, "implemented for algorithm aevb"),
        ([], 'theta = "vb"\n[options]\nsigma_init = 0.0\n', "sigma_init (the initial sigma_theta) must be in (0, 10]"),
        ([], 'theta = "vb"\n[options]\nsigma_init = -1\n', "must be in (0, 10]"),
        ([], 'theta = "vb"\n[options]\nsigma_param = "exp"\n', "unknown vb option sigma_param 'exp'"),
        ([], 'theta = "map"\n[options]\nsigma_init = 0.1\n', "are those of theta = vb"),
    ],
)
def test_bad_vb_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, toml, message):
    extra = []
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml)
        extra = ["--config", str(tmp_path / "c.toml")]
    code, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "r"), *extra, *argv, "--no-progress")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


# ---- the estimates ---------------------------------------------------------------------------


def trained_tiny(theta, steps=150, sigma_init=1e-3):
    data = tiny_dataset()
    cfg = tiny_config(
        theta=theta, samples=steps * 100, **({"options": {"sigma_init": sigma_init}} if theta == "vb" else {})
    ).check()
    t = Trainer(cfg, data, 0.1)
    for _ in range(steps):
        t.step()
    return cfg, t.model.eval(), data


def test_appendix_d_here_is_the_library_estimator():
    from vaebench.marginal.estimators import hmc_log_marginal

    _, model, data = trained_tiny("map", steps=30)
    x = data.test[:20]
    kw = dict(samples=6, burn_in=10, thin=1)
    ours, zs = vb_evaluation.appendix_d(model, x, leapfrog=4, generator=torch.Generator().manual_seed(3), **kw)
    lib = hmc_log_marginal(model, x, n_leapfrog=4, generator=torch.Generator().manual_seed(3), **kw)
    assert torch.equal(ours.log_px, lib.log_px) and zs.shape == (12, 20, 2)


def test_the_fitted_proposal_agrees_with_appendix_d_and_predictive_reduces_to_plugin():
    cfg, model, data = trained_tiny("vb", sigma_init=1e-6)
    x = data.test[:40]
    g = torch.Generator().manual_seed(0)
    est, zs = vb_evaluation.appendix_d(
        vb_evaluation.at_mean(model), x, samples=50, leapfrog=4, burn_in=100, thin=2, generator=g
    )
    proposal = vb_evaluation.Proposal(zs)
    plug = vb_evaluation.predictive(vb_evaluation.at_mean(model), x, proposal, S=1, k=500, generator=g)
    assert plug.mean == pytest.approx(est.mean, abs=0.1)
    with torch.no_grad():  # sigma_theta tiny: every draw is mu_theta
        for r in model.q_theta.rho.values():
            r.fill_(rho_of(1e-9, model.q_theta.sigma_param))
    pred = vb_evaluation.predictive(model, x, proposal, S=4, k=125, generator=g)
    assert pred.mean == pytest.approx(plug.mean, abs=0.1)


def test_evaluation_rows_of_a_vb_run_and_of_a_point_estimate():
    rows = {}
    settings = dict(n_points=20, samples_per_point=4, burn_in=5, thin=1, S=2, k=10, k_plugin=10, S_bound=2)
    for theta in ("map", "vb"):
        cfg, model, data = trained_tiny(theta, steps=20)
        hmc, rows[theta] = vb_evaluation.evaluate_params(
            cfg, model, {"train": data.train, "test": data.test}, settings, 2000
        )
        assert [r["split"] for r in hmc] == ["train", "test"] and all(r["n_points"] == 20 for r in hmc)
    assert {r["quantity"] for r in rows["map"]} == {"plugin"}
    assert {r["quantity"] for r in rows["vb"]} == set(vb_evaluation.QUANTITIES)
    assert all(math.isfinite(float(r["value"])) for rs in rows.values() for r in rs)
    bound = [r for r in rows["vb"] if r["quantity"] == "dataset_bound"]
    assert [r["n_points"] for r in bound] == [600, 200]  # the whole split


def test_the_studys_config_builds_ml_map_vb_and_the_ablation():
    from vaebench.engine.config import load_config
    from vaebench.figures import full_vb as study

    conf = load_config(study.STUDY)
    runs = study.STUDY.run_specs(conf, "medium", {"ablation": True}, {})
    names = {name: cfg for cfg, name in runs}
    assert {
        "nz3_ntrain1000_ml",
        "nz3_ntrain1000_map",
        "nz3_ntrain1000_vb",
        "nz3_ntrain50000_vb",
        "nz20_ntrain60000_vb",
    } <= set(names)
    vb = names["nz3_ntrain1000_vb"]
    assert (vb.theta, vb.nz, vb.hidden, vb.samples, vb.lr, vb.estimator) == ("vb", 3, 100, 10**7, "auto", "B")
    assert names["nz3_ntrain1000_ml"].theta == "ml" and names["nz3_ntrain1000_ml"].options == {}
    assert names["nz3_ntrain1000_vb-F10"].estimator == "A" and names["nz3_ntrain1000_vb-F10"].samples == 10**6
    assert names["nz3_ntrain1000_vb-log"].options == {**vb.options, "sigma_param": "log"}
    assert all(study.STUDY.run_key(n) is not None for n in names)


TOY_FULL_VB = """
[budgets.quick]
samples = 3000
[budgets.quick.evaluation]
n_points = 10
min_samples = 1000
samples_per_point = 4
burn_in = 5
thin = 1
S = 2
k = 10
k_plugin = 10
S_bound = 2
[defaults]
dataset = "mnist"
batch_size = 100
init_std = 0.01
first_eval = 1000
evals_per_decade = 1
snapshots = true
[algorithms.aevb]
estimator = "B"
lr = 0.02
[panels.nz2]
nz = 2
hidden = 10
n_train = [200]
[theta.ml]
theta = "ml"
[theta.map]
theta = "map"
[theta.vb]
theta = "vb"
[theta.vb.options]
sigma_init = 1e-3
"""


def test_vaebench_reproduce_full_vb_trains_estimates_and_tabulates(tmp_path, capsys):
    toml = tmp_path / "toy.toml"
    toml.write_text(TOY_FULL_VB)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        capsys,
        "reproduce",
        "full-vb",
        "--config",
        str(toml),
        "--budget",
        "quick",
        "--jobs",
        "1",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(out),
    )
    assert code == 0, err
    for theta in ("ml", "map", "vb"):
        info = json.loads((out / f"nz2_ntrain200_{theta}" / "run.json").read_text())
        assert info["config"]["theta"] == theta and info["samples_seen"] == 3000
    table = (out / "full_vb_table.md").read_text()
    assert all(f"| {label} | 3e3 |" in table for label in ("ML", "MAP", "VB")), table
    assert (out / "full_vb.png").stat().st_size > 0
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["command"].startswith("vaebench reproduce full-vb")
    import pandas as pd

    tidy = pd.read_csv(out / "full_vb.csv")
    vb = tidy[(tidy.theta == "vb") & (tidy.samples_seen == 3000)]
    assert {"hmc", "predictive", "dataset_bound", "bound"} <= set(vb.quantity) and vb.value.notna().all()


def test_min_samples_on_the_command_line_overrides_the_configs():
    from vaebench.engine.config import load_config
    from vaebench.figures.full_vb import STUDY

    conf = load_config(STUDY)
    assert STUDY.settings(conf, "medium")["min_samples"] == 100_000
    assert STUDY.setting_overrides({"min_samples": 1e6}) == {"min_samples": 1_000_000}
    assert STUDY.setting_overrides({"min_samples": None}) == {}
