"""Evaluating the three treatments of theta (ml, map, vb) on the same footing.

Per split (its first ``n_points`` points; the dataset-level bound uses the whole split), for the
parameters at one snapshot:

  hmc          the appendix D estimate of log p(x | theta) at the point estimate (ML, MAP) or at
               theta = mu_theta (VB), exactly vaebench.marginal.estimators.hmc_log_marginal (same draws for
               the same seed), in the run folder's marginal_hmc.csv in vaebench.marginal.run' format.
  plugin       log p(x | theta) at the same parameters by importance sampling (k_plugin draws), the
               proposal fitted to the same HMC posterior samples (below): a cross-check of that
               proposal against the appendix D estimate.
  predictive   VB: the posterior predictive log (1/S) sum_s p(x | theta_s), theta_s ~ q(theta);
               each p(x | theta_s) by importance sampling with k draws from that proposal. For ML
               and MAP it is ``plugin`` (S = 1).
  dataset_bound  VB: L(phi; X) / N of eq. F.2 on the whole split X (N its size):
               E_q(theta)[ mean_i L(theta, phi; x_i) ] - KL(q(theta) || p(theta)) / N, over
               S_bound draws of theta (fewer on a large split: bound_draws); L(theta, phi; x_i)
               the SGVB-B estimate (analytic KL of z, one z per point and draw).

Why not importance sampling through the encoder: at N_train = 1,000 the encoder generalises
badly, and q(z|x) as proposal misses the posterior of test points by tens of nats (the committed
Figure 3 medium run at 1e7: -167.8 against the appendix D estimate's -141.0). The proposal here is
fitted per datapoint to the appendix D estimator's own HMC posterior samples (all 2 x
samples_per_point of them, at the point estimate or mu_theta): a multivariate Student-t
(``T_DF`` degrees of freedom) with that mean and ``T_SCALE`` times its Cholesky factor, heavy
tailed so that it covers p(z | x, theta_s) for draws theta_s near mu_theta. The estimate of
p(x | theta_s) is unbiased, so the average over s (and k) is unbiased for the predictive density
and its log a stochastic lower bound, like the importance-sampled log p(x).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import torch

from vaebench.bound import estimate
from vaebench.marginal import estimators as marginal
from vaebench.marginal.run import marginal_row
from vaebench.models import VAE

QUANTITIES = ("plugin", "predictive", "dataset_bound")
DEFAULTS = {
    "n_points": 1000,
    "samples_per_point": 50,
    "leapfrog": 4,
    "burn_in": 200,
    "thin": 2,
    "seed": 0,
    "S": 20,
    "k": 100,
    "k_plugin": 1000,
    "S_bound": 100,
    "bound_rows": 2_000_000,
}
T_DF = 4  # ours: the proposal's degrees of freedom
T_SCALE = 1.2  # ours: its scale, relative to the fitted Gaussian's


# ---- models ------------------------------------------------------------------------------------


def load_model(cfg, x_dim: int, likelihood: str, state: dict, device="cpu"):
    """The run's model with ``state`` loaded: a VBVAE for theta = vb, else the plain VAE."""
    if cfg.theta == "vb":
        from vaebench.algorithms.full_vb import build_run_model
    else:
        from vaebench.marginal.run import build_run_model
    model = build_run_model(cfg, x_dim, likelihood)
    model.load_state_dict(state)
    return model.to(device).eval()


def at_mean(model) -> VAE:
    """The plain VAE at theta = mu_theta (the model itself without q(theta))."""
    return VAE(model.encoder, model.decoder, model.nz).eval() if hasattr(model, "q_theta") else model


def draw_models(model, S: int, generator=None) -> list[VAE]:
    """S plain VAEs with decoder parameters theta_s ~ q(theta) (sharing the encoder); for a model
    without q(theta), the model itself once."""
    if not hasattr(model, "q_theta"):
        return [model]
    out = []
    with torch.no_grad():
        means = model.decoder_means()
        for _ in range(S):
            theta, _ = model.q_theta.sample(means, generator)
            dec = copy.deepcopy(model.decoder)
            for name, p in dec.named_parameters():
                p.copy_(theta[name])
            out.append(VAE(model.encoder, dec, model.nz).eval())
    return out


