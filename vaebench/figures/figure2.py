"""Figure 2 of the paper: AEVB against wake-sleep, lower bound against training samples.

``vaebench reproduce figure2`` trains the 18 runs (9 panels x 2 algorithms) of
``reproductions/figure2.toml`` at a budget into ``<out>/<dataset>_nz<N>_<algorithm>/`` (with
``--seeds 0,1,2``: ``..._seed<N>/``, summarized over seeds), then writes (vaebench.engine)

  figure2.csv        every run's curves, tidy (one row per run, evaluation point and split)
  figure2.png        the paper's layout (MNIST row of 5 panels, Frey Face row of 4), ours
                     beside the paper's own curves (lighter, thinner)
  figure2_table.md   obtained against paper at fixed budgets, per panel, algorithm and split
  figure2_table.csv  the same table, tidy
  provenance.json    machine, versions, budget, command and wall time of every run

The summary also works alone on run folders trained by other means:
``python -m vaebench.figures.figure2 results/figure2/medium``.
"""

from __future__ import annotations

import math
import re
import sys

from vaebench.engine.config import run_config
from vaebench.engine.study import Option, Study
from vaebench.engine.summary import ranks
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
from vaebench.formatting import format_value
from vaebench.runs import METRIC_COLUMNS

ALGORITHMS = ("aevb", "wake-sleep")
PANELS = {"mnist": (3, 5, 10, 20, 200), "frey": (2, 5, 10, 20)}  # the paper's layout
DATASET_TITLES = {"mnist": "MNIST", "frey": "Frey Face"}
LONG_SEGMENT = 0.15  # paper values on a drawn segment wider than this (decades) are the plot's straight line
_PANEL_KEYS = ("nz", "hidden")  # keys of [datasets.<name>] that are not RunConfig keys
_RUN_NAME = re.compile(r"(mnist|frey)_nz(\d+)_(aevb|wake-sleep)$")


def run_name(dataset: str, nz: int, algorithm: str) -> str:
    return f"{dataset}_nz{nz}_{algorithm}"


def paper_curves():
    """Every plotted vertex of the paper's Figure 2 (algorithm in vaebench's spelling)."""
    return read_paper_csv("figure2_curves.csv")


def paper_reference():
    """The paper's Figure 2 read at fixed budgets (algorithm in vaebench's spelling)."""
    return read_paper_csv("figure2_reference.csv")


def paper_value(dataset: str, nz: int, algorithm: str, split: str, samples: int) -> float:
    """The paper's lower bound at one of figure2_reference.csv's budgets."""
    return _paper_value(
        "figure2_reference.csv", "lower_bound", samples, dataset=dataset, nz=nz, algorithm=algorithm, split=split
    )


