"""The VAE hot-path ops, dispatched to a backend.

Models and estimators call these functions only; they never import a backend.
Backends: ``eager`` (plain PyTorch, the reference), ``numba``, ``triton``,
``compile`` (torch.compile of the eager reference).

Math (per row, D columns):
- reparameterize:  z = mu + exp(logvar / 2) * eps
- gaussian_kl:     KL(N(mu, e^lv) || N(0, I)) = 1/2 sum(mu^2 + expm1(lv) - lv)
- bernoulli_log_likelihood: sum(l*x - max(l, 0) - log1p(exp(-|l|)))
- gaussian_log_likelihood:  -1/2 sum(log 2pi + lv + (x - m)^2 e^-lv)
- encoder_head:     (z, kl) in one pass;  decoder_tail: a log-likelihood whose
  gradient the kernel backends compute in the forward pass
- location_scale_rsample: z = loc + exp(clamp(raw_scale) / 2) * eps for eps from ANY
  standard base (drawn by the caller), and neg_log_det = -sum log scale = -1/2 sum
  clamp(raw_scale), so that log q(z) = sum log base(eps) + neg_log_det
- reparameterize_seeded: eps drawn from a seed (in-kernel, counter-based, on the
  kernel backends; a seeded torch.Generator on eager/compile)
Log-variance is clamped to [LOGVAR_MIN, LOGVAR_MAX] everywhere (gradient zero
outside the clamp, as torch.clamp's).

Kernel backends live in ``vaebench_kernels`` (``kernels/``), each op in the file and
function of its name (``kernels/<op>.py``, ``<op>``; reparameterize_seeded beside
reparameterize), and are imported on first use, so this module imports without numba
or triton. Every backend checks shape, dtype and device on every call (a few attribute
compares; an InputError names the argument). The value checks (Bernoulli targets in
[0, 1]; location_scale_rsample's eps finite) cost a pass over the data and are off by
default: ``set_validation(True)`` or VAEBENCH_VALIDATE=1.
The kernel backends give first derivatives only: a second (backward with
create_graph=True) raises NotImplementedError; eager and compile give it.
"""

from __future__ import annotations

import functools
import os

import torch

from vaebench.errors import InputError
from vaebench.gaussian import log_normal
from vaebench_kernels.constants import LOGVAR_MAX, LOGVAR_MIN
from vaebench_kernels.validate import FLOAT_DTYPES, check_finite, check_tensors, check_unit_interval

BACKENDS = ("eager", "numba", "triton", "compile")

_default_backend = "eager"


def set_default_backend(name: str) -> None:
    """Choose the backend used when an op is called without ``backend=``."""
    global _default_backend
    _check_backend(name)
    _default_backend = name


def get_default_backend() -> str:
    return _default_backend


def _check_backend(name: str) -> None:
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


_validate = os.environ.get("VAEBENCH_VALIDATE", "0") not in ("", "0")


def set_validation(on: bool) -> None:
    """Also check the values of the inputs (Bernoulli targets in [0, 1], location_scale_rsample's
    eps finite) on every call."""
    global _validate
    _validate = bool(on)


def get_validation() -> bool:
    return _validate


def clamp_logvar(logvar: torch.Tensor) -> torch.Tensor:
    return logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


# ---- eager reference -------------------------------------------------------


def reparameterize_eager(mu, logvar, eps):
    return mu + torch.exp(0.5 * clamp_logvar(logvar)) * eps


def gaussian_kl_eager(mu, logvar):
    lv = clamp_logvar(logvar)
    return 0.5 * (mu.square() + torch.expm1(lv) - lv).sum(-1)


def bernoulli_log_likelihood_eager(logits, x):
    # PyTorch's own fused, stable form of  l*x - max(l, 0) - log1p(exp(-|l|))  (one kernel, not six)
    return -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def gaussian_log_likelihood_eager(mean, logvar, x):
    lv = clamp_logvar(logvar)
    return log_normal(x, mean, lv)


def reparameterize_seeded_eager(mu, logvar, seed):
    gen = torch.Generator(device=mu.device).manual_seed(int(seed))
    eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype, device=mu.device)
    return reparameterize_eager(mu, logvar, eps)


def encoder_head_eager(mu, logvar, eps):
    return reparameterize_eager(mu, logvar, eps), gaussian_kl_eager(mu, logvar)


def location_scale_rsample_eager(loc, raw_scale, eps):
    l = clamp_logvar(raw_scale)
    return loc + torch.exp(0.5 * l) * eps, -0.5 * l.sum(-1)


_EAGER = {
    "reparameterize": reparameterize_eager,
    "reparameterize_seeded": reparameterize_seeded_eager,
    "gaussian_kl": gaussian_kl_eager,
    "bernoulli_log_likelihood": bernoulli_log_likelihood_eager,
    "gaussian_log_likelihood": gaussian_log_likelihood_eager,
    "encoder_head": encoder_head_eager,
    "location_scale_rsample": location_scale_rsample_eager,
}
OPS = tuple(_EAGER)

_CACHE: dict = {}


def _kernel(op: str):
    """``op``'s kernel-backend function: ``vaebench_kernels.<op>.<op>``, but reparameterize_seeded
    lives in ``vaebench_kernels.reparameterize`` (it shares that file's kernels)."""
    # static imports (no importlib) so that torch.compile can trace a first call
    if op in ("reparameterize", "reparameterize_seeded"):
        from vaebench_kernels import reparameterize as m
    elif op == "gaussian_kl":
        from vaebench_kernels import gaussian_kl as m
    elif op == "encoder_head":
        from vaebench_kernels import encoder_head as m
    elif op == "bernoulli_log_likelihood":
        from vaebench_kernels import bernoulli_log_likelihood as m
    elif op == "gaussian_log_likelihood":
        from vaebench_kernels import gaussian_log_likelihood as m
    else:
        from vaebench_kernels import location_scale_rsample as m
    return getattr(m, op)


