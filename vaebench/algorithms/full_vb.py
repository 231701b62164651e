"""Full VB (the paper's appendix F): a variational posterior over the decoder's parameters.

The model
    q(theta) = N(mu_theta, diag(sigma_theta^2)) over every generative (decoder) parameter,
    theta = mu_theta + sigma_theta * zeta, zeta ~ N(0, I) (reparameterised); the prior
    p(theta) = N(0, I). mu_theta are the decoder's own parameters (so the model *at the mean* is
    an ordinary VAE: the trainer's evaluation, metrics.csv and the appendix D estimator at
    theta = mu_theta need nothing new); sigma_theta = softplus(rho) or exp(rho) (option
    ``sigma_param``), rho held by the model's ``q_theta`` (so snapshots and checkpoints carry the
    whole q(theta)). The encoder q(z|x) stays a point estimate, as in the appendix; it keeps the
    paper's N(0, I) prior as Adagrad weight decay 1/N (exactly as in MAP), so the three treatments
    of theta differ in theta only.

The objective (eq. F.2 and its estimators)
    L(phi; X) = E_q(theta)[ log p(X | theta) + log p(theta) - log q(theta) ]
             >= E_q(theta)[ sum_i L(theta, phi; x_i) ] - KL(q(theta) || p(theta)).
    Generic estimator (eqs. F.9-F.10), one theta and z_l per draw:
        f = N (log p(x|z) + log p(z) - log q(z|x)) + log p(theta) - log q(theta),  x drawn from X.
    Lower-variance estimator (eq. F.12): the four Gaussian terms analytic,
        f = N (log p(x|z) - KL(q(z|x) || p(z))) - KL(q(theta) || p(theta)).
    The run's ``estimator`` picks one: A is F.10 (SGVB A plus the sampled theta terms), B is F.12
    (SGVB B plus the analytic KL of theta).

The per-minibatch scaling we use, and why
    With a minibatch of M points drawn without replacement and ONE theta ~ q(theta) per
    minibatch (shared by its M points and L draws of z), the F.10 estimate of L(phi; X) is
        L_M = (N / M) sum_{i in batch} d_i(theta) + t(theta),
    d_i the data term of x_i (the bracket above, averaged over the L draws of z), t(theta) the
    theta term (log p(theta) - log q(theta) for F.10, -KL(q(theta)||p(theta)) for F.12).
    It is unbiased: E_batch[(N/M) sum_batch d_i] = sum_{i=1}^N d_i for any theta, then take
    E_q(theta). We maximise L_M / N, the bound per datapoint,
        objective = mean_{i in batch} d_i(theta) + t(theta) / N,
    the same scaling as the paper's MAP (mean bound + log p(theta) / N, i.e. weight decay 1/N) and
    ML (mean bound): one step size rule fits all three, and Adagrad is invariant to the constant
    1/N anyway. With the KL warm-up (option ``kl_warmup``: a number of samples), t(theta) / N is
    multiplied by min(1, samples seen / kl_warmup) in the gradient only; the value reported is
    always the unweighted estimate.

How the three treatments nest (tests/figures/test_full_vb.py)
    MAP:  mean bound + log p(theta) / N; ML: mean bound (the prior removed).
    VB, F.12: t = -KL = log p(mu) + H[q] - sum(sigma^2) / 2, with H[q] = sum log(sigma sqrt(2 pi e)).
    VB, F.10: t = log p(theta) + H[q] + sum(zeta^2 - 1) / 2, since -log q(theta) = H[q] + ....
    So as sigma -> 0 (theta -> mu), VB's objective minus H[q] / N (which depends on sigma only)
    becomes MAP's, and its gradients in mu and phi become MAP's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from vaebench.bound import estimate
from vaebench.config import SIGMA_PARAMS, VB_ESTIMATORS, VBOptions
from vaebench.gaussian import LOG_2PI
from vaebench.models import VAE, build_model

# ---- q(theta) ------------------------------------------------------------------------------


def sigma_of(rho: torch.Tensor, param: str) -> torch.Tensor:
    """sigma from its unconstrained parameter rho: softplus(rho) or exp(rho)."""
    return F.softplus(rho) if param == "softplus" else torch.exp(rho)


def rho_of(sigma: float, param: str) -> float:
    """The rho giving ``sigma`` (inverse of sigma_of), computed stably for small and large sigma."""
    if not sigma > 0:
        raise ValueError(f"sigma_theta must be positive, got {sigma}")
    if param == "log":
        return math.log(sigma)
    return sigma + math.log(-math.expm1(-sigma))  # softplus^-1(s) = log(exp(s) - 1)


def _key(name: str) -> str:
    return name.replace(".", "__")


class ThetaPosterior(nn.Module):
    """q(theta) = N(mu, diag(sigma^2)) over the parameters of ``module``: the means are the
    module's own parameters, the scales sigma = s(rho) are held here (one rho per parameter)."""

    def __init__(
        self, module: nn.Module, sigma_init: float = VBOptions.sigma_init, sigma_param: str = VBOptions.sigma_param
    ):
        super().__init__()
        if sigma_param not in SIGMA_PARAMS:
            raise ValueError(f"sigma_param must be one of {', '.join(SIGMA_PARAMS)}, got {sigma_param!r}")
        self.sigma_param = sigma_param
        self.names = [name for name, _ in module.named_parameters()]
        r = rho_of(float(sigma_init), sigma_param)
        self.rho = nn.ParameterDict(
            {_key(n): nn.Parameter(torch.full_like(p.detach(), r)) for n, p in module.named_parameters()}
        )

    def sigmas(self) -> dict[str, torch.Tensor]:
        return {n: sigma_of(self.rho[_key(n)], self.sigma_param) for n in self.names}

    def numel(self) -> int:
        return sum(r.numel() for r in self.rho.values())

    def sample(self, means: dict[str, torch.Tensor], generator=None, zeta: dict | None = None):
        """(theta, zeta): theta = mu + sigma * zeta with zeta ~ N(0, I) (or the given zeta)."""
        sig = self.sigmas()
        if zeta is None:
            zeta = {
                n: torch.randn(means[n].shape, generator=generator, dtype=means[n].dtype, device=means[n].device)
                for n in self.names
            }
        return {n: means[n] + sig[n] * zeta[n] for n in self.names}, zeta

    def kl(self, means: dict[str, torch.Tensor]) -> torch.Tensor:
        """KL(q(theta) || N(0, I)) = 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2), analytic."""
        total = 0.0
        for n, s in self.sigmas().items():
            total = total + 0.5 * (means[n].square() + s.square() - 1.0 - 2.0 * torch.log(s)).sum()
        return total

    def entropy(self) -> torch.Tensor:
        """H[q(theta)] = sum log(sigma) + n/2 (1 + log 2 pi)."""
        return sum(torch.log(s).sum() for s in self.sigmas().values()) + 0.5 * self.numel() * (1.0 + LOG_2PI)

    def log_q(self, zeta: dict[str, torch.Tensor]) -> torch.Tensor:
        """log q(theta) at theta = mu + sigma * zeta, written in zeta (the same function of
        (mu, sigma, zeta), and stable as sigma -> 0): -sum(log sigma + zeta^2 / 2) - n/2 log 2 pi."""
        sig = self.sigmas()
        return (
            -sum((torch.log(sig[n]) + 0.5 * zeta[n].square()).sum() for n in self.names) - 0.5 * self.numel() * LOG_2PI
        )


