"""Figure 3 of the paper: the estimated marginal log-likelihood of MNIST models (N_z = 3,
100 hidden units) against training samples, AEVB, wake-sleep and Monte Carlo EM, for
N_train = 1,000 and 50,000, train and test.

``vaebench reproduce figure3`` trains the 6 runs of ``reproductions/figure3.toml`` at a budget
into ``<out>/ntrain<N>_<algorithm>/`` (``..._seed<N>/`` with several --seeds) with snapshots,
estimates the marginal likelihood at each snapshot with the appendix D estimator
(vaebench.marginal.run; written beside each run as ``marginal_hmc.csv``, resumable), then writes
(vaebench.engine)

  figure3.csv        tidy: one row per run, snapshot and split
  figure3.png        the paper's layout (two panels, N_train = 1000 and 50000; linear x axis;
                     AEVB red, wake-sleep green, MCEM blue; train solid, test dashed), ours
                     beside the paper's own curves (lighter, thinner)
  figure3_table.md   obtained against paper at the paper's tabulated budgets (and .csv)
  provenance.json    machine, versions, budget, settings, command and wall times

The summary also works alone on existing run folders:
``python -m vaebench.figures.figure3 results/figure3/medium``.
"""

from __future__ import annotations

import math
import re
import sys

from vaebench.engine.config import run_config
from vaebench.engine.study import Option, Study
from vaebench.engine.summary import frame, ranks
from vaebench.errors import VaebenchError
from vaebench.figures.common import (
    ALGORITHM_LABELS,
    COLORS,
    PAPER_COLORS,
    comparison_markdown,
    draw_curves,
    interpolate,
    legend_handles,
    new_figure,
    read_paper_csv,
    save_figure,
    seeds_title,
)
from vaebench.figures.common import paper_value as _paper_value
from vaebench.formatting import format_samples, format_value
from vaebench.runs import RunFolder

N_TRAIN = (1000, 50000)
ALGORITHMS = ("aevb", "wake-sleep", "mcem")
MARGINAL_DEFAULTS = {
    "method": "hmc",
    "n_points": 1000,
    "samples_per_point": 50,
    "leapfrog": 4,
    "burn_in": 200,
    "thin": 2,
    "min_samples": 0,
    "seed": 0,
    "importance_k": 1000,
}
ESTIMATOR = (
    "appendix D: HMC posterior samples, full-covariance Gaussian q(z) per datapoint fitted to a first "
    "sample set, -logmeanexp[log q - log p(x, z)] on a second set"
)
_FILTER_KEYS = ("n_points", "samples_per_point", "leapfrog", "burn_in", "thin", "seed")
_RUN_NAME = re.compile(r"ntrain(\d+)_(aevb|wake-sleep|mcem)$")


def run_name(n_train: int, algorithm: str) -> str:
    return f"ntrain{n_train}_{algorithm}"


def paper_curves():
    """Every plotted vertex of the paper's Figure 3 (algorithm in vaebench's spelling)."""
    return read_paper_csv("figure3_curves.csv")


def paper_reference():
    """The paper's Figure 3 read at 1, 2, 5, 10, 20, ..., 60 million samples."""
    return read_paper_csv("figure3_reference.csv")


def paper_value(n_train: int, algorithm: str, split: str, samples: int) -> float:
    """The paper's marginal log-likelihood at one of figure3_reference.csv's budgets."""
    return _paper_value(
        "figure3_reference.csv", "marginal_log_likelihood", samples, n_train=n_train, algorithm=algorithm, split=split
    )


def estimate_all(runs, settings: dict, *, data_dir=None, device=None, progress: bool = True) -> None:
    """The marginal likelihood at every snapshot (from ``min_samples``) of every trained run, and
    the importance-sampling cross-check (final parameters) of those with an encoder."""
    from vaebench.marginal.run import evaluate_run

    for cfg, run_dir in runs:
        if RunFolder(run_dir).read_info(missing_ok=True) is None:
            continue
        common = dict(
            n_points=settings["n_points"], seed=settings["seed"], data_dir=data_dir, device=device, progress=progress
        )
        evaluate_run(
            run_dir,
            method=settings["method"],
            samples_per_point=settings["samples_per_point"],
            leapfrog=settings["leapfrog"],
            burn_in=settings["burn_in"],
            thin=settings["thin"],
            snapshot="all",
            min_samples=settings["min_samples"],
            **common,
        )
        if cfg.algorithm != "mcem" and settings.get("importance_k"):
            evaluate_run(run_dir, method="importance", k=settings["importance_k"], snapshot="last", **common)