def _resolve(op: str, backend: str, compiling: bool = False):
    _check_backend(backend)
    if backend == "eager":
        return _EAGER[op]
    if backend == "compile":
        # inside an outer torch.compile the eager function is what gets traced
        return _EAGER[op] if compiling else torch.compile(_EAGER[op], dynamic=None)
    lib = "numba" if backend == "numba" else "triton"
    try:
        if lib == "numba":
            import numba  # noqa: F401
        else:
            import triton  # noqa: F401
    except ImportError:
        raise InputError(
            f"backend {backend!r} needs {lib}, which is not installed; install it with: pip install 'vaebench[kernels]'"
        ) from None
    return functools.partial(_kernel(op), backend=backend)


def _impl(op: str, backend: str | None):
    key = (op, backend or _default_backend)
    fn = _CACHE.get(key)
    if fn is None:
        if torch.compiler.is_compiling():
            return _resolve(op, key[1], compiling=True)
        fn = _CACHE[key] = _resolve(op, key[1])
    return fn


def _check(op, names, tensors):
    check_tensors(op, names, tensors, dtypes=FLOAT_DTYPES, error=InputError)


def reparameterize(mu, logvar, eps, *, backend=None):
    """z = mu + exp(logvar/2) * eps."""
    _check("reparameterize", ("mu", "logvar", "eps"), (mu, logvar, eps))
    return _impl("reparameterize", backend)(mu, logvar, eps)


def reparameterize_seeded(mu, logvar, seed: int, *, backend=None):
    """z = mu + exp(logvar/2) * eps with eps ~ N(0, I) drawn from ``seed``.

    Kernel backends draw eps inside the kernel (counter-based) and recompute it in
    backward instead of storing it; each backend has its own stream. The eager and
    compile backends use a seeded torch.Generator, which torch.compile(fullgraph=True)
    cannot trace: under torch.compile use a kernel backend."""
    _check("reparameterize_seeded", ("mu", "logvar"), (mu, logvar))
    return _impl("reparameterize_seeded", backend)(mu, logvar, seed)


def gaussian_kl(mu, logvar, *, backend=None):
    """Per-row KL(N(mu, exp(logvar)) || N(0, I))."""
    _check("gaussian_kl", ("mu", "logvar"), (mu, logvar))
    return _impl("gaussian_kl", backend)(mu, logvar)


def encoder_head(mu, logvar, eps, *, backend=None):
    """(z, kl): reparameterize and gaussian_kl fused (one pass on kernel backends)."""
    _check("encoder_head", ("mu", "logvar", "eps"), (mu, logvar, eps))
    return _impl("encoder_head", backend)(mu, logvar, eps)


def location_scale_rsample(loc, raw_scale, eps, *, backend=None):
    """(z, neg_log_det): the location-scale reparameterisation for any base distribution.

    scale = exp(clamp(raw_scale, LOGVAR_MIN, LOGVAR_MAX) / 2) -- raw_scale is the encoder's
    unconstrained head, transformed as vaebench.models.FamilyEncoder does -- and, per element,
    z = loc + scale * eps with eps a draw from the family's standard member (Gaussian, Laplace,
    logistic, Student's t with fixed df, uniform, triangular, ...; the caller draws it, so any
    base works). Per row, neg_log_det = -sum log scale = -1/2 sum clamp(raw_scale) =
    log |det d eps / d z|, so that log q(z) = sum log base(eps) + neg_log_det (the first term
    does not depend on loc or scale). Gradients: loc, raw_scale and, when it requires one, eps.
    With validation on, an infinite eps is an InputError (NaN passes: NaN in, NaN out)."""
    _check("location_scale_rsample", ("loc", "raw_scale", "eps"), (loc, raw_scale, eps))
    if _validate and not torch.compiler.is_compiling():
        check_finite("location_scale_rsample", "eps", eps, "a draw from the base distribution", error=InputError)
    return _impl("location_scale_rsample", backend)(loc, raw_scale, eps)


def bernoulli_log_likelihood(logits, x, *, backend=None):
    """Per-row sum of log Bernoulli(x | sigmoid(logits)), from the logits.

    Targets should lie in [0, 1]. With validation on (``set_validation``) a target
    outside it, +-inf included, is an InputError on every backend (NaN passes: NaN in,
    NaN out). Unchecked, every backend gives eager's IEEE value of
    -[(1 - x) l + max(-l, 0) + log1p(exp(-|l|))], also for infinite logits or targets
    (x = +-inf gives the sign of x * l times inf, NaN where l = 0)."""
    _check("bernoulli_log_likelihood", ("logits", "x"), (logits, x))
    if _validate and not torch.compiler.is_compiling():
        check_unit_interval("bernoulli_log_likelihood", "x", x, error=InputError)
    return _impl("bernoulli_log_likelihood", backend)(logits, x)


def gaussian_log_likelihood(mean, logvar, x, *, backend=None):
    """Per-row sum of log N(x | mean, exp(logvar))."""
    _check("gaussian_log_likelihood", ("mean", "logvar", "x"), (mean, logvar, x))
    return _impl("gaussian_log_likelihood", backend)(mean, logvar, x)


def decoder_tail(out, x, logvar=None, *, backend=None):
    """The decoder's log-likelihood per row: Bernoulli from logits ``out`` when
    ``logvar`` is None, else Gaussian with mean ``out``. On the kernel backends the
    forward pass also computes the gradient, and backward only scales it."""
    if logvar is None:
        return bernoulli_log_likelihood(out, x, backend=backend)
    return gaussian_log_likelihood(out, logvar, x, backend=backend)
