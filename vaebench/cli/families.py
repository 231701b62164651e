"""List the reparameterizable families of the paper's section 2.4 (z = g(eps, params) by a
tractable inverse CDF, a location-scale transform or a composition): family, class, construction,
parameters (constraint; the unconstrained parameterisation an encoder would output), and whether
the KL to a prior is closed-form. With --measure: what the trick buys, the bias and variance of
the pathwise vs the score-function gradient of E_q[f(z)] for every family, parameter and
f in {z, z^2, sin z} at L=1 and L=100 samples, against exact gradients by quadrature; writes
OUT/gradient_variance.{csv,md,png} and OUT/provenance.json."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--measure",
        action="store_true",
        help="measure pathwise vs score-function gradient bias and variance (about a minute)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results/families"),
        help="with --measure: output folder (default results/families)",
    )
    p.add_argument(
        "--repeats",
        type=_positive_int,
        default=500,
        help="with --measure: estimates at L=100 (draws per family: 100x this; default 500)",
    )
    p.add_argument("--seed", type=int, default=0, help="with --measure: random seed (default 0)")
    p.add_argument("--only", default=None, metavar="NAMES", help="comma-separated registry names (default: all)")


def _table(entries) -> str:
    cols = ("name", "family", "class", "construction", "parameters", "log_prob", "closed-form KL")
    rows = [
        (
            f.name,
            f.family,
            f.cls,
            f.construction,
            ", ".join(p.short() for p in f.params),
            "hand-written" if f.log_prob_source.startswith("hand") else f.log_prob_source.split("(")[0].split()[-1],
            f"{f.kl_source}, to {_params_text(f.prior)}" if f.has_kl else "no",
        )
        for f in entries
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _params_text(params: dict) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")"


def run(args: argparse.Namespace) -> int:
    from vaebench import families

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    entries = [families.get(n) for n in only] if only else list(families.REGISTRY.values())
    if not args.measure:
        print(_table(entries))
        n_fam = len({f.family for f in entries})
        encoder = "; ".join(f"{v[2]} -> {v[1]}" for k, v in families.CONSTRAINTS.items() if k != "real")
        print(
            f"\n{len(entries)} entries, {n_fam} families. u~U(0,1); gamma(a; u) = P^-1(a, u) and "
            "chi2_d(u) = 2 gamma(d/2; u):\nthe standard gamma's inverse CDF with its implicit gradient "
            "(as torch's Gamma.rsample).\nlog_prob: the torch.distributions class, or hand-written. "
            f"Encoder outputs: real -> identity; {encoder}."
        )
        return 0

    import torch

    from vaebench.families.measure import run_measurement

    torch.set_num_threads(1)
    command = "vaebench families --measure " + " ".join(
        [f"--out {shlex.quote(str(args.out))}", f"--repeats {args.repeats}", f"--seed {args.seed}"]
        + ([f"--only {shlex.quote(args.only)}"] if only else [])
    )
    result = run_measurement(
        args.out, args.repeats, args.seed, only, command, progress=lambda s: print(s, file=sys.stderr)
    )
    s = result["summary"].sort_values("median_log10_ratio", ascending=False)
    print(
        s[["entry", "median_log10_ratio", "min_log10_ratio", "max_log10_ratio"]].to_string(
            index=False, float_format=lambda x: f"{x:.2f}"
        )
    )
    print(f"\nwrote {args.out}/gradient_variance.csv, .md, .png and provenance.json ({result['wall_s']:.0f} s)")
    return 0


def main(argv=None) -> int:
    """``python -m vaebench.cli.families [...]`` (the same as ``vaebench families``)."""
    from vaebench.errors import user_errors

    parser = argparse.ArgumentParser(prog="vaebench families", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except user_errors() as exc:
        print(f"vaebench families: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