class Figure3(Study):
    name, title = "figure3", "Figure 3"
    description = "Figure 3: marginal likelihood of AEVB, wake-sleep and MCEM against training samples (6 runs)"
    run_pattern = "ntrain<N>_<algorithm>/ with marginal_hmc.csv"
    algorithms = ALGORITHMS
    # fmt: off
    columns = ("budget", "n_train", "algorithm", "samples_seen", "split", "marginal_log_likelihood", "stderr", "method",
               "n_points", "samples_per_point", "leapfrog", "burn_in", "thin", "seed", "mean_accept", "lr", "status",
               "run")
    # fmt: on
    row_order = ("n_train", "algorithm", "run", "samples_seen", "split")
    row_ranks = {"algorithm": ranks(*ALGORITHMS), "split": ranks("train", "test")}
    settings_table, settings_defaults = "marginal", MARGINAL_DEFAULTS

    # ---- the config and the runs
    def check_config(self, conf, path):
        conf.setdefault("n_train", list(N_TRAIN))
        for n in conf["n_train"]:
            if not isinstance(n, int) or n < 100:
                raise VaebenchError(f"{path}: n_train values must be integers >= 100, got {n!r}")

    options = (Option("--n-train", "comma-separated subset of 1000,50000 (default both)"),)

    def selection(self, values, conf):
        return {"n_train": parse_n_train(values["n_train"], conf)} if values.get("n_train") else {}

    def run_specs(self, conf, budget, selection, overrides):
        """N_train x algorithms (``selection``: n_train, algorithms subsets)."""
        return [
            (
                run_config(conf, budget, algorithm=algorithm, overrides=overrides, n_train=int(n)),
                run_name(int(n), algorithm),
            )
            for n in selection.get("n_train") or conf["n_train"]
            for algorithm in selection.get("algorithms") or list(conf["algorithms"])
        ]

    def run_key(self, name):
        m = _RUN_NAME.match(name)
        return (int(m.group(1)), ALGORITHMS.index(m.group(2))) if m else None

    def announce(self, rep):
        s = rep.settings
        note = (
            f"\nnote: {s['n_points']} points per split at this budget (the paper: 1,000)"
            if s["n_points"] < 1000
            else ""
        )
        return (
            f", then the appendix D estimate on the first {s['n_points']:,} train and test points at every "
            f"snapshot from {s['min_samples']:,} samples{note}"
        )

    def after_training(self, rep):
        estimate_all(rep.runs, rep.settings, data_dir=rep.data_dir, device=rep.device, progress=rep.progress)

    # ---- the summary
    def stored_settings(self, provenance):
        stored = provenance.get("marginal_likelihood") or {}
        return {k: v for k, v in stored.items() if k in MARGINAL_DEFAULTS}

    def run_rows(self, folder, settings):
        """The run's marginal_<method>.csv (only rows with ``settings``' n_points, ... when given)."""
        df = frame(folder.read_marginal(settings.get("method", "hmc")))
        for key in _FILTER_KEYS if settings else ():
            if key in settings and key in df:
                df = df[df[key].astype(str) == str(settings[key])]
        return df

    def compare(self, ours):
        """Obtained against paper at every budget of figure3_reference.csv that a run reached
        (ours interpolated linearly between our snapshots, or exact at one). A run that reached
        none of them (the quick budget) is compared at its last snapshot where the paper's plotted
        curve covers it, the paper's value interpolated linearly between the curve's vertices
        (``from_curve``)."""
        import pandas as pd

        reference, curves = paper_reference(), paper_curves()
        rows = []
        for (n_train, algorithm, split), g in ours.groupby(["n_train", "algorithm", "split"], sort=False):

            def select(df):
                return df[(df.n_train == n_train) & (df.algorithm == algorithm) & (df.split == split)]

            lo, hi = g.samples_seen.min(), g.samples_seen.max()
            points = [
                (int(r.samples_seen), float(r.marginal_log_likelihood), bool(r.shown_in_figure), False)
                for r in select(reference).sort_values("samples_seen").itertuples()
                if lo <= r.samples_seen <= hi
            ]
            curve = select(curves)
            curve = curve[curve.shown_in_figure.astype(bool)]
            if not points and not curve.empty:
                paper = interpolate(curve.samples_seen.tolist(), curve.marginal_log_likelihood.tolist(), hi)
                if math.isfinite(paper):
                    points.append((int(hi), paper, True, True))
            for samples, paper, shown, from_curve in points:
                value = interpolate(g.samples_seen.tolist(), g.marginal_log_likelihood.tolist(), samples)
                rows.append(
                    {
                        "n_train": int(n_train),
                        "algorithm": algorithm,
                        "split": split,
                        "samples": samples,
                        "ours": value,
                        "paper": paper,
                        "difference": value - paper,
                        "ours_exact": bool((g.samples_seen == samples).any()),
                        "paper_shown": shown,
                        "from_curve": from_curve,
                    }
                )
        return pd.DataFrame(
            rows,
            columns=[
                "n_train",
                "algorithm",
                "split",
                "samples",
                "ours",
                "paper",
                "difference",
                "ours_exact",
                "paper_shown",
                "from_curve",
            ],
        )

    def table_markdown(self, table, summary):
        s = self._settings(summary)
        md = comparison_markdown(
            table,
            title="Figure 3",
            budget=summary.budget,
            run_keys=["n_train", "algorithm"],
            columns=[("N_train", "---:", "{:,}".format), ("algorithm", "---", ALGORITHM_LABELS.get)],
            splits=("train", "test"),
            ranks_by={"algorithm": ranks(*ALGORITHMS)},
            paper_cell=lambda r: format_value(r.paper) + ("" if r.paper_shown else "†") + ("‡" if r.from_curve else ""),
            largest="compared",
            empty="No run has reached a budget at which the paper's value is tabulated (1e6 samples and up) "
            "or that the paper's plotted curves cover.",
            note="Estimated marginal log-likelihood log p(x) per datapoint (nats), Δ = ours − paper. Ours: the "
            "appendix D estimator (HMC posterior samples, a full-covariance Gaussian q(z) per datapoint "
            f"fitted to {s.get('samples_per_point', 50)} samples, the estimate from "
            f"{s.get('samples_per_point', 50)} more; {s.get('leapfrog', 4)} leapfrog steps) on the first "
            f"{s.get('n_points', 1000):,} points of each split, with the parameters at each snapshot, "
            "interpolated linearly between snapshots where the budget is not one of them. Paper: Figure 3 "
            "read from the PDF's vector paths (reproductions/paper/figure3_reference.csv); † = outside the "
            "figure's visible axes; ‡ = a run that reached no tabulated budget, compared at its last "
            "snapshot with the paper's plotted curve (figure3_curves.csv) read there (below 1e6 the curves "
            "sit in the first 2% of the linear x axis, so those readings are coarse).",
        )
        cross = _cross_check(summary)
        return md + ("\n" + cross if cross else "")

    def plot(self, ours, path, budget):
        """Two panels (N_train = 1000, 50000; those with runs), linear x axis in samples; AEVB red,
        wake-sleep green, MCEM blue; train solid, test dashed; the paper's curves beside ours,
        lighter and thinner."""
        curves = paper_curves()
        panels = [n for n in N_TRAIN if (ours.n_train == n).any()] + sorted(
            set(int(n) for n in ours.n_train) - set(N_TRAIN)
        )
        if not panels:
            raise VaebenchError("no marginal-likelihood estimates to plot")
        fig, axes = new_figure(1, len(panels), (5.2 * len(panels), 4.4))
        for ax, n in zip(axes[0], panels):
            _panel(ax, ours[ours.n_train == n], curves[(curves.n_train == n) & curves.shown_in_figure.astype(bool)], n)
        title = "Figure 3 (Kingma & Welling 2013), N_z = 3:\nours against the paper's curves"
        note = (f" (budget: {budget})" if budget else "") + seeds_title(ours)
        narrow = len(panels) == 1  # one panel: the note on a line of its own, or it is cut off
        fig.suptitle(title + ("\n" + note.lstrip(", ") if narrow and note else note), fontsize=10)
        fig.legend(
            handles=legend_handles(ALGORITHMS),
            loc="lower center",
            ncol=4 if not narrow else 3,
            fontsize=8,
            frameon=False,
        )
        fig.tight_layout(rect=(0, 0.14 if narrow else 0.12, 1, 1 if narrow else 0.95))
        save_figure(fig, path)

    def run_provenance(self, folder, info, summary):
        rows = folder.read_marginal(summary.settings.get("method", "hmc"))
        return {
            "options": info.get("config", {}).get("options"),
            "marginal_wall_s": round(math.fsum(float(r["wall_s"]) for r in rows), 1) if rows else None,
        }

    def provenance(self, summary):
        return {"marginal_likelihood": {**self._settings(summary), "estimator": ESTIMATOR}}

    @staticmethod
    def _settings(summary) -> dict:
        """The estimator's settings: as given or recorded, else those of the first estimate."""
        if summary.settings:
            return summary.settings
        first = summary.ours.iloc[0]
        return {
            k: (int(first[k]) if str(first[k]).isdigit() else first[k])
            for k in MARGINAL_DEFAULTS
            if k in summary.ours and k != "min_samples"
        }