def log_standard_normal_params(params) -> torch.Tensor:
    """log N(params; 0, I) summed over every element of the tensors ``params``."""
    params = list(params)
    n = sum(p.numel() for p in params)
    return -0.5 * sum(p.square().sum() for p in params) - 0.5 * n * LOG_2PI


# ---- the model ---------------------------------------------------------------------------------


class VBVAE(VAE):
    """The paper's VAE whose decoder parameters are the means mu_theta of q(theta), with
    ``q_theta`` (ThetaPosterior) holding their scales. Used as a VAE it is the model at
    theta = mu_theta."""

    def __init__(self, encoder, decoder, nz: int, q_theta: ThetaPosterior):
        super().__init__(encoder, decoder, nz)
        self.q_theta = q_theta

    def decoder_means(self) -> dict[str, torch.Tensor]:
        return dict(self.decoder.named_parameters())

    def mean_state_dict(self) -> dict:
        """The state dict of the plain VAE at theta = mu_theta (without q_theta)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("q_theta.")}

    def bound_at(self, theta: dict, x, estimator: str, L: int, eps) -> torch.Tensor:
        """The SGVB estimate (A or B) per datapoint with the decoder's parameters set to ``theta``
        (gradients flow into theta, hence into mu and rho, and into the encoder)."""
        return functional_call(
            _BoundAt(self), {f"vae.decoder.{n}": t for n, t in theta.items()}, (x, estimator, L, eps)
        )


class _BoundAt(nn.Module):
    """estimate(vae, x, ...) as a module's forward, so functional_call can swap the decoder's
    parameters for a draw of theta."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x, estimator, L, eps):
        return estimate(self.vae, x, estimator, L, None, eps).surrogate


