"""What the reparameterization trick buys: pathwise vs score-function gradients of E_q[f(z)].

For each registry entry, each learnable scalar parameter theta (each element of a vector or of a
Cholesky factor) and each test function f (applied to every coordinate and summed):

    pathwise:       grad ~= 1/L sum_l f'(z_l) dz_l/dtheta,             z_l = g(eps_l, theta)
    score function: grad ~= 1/L sum_l f(z_l) d/dtheta log q(z_l; theta)   (no baseline)

The exact gradient d/dtheta E[f(z)] comes from scipy quadrature of E[f] against scipy.stats'
density (sum over the coordinates' marginals), differentiated by a 5-point central difference.
With N = 100 * repeats draws: L=1 statistics over the N single-draw estimates, L=100 over the
``repeats`` disjoint means of 100. The bias is the mean estimate minus the exact gradient, with
its standard error.

Heavy tails (E|z|^m finite only for m < alpha = Family.tail_index) make some of these variances
infinite; they are flagged from theory, not hidden: the single-draw pathwise estimate grows like
|z|^(deg f' + a) and the score-function one like |z|^(deg f + c), where a = 0, c = -1 for a
location parameter and a = 1, c = 0 (up to logs) for scale and shape parameters; the variance is
finite iff twice that power is < alpha (and the estimate is not even integrable, so the law of
large numbers fails, if the power itself is >= alpha: Cauchy scale with sin z). A parameter that
moves the support (uniform, Pareto scale, reciprocal) makes the score-function estimator biased
(it misses the boundary term), and the triangular family's score has infinite variance (it grows
like 1/distance to an edge)."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import integrate

from vaebench.families import REGISTRY, get
from vaebench.families.base import Family, FamilyError
from vaebench.formatting import format_value

L_VALUES = (1, 100)
QUAD = dict(limit=400, epsabs=1e-13, epsrel=1e-11)


@dataclass(frozen=True)
class TestFunction:
    """f, its degree (|f| ~ |z|^degree for large |z|; 0 if bounded) and that of f'.
    oscillating: f is sin, integrated on infinite tails with quad's Fourier weight."""

    name: str
    torch_fn: Callable
    numpy_fn: Callable
    degree: int
    deriv_degree: int
    oscillating: bool = False


TEST_FUNCTIONS = {
    "z": TestFunction("z", lambda z: z, lambda z: z, 1, 0),
    "z^2": TestFunction("z^2", torch.square, np.square, 2, 1),
    "sin(z)": TestFunction("sin(z)", torch.sin, np.sin, 0, 0, oscillating=True),
    "z/(1+|z|)": TestFunction("z/(1+|z|)", lambda z: z / (1 + z.abs()), lambda z: z / (1 + np.abs(z)), 0, -2),
}
MEASURED = ("z", "z^2", "sin(z)")


# ---- exact values by quadrature ---------------------------------------------------------------