def parse_n_train(text: str, conf: dict) -> list[int]:
    """--n-train: comma-separated values of the config's n_train list."""
    try:
        values = [int(float(v)) for v in text.split(",") if v.strip()]
    except ValueError:
        raise VaebenchError(f"--n-train takes comma-separated integers, got {text!r}") from None
    if not values or any(v not in conf["n_train"] for v in values):
        raise VaebenchError(f"--n-train: choose from {', '.join(map(str, conf['n_train']))}, got {text!r}")
    return values


def _panel(ax, mine, theirs, n: int) -> None:
    """One panel: ours and the paper's curves to just past our last snapshot; a y range that an
    early estimate cannot squash but that shows where every curve ends."""
    x_right = max(float(mine.samples_seen.max()), 1e6)
    theirs = theirs[theirs.samples_seen <= x_right * 1.02]
    draw_curves(ax, theirs, "marginal_log_likelihood", PAPER_COLORS, fallback="0.7", x_scale=1e6, lw=1.0, zorder=1)
    draw_curves(ax, mine, "marginal_log_likelihood", COLORS, x_scale=1e6, lw=1.6, marker="o", ms=2.5, zorder=3)
    ax.set_xlim(0, x_right / 1e6 * 1.02)
    shown = theirs.marginal_log_likelihood.tolist()
    ys = [v for v in shown + mine.marginal_log_likelihood.tolist() if math.isfinite(v)]
    if ys:
        lo, hi = min(ys), max(ys)
        if shown:
            finals = mine.sort_values("samples_seen").groupby(["algorithm", "split"]).marginal_log_likelihood.last()
            floor = min(shown) - 0.5 * ((max(shown) - min(shown)) or 10.0)
            lo = max(lo, min([floor, *[v for v in finals if math.isfinite(v)]]))
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_title(f"MNIST, N_train = {n:,}", fontsize=10)
    ax.set_xlabel("# training samples evaluated (millions)", fontsize=9)
    ax.set_ylabel("marginal log-likelihood", fontsize=9)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.tick_params(labelsize=8)