# ---- the estimates -----------------------------------------------------------------------------


def appendix_d(model, x, *, samples: int, leapfrog: int, burn_in: int, thin: int, generator=None, chunk: int = 1000):
    """vaebench.marginal.estimators.hmc_log_marginal (the same computation, the same draws), also returning
    the HMC posterior samples (2 x samples, n, nz) that the proposal is fitted to."""
    log_px, stderr, accepts, kept = [], [], [], []
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk]
        z0 = marginal.initial_z(model, xb, generator=generator)
        part = marginal.appendix_d_chunk(
            model, xb, z0, samples=samples, n_leapfrog=leapfrog, burn_in=burn_in, thin=thin, generator=generator
        )
        log_px.append(part.log_px)
        stderr.append(part.stderr)
        accepts.append(part.accept)
        kept.append(part.samples)
    acc = torch.cat(accepts)
    est = marginal.MarginalEstimate(torch.cat(log_px), torch.cat(stderr), {"mean_accept": float(acc.mean())})
    return est, torch.cat(kept, dim=1)


class Proposal:
    """A multivariate Student-t per datapoint, fitted to posterior samples (L, n, nz)."""

    def __init__(self, samples: torch.Tensor, df: int = T_DF, scale: float = T_SCALE):
        self.mean, chol = marginal.fit_gaussian(samples)
        self.chol, self.df = chol * scale, int(df)

    def sample(self, k: int, generator=None) -> torch.Tensor:
        n, d = self.mean.shape
        eps = torch.randn((k, n, d), generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        chi2 = (
            torch.randn((k, n, self.df), generator=generator, dtype=self.mean.dtype, device=self.mean.device)
            .square()
            .sum(-1)
        )
        return self.mean + torch.einsum("nij,knj->kni", self.chol, eps) * torch.sqrt(self.df / chi2).unsqueeze(-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        d, nu = z.shape[-1], float(self.df)
        diff = (z - self.mean).unsqueeze(-1)
        sol = torch.linalg.solve_triangular(self.chol.expand(z.shape[0], *self.chol.shape), diff, upper=False)
        maha = sol.squeeze(-1).square().sum(-1)
        logdet = self.chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (
            math.lgamma((nu + d) / 2)
            - math.lgamma(nu / 2)
            - 0.5 * d * math.log(nu * math.pi)
            - logdet
            - 0.5 * (nu + d) * torch.log1p(maha / nu)
        )


@torch.no_grad()
def importance(model, x, proposal: Proposal, *, k: int, generator=None, k_chunk: int = 100) -> torch.Tensor:
    """log p^(x | theta) per datapoint: logmeanexp_k [log p(x, z_k) - log r(z_k)], z_k ~ r (the proposal);
    returns the (k, n) log weights."""
    parts = []
    for k0 in range(0, k, k_chunk):
        z = proposal.sample(min(k_chunk, k - k0), generator)
        parts.append(model.log_joint(x, z) - proposal.log_prob(z))
    return torch.cat(parts)


@torch.no_grad()
def predictive(model, x, proposal: Proposal, *, S: int, k: int, generator=None) -> marginal.MarginalEstimate:
    """log (1/(S k)) sum_s sum_k p(x, z_sk | theta_s) / r(z_sk), theta_s ~ q(theta) (S = 1 and
    theta = the point estimate without q(theta)): per datapoint, with the delta-method standard
    error over the S k independent weights."""
    logw = torch.cat([importance(m, x, proposal, k=k, generator=generator) for m in draw_models(model, S, generator)])
    lme, se = marginal._logmeanexp_with_stderr(logw)
    return marginal.MarginalEstimate(lme, se, {"S": S, "k": k})


@torch.no_grad()
def dataset_bound(
    model, x: torch.Tensor, *, S: int = DEFAULTS["S_bound"], generator=None, chunk: int = 10_000
) -> tuple[float, float]:
    """L(phi; X) / N (eq. F.2) for X = the rows of ``x``: the mean over S draws theta_s ~ q(theta)
    of the SGVB-B bound averaged over X, minus KL(q(theta) || p(theta)) / N; with its Monte
    Carlo standard error over the draws."""
    n = x.shape[0]
    per_draw = []
    for m in draw_models(model, S, generator):
        total = 0.0
        for start in range(0, n, chunk):
            total += float(estimate(m, x[start : start + chunk], "B", 1, generator).value.double().sum())
        per_draw.append(total / n)
    t = torch.tensor(per_draw, dtype=torch.float64)
    kl = float(model.q_theta.kl(model.decoder_means()))
    se = float(t.std(unbiased=True) / len(per_draw) ** 0.5) if len(per_draw) > 1 else 0.0
    return float(t.mean()) - kl / n, se


def bound_draws(settings: dict, n: int) -> int:
    """Draws of theta for the dataset-level bound of a split of n points: S_bound, fewer for a large
    split (at most ``bound_rows`` bound evaluations, but at least 10 draws)."""
    return max(min(10, settings["S_bound"]), min(settings["S_bound"], settings["bound_rows"] // max(n, 1)))


def _seed(seed: int, samples_seen: int, split: str, salt: int = 0) -> int:
    """vaebench.marginal.run.evaluate_run's seed for (seed, snapshot, split), salted for our other draws."""
    return (seed * 1_000_003 + samples_seen * 7 + (split == "test") + 1_000_000_007 * salt) % (2**63 - 1)


def hmc_settings(s: dict) -> dict:
    """The appendix D settings of ``s`` as marginal_hmc.csv keys its rows (vaebench.marginal.run)."""
    keys = ("seed", "samples_per_point", "leapfrog", "burn_in", "thin")
    return {"method": "hmc", **{key: s[key] for key in keys}, "k": ""}


def evaluate_params(
    cfg, model, splits: dict, settings: dict, samples_seen: int, *, predictive_too: bool = True, device="cpu"
):
    """Every estimate for one set of parameters. ``splits``: split name -> the whole split.
    Returns (marginal_hmc.csv rows, our rows) without the run's name."""
    s = {**DEFAULTS, **settings}
    vb = hasattr(model, "q_theta")
    n_train = splits["train"].shape[0]
    hmc_rows, rows = [], []

    def row(split, quantity, value, se, n, S="", k="", wall=0.0):
        rows.append(
            {
                "theta": cfg.theta,
                "n_train": n_train,
                "nz": cfg.nz,
                "samples_seen": samples_seen,
                "split": split,
                "quantity": quantity,
                "value": repr(float(value)),
                "stderr": repr(float(se)),
                "n_points": n,
                "S": S,
                "k": k,
                "seed": s["seed"],
                "wall_s": round(wall, 2),
            }
        )

    for split, x_all in splits.items():
        x = x_all[: s["n_points"]].to(device)
        mean_model = at_mean(model)
        t0 = time.perf_counter()
        gen = torch.Generator(device=device).manual_seed(_seed(s["seed"], samples_seen, split))
        est, zs = appendix_d(
            mean_model,
            x,
            samples=s["samples_per_point"],
            leapfrog=s["leapfrog"],
            burn_in=s["burn_in"],
            thin=s["thin"],
            generator=gen,
        )
        wall = time.perf_counter() - t0
        hmc_rows.append(marginal_row(cfg, n_train, samples_seen, split, hmc_settings(s), x.shape[0], est, wall))
        proposal = Proposal(zs)
        gen = torch.Generator(device=device).manual_seed(_seed(s["seed"], samples_seen, split, 1))
        t0 = time.perf_counter()
        plug = predictive(mean_model, x, proposal, S=1, k=s["k_plugin"], generator=gen)
        row(split, "plugin", plug.mean, plug.mean_stderr, x.shape[0], 1, s["k_plugin"], time.perf_counter() - t0)
        if vb and predictive_too:
            gen = torch.Generator(device=device).manual_seed(_seed(s["seed"], samples_seen, split, 2))
            t0 = time.perf_counter()
            pred = predictive(model, x, proposal, S=s["S"], k=s["k"], generator=gen)
            row(split, "predictive", pred.mean, pred.mean_stderr, x.shape[0], s["S"], s["k"], time.perf_counter() - t0)
        if vb:
            gen = torch.Generator(device=device).manual_seed(_seed(s["seed"], samples_seen, split, 3))
            t0 = time.perf_counter()
            S_bound = bound_draws(s, x_all.shape[0])
            value, se = dataset_bound(model, x_all.to(device), S=S_bound, generator=gen)
            row(split, "dataset_bound", value, se, x_all.shape[0], S_bound, "", time.perf_counter() - t0)
    return hmc_rows, rows


# ---- a run ---------------------------------------------------------------------------------------

# fmt: off
ESTIMATE_COLUMNS = ("run", "theta", "n_train", "nz", "samples_seen", "split", "quantity", "value", "stderr", "n_points",
                    "S", "k", "seed", "wall_s")
# fmt: on
_KEYS = ("run", "samples_seen", "split", "quantity", "n_points", "S", "k", "seed")


def read_estimates(path) -> list[dict]:
    """The rows of an estimates CSV (ESTIMATE_COLUMNS); [] if there is none."""
    import csv

    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_estimates(path, rows: list[dict]) -> None:
    from vaebench.fileio import atomic_write_csv

    atomic_write_csv(path, ESTIMATE_COLUMNS, rows)


def evaluate_run(
    run_dir,
    estimates_csv,
    settings: dict,
    *,
    min_samples: float = 0,
    only=None,
    data=None,
    device="cpu",
    progress: bool = False,
) -> None:
    """Every estimate (evaluate_params) at each snapshot of the run from ``min_samples`` on (or the
    samples_seen values in ``only``): marginal_hmc.csv in the run folder (vaebench.runs), the
    others in ``estimates_csv`` (one file for many runs, keyed by the run's folder name). A snapshot
    whose estimates with these settings are all there is skipped."""
    from vaebench.data import load_run_data
    from vaebench.marginal.run import _same_settings
    from vaebench.runs import RunFolder

    s = {**DEFAULTS, **settings}
    folder = RunFolder(run_dir)
    cfg = folder.read_config()
    with folder.lock("full-vb evaluation"):
        params = folder.parameters("all", min_samples)
        if only is not None:
            params = [p for p in params if p[0] in {int(float(o)) for o in only}]
        if data is None:
            data = load_run_data(cfg)
        splits = {"train": data.train, "test": data.test}
        used = {split: min(s["n_points"], x.shape[0]) for split, x in splits.items()}
        for samples_seen, path, kind in params:
            hmc = folder.read_marginal("hmc")
            have_hmc = {
                r["split"]
                for r in hmc
                if int(r["samples_seen"]) == samples_seen
                and _same_settings(r, {**hmc_settings(s), "n_points": used[r["split"]]})
            }
            ours = read_estimates(estimates_csv)
            wanted = {(q, split) for split in splits for q in QUANTITIES if cfg.theta == "vb" or q == "plugin"}
            have = {
                (r["quantity"], r["split"])
                for r in ours
                if r["run"] == folder.name
                and int(r["samples_seen"]) == samples_seen
                and str(r["seed"]) == str(s["seed"])
                and str(r["n_points"])
                == str(used[r["split"]] if r["quantity"] != "dataset_bound" else splits[r["split"]].shape[0])
                and str(r["S"])
                == str(
                    {"plugin": 1, "predictive": s["S"], "dataset_bound": bound_draws(s, splits[r["split"]].shape[0])}[
                        r["quantity"]
                    ]
                )
                and str(r["k"])
                == str({"plugin": s["k_plugin"], "predictive": s["k"], "dataset_bound": ""}[r["quantity"]])
            }
            if have_hmc == set(splits) and wanted <= have:
                continue
            t0 = time.perf_counter()
            model = load_model(cfg, data.x_dim, data.likelihood, folder.load_parameters(path, kind), device)
            hmc_rows, rows = evaluate_params(cfg, model, splits, s, samples_seen, device=device)
            for r in hmc_rows:
                r["run"] = folder.name
            for r in rows:
                r["run"] = folder.name
            new_keys = {(int(r["samples_seen"]), r["split"], str(r["n_points"])) for r in hmc_rows}
            hmc = [
                r
                for r in folder.read_marginal("hmc")
                if not (
                    (int(r["samples_seen"]), r["split"], str(r["n_points"])) in new_keys
                    and _same_settings(r, {**hmc_settings(s), "n_points": r["n_points"]})
                )
            ] + hmc_rows
            hmc.sort(key=lambda r: (int(r["samples_seen"]), r["split"] != "train", str(r["n_points"])))
            folder.write_marginal("hmc", hmc)
            key = lambda r: tuple(str(r[c]) for c in _KEYS)  # noqa: E731
            replaced = {key(r) for r in rows}
            ours = [r for r in read_estimates(estimates_csv) if key(r) not in replaced] + rows
            ours.sort(key=lambda r: (r["run"], int(r["samples_seen"]), r["split"] != "train", r["quantity"]))
            write_estimates(estimates_csv, ours)
            if progress:
                got = {(r["quantity"], r["split"]): float(r["value"]) for r in rows}
                got.update({("hmc", r["split"]): float(r["marginal_log_likelihood"]) for r in hmc_rows})
                print(
                    f"{folder.name} @ {samples_seen:,}: "
                    + ", ".join(f"{q} {sp} {v:.2f}" for (q, sp), v in sorted(got.items()))
                    + f" ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )


def check_proposal(
    run_dir, *, n_points: int = 200, draws: int = 3, seed: int = 0, settings: dict | None = None
) -> Path:
    """The predictive's proposal against the appendix D estimator at single draws theta_s: at the
    run's last snapshot, per split, log p(x | theta) at mu_theta and at ``draws`` draws theta_s ~ q(theta)
    by the appendix D estimator (its own HMC at theta_s) and by importance sampling from the proposal
    fitted at mu_theta (k_plugin draws), with the importance weights' median effective sample size.
    Writes <out>/proposal_check.csv beside the run folder."""
    from vaebench.data import load_run_data
    from vaebench.fileio import atomic_write_text
    from vaebench.runs import RunFolder

    s = {**DEFAULTS, **(settings or {})}
    folder = RunFolder(run_dir)
    cfg = folder.read_config()
    data = load_run_data(cfg)
    samples_seen, path, kind = folder.parameters("all")[-1]
    model = load_model(cfg, data.x_dim, data.likelihood, folder.load_parameters(path, kind))
    hmc = dict(samples=s["samples_per_point"], n_leapfrog=s["leapfrog"], burn_in=s["burn_in"], thin=s["thin"])
    lines = ["run,samples_seen,split,n_points,theta_draw,appendix_d,importance_fitted_proposal,difference,median_ess,k"]
    for split, x_all in (("train", data.train), ("test", data.test)):
        x = x_all[:n_points]
        g = torch.Generator().manual_seed(seed)
        est, zs = appendix_d(
            at_mean(model),
            x,
            samples=hmc["samples"],
            leapfrog=hmc["n_leapfrog"],
            burn_in=hmc["burn_in"],
            thin=hmc["thin"],
            generator=g,
        )
        proposal = Proposal(zs)
        for i, m in enumerate([at_mean(model)] + draw_models(model, draws, g)):
            h = est if i == 0 else marginal.hmc_log_marginal(m, x, generator=g, **hmc)
            logw = importance(m, x, proposal, k=s["k_plugin"], generator=g)
            lme, _ = marginal._logmeanexp_with_stderr(logw)
            w = torch.softmax(logw, 0)
            ess = float((1 / w.square().sum(0)).median())
            imp = float(lme.double().mean())
            lines.append(
                f"{folder.name},{samples_seen},{split},{x.shape[0]},{'mu' if i == 0 else i},{h.mean:.4f},"
                f"{imp:.4f},{imp - h.mean:.4f},{ess:.0f},{s['k_plugin']}"
            )
    out = folder.path.parent / "proposal_check.csv"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out
