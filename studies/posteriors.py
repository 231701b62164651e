"""AEVB with non-Gaussian posteriors (the issue "The reparameterization trick beyond the
Gaussian", its last part): MNIST, N_z = 20, the paper's setup otherwise (reproductions/figure2.toml:
500 hidden units, M = 100, L = 1, N(0, 0.01) initialisation, MAP with the N(0, I) prior on theta,
Adagrad with the step size picked from {0.01, 0.02, 0.1} by the short trial, seed 0), one run
per posterior to 10^7 training samples:

    gaussian / gaussian prior            (the paper's model; estimator B)
    laplace / gaussian prior             (B: torch has KL(Laplace || Normal))
    logistic / gaussian prior            (A: no closed-form KL)
    student-t (df = 3 fixed) / gaussian  (A)
    lognormal / lognormal prior          (B; composition z = exp(loc + scale eps), z > 0)
    gamma-implicit / gamma(1, 1) prior   (B; z = P^-1(shape, u) / rate, implicit gradient, z > 0)

The estimator is left at auto: B where KL(q || p) is closed form, A otherwise (run.json's
config.estimator says which). The train/test bounds are metrics.csv's (the 10^6 value is a row of
the same run); log p(x) is importance-sampled with the run's own encoder as proposal on the
first 1,000 test points, K = 1000 samples per point (vaebench.marginal.run.evaluate_run,
method="importance"; about 2-3 minutes per estimate on one loaded core), at the 10^6 snapshot and
at 10^7.

    nohup python studies/posteriors.py --jobs 2 --threads 1 > runs/posteriors/study.log 2>&1 &
    python studies/posteriors.py --summarize-only      # tables and plot from the runs as they are

Runs go to runs/posteriors/mnist_nz20_<posterior>/ (resumable: an interrupted study picks up
from the checkpoints; finished runs and stored estimates are reused), results to
results/posteriors/: posteriors.csv (tidy), posteriors.md (the table), posteriors.png (Figure 2's
style: train solid, test dashed, one colour per posterior) and provenance.json, each written
atomically.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = (
    ("gaussian", "gaussian"),
    ("laplace", "gaussian"),
    ("logistic", "gaussian"),
    ("student-t", "gaussian"),
    ("lognormal", "lognormal"),
    ("gamma-implicit", "gamma-implicit"),
)
LABELS = {
    "gaussian": "Gaussian",
    "laplace": "Laplace",
    "logistic": "logistic",
    "student-t": "Student's t (df 3)",
    "lognormal": "log-normal",
    "gamma-implicit": "gamma",
}
COLORS = {
    "gaussian": "#e00000",
    "laplace": "#0030e0",
    "logistic": "#00a000",
    "student-t": "#e08000",
    "lognormal": "#8000c0",
    "gamma-implicit": "#00a0c0",
}
TABLE_SAMPLES = (1_000_000, 10_000_000)
K, N_POINTS, IS_SEED = 1000, 1000, 0
COLUMNS = (
    "posterior",
    "prior",
    "estimator",
    "samples_seen",
    "split",
    "lower_bound",
    "log_px_is",
    "log_px_is_stderr",
    "k",
    "n_points_is",
    "lr",
    "status",
    "run",
)


def run_configs(samples: int, out: Path, data_dir=None, names=None):
    from vaebench.config import RunConfig

    runs = []
    for posterior, prior in PAIRS:
        if names and posterior not in names:
            continue
        cfg = RunConfig(
            dataset="mnist",
            algorithm="aevb",
            nz=20,
            hidden=500,
            samples=samples,
            seed=0,
            lr="auto",
            batch_size=100,
            L=1,
            init_std=0.01,
            theta="map",
            binarize="none",
            evals_per_decade=4,
            first_eval=10_000,
            snapshots=True,
            posterior=posterior,
            latent_prior=prior,
            data_dir=data_dir,
        ).check()
        runs.append((cfg, out / f"mnist_nz20_{posterior}"))
    return runs


def estimate(runs, k: int, n_points: int) -> None:
    """Importance-sampled log p(x) at the 1e6 snapshot and the last one (stored rows reused)."""
    from vaebench.marginal.run import evaluate_run
    from vaebench.runs import RunFolder

    for _cfg, out in runs:
        folder = RunFolder(out)
        if (folder.read_info(missing_ok=True) or {}).get("status") != "finished":
            print(f"{out.name}: not finished; no log p(x) estimates", flush=True)
            continue
        wanted = {s for s, _, _ in folder.parameters("all") if s in TABLE_SAMPLES}
        evaluate_run(
            out,
            method="importance",
            splits=("test",),
            n_points=n_points,
            k=k,
            snapshot="all",
            seed=IS_SEED,
            only=wanted,
            progress=True,
        )


def collect(runs, k: int, n_points: int) -> list[dict]:
    from vaebench.runs import RunFolder

    rows = []
    for _cfg, out in runs:
        folder = RunFolder(out)
        info = folder.read_info(missing_ok=True)
        if not info:
            continue
        stored = folder.read_config()
        log_px = {}
        for r in folder.read_marginal("importance"):
            if str(r["k"]) == str(k) and str(r["n_points"]) == str(n_points) and str(r["seed"]) == str(IS_SEED):
                log_px[int(r["samples_seen"]), r["split"]] = (float(r["marginal_log_likelihood"]), float(r["stderr"]))
        with open(out / "metrics.csv", newline="") as f:
            for m in csv.DictReader(f):
                s, split = int(m["samples_seen"]), m["split"]
                lp, se = log_px.get((s, split), (math.nan, math.nan))
                rows.append(
                    {
                        "posterior": stored.posterior,
                        "prior": stored.latent_prior,
                        "estimator": stored.estimator,
                        "samples_seen": s,
                        "split": split,
                        "lower_bound": float(m["lower_bound"]),
                        "log_px_is": lp,
                        "log_px_is_stderr": se,
                        "k": k if math.isfinite(lp) else "",
                        "n_points_is": n_points if math.isfinite(lp) else "",
                        "lr": info.get("lr"),
                        "status": info.get("status"),
                        "run": out.name,
                    }
                )
    return rows


def _fmt(v, digits=2):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def table_markdown(rows: list[dict], k: int, n_points: int) -> str:
    at = {(r["posterior"], r["samples_seen"], r["split"]): r for r in rows}
    lines = [
        f"| posterior q(z\\|x) | prior p(z) | estimator | step size | samples | train bound | test bound | "
        f"test log p(x) (IS, K = {k}) |",
        "|---|---|:-:|---:|---:|---:|---:|---:|",
    ]
    for posterior, prior in PAIRS:
        for s in TABLE_SAMPLES:
            tr, te = at.get((posterior, s, "train")), at.get((posterior, s, "test"))
            if te is None:
                continue
            lp = "" if math.isnan(te["log_px_is"]) else f"{te['log_px_is']:.2f} ± {te['log_px_is_stderr']:.2f}"
            lines.append(
                f"| {LABELS[posterior]} | {LABELS.get(prior, prior)} | {te['estimator']} | {te['lr']} | "
                f"{s:.0e} | {_fmt(tr['lower_bound'] if tr else None)} | {_fmt(te['lower_bound'])} | {lp} |".replace(
                    "e+06", "e6"
                ).replace("e+07", "e7")
            )
    return "\n".join(lines) + (
        f"\n\nMNIST, N_z = 20, AEVB with the paper's setup otherwise; bounds per datapoint on the whole split "
        f"(metrics.csv: SGVB-B, or SGVB-A where the pair has no closed-form KL, L = 1); log p(x): importance "
        f"sampling with the run's encoder as proposal on the first {n_points:,} test points (± its Monte Carlo "
        f"standard error). Student's t has df = 3 fixed; the gamma prior is Gamma(1, 1).\n"
    )


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vaebench.figures.common import LINESTYLES
    from vaebench.fileio import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for posterior, _ in PAIRS:
        mine = [r for r in rows if r["posterior"] == posterior]
        for split in ("train", "test"):
            pts = sorted((r["samples_seen"], r["lower_bound"]) for r in mine if r["split"] == split)
            if pts:
                ax.plot(
                    *zip(*pts),
                    LINESTYLES[split],
                    color=COLORS[posterior],
                    lw=1.3,
                    label=f"{LABELS[posterior]} ({mine[0]['estimator']})" if split == "train" else None,
                )
        marks = sorted(
            (r["samples_seen"], r["log_px_is"]) for r in mine if r["split"] == "test" and not math.isnan(r["log_px_is"])
        )
        if marks:
            ax.plot(*zip(*marks), "o", mfc="none", color=COLORS[posterior], ms=5)
    ax.set_xscale("log")
    ax.set_xlim(1e5, 1e7 * 1.05)
    ax.set_ylim(-150, -95)
    ax.set_xlabel("# training samples evaluated")
    ax.set_ylabel(r"$\mathcal{L}$ (average lower bound per datapoint)")
    ax.set_title(r"MNIST, $N_z = 20$: AEVB with non-Gaussian posteriors")
    ax.grid(True, which="both", alpha=0.25)
    handles, labels = ax.get_legend_handles_labels()
    handles += [
        plt.Line2D([], [], color="k", ls="-"),
        plt.Line2D([], [], color="k", ls="--"),
        plt.Line2D([], [], color="k", ls="", marker="o", mfc="none", ms=5),
    ]
    labels += ["train bound", "test bound", "test log p(x), IS"]
    ax.legend(handles, labels, loc="lower right", fontsize=8, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)


def summarize(runs, results: Path, k: int, n_points: int, argv: list[str], wall: float) -> list[dict]:
    from vaebench.engine.summary import machine_and_versions
    from vaebench.fileio import atomic_write_json, atomic_write_text
    from vaebench.runs import RunFolder

    rows = collect(runs, k, n_points)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(
            {
                c: (
                    ""
                    if isinstance(r[c], float) and math.isnan(r[c])
                    else repr(r[c])
                    if isinstance(r[c], float) and c != "lr"
                    else r[c]
                )
                for c in COLUMNS
            }
        )
    atomic_write_text(results / "posteriors.csv", buf.getvalue())
    atomic_write_text(
        results / "posteriors.md", "# AEVB with non-Gaussian posteriors\n\n" + table_markdown(rows, k, n_points)
    )
    plot(rows, results / "posteriors.png")
    infos = {out.name: RunFolder(out).read_info(missing_ok=True) or {} for _, out in runs}
    marg = {}
    for _, out in runs:
        for r in RunFolder(out).read_marginal("importance"):
            marg.setdefault(out.name, []).append(
                {k2: r[k2] for k2 in ("samples_seen", "split", "k", "n_points", "seed", "wall_s")}
            )
    atomic_write_json(
        results / "provenance.json",
        {
            "study": "studies/posteriors.py",
            "command": "python " + " ".join(["studies/posteriors.py", *argv]),
            "training_command": "nohup python studies/posteriors.py --jobs 2 --threads 1 "
            "> runs/posteriors/study.log 2>&1 &",
            "runs": {
                name: {
                    "config": i.get("config"),
                    "lr": i.get("lr"),
                    "lr_trial": i.get("lr_trial"),
                    "status": i.get("status"),
                    "samples_seen": i.get("samples_seen"),
                    "train_wall_s": i.get("train_wall_s"),
                    "eval_wall_s": i.get("eval_wall_s"),
                    "samples_per_s": i.get("samples_per_s"),
                    "train_eval": i.get("train_eval"),
                    "git": i.get("git"),
                    "data": i.get("data"),
                }
                for name, i in infos.items()
            },
            "importance_sampling": {
                "method": "importance",
                "proposal": "the run's encoder q(z|x) (its own family)",
                "k": k,
                "n_points": n_points,
                "split": "test",
                "seed": IS_SEED,
                "samples": list(TABLE_SAMPLES),
                "estimates": marg,
            },
            "notes": {
                "student_t_df": 3.0,
                "positive_parameters": "exp(o/2), o the head output clamped to [-30, 20]",
                "priors": "N(0, 1), LogNormal(0, 1), Gamma(shape 1, rate 1) per coordinate",
                "estimator": "auto: B where KL(q || p) is closed form, else A",
            },
            **machine_and_versions(list(infos.values())),
            "study_wall_s": round(wall, 1),
        },
    )
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--samples", type=float, default=1e7, help="training samples per run (default 1e7)")
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("-k", type=int, default=K, help=f"importance samples per test point (default {K})")
    p.add_argument("--n-points", type=int, default=N_POINTS, help=f"test points for log p(x) (default {N_POINTS})")
    p.add_argument("--only", help="comma-separated posteriors (default: all)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "posteriors", help="run folders")
    p.add_argument("--results", type=Path, default=ROOT / "results" / "posteriors", help="tables, plot, provenance")
    p.add_argument("--data-dir", help="folder with the MNIST files (default: vaebench's search)")
    p.add_argument("--summarize-only", action="store_true", help="no training or estimates: write the results")
    args = p.parse_args(argv)

    import torch

    from vaebench.engine.runs_many import run_many
    from vaebench.errors import VaebenchError

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    names = set(args.only.split(",")) if args.only else None
    runs = run_configs(int(args.samples), args.out, args.data_dir, names)
    failed = None
    if not args.summarize_only:
        try:
            run_many(runs, jobs=args.jobs, threads=args.threads, progress=True)
        except VaebenchError as exc:  # a failed run does not stop the estimates of the others
            failed = exc
            print(f"failed: {exc}", flush=True)
        estimate(runs, args.k, args.n_points)
    rows = summarize(
        run_configs(int(args.samples), args.out, args.data_dir),
        args.results,
        args.k,
        args.n_points,
        argv,
        time.perf_counter() - t0,
    )
    print(table_markdown(rows, args.k, args.n_points), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