class Figure2(Study):
    name, title = "figure2", "Figure 2"
    description = "Figure 2: AEVB against wake-sleep, lower bound against training samples (18 runs)"
    run_pattern = "<dataset>_nz<N>_<algorithm>/"
    algorithms = ALGORITHMS
    columns = ("budget", *METRIC_COLUMNS, "lr", "status", "run")
    row_order = ("dataset", "nz", "algorithm", "seed", "samples_seen", "split")
    row_ranks = {"dataset": ranks(*PANELS), "algorithm": ranks(*ALGORITHMS), "split": ranks("train", "test")}

    # ---- the config and the runs
    def check_config(self, conf, path):
        if not isinstance(conf.get("datasets"), dict) or not conf["datasets"]:
            raise VaebenchError(f"{path}: needs a [datasets] table")
        for name, ds in conf["datasets"].items():
            if name not in PANELS:
                raise VaebenchError(f"{path}: unknown data set [datasets.{name}]; Figure 2 has {', '.join(PANELS)}")
            if not ds.get("nz"):
                raise VaebenchError(f"{path}: [datasets.{name}] needs an nz list")

    options = (Option("--datasets", "comma-separated subset of mnist,frey (default both)"),)

    def selection(self, values, conf):
        if not values.get("datasets"):
            return {}
        datasets = [d.strip() for d in values["datasets"].split(",") if d.strip()]
        unknown = [d for d in datasets if d not in conf["datasets"]]
        if unknown or not datasets:
            raise VaebenchError(
                f"--datasets: unknown {', '.join(unknown) or repr(values['datasets'])}; choose from "
                f"{', '.join(conf['datasets'])}"
            )
        return {"datasets": datasets}

    def run_specs(self, conf, budget, selection, overrides):
        """Data sets x their N_z x algorithms (``selection``: datasets, nzs, algorithms subsets)."""
        specs = []
        for dataset in selection.get("datasets") or list(conf["datasets"]):
            if dataset not in conf["datasets"]:
                raise VaebenchError(
                    f"unknown data set {dataset!r} for figure2; choose from {', '.join(conf['datasets'])}"
                )
            ds = conf["datasets"][dataset]
            panel = {k: v for k, v in ds.items() if k not in _PANEL_KEYS}
            for nz in ds["nz"]:
                if selection.get("nzs") is not None and nz not in selection["nzs"]:
                    continue
                for algorithm in selection.get("algorithms") or list(conf["algorithms"]):
                    cfg = run_config(
                        conf,
                        budget,
                        panel,
                        algorithm=algorithm,
                        overrides=overrides,
                        dataset=dataset,
                        nz=int(nz),
                        hidden=ds.get("hidden"),
                    )
                    specs.append((cfg, run_name(dataset, int(nz), algorithm)))
        return specs

    def run_key(self, name):
        m = _RUN_NAME.match(name)
        if not m or int(m.group(2)) not in PANELS[m.group(1)]:
            return None
        return name  # the folder's name (the rows are sorted by row_order)

    # ---- the summary
    def run_rows(self, folder, settings):
        return folder.read_metrics()[list(METRIC_COLUMNS)]

    def compare(self, ours):
        """Obtained against paper at every budget of figure2_reference.csv that a run reached
        (ours interpolated in log10(samples) between our evaluation points, or exact at one)."""
        import pandas as pd

        reference = paper_reference()
        rows = []
        for (dataset, nz, algorithm, split), g in ours.groupby(["dataset", "nz", "algorithm", "split"], sort=False):
            ref = reference[
                (reference.dataset == dataset)
                & (reference.nz == nz)
                & (reference.algorithm == algorithm)
                & (reference.split == split)
            ]
            lo, hi = g.samples_seen.min(), g.samples_seen.max()
            for r in ref.sort_values("samples_seen").itertuples():
                if not lo <= r.samples_seen <= hi:
                    continue
                value = interpolate(g.samples_seen.tolist(), g.lower_bound.tolist(), r.samples_seen, log=True)
                rows.append(
                    {
                        "dataset": dataset,
                        "nz": int(nz),
                        "algorithm": algorithm,
                        "split": split,
                        "samples": int(r.samples_seen),
                        "ours": value,
                        "paper": float(r.lower_bound),
                        "difference": value - float(r.lower_bound),
                        "ours_exact": bool((g.samples_seen == r.samples_seen).any()),
                        "paper_interpolated": bool(r.segment_decades > LONG_SEGMENT),
                        "paper_shown": bool(r.shown_in_figure),
                    }
                )
        return pd.DataFrame(
            rows,
            columns=[
                "dataset",
                "nz",
                "algorithm",
                "split",
                "samples",
                "ours",
                "paper",
                "difference",
                "ours_exact",
                "paper_interpolated",
                "paper_shown",
            ],
        )

    def table_markdown(self, table, summary):
        return comparison_markdown(
            table,
            title="Figure 2",
            budget=summary.budget,
            run_keys=["dataset", "nz", "algorithm"],
            columns=[
                ("data set", "---", DATASET_TITLES.get),
                ("N_z", "---:", str),
                ("algorithm", "---", ALGORITHM_LABELS.get),
            ],
            splits=("test", "train"),
            ranks_by={"dataset": ranks(*PANELS), "algorithm": ranks(*ALGORITHMS)},
            paper_cell=lambda r: (
                format_value(r.paper) + ("*" if r.paper_interpolated else "") + ("†" if not r.paper_shown else "")
            ),
            largest="tabulated",
            empty="No run has reached a budget at which the paper's value is tabulated (5e5 samples and up).",
            note="Average variational lower bound per datapoint (nats; Frey Face: a density, so positive), "
            "Δ = ours − paper. Ours: the bound estimate on the whole split (SGVB B, L = 1) with the "
            "parameters at that point, interpolated linearly in log10(samples) between our evaluation "
            "points (4 per decade) where the budget is not one of them. Paper: Figure 2 read from the PDF's "
            "vector paths at that budget (reproductions/paper/figure2_reference.csv); "
            f"* = on a drawn segment wider than {LONG_SEGMENT} decades (the plot's straight line, not a "
            "measurement); † = outside the figure's visible axes. The paper's train curve may be a running "
            "average over the preceding minibatches (it lies below its test curve early on); ours is not.",
        )

    def plot(self, ours, path, budget):
        """The paper's layout, only panels with runs: MNIST row (N_z 3, 5, 10, 20, 200), Frey Face
        row (2, 5, 10, 20); log x; AEVB red, wake-sleep green; train solid, test dashed; the
        paper's curves beside ours, lighter and thinner."""
        curves = paper_curves()
        rows = [(d, [nz for nz in PANELS[d] if ((ours.dataset == d) & (ours.nz == nz)).any()]) for d in PANELS]
        rows = [(d, nzs) for d, nzs in rows if nzs]
        if not rows:
            raise VaebenchError("no run folder with metrics to plot")
        ncols = max(len(nzs) for _, nzs in rows)
        fig, axes = new_figure(len(rows), ncols, (max(3.0 * ncols, 6.0), 2.9 * len(rows) + 0.8))
        for r, (dataset, nzs) in enumerate(rows):
            for c in range(ncols):
                ax = axes[r][c]
                if c >= len(nzs):
                    ax.set_visible(False)
                    continue
                _panel(ax, ours, curves, dataset, nzs[c])
                if c == 0:
                    ax.set_ylabel(r"$\mathcal{L}$ per datapoint", fontsize=9)
                if r == len(rows) - 1 or c >= len(rows[r + 1][1]):
                    ax.set_xlabel("# training samples evaluated", fontsize=9)
        h = fig.get_figheight()
        title = "Figure 2 (Kingma & Welling 2013): ours against the paper's curves"
        fig.suptitle(
            title + (f" — budget: {budget}" if budget else "") + seeds_title(ours),
            fontsize=10,
            y=1 - 0.08 / h,
            va="top",
        )
        wide = fig.get_figwidth() >= 9  # the legend on one line, else two
        fig.legend(
            handles=legend_handles(ALGORITHMS, paper_lw=0.9),
            loc="upper center",
            ncol=6 if wide else 3,
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, 1 - 0.3 / h),
        )
        fig.tight_layout(rect=(0, 0, 1, 1 - (0.45 if wide else 0.65) / h))
        save_figure(fig, path)

    def run_provenance(self, folder, info, summary):
        cfg = info.get("config", {})
        return {
            "dreams": cfg.get("dreams") if cfg.get("algorithm") == "wake-sleep" else None,
            "final": info.get("final"),
        }