def build_vb_model(
    x_dim: int,
    nz: int,
    hidden: int,
    likelihood: str,
    *,
    init_std: float = 0.01,
    generator: torch.Generator | None = None,
    options: VBOptions = VBOptions(),
) -> VBVAE:
    """The paper's VAE (same initial draw as build_model with the same generator) with q(theta)
    over its decoder: mu_theta = the initial decoder parameters, sigma_theta = options.sigma_init."""
    base = build_model(x_dim, nz, hidden, likelihood, encoder=True, init_std=init_std, generator=generator)
    q = ThetaPosterior(base.decoder, options.sigma_init, options.sigma_param)
    return VBVAE(base.encoder, base.decoder, nz, q)


def mean_model(model: VBVAE) -> VAE:
    """The plain VAE at theta = mu_theta (the same encoder and decoder modules, no q_theta)."""
    return VAE(model.encoder, model.decoder, model.nz)


# ---- the objective -----------------------------------------------------------------------------


class VBEstimate(NamedTuple):
    data: torch.Tensor  # (B,) the data term d_i(theta) per datapoint (differentiable)
    theta_term: torch.Tensor  # t(theta): log p(theta) - log q(theta) (F.10) or -KL(q(theta)||p(theta)) (F.12)
    theta: dict  # the draw of theta


def draw_eps(x: torch.Tensor, nz: int, L: int, generator=None) -> torch.Tensor:
    """The draws of z's noise for a minibatch, as vaebench.bound draws them: (L, B, nz)."""
    return torch.randn((L, x.shape[0], nz), generator=generator, dtype=x.dtype, device=x.device)


def vb_estimate(
    model: VBVAE, x, estimator: str = "B", L: int = 1, generator=None, *, eps=None, zeta=None
) -> VBEstimate:
    """The appendix F estimate for one minibatch and ONE draw of theta: F.10 (estimator A) or
    F.12 (B). The noise is drawn in the order eps (z's, as AEVB draws it), then zeta (theta's)."""
    if estimator not in VB_ESTIMATORS:
        raise ValueError(f"full VB takes estimator A (eq. F.10) or B (eq. F.12), got {estimator!r}")
    eps = draw_eps(x, model.nz, L, generator) if eps is None else eps
    means = model.decoder_means()
    theta, zeta = model.q_theta.sample(means, generator, zeta)
    data = model.bound_at(theta, x, estimator, L, eps)
    if estimator == "A":  # eq. F.10: log p(theta) - log q(theta), both at the draw
        t = log_standard_normal_params(theta.values()) - model.q_theta.log_q(zeta)
    else:  # eq. F.12: -KL(q(theta) || p(theta)), analytic
        t = -model.q_theta.kl(means)
    return VBEstimate(data, t, theta)


def objective(
    model,
    x,
    *,
    theta: str,
    n_train: int,
    estimator: str = "B",
    L: int = 1,
    generator=None,
    eps=None,
    zeta=None,
    kl_weight: float = 1.0,
) -> torch.Tensor:
    """The training objective per datapoint of one minibatch, for theta = ml, map or vb (with
    the N(0, I) prior's term on the encoder for map and vb, which the paper's optimiser applies
    as weight decay):
        ml:  mean_i bound_i
        map: mean_i bound_i + log p(theta, phi) / N
        vb:  mean_i d_i(theta) + kl_weight * t(theta) / N + log p(phi) / N,   theta ~ q(theta)
    """
    if theta == "vb":
        est = vb_estimate(model, x, estimator, L, generator, eps=eps, zeta=zeta)
        return (
            est.data.mean()
            + kl_weight * est.theta_term / n_train
            + log_standard_normal_params(model.encoder.parameters()) / n_train
        )
    bound = estimate(model, x, estimator, L, generator, eps).surrogate.mean()
    if theta == "ml":
        return bound
    params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    return bound + log_standard_normal_params(params) / n_train


