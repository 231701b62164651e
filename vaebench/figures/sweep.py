"""A sweep (vaebench.engine.sweep) as a study: its runs' rows, the table of the bound at the end
of each grid point (mean ± sd over seeds) and the plot of the bound against samples."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from vaebench.engine.reproduce import run_study
from vaebench.engine.runs_many import RunOptions
from vaebench.engine.study import Reproduction, Study
from vaebench.engine.summary import ranks
from vaebench.engine.sweep import Sweep, load_sweep
from vaebench.figures.common import LINESTYLES, draw_curves, new_figure, save_figure, seeds_title
from vaebench.formatting import format_samples, format_spread
from vaebench.runs import METRIC_COLUMNS, check_out_path, split_seed, with_seeds


class SweepStudy(Study):
    """A sweep as a study of the engine: its runs, rows, table and plot."""

    name, title = "sweep", "Sweep"
    run_pattern = "<key>-<value>_.../"

    def __init__(self, sweep: Sweep):
        self.sweep, self.points = sweep, sweep.points()
        self.title = f"Sweep {sweep.name}"
        extra = [k for k in sweep.grid if k not in METRIC_COLUMNS]
        self.columns = ("point", *extra, *METRIC_COLUMNS, "lr", "status", "run")
        self.row_order = ("point", "seed", "samples_seen", "split")
        self.row_ranks = {"point": ranks(*self.points), "split": ranks("train", "test")}

    def run_key(self, name):
        return list(self.points).index(name) if name in self.points else None

    def run_rows(self, folder, settings):
        df = folder.read_metrics()[list(METRIC_COLUMNS)]
        point = split_seed(folder.name)[0]
        df.insert(0, "point", point)
        for key, value in self.points[point].items():
            if key not in df:
                df[key] = value
        return df

    def compare(self, ours):
        """Per grid point and split: the bound at the last evaluation (``samples``)."""
        import pandas as pd

        rows = []
        for (point, split), g in ours.groupby(["point", "split"], sort=False):
            last = g.loc[g.samples_seen.idxmax()]
            rows.append(
                {
                    "point": point,
                    **self.points[point],
                    "split": split,
                    "samples": int(last.samples_seen),
                    "ours": float(last.lower_bound),
                }
            )
        return pd.DataFrame(rows, columns=["point", *self.sweep.grid, "split", "samples", "ours"])

    def table_markdown(self, table, summary):
        keys = list(self.sweep.grid)
        lines = [
            f"## {self.title}: the average lower bound per datapoint at the end of each run",
            "",
            "| " + " | ".join([*keys, "samples", "train", "test"]) + " |",
            "|" + "|".join(["---"] * len(keys) + ["---:"] * 3) + "|",
        ]
        for point in self.points:
            g = table[table.point == point]
            if g.empty:
                continue
            cells = {r.split: format_spread(r, 2) for r in g.itertuples()}
            lines.append(
                "| "
                + " | ".join(
                    [
                        *(str(v) for v in self.points[point].values()),
                        format_samples(int(g.samples.max())),
                        cells.get("train", ""),
                        cells.get("test", ""),
                    ]
                )
                + " |"
            )
        seeds = int(table.seeds.max()) if "seeds" in table else 1
        note = (
            f"Mean ± standard deviation over {seeds} seeds. " if seeds > 1 else ""
        ) + f"Each run's SGVB-B bound on the whole split at its last evaluation (nats). Sweep file: {self.sweep.path}."
        return "\n".join(lines + ["", note, ""])

    def plot(self, ours, path, budget):
        import matplotlib

        colors = {p: matplotlib.colormaps["tab10"](i % 10) for i, p in enumerate(self.points)}
        fig, axes = new_figure(1, 1, (7.5, 4.8))
        ax = axes[0][0]
        draw_curves(ax, ours, "lower_bound", colors, by="point", lw=1.4, marker="o", ms=2)
        ax.set_xscale("log")
        late = ours[ours.samples_seen >= math.sqrt(ours.samples_seen.min() * ours.samples_seen.max())].lower_bound
        ys = [v for v in late if math.isfinite(v)]  # the y range of the later half (log x): early bounds squash it
        if ys:
            pad = 0.1 * (max(ys) - min(ys) or 1.0)
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=colors[p], lw=1.4, label=p) for p in self.points if (ours.point == p).any()]
        handles += [Line2D([], [], color="k", ls=ls, label=split) for split, ls in LINESTYLES.items()]
        ax.legend(handles=handles, fontsize=7, ncol=2)
        ax.set_xlabel("# training samples evaluated", fontsize=9)
        ax.set_ylabel(r"$\mathcal{L}$ per datapoint", fontsize=9)
        ax.set_title(f"{self.title}{seeds_title(ours)}", fontsize=10)
        ax.grid(True, which="major", lw=0.3, alpha=0.5)
        fig.tight_layout()
        save_figure(fig, path)

    def provenance(self, summary):
        s = self.sweep
        return {"sweep": {"file": str(s.path), "name": s.name, "base": s.base, "grid": s.grid, "seeds": s.seeds}}


def run_sweep(
    path: str | Path,
    *,
    out: str | Path | None = None,
    seeds: list[int] | None = None,
    run: RunOptions = RunOptions(),
    command: Callable[[Path], str] | None = None,
) -> int:
    """``vaebench sweep FILE``: check, lock, train, summarize, print (vaebench.engine.reproduce.run_study);
    ``seeds`` (None: the file's), ``out`` (default runs/sweeps/<name>/); ``command(out)`` is the
    command line provenance.json records."""
    executor = run.executor_for()
    sweep = load_sweep(path)
    out = check_out_path(out if out is not None else Path("runs") / "sweeps" / sweep.name)
    runs = with_seeds(sweep.runs(out, run.overrides()), seeds or sweep.seeds)
    rep = Reproduction(
        {},
        None,
        out,
        runs,
        {},
        run.jobs,
        executor.threads,
        run.device,
        run.data_dir,
        run.progress,
        command(out) if command else None,
        executor,
    )
    return run_study(SweepStudy(sweep), rep, what="vaebench sweep", hook_threads=run.threads)