def expect(marginal, fn: TestFunction) -> float:
    """E[f(z)] for a frozen scipy.stats distribution: quad over pieces cut at quantiles; an
    oscillating f on an infinite tail by QAWF (quad's Fourier weight)."""
    lo, hi = marginal.support()
    knots = sorted(
        {float(marginal.ppf(q)) for q in (1e-4, 0.01, 0.1, 0.5, 0.9, 0.99, 1 - 1e-4)}
        | ({0.0} if lo < 0 < hi else set())
    )  # 0: the kink of z/(1+|z|)
    total = 0.0
    g = lambda x: fn.numpy_fn(x) * marginal.pdf(x)  # noqa: E731
    with np.errstate(over="ignore", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error", integrate.IntegrationWarning)
        for a, b in zip([lo] + knots, knots + [hi]):
            if a < b:
                total += _piece(marginal, fn, g, a, b)
    return total


def _piece(marginal, fn, g, a, b) -> float:
    """One piece of E[f(z)]; sin(z) by quad's sine weight (QAWO on a finite piece, QAWF on a tail)."""
    if not fn.oscillating:
        return integrate.quad(g, a, b, **QUAD)[0]
    if math.isinf(a):  # int_-inf^b pdf(x) sin(x) dx = -int_-b^inf pdf(-y) sin(y) dy
        return -integrate.quad(lambda y: marginal.pdf(-y), -b, math.inf, weight="sin", wvar=1.0, limlst=200)[0]
    opts = dict(limlst=200) if math.isinf(b) else QUAD
    return integrate.quad(marginal.pdf, a, b, weight="sin", wvar=1.0, **opts)[0]


def elements(family: Family, params: dict) -> list[tuple[str, tuple]]:
    """(label, index) of every learnable scalar: "scale", "loc[1]", "scale_tril[1,0]"."""
    out = []
    for p in family.params:
        if not p.learnable:
            continue
        v = params[p.name]
        if p.event_dim == 0:
            out.append((p.name, ()))
        elif p.event_dim == 1:
            out += [(f"{p.name}[{i}]", (i,)) for i in range(v.shape[-1])]
        else:
            d = v.shape[-1]
            out += [(f"{p.name}[{i},{j}]", (i, j)) for i in range(d) for j in range(i + 1)]
    return out


def exact_gradient(marginals: Callable[[dict], list], params: dict, name: str, index: tuple, fn: TestFunction) -> float:
    """d/dtheta sum_i E[f(z_i)] at ``params`` for theta = params[name][index], by a 5-point
    central difference of quadrature values; ``marginals(params)`` gives the frozen scipy
    marginals."""
    theta = float(params[name][index])
    h = 1e-3 * max(abs(theta), 0.5)

    def value(delta):
        p = {k: v.clone() for k, v in params.items()}
        p[name][index] = theta + delta
        return sum(expect(m, fn) for m in marginals(p))

    return (-value(2 * h) + 8 * value(h) - 8 * value(-h) + value(-2 * h)) / (12 * h)


# ---- the two estimators, one draw at a time ---------------------------------------------------


def per_draw_gradients(family: Family, params: dict, eps: torch.Tensor, fns) -> dict:
    """{(f name, estimator): {element label: (N,) tensor}}: the single-draw pathwise and
    score-function estimates for N = eps.shape[0] draws (parameters copied per draw so that
    one backward pass gives every draw's gradient)."""
    n = eps.shape[0]
    rep = {}
    for p in family.params:
        v = params[p.name]
        rep[p.name] = v.detach().expand((n,) + v.shape).clone().requires_grad_() if p.learnable else v
    learn = [p.name for p in family.params if p.learnable]
    leaves = [rep[k] for k in learn]
    z = family.rsample(rep, eps)
    logq = family.log_prob(rep, z.detach())
    out = {}
    for fn in fns:
        fz = fn.torch_fn(family.coordinates(z))
        if family.multivariate:
            fz = fz.sum(-1)
        for est, target in (("pathwise", fz.sum()), ("score", (fz.detach() * logq).sum())):
            grads = torch.autograd.grad(target, leaves, retain_graph=True, allow_unused=True)
            grads = {k: (g if g is not None else torch.zeros_like(rep[k])) for k, g in zip(learn, grads)}
            out[fn.name, est] = {
                label: grads[label.split("[")[0]][(slice(None),) + index].detach()
                for label, index in elements(family, params)
            }
    return out


# ---- theory flags -----------------------------------------------------------------------------


def theory(family: Family, params: dict, label: str, fn: TestFunction) -> dict:
    """Whether E[f] exists, whether each estimator's mean and variance are finite, whether the
    score estimator is unbiased (see the module docstring for the rule; an estimate growing like
    |z|^k has a finite mean iff k < alpha and a finite variance iff 2k < alpha)."""
    alpha = family.tail_index(params)
    param = next(p for p in family.params if p.name == label.split("[")[0])
    a, c = (0, -1) if param.kind == "loc" else (1, 0)
    path_power, score_power = fn.deriv_degree + a, fn.degree + c
    return {
        "expectation_finite": fn.degree < alpha,
        "pathwise_mean_finite": path_power < alpha,
        "pathwise_variance_finite": 2 * path_power < alpha,
        "score_mean_finite": score_power < alpha,
        "score_variance_finite": 2 * score_power < alpha and not family.score_variance_infinite,
        "score_unbiased": not param.moves_support,
        "tail_index": alpha,
    }


def _z(bias: float, se: float, exact: float) -> float:
    """bias / se; with se = 0 (a constant estimate): 0 if the bias is round-off, else +-inf."""
    if se > 0 or math.isnan(bias):
        return bias / se if se > 0 else math.nan
    return 0.0 if abs(bias) <= 1e-12 * max(1.0, abs(exact)) else math.copysign(math.inf, bias)


def status(flags: dict) -> str:
    if flags.get("quadrature_failed"):
        return "exact gradient: quadrature failed"
    if not flags["expectation_finite"]:
        return "E[f] undefined"
    if not flags["pathwise_mean_finite"]:
        return "pathwise not integrable (E|estimate| infinite)"
    if not flags["pathwise_variance_finite"]:
        return "pathwise variance infinite" + ("" if flags["score_variance_finite"] else " (score too)")
    if not flags["score_unbiased"]:
        return "score biased (support moves)"
    if not flags["score_variance_finite"]:
        return "score variance infinite"
    return "finite"


# ---- one family -------------------------------------------------------------------------------


def measure_family(family: Family, repeats: int, generator: torch.Generator, fns=None) -> list[dict]:
    """Tidy rows (one per element, f, L, estimator) for one registry entry."""
    fns = [TEST_FUNCTIONS[f] for f in (fns or MEASURED)]
    params = family.example_params()
    n = 100 * repeats
    eps = family.sample_eps((n,) + family.eps_event_shape(params), generator)
    grads = per_draw_gradients(family, params, eps, fns)
    rows = []
    for fn in fns:
        for label, index in elements(family, params):
            flags = theory(family, params, label, fn)
            exact = math.nan
            if flags["expectation_finite"]:
                try:
                    exact = exact_gradient(family.scipy_marginals, params, label.split("[")[0], index, fn)
                except integrate.IntegrationWarning:  # reported as a missing exact value, never a wrong one
                    flags["quadrature_failed"] = True
            stats = {}
            for est in ("pathwise", "score"):
                h = grads[fn.name, est][label]
                for L in L_VALUES:
                    means = h.reshape(-1, L).mean(1) if L > 1 else h
                    var = float(means.var()) if means.numel() > 1 else math.nan
                    mean = float(means.mean())
                    se = math.sqrt(var / means.numel()) if var == var else math.nan
                    stats[est, L] = dict(
                        mean=mean,
                        variance=var,
                        bias=mean - exact,
                        bias_se=se,
                        bias_z=_z(mean - exact, se, exact),
                        n_estimates=int(means.numel()),
                    )
            for L in L_VALUES:
                vp, vs = stats["pathwise", L]["variance"], stats["score", L]["variance"]
                ratio = vs / vp if vp > 0 else (math.inf if vs > 0 else math.nan)
                for est in ("pathwise", "score"):
                    rows.append(
                        {
                            "entry": family.name,
                            "family": family.family,
                            "class": family.cls,
                            "construction": family.construction,
                            "parameter": label,
                            "value": float(params[label.split("[")[0]][index]),
                            "f": fn.name,
                            "L": L,
                            "estimator": est,
                            "exact_gradient": exact,
                            **stats[est, L],
                            "variance_ratio_score_over_pathwise": ratio,
                            "mean_finite": flags[f"{est}_mean_finite"],
                            "variance_finite": flags[f"{est}_variance_finite"],
                            **{k: v for k, v in flags.items() if k != "quadrature_failed"},
                            "status": status(flags),
                        }
                    )
    return rows


def measure(repeats: int = 500, seed: int = 0, only=None, progress=None):
    """A pandas DataFrame of tidy rows for the registry (or the entries in ``only``)."""
    import pandas as pd

    if repeats < 2:
        raise FamilyError(f"--repeats must be at least 2, got {repeats}")
    chosen = [get(n) for n in only] if only else list(REGISTRY.values())
    rows = []
    for i, fam in enumerate(chosen):
        t = time.perf_counter()
        gen = torch.Generator().manual_seed(seed * 1000 + list(REGISTRY).index(fam.name))
        rows += measure_family(fam, repeats, gen)
        if progress:
            progress(f"{fam.name:<15} {time.perf_counter() - t:6.1f} s  ({i + 1}/{len(chosen)})")
    return pd.DataFrame(rows)


# ---- outputs ----------------------------------------------------------------------------------


def summary_table(df):
    """Per entry: median / min / max log10(var score / var pathwise) at L=1 over its finite
    (parameter, f) cases, and the cases flagged infinite or biased."""
    import pandas as pd

    d = df[(df["L"] == 1) & (df["estimator"] == "pathwise")].copy()
    with np.errstate(divide="ignore"):
        d["log10_ratio"] = np.log10(d["variance_ratio_score_over_pathwise"].astype(float))
    out = []
    for entry, g in d.groupby("entry", sort=False):
        ok = g[(g["status"] == "finite") & np.isfinite(g["log10_ratio"])]
        flagged = g[g["status"] != "finite"]
        out.append(
            {
                "entry": entry,
                "family": g["family"].iloc[0],
                "cls": g["class"].iloc[0],
                "median_log10_ratio": ok["log10_ratio"].median(),
                "min_log10_ratio": ok["log10_ratio"].min(),
                "max_log10_ratio": ok["log10_ratio"].max(),
                "pathwise_zero_variance": int((g["variance_ratio_score_over_pathwise"] == math.inf).sum()),
                "flagged": "; ".join(f"{r.parameter} {r.f}: {r.status}" for r in flagged.itertuples()),
            }
        )
    return pd.DataFrame(out)


def _fmt(x, digits=3) -> str:
    return x if isinstance(x, str) else format_value(x, digits, missing="-", general=True)


def markdown(df, provenance: dict) -> str:
    s = summary_table(df)
    lines = [
        "# What the reparameterization trick buys",
        "",
        "Gradient of E_q[f(z)] with respect to each parameter (each element of vectors and Cholesky factors), "
        "pathwise (reparameterization) vs score-function (REINFORCE, no baseline) estimator, for the "
        f"registry's example parameters. {provenance['samples_per_entry']} draws per entry: L=1 statistics over "
        f"all single-draw estimates, L=100 over {provenance['repeats']} disjoint means of 100. "
        "Exact gradients: scipy quadrature and a 5-point central difference. "
        "ratio = var(score) / var(pathwise): > 1 means the trick wins. "
        "Flags come from theory (tail index), not from the samples: an infinite variance still has a finite "
        "sample variance, so those numbers are not estimates of anything.",
        "",
        f"Command: `{provenance['command']}`; seed {provenance['seed']}; {provenance['wall_s']:.0f} s.",
        "",
        "## Per entry (L=1, finite cases only)",
        "",
        "| entry | family | class | median log10 ratio | min | max | pathwise zero variance | flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in s.sort_values("median_log10_ratio", ascending=False).itertuples():
        lines.append(
            f"| {r.entry} | {r.family} | {r.cls} | {_fmt(r.median_log10_ratio)} | {_fmt(r.min_log10_ratio)} | "
            f"{_fmt(r.max_log10_ratio)} | {r.pathwise_zero_variance} | {r.flagged or '-'} |"
        )
    lines += [
        "",
        "## Every parameter and f",
        "",
        "| entry | parameter | f | exact | bias path (z) | bias score (z) | var path L=1 | var score L=1 | "
        "ratio L=1 | var path L=100 | var score L=100 | ratio L=100 | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    key = ["entry", "parameter", "f"]
    w = df.pivot_table(
        index=key,
        columns=["estimator", "L"],
        values=["variance", "bias", "bias_z"],
        sort=False,
        aggfunc="first",
        dropna=False,
    )
    meta = df.drop_duplicates(key).set_index(key)
    for idx in meta.index:
        m = meta.loc[idx]
        ratio = lambda L: (
            w.loc[idx, ("variance", "score", L)] / w.loc[idx, ("variance", "pathwise", L)]
            if w.loc[idx, ("variance", "pathwise", L)] > 0
            else math.inf
        )  # noqa: E731
        bias = lambda e: f"{_fmt(w.loc[idx, ('bias', e, 1)])} ({_fmt(w.loc[idx, ('bias_z', e, 1)], 2)})"  # noqa: E731
        lines.append(
            f"| {idx[0]} | {idx[1]} | {idx[2]} | {_fmt(m['exact_gradient'], 4)} | "
            f"{bias('pathwise')} | {bias('score')} | "
            f"{_fmt(w.loc[idx, ('variance', 'pathwise', 1)])} | {_fmt(w.loc[idx, ('variance', 'score', 1)])} | "
            f"{_fmt(ratio(1))} | {_fmt(w.loc[idx, ('variance', 'pathwise', 100)])} | "
            f"{_fmt(w.loc[idx, ('variance', 'score', 100)])} | {_fmt(ratio(100))} | {m['status']} |"
        )
    return "\n".join(lines) + "\n"


def plot(df, path: Path) -> None:
    """log10 variance ratio per entry, one dot per (parameter, f), coloured by f, shaped by status."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    d = df[df["estimator"] == "pathwise"].copy()
    clip = 6.0
    with np.errstate(divide="ignore"):
        ratio = np.log10(d["variance_ratio_score_over_pathwise"].astype(float))
    d["log10 var(score) / var(pathwise)"] = np.clip(ratio, -clip, clip)
    d["L"] = d["L"].astype(str)
    zero = (d["variance_ratio_score_over_pathwise"] == math.inf) & (d["status"] == "finite")
    d["status"] = np.where(zero, f"pathwise variance 0 (shown at {clip:g})", d["status"])
    g = sns.relplot(
        data=d,
        kind="scatter",
        x="log10 var(score) / var(pathwise)",
        y="entry",
        hue="f",
        style="status",
        col="L",
        height=7.5,
        aspect=0.8,
        s=45,
        alpha=0.8,
        facet_kws=dict(xlim=(-clip - 0.5, clip + 0.5)),
    )
    g.set_titles(col_template="L = {col_name} samples per estimate")
    for ax in g.axes.flat:
        ax.axvline(0, color="0.3", lw=0.8, ls="--")
        ax.grid(axis="y", color="0.92")
    sns.move_legend(g, "upper left", bbox_to_anchor=(0.78, 0.9), fontsize=8)
    g.figure.suptitle(
        "Score-function vs pathwise gradient variance of E_q[f(z)] (right of 0: the trick wins)", fontsize=10
    )
    g.figure.tight_layout(rect=(0, 0, 0.78, 1))
    g.figure.savefig(path, dpi=110, format="png", bbox_inches="tight")
    plt.close(g.figure)


def run_measurement(out: Path, repeats: int = 500, seed: int = 0, only=None, command: str = "", progress=print) -> dict:
    """Measure, then write gradient_variance.{csv,md,png} and provenance.json under ``out``."""
    from vaebench.fileio import atomic_path, atomic_write_json, atomic_write_text
    from vaebench.provenance import environment

    out = Path(out)
    start = time.perf_counter()
    df = measure(repeats, seed, only, progress)
    wall = time.perf_counter() - start
    provenance = environment("cpu") | {
        "command": command,
        "seed": seed,
        "entry_seed": "seed * 1000 + registry index",
        "repeats": repeats,
        "L": list(L_VALUES),
        "samples_per_entry": 100 * repeats,
        "entries": sorted(set(df["entry"]), key=list(REGISTRY).index),
        "test_functions": list(MEASURED),
        "wall_s": round(wall, 1),
        "dtype": "float64",
        "method": __doc__.strip(),
    }
    atomic_write_text(out / "gradient_variance.csv", df.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "gradient_variance.md", markdown(df, provenance))
    with atomic_path(out / "gradient_variance.png") as tmp:
        plot(df, tmp)
    atomic_write_json(out / "provenance.json", provenance)
    return {"frame": df, "summary": summary_table(df), "wall_s": wall, "out": out}