def _panel(ax, ours, curves, dataset: str, nz: int) -> None:
    """One panel: ours and the paper's curves; log x from 1e5; a y range that an early or
    diverged value cannot squash."""
    mine = ours[(ours.dataset == dataset) & (ours.nz == nz)]
    theirs = curves[(curves.dataset == dataset) & (curves.nz == nz)]
    shown = theirs[theirs.shown_in_figure.astype(bool)]
    x_left = 1e5
    x_right = max(float(shown.samples_seen.max()) if len(shown) else 1e8, float(mine.samples_seen.max()), 1e6)
    draw_curves(ax, theirs, "lower_bound", PAPER_COLORS, fallback="0.7", lw=0.9, zorder=1)
    draw_curves(ax, mine, "lower_bound", COLORS, lw=1.6, marker="o", ms=2.2, zorder=3)
    ax.set_xscale("log")
    ax.set_xlim(x_left, x_right * 1.05)
    in_x = lambda df: df[(df.samples_seen >= x_left) & (df.samples_seen <= x_right)].lower_bound  # noqa: E731
    paper_y, our_y = in_x(shown), in_x(mine)
    ys = [v for s in (paper_y, our_y) for v in s.tolist() if math.isfinite(v)]
    if ys:
        lo, hi = min(ys), max(ys)
        if len(paper_y):
            span = float(paper_y.max() - paper_y.min()) or 10.0
            lo = max(lo, float(paper_y.min()) - 1.5 * span)
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_title(f"{DATASET_TITLES[dataset]}, $N_z = {nz}$", fontsize=10)
    ax.grid(True, which="major", lw=0.3, alpha=0.5)
    ax.tick_params(labelsize=8)


STUDY = Figure2()


def main(argv: list[str] | None = None) -> int:
    from vaebench.cli.summarize import main as summarize_main  # python -m vaebench.figures.<name> DIR

    return summarize_main(STUDY, argv)


if __name__ == "__main__":
    sys.exit(main())