# ---- the algorithm -----------------------------------------------------------------------------


class FullVB:
    """AEVB (Algorithm 1) with q(theta) (appendix F): Adagrad ascends the F.10 or F.12 estimate
    per datapoint in (mu_theta, rho) and the encoder's phi, one theta draw per minibatch.

    The paper's optimiser otherwise unchanged: one Adagrad with the run's step size over every
    parameter; the N(0, I) prior's weight decay 1/N on the encoder (as in MAP), none on mu_theta
    and rho (the prior of theta is in the objective, through t(theta))."""

    needs_encoder = True

    def __init__(
        self,
        model: VBVAE,
        *,
        lr: float,
        n_train: int,
        estimator: str = "B",
        L: int = 1,
        prior: bool = True,
        kl_warmup: int = 0,
    ):
        if not isinstance(model, VBVAE):
            raise ValueError("full VB needs a model with q(theta) (vaebench.algorithms.full_vb.build_vb_model)")
        if estimator not in VB_ESTIMATORS:
            raise ValueError(f"full VB takes estimator A (eq. F.10) or B (eq. F.12), got {estimator!r}")
        if not prior:
            raise ValueError("full VB has the N(0, I) prior on theta by definition (theta = vb implies prior)")
        self.model, self.estimator, self.L = model, estimator, int(L)
        self.n_train, self.kl_warmup = int(n_train), int(kl_warmup)
        self.samples = 0  # seen by this algorithm: the warm-up's clock (in the checkpoint)
        groups = [
            {"params": list(model.encoder.parameters()), "weight_decay": 1.0 / n_train},
            {"params": list(model.decoder.parameters()) + list(model.q_theta.parameters()), "weight_decay": 0.0},
        ]
        fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
        self.optimizer = torch.optim.Adagrad(groups, lr=lr, fused=fused)

    def kl_weight(self) -> float:
        return 1.0 if self.kl_warmup <= 0 else min(1.0, self.samples / self.kl_warmup)

    def step(self, x, generator) -> float:
        """One Adagrad step on the minibatch; returns its estimate of L(phi; X) / N (F.10 or
        F.12 per datapoint, the theta term unweighted)."""
        est = vb_estimate(self.model, x, self.estimator, self.L, generator)
        t = est.theta_term / self.n_train
        loss = -(est.data.mean() + self.kl_weight() * t)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.samples += x.shape[0]
        return float(est.data.detach().mean() + t.detach())

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict(), "samples": self.samples}

    def load_state_dict(self, state):
        self.optimizer.load_state_dict(state["optimizer"])
        self.samples = int(state["samples"])


def build_vb(
    cfg, x_dim: int, likelihood: str, *, lr: float, n_train: int, generator=None, device="cpu"
) -> tuple[VBVAE, FullVB]:
    """The model and algorithm of a theta = "vb" run (vaebench.train.Trainer's for that case)."""
    opts = cfg.algorithm_options
    model = build_vb_model(
        x_dim, cfg.nz, cfg.hidden_units, likelihood, init_std=cfg.init_std, generator=generator, options=opts
    ).to(device)
    estimator = "B" if cfg.estimator == "auto" else cfg.estimator  # auto: B for the Gaussian q(z|x), p(z)
    algo = FullVB(
        model, lr=lr, n_train=n_train, estimator=estimator, L=cfg.L, prior=cfg.prior, kl_warmup=opts.kl_warmup
    )
    return model, algo


def build_run_model(cfg, x_dim: int, likelihood: str):
    """The model of a run's config for loading its parameters: VBVAE for theta = vb."""
    return build_vb_model(x_dim, cfg.nz, cfg.hidden_units, likelihood, options=cfg.algorithm_options)