def _cross_check(summary) -> str:
    """Markdown: the appendix D estimate against importance sampling with the trained encoder
    (marginal_importance.csv, final parameters) for the runs that have both."""
    ours, settings, lines = summary.ours, summary.settings, []
    for folder in summary.folders:
        imp = frame(folder.read_marginal("importance"))
        if settings and "n_points" in settings and "n_points" in imp:
            imp = imp[imp.n_points.astype(str) == str(settings["n_points"])]
        for r in imp.itertuples():
            mine = ours[(ours.run == folder.name) & (ours.samples_seen == r.samples_seen) & (ours.split == r.split)]
            if mine.empty:
                continue
            h = mine.iloc[0]
            lines.append(
                f"| {folder.name} | {format_samples(int(r.samples_seen))} | {r.split} | "
                f"{h.marginal_log_likelihood:.2f} ± {h.stderr:.3f} | "
                f"{r.marginal_log_likelihood:.2f} ± {r.stderr:.3f} (k = {int(r.k)}) |"
            )
    if not lines:
        return ""
    return "\n".join(
        [
            "### Cross-check: importance sampling with the trained encoder as proposal",
            "",
            "| run | samples | split | appendix D (HMC) | importance sampling |",
            "|---|---:|---|---:|---:|",
            *lines,
            "",
            "Importance sampling with q(z|x) as proposal is a lower bound in expectation; where the encoder "
            "is a poor proposal (test points of a model that overfits) it falls well below, and its "
            "standard error (delta method) understates its error.",
            "",
        ]
    )


STUDY = Figure3()


def main(argv: list[str] | None = None) -> int:
    from vaebench.cli.summarize import main as summarize_main  # python -m vaebench.figures.<name> DIR

    return summarize_main(STUDY, argv)


if __name__ == "__main__":
    sys.exit(main())
