"""Corruption models: how an observation y arises from a clean image, written down so that a
trained VAE can serve as the prior over clean images (``vaebench restore``).

Notation. x is a data image flattened to D = H * W values in [0, 1], c the clean image the
corruption acts on, z the latent variable, y the observation. The decoder gives
p(c|z) = prod_i p(c_i|z): Bernoulli(pi_i(z)) for MNIST, N(m_i(z), v_i(z)) for Frey Face.
Every model below is a probability model p(y|c) for which the likelihood of z,
p(y|z) = sum/int_c p(y|c) p(c|z), and the clean image's posterior p(c|y, z) are closed form:
that is what the samplers of vaebench.uses.restore need. The "hidden values" are what the
metrics score: the values of c that y does not reveal.

inpaint (MNIST and Frey Face): missing pixels under a mask
    c = x. A mask o (1 = observed) chooses the pixels seen without noise: y_i = x_i for
    o_i = 1, nothing for o_i = 0 (stored as NaN). Masks (``--mask``): ``random:F`` (each pixel
    missing independently with probability F in (0, 1), a new mask per image), ``top``,
    ``bottom``, ``left``, ``right`` (that half of the image missing; an odd side gives the
    smaller half), ``square[:S]`` (a centred S x S square missing; S defaults to half the shorter
    side), or a .npy file of a 0/1 (or boolean) H x W array, 1 = observed.
    p(y|z) = prod_{o_i = 1} p(x_i|z); p(c_missing|y, z) = prod_{o_i = 0} p(x_i|z).
    Hidden values: the missing pixels. MNIST's observed and true missing values are the
    intensities, the data the model was trained on (log p(x_i|z) = x_i log pi_i +
    (1 - x_i) log(1 - pi_i), the paper's use of intensities as Bernoulli means).

denoise, MNIST: flip noise
    c = b, the binary Bernoulli outcome of the image, b_i ~ Bernoulli(x_i) (drawn once with the
    fixed seed); each outcome is flipped with probability rho in (0, 0.5):
    y_i = b_i XOR f_i, f_i ~ Bernoulli(rho).
    p(y_i = 1|z) = rho + (1 - 2 rho) pi_i;  P(b_i = 1|y_i, z) = pi_i p(y_i|b_i = 1) / p(y_i|z).
    Hidden values: every b_i.

denoise, Frey Face: additive Gaussian noise
    c = x; y_i = x_i + sigma e_i, e_i ~ N(0, 1), sigma in (0, 1] (y is not clipped).
    p(y_i|z) = N(y_i; m_i, v_i + sigma^2);
    p(x_i|y_i, z) = N((sigma^2 m_i + v_i y_i) / (v_i + sigma^2), v_i sigma^2 / (v_i + sigma^2)).
    Hidden values: every x_i.

superres (MNIST and Frey Face): block averages
    Only the means of the k x k blocks (k from 2 to 8, dividing both sides of the image) are
    observed, with Gaussian observation noise of standard deviation sigma in (0, 1]:
    y_B = (1/K) sum_{i in B} c_i + sigma e_B, K = k^2; c = x for Frey Face, c = b (the binary
    outcomes, as for denoising) for MNIST. Hidden values: every c_i.
    Frey Face: y_B|z ~ N(mean_B(m), sum_B v_i / K^2 + sigma^2), and c_B|y_B, z is Gaussian, a
    rank-one update of diag(v): mean m + (v/K) r / s, variance v - (v/K)^2 / s, with
    r = y_B - mean_B(m), s = sum_B v / K^2 + sigma^2 (samples by conditioning a prior draw).
    MNIST: the block's count C_B = sum_B b_i is Poisson-binomial given z and
    p(y_B|z) = sum_{c=0..K} P(C_B = c|z) N(y_B; c/K, sigma^2); a forward-backward pass over the
    block's pixels gives it, the posterior marginals P(b_i = 1|y_B, z) and exact draws of b.

Each model provides ``corrupt`` (the clean image and its observation, simulated from data
images), ``log_obs`` (log p(y|c)), ``log_evidence`` (log p(y|z)), ``clean_mean``,
``clean_var`` and ``clean_sample`` (the moments of, and a draw from, p(c|y, z)), ``log_clean``
(log p(c_hidden|y, z) of given values, by Bayes' rule log p(c|z) + log p(y|c) - log p(y|z)
where y is noisy), ``hidden`` (which values are scored) and ``fill`` (the observation as an
image: missing pixels from a background, a noisy image as it is, block means repeated over
their blocks; the input of the encoder baseline and of the figures).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from vaebench.errors import VaebenchError
from vaebench.gaussian import LOG_2PI
from vaebench.uses.pixels import PixelDist

TASKS = ("inpaint", "denoise", "superres")
HALVES = ("top", "bottom", "left", "right")
MAX_BLOCK = 8


def _normal_logpdf(x, mean, var):
    return -0.5 * (LOG_2PI + torch.log(var) + (x - mean).square() / var)


def _in_range(name: str, value, low: float, high: float, *, low_open=True, high_open=False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise VaebenchError(f"{name} must be a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return float(value)


class Corruption:
    """The interface (see the module docstring); ``likelihood`` is the decoder's, 'bernoulli' or
    'gaussian', ``image_shape`` (H, W)."""

    task = ""
    label = ""  # the setting's name after the task, formatted with the attributes ("rho{rho:g}")
    columns: dict = {}  # the setting's CSV columns: column -> the attribute holding its value

    def __init__(self, likelihood: str, image_shape):
        if likelihood not in ("bernoulli", "gaussian"):
            raise VaebenchError(f"unknown likelihood {likelihood!r}")
        self.likelihood = likelihood
        self.image_shape = tuple(int(s) for s in image_shape)
        self.D = self.image_shape[0] * self.image_shape[1]

    # ---- what it is -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """A short name of the setting for file names, e.g. 'inpaint-bottom': task-label."""
        return f"{self.task}-{self.label.format(**vars(self))}"

    def params(self) -> dict:
        """The setting as CSV columns (mask, rho, noise_std, k, obs_noise; '' where n/a)."""
        blank = {"mask": "", "rho": "", "noise_std": "", "k": "", "obs_noise": ""}
        return {**blank, **{column: getattr(self, attribute) for column, attribute in self.columns.items()}}

    def describe(self) -> str:
        raise NotImplementedError

    # ---- simulation -------------------------------------------------------------------------
    def clean(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The clean image c the corruption acts on (x itself unless stated)."""
        return x

    def observe(self, c: torch.Tensor, generator=None) -> torch.Tensor:
        raise NotImplementedError

    def corrupt(self, x: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(y, c) for data images x (n, D): the observation and the clean image behind it."""
        c = self.clean(x, generator)
        return self.observe(c, generator), c

    def hidden(self, y: torch.Tensor) -> torch.Tensor:
        """(n, D) boolean: the values of c the metrics score (all, unless stated)."""
        return torch.ones((y.shape[0], self.D), dtype=torch.bool, device=y.device)

    # ---- the model ---------------------------------------------------------------------------
    def log_obs(self, y, c) -> torch.Tensor:
        """log p(y|c) per image."""
        raise NotImplementedError

    def log_evidence(self, y, dist: PixelDist) -> torch.Tensor:
        """log p(y|z) = log sum_c p(y|c) p(c|z), per image (..., n)."""
        raise NotImplementedError

    def clean_mean(self, y, dist: PixelDist) -> torch.Tensor:
        """E[c|y, z] (..., n, D)."""
        raise NotImplementedError

    def clean_var(self, y, dist: PixelDist) -> torch.Tensor:
        """Var[c_i|y, z] (..., n, D)."""
        raise NotImplementedError

    def clean_sample(self, y, dist: PixelDist, generator=None) -> torch.Tensor:
        """A draw of c from p(c|y, z) (..., n, D)."""
        raise NotImplementedError

    def log_clean(self, c, y, dist: PixelDist) -> torch.Tensor:
        """log p(c_hidden|y, z) per image (..., n): Bayes' rule."""
        return dist.log_prob(c).sum(-1) + self.log_obs(y, c) - self.log_evidence(y, dist)

    def fill(self, y, background=None) -> torch.Tensor:
        """The observation as an image (n, D) in [0, 1]."""
        raise NotImplementedError

    def check_data(self, x: torch.Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.D:
            raise VaebenchError(
                f"images must be (n, {self.D}) for {self.image_shape[0]} x {self.image_shape[1]} "
                f"images, got {tuple(x.shape)}"
            )


# =============================================================================================
# inpainting
# =============================================================================================
def parse_mask(spec, image_shape) -> tuple[str, object]:
    """A mask specification as (name, value): ('random', fraction) or (name, an (H, W) bool
    tensor, True = observed). One-line errors for anything else."""
    H, W = image_shape
    if isinstance(spec, torch.Tensor) or hasattr(spec, "__array__"):
        return "array", _check_mask(torch.as_tensor(spec), image_shape, "the mask")
    spec = str(spec).strip()
    if spec.startswith("random"):
        _, _, frac = spec.partition(":")
        try:
            f = float(frac) if frac else 0.5
        except ValueError:
            raise VaebenchError(f"--mask random:F takes a fraction F of missing pixels, got {spec!r}") from None
        return f"random{f:g}", _in_range("--mask random:F (the fraction of missing pixels)", f, 0, 1, high_open=True)
    if spec in HALVES:
        observed = torch.ones(H, W, dtype=torch.bool)
        if spec == "top":
            observed[: H // 2] = False
        elif spec == "bottom":
            observed[H - H // 2 :] = False
        elif spec == "left":
            observed[:, : W // 2] = False
        else:
            observed[:, W - W // 2 :] = False
        return spec, observed
    if spec.startswith("square"):
        _, _, side = spec.partition(":")
        try:
            s = int(side) if side else min(H, W) // 2
        except ValueError:
            raise VaebenchError(f"--mask square:S takes a whole side length S, got {spec!r}") from None
        if not 1 <= s < min(H, W):
            raise VaebenchError(f"--mask square:S needs 1 <= S < {min(H, W)} for {H} x {W} images, got {s}")
        observed = torch.ones(H, W, dtype=torch.bool)
        r0, c0 = (H - s) // 2, (W - s) // 2
        observed[r0 : r0 + s, c0 : c0 + s] = False
        return f"square{s}", observed
    path = Path(spec)
    if path.suffix == ".npy":
        import numpy as np

        if not path.is_file():
            raise VaebenchError(f"mask file {path} does not exist")
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise VaebenchError(f"mask file {path} is not a readable .npy array ({exc})") from None
        if arr.dtype.kind not in "biuf":
            raise VaebenchError(f"mask file {path} holds {arr.dtype} values; 0/1 or booleans expected")
        return f"mask-{path.stem}", _check_mask(
            torch.as_tensor(arr.astype(np.float64)), image_shape, f"mask file {path}"
        )
    raise VaebenchError(f"unknown mask {spec!r}; use random:F, top, bottom, left, right, square[:S] or a .npy file")


def _check_mask(m: torch.Tensor, image_shape, what: str) -> torch.Tensor:
    H, W = image_shape
    if tuple(m.shape) == (H * W,):
        m = m.reshape(H, W)
    if tuple(m.shape) != (H, W):
        raise VaebenchError(f"{what} has shape {tuple(m.shape)}; the images are {H} x {W}")
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise VaebenchError(f"{what} must hold only 0 and 1 (1 = observed)")
        m = m == 1
    if not bool(m.any()):
        raise VaebenchError(f"{what} observes nothing (every pixel is 0 = missing)")
    if bool(m.all()):
        raise VaebenchError(f"{what} hides nothing (every pixel is 1 = observed): nothing to restore")
    return m


class Inpaint(Corruption):
    """Missing pixels under a mask, the others observed exactly."""

    task, label, columns = "inpaint", "{mask_name}", {"mask": "mask_name"}

    def __init__(self, likelihood: str, image_shape, mask="bottom"):
        super().__init__(likelihood, image_shape)
        self.mask_name, value = parse_mask(mask, self.image_shape)
        self.fraction = value if isinstance(value, float) else None
        self.observed = None if self.fraction is not None else value.reshape(-1)

    def describe(self) -> str:
        if self.fraction is not None:
            return f"inpaint: each pixel missing with probability {self.fraction:g}"
        return f"inpaint: mask {self.mask_name} ({int((~self.observed).sum())} of {self.D} pixels missing)"

    def observe(self, c, generator=None):
        if self.fraction is not None:
            u = torch.rand(c.shape, generator=generator, dtype=c.dtype, device=c.device)
            observed = u >= self.fraction
        else:
            observed = self.observed.to(c.device).expand_as(c)
        return torch.where(observed, c, torch.full_like(c, math.nan))

    def hidden(self, y):
        return torch.isnan(y)

    def log_obs(self, y, c):
        obs = ~torch.isnan(y)
        same = torch.where(obs, c == y, torch.ones_like(obs)).all(-1)
        return torch.where(same, torch.zeros_like(c[..., 0]), torch.full_like(c[..., 0], -math.inf))

    def log_evidence(self, y, dist):
        obs = ~torch.isnan(y)
        lp = dist.log_prob(torch.nan_to_num(y))
        return torch.where(obs, lp, torch.zeros_like(lp)).sum(-1)

    def clean_mean(self, y, dist):
        return torch.where(torch.isnan(y), dist.mean(), y)

    def clean_var(self, y, dist):
        v = dist.var()
        return torch.where(torch.isnan(y), v, torch.zeros_like(v))

    def clean_sample(self, y, dist, generator=None):
        return torch.where(torch.isnan(y), dist.sample(generator), y)

    def log_clean(self, c, y, dist):
        lp = dist.log_prob(c)
        return torch.where(torch.isnan(y), lp, torch.zeros_like(lp)).sum(-1)

    def fill(self, y, background=None):
        bg = torch.zeros_like(y) if background is None else background.to(y.dtype).expand_as(y)
        return torch.where(torch.isnan(y), bg, y)


# =============================================================================================
# denoising
# =============================================================================================
class FlipNoise(Corruption):
    """MNIST: each pixel's Bernoulli outcome flipped with probability rho."""

    task, label, columns = "denoise", "rho{rho:g}", {"rho": "rho"}

    def __init__(self, likelihood: str, image_shape, rho: float = 0.1):
        super().__init__(likelihood, image_shape)
        if likelihood != "bernoulli":
            raise VaebenchError("flip noise (--rho) is MNIST's denoising model; a Frey Face run takes --noise-std")
        self.rho = _in_range("--rho (the flip probability)", rho, 0, 0.5, high_open=True)
        self._lr, self._l1r = math.log(self.rho), math.log1p(-self.rho)

    def describe(self):
        return f"denoise: each Bernoulli outcome flipped with probability {self.rho:g}"

    def clean(self, x, generator=None):
        return torch.bernoulli(x, generator=generator)

    def observe(self, c, generator=None):
        flip = torch.rand(c.shape, generator=generator, dtype=c.dtype, device=c.device) < self.rho
        return torch.where(flip, 1 - c, c)

    def _logs(self, like):
        return (
            torch.tensor(self._lr, dtype=like.dtype, device=like.device),
            torch.tensor(self._l1r, dtype=like.dtype, device=like.device),
        )

    def log_obs(self, y, c):
        lr, l1r = self._logs(c)
        return torch.where(y == c, l1r, lr).sum(-1)

    def _terms(self, y, dist):
        """(log P(b=1, y|z), log p(y|z)) per pixel."""
        l1, l0 = dist.log_p1(), dist.log_p0()
        lr, l1r = self._logs(l1)
        one = y == 1
        joint1 = l1 + torch.where(one, l1r, lr)  # b = 1 and y
        joint0 = l0 + torch.where(one, lr, l1r)  # b = 0 and y
        return joint1, torch.logaddexp(joint1, joint0)

    def log_evidence(self, y, dist):
        return self._terms(y, dist)[1].sum(-1)

    def clean_mean(self, y, dist):
        j1, ev = self._terms(y, dist)
        return torch.exp(j1 - ev).clamp(0, 1)

    def clean_var(self, y, dist):
        p = self.clean_mean(y, dist)
        return p * (1 - p)

    def clean_sample(self, y, dist, generator=None):
        return torch.bernoulli(self.clean_mean(y, dist), generator=generator)

    def fill(self, y, background=None):
        return y


class GaussianNoise(Corruption):
    """Frey Face: additive Gaussian noise of standard deviation sigma."""

    task, label, columns = "denoise", "std{sigma:g}", {"noise_std": "sigma"}

    def __init__(self, likelihood: str, image_shape, sigma: float = 0.1):
        super().__init__(likelihood, image_shape)
        if likelihood != "gaussian":
            raise VaebenchError(
                "additive Gaussian noise (--noise-std) is Frey Face's denoising model; an MNIST run takes --rho"
            )
        self.sigma = _in_range("--noise-std", sigma, 0, 1)
        self.var = self.sigma**2

    def describe(self):
        return f"denoise: additive Gaussian noise of standard deviation {self.sigma:g}"

    def observe(self, c, generator=None):
        return c + self.sigma * torch.randn(c.shape, generator=generator, dtype=c.dtype, device=c.device)

    def log_obs(self, y, c):
        return _normal_logpdf(y, c, torch.tensor(self.var, dtype=c.dtype, device=c.device)).sum(-1)

    def log_evidence(self, y, dist):
        return _normal_logpdf(y, dist.loc, dist.var() + self.var).sum(-1)

    def _posterior(self, y, dist):
        v = dist.var()
        s = v + self.var
        return (self.var * dist.loc + v * y) / s, v * self.var / s

    def clean_mean(self, y, dist):
        return self._posterior(y, dist)[0]

    def clean_var(self, y, dist):
        return self._posterior(y, dist)[1]

    def clean_sample(self, y, dist, generator=None):
        m, v = self._posterior(y, dist)
        return m + v.sqrt() * torch.randn(m.shape, generator=generator, dtype=m.dtype, device=m.device)

    def fill(self, y, background=None):
        return y.clamp(0, 1)


# =============================================================================================
# super-resolution
# =============================================================================================
class BlockAverage(Corruption):
    """Only the means of k x k blocks observed, with Gaussian observation noise sigma."""

    task, label, columns = "superres", "k{k}", {"k": "k", "obs_noise": "sigma"}

    def __init__(self, likelihood: str, image_shape, k: int = 2, sigma: float = 0.02):
        super().__init__(likelihood, image_shape)
        H, W = self.image_shape
        ok = [d for d in range(2, MAX_BLOCK + 1) if H % d == 0 and W % d == 0]
        if not (isinstance(k, int) and not isinstance(k, bool) and k in ok):
            raise VaebenchError(
                f"--k must be a block side from 2 to {MAX_BLOCK} that divides both sides of the "
                f"{H} x {W} images ({', '.join(map(str, ok)) or 'none'}), got {k!r}"
            )
        self.k, self.K = k, k * k
        self.sigma = _in_range("--obs-noise (the observation noise of a block mean)", sigma, 0, 1)
        self.var = self.sigma**2
        # perm: pixel indices block by block (row-major blocks, row-major inside a block)
        idx = torch.arange(self.D).reshape(H // k, k, W // k, k).permute(0, 2, 1, 3).reshape(-1)
        self.perm, self.inv = idx, torch.argsort(idx)
        self.n_blocks = self.D // self.K

    def describe(self):
        what = "binary outcomes" if self.likelihood == "bernoulli" else "intensities"
        return (
            f"superres: means of the {self.k} x {self.k} blocks of the {what} observed, with Gaussian noise "
            f"of standard deviation {self.sigma:g}"
        )

    # blocks: (..., D) <-> (..., n_blocks, K)
    def blocks(self, t):
        return t[..., self.perm.to(t.device)].reshape(*t.shape[:-1], self.n_blocks, self.K)

    def unblocks(self, t):
        return t.reshape(*t.shape[:-2], self.D)[..., self.inv.to(t.device)]

    def clean(self, x, generator=None):
        return torch.bernoulli(x, generator=generator) if self.likelihood == "bernoulli" else x

    def observe(self, c, generator=None):
        mean = self.blocks(c).mean(-1)
        return mean + self.sigma * torch.randn(mean.shape, generator=generator, dtype=c.dtype, device=c.device)

    def log_obs(self, y, c):
        return _normal_logpdf(y, self.blocks(c).mean(-1), torch.tensor(self.var, dtype=c.dtype, device=c.device)).sum(
            -1
        )

    def fill(self, y, background=None):
        return self.unblocks(y.unsqueeze(-1).expand(*y.shape, self.K)).clamp(0, 1)

    # ---- Frey Face: linear-Gaussian ----------------------------------------------------------
    def _gauss(self, y, dist):
        m, v = self.blocks(dist.loc), self.blocks(dist.var())
        s = v.sum(-1) / self.K**2 + self.var
        r = y - m.mean(-1)
        return m, v, s, r

    # ---- MNIST: forward-backward over each block's pixels -------------------------------------
    def _backward(self, y, dist):
        """Log backward messages W_j(a), j = 0..K: log E[N(y_B; (a + sum_{i > j} b_i)/K, sigma^2)]
        given j pixels summing to a, as a list of (..., n_blocks, K + 2) tensors (last entry -inf)."""
        l1, l0 = self.blocks(dist.log_p1()), self.blocks(dist.log_p0())
        counts = torch.arange(self.K + 1, dtype=l1.dtype, device=l1.device) / self.K
        logw = _normal_logpdf(y.unsqueeze(-1), counts, torch.tensor(self.var, dtype=l1.dtype, device=l1.device))
        shape = torch.broadcast_shapes(l1.shape[:-1], logw.shape[:-1])
        logw, l1, l0 = logw.expand(*shape, self.K + 1), l1.expand(*shape, self.K), l0.expand(*shape, self.K)
        pad = torch.full((*shape, 1), -math.inf, dtype=l1.dtype, device=l1.device)
        W = [None] * (self.K + 1)
        W[self.K] = torch.cat([logw, pad], -1)
        for j in range(self.K, 0, -1):
            nxt = W[j]
            W[j - 1] = torch.cat(
                [torch.logaddexp(l0[..., j - 1 : j] + nxt[..., :-1], l1[..., j - 1 : j] + nxt[..., 1:]), pad], -1
            )
        return l1, l0, W

    def _marginals(self, y, dist):
        l1, l0, W = self._backward(y, dist)
        log_z = W[0][..., :1]
        F = torch.full_like(W[0], -math.inf)
        F[..., 0] = 0.0
        out = []
        for j in range(1, self.K + 1):
            a1, a0 = l1[..., j - 1 : j], l0[..., j - 1 : j]
            out.append(torch.logsumexp(F[..., :-1] + a1 + W[j][..., 1:], -1) - log_z[..., 0])
            shifted = torch.cat([torch.full_like(F[..., :1], -math.inf), F[..., :-1]], -1)
            F = torch.logaddexp(F + a0, shifted + a1)
        return torch.stack(out, -1).exp().clamp(0, 1)

    # ---- the interface ------------------------------------------------------------------------
    def log_evidence(self, y, dist):
        if self.likelihood == "gaussian":
            m, v, s, r = self._gauss(y, dist)
            return _normal_logpdf(r, torch.zeros_like(r), s).sum(-1)
        return self._backward(y, dist)[2][0][..., 0].sum(-1)

    def clean_mean(self, y, dist):
        if self.likelihood == "gaussian":
            m, v, s, r = self._gauss(y, dist)
            return self.unblocks(m + v / self.K * (r / s).unsqueeze(-1))
        return self.unblocks(self._marginals(y, dist))

    def clean_var(self, y, dist):
        if self.likelihood == "gaussian":
            m, v, s, r = self._gauss(y, dist)
            return self.unblocks(v - (v / self.K).square() / s.unsqueeze(-1))
        p = self.clean_mean(y, dist)
        return p * (1 - p)

    def clean_sample(self, y, dist, generator=None):
        if self.likelihood == "gaussian":
            m, v, s, r = self._gauss(y, dist)
            x0 = m + v.sqrt() * torch.randn(m.shape, generator=generator, dtype=m.dtype, device=m.device)
            y0 = x0.mean(-1) + self.sigma * torch.randn(s.shape, generator=generator, dtype=m.dtype, device=m.device)
            return self.unblocks(x0 + v / self.K * ((y - y0) / s).unsqueeze(-1))
        l1, l0, W = self._backward(y, dist)
        a = torch.zeros(W[0].shape[:-1], dtype=torch.long, device=l1.device)
        bits = []
        for j in range(1, self.K + 1):
            here = W[j - 1].gather(-1, a.unsqueeze(-1)).squeeze(-1)
            up = W[j].gather(-1, (a + 1).unsqueeze(-1)).squeeze(-1)
            p1 = torch.exp(l1[..., j - 1] + up - here).clamp(0, 1)
            b = torch.bernoulli(p1, generator=generator)
            bits.append(b)
            a = a + b.long()
        return self.unblocks(torch.stack(bits, -1))


# =============================================================================================
def make_corruption(
    task: str, likelihood: str, image_shape, *, mask=None, rho=None, noise_std=None, k=None, obs_noise=None
) -> Corruption:
    """The corruption model of ``task`` for a data set of the given likelihood and image shape;
    options that do not belong to the task (or to the data set) are a one-line error."""
    if task not in TASKS:
        raise VaebenchError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    given = {"--mask": mask, "--rho": rho, "--noise-std": noise_std, "--k": k, "--obs-noise": obs_noise}
    allowed = {"inpaint": ("--mask",), "denoise": ("--rho", "--noise-std"), "superres": ("--k", "--obs-noise")}[task]
    stray = [name for name, v in given.items() if v is not None and name not in allowed]
    if stray:
        raise VaebenchError(
            f"{', '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply to --task {task} "
            f"(it takes {', '.join(allowed)})"
        )
    if task == "inpaint":
        return Inpaint(likelihood, image_shape, "bottom" if mask is None else mask)
    if task == "denoise":
        if likelihood == "bernoulli":
            if noise_std is not None:
                raise VaebenchError(
                    "--noise-std is Frey Face's denoising model (additive Gaussian noise); "
                    "this MNIST run takes --rho (flip noise)"
                )
            return FlipNoise(likelihood, image_shape, 0.1 if rho is None else rho)
        if rho is not None:
            raise VaebenchError(
                "--rho is MNIST's denoising model (flipped Bernoulli outcomes); this Frey Face run takes --noise-std"
            )
        return GaussianNoise(likelihood, image_shape, 0.1 if noise_std is None else noise_std)
    return BlockAverage(likelihood, image_shape, 2 if k is None else k, 0.02 if obs_noise is None else obs_noise)
