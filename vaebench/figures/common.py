"""What the figure modules share besides the engine (vaebench.engine): the paper's CSVs,
interpolation between evaluation points, the obtained-against-paper markdown
table and the pieces of the plots (colours, line styles, legend, saving)."""

from __future__ import annotations

import math
from pathlib import Path

from vaebench.fileio import atomic_path
from vaebench.formatting import format_samples, format_spread
from vaebench.resources import paper_dir
from vaebench.runs import split_seed

ALGORITHM_LABELS = {"aevb": "AEVB", "wake-sleep": "Wake-Sleep", "mcem": "MCEM"}
COLORS = {"aevb": "#e00000", "wake-sleep": "#00a000", "mcem": "#0030e0"}  # ours (the paper: red, green, blue)
PAPER_COLORS = {"aevb": "#f4a0a0", "wake-sleep": "#a0dca0", "mcem": "#a8b8f4"}  # the paper's curves, lighter
LINESTYLES = {"train": "-", "test": "--"}


# ---- the paper's values --------------------------------------------------------------------


def read_paper_csv(name: str, folder: str | Path | None = None):
    """One of the paper's CSVs (reproductions/paper/<name>), its algorithm column in vaebench's
    spelling ("wake_sleep" -> "wake-sleep")."""
    import pandas as pd

    df = pd.read_csv(Path(folder if folder is not None else paper_dir()) / name)
    df["algorithm"] = df["algorithm"].str.replace("_", "-")
    return df


def paper_value(csv_name: str, column: str, samples: int, **where) -> float:
    """The paper's ``column`` at ``samples`` in one of its reference CSVs, the curve picked by
    ``where`` (e.g. dataset="mnist", nz=20, algorithm="aevb", split="test")."""
    ref = read_paper_csv(csv_name)
    keep = ref.samples_seen == int(samples)
    for key, value in where.items():
        keep &= ref[key] == value
    if keep.sum() != 1:
        shown = " ".join(f"{k}={v}" for k, v in where.items())
        raise KeyError(f"no paper value for {shown} at {samples:g} samples")
    return float(ref[keep][column].iloc[0])


# ---- our curves ----------------------------------------------------------------------------


def interpolate(samples, values, at: float, *, log: bool = False) -> float:
    """The value at ``at`` samples, linear in samples (or in log10(samples) with ``log``)
    between evaluation points, exact at a point; NaN outside [first, last]."""
    pts = sorted(zip(samples, values))
    if not pts or at < pts[0][0] or at > pts[-1][0]:
        return math.nan
    scale = math.log10 if log else float
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if s0 <= at <= s1:
            if at == s0:
                return float(v0)
            if at == s1:
                return float(v1)
            return float(v0 + (scale(at) - scale(s0)) / (scale(s1) - scale(s0)) * (v1 - v0))
    return float(pts[-1][1])  # a single point, equal to ``at``


def sort_in_order(df, columns: list[str], order: dict[str, dict]):
    """``df`` sorted (stably) by ``columns``; a column named in ``order`` by its value's rank there."""
    return df.sort_values(columns, key=lambda s: s.map(order[s.name]) if s.name in order else s, kind="stable")


def ranks(*values) -> dict:
    """{value: its position}, for sort_in_order."""
    return {v: i for i, v in enumerate(values)}


# ---- the obtained-against-paper table --------------------------------------------------------


def comparison_markdown(
    table,
    *,
    title: str,
    budget: str | None,
    run_keys: list[str],
    columns: list[tuple],
    splits: tuple[str, str],
    ranks_by: dict,
    paper_cell,
    largest: str,
    empty: str,
    note: str,
) -> str:
    """Markdown of a comparison table (one row per run, budget and split: ``ours``, ``paper``,
    ``difference``): at the largest budget each run reached, then at every budget, then ``note``.

    run_keys: the columns naming a run; columns: (header, alignment, cell(value)) of each, then
    the samples; splits: the split columns' order; paper_cell(row) -> the paper's cell."""
    lines = [f"## {title}: obtained against the paper{f' (budget: {budget})' if budget else ''}", ""]
    if table.empty:
        return "\n".join(lines + [empty, ""])
    head = (
        "| "
        + " | ".join(
            [c[0] for c in columns] + ["samples"] + [f"{s}: {what}" for s in splits for what in ("ours", "paper", "Δ")]
        )
        + " |"
    )
    sep = "|" + "|".join([c[1] for c in columns] + ["---:"] * 7) + "|"

    def rows(part) -> list[str]:
        out = []
        for key, g in part.groupby([*run_keys, "samples"], sort=False):
            cells = [c[2](v) for c, v in zip(columns, key)] + [format_samples(key[-1])]
            for split in splits:
                r = g[g.split == split]
                if r.empty:
                    cells += ["", "", ""]
                    continue
                r = next(r.itertuples())
                cells += [
                    format_spread(r),
                    paper_cell(r),
                    f"{r.difference:+.1f}" if not math.isnan(r.difference) else "n/a",
                ]
            out.append("| " + " | ".join(cells) + " |")
        return out

    table = sort_in_order(table, [*run_keys, "samples", "split"], {**ranks_by, "split": ranks(*splits)})
    last = table.groupby(run_keys).samples.transform("max")
    lines += [
        f"### At the largest {largest} budget each run reached",
        "",
        head,
        sep,
        *rows(table[table.samples == last]),
        "",
    ]
    if table.samples.nunique() > 1:
        lines += ["### Every budget reached", "", head, sep, *rows(table), ""]
    if "ours_std" in table:
        note += (
            f" Ours over {int(table.seeds.max())} seeds: their mean ± standard deviation (Δ: the mean − paper); "
            "the figure draws the mean, with a band from the lowest seed to the highest."
        )
    return "\n".join(lines + [note, ""])


# ---- plots ---------------------------------------------------------------------------------


def new_figure(nrows: int, ncols: int, figsize):
    """A matplotlib figure (Agg) and its axes as a 2-d array."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)


def draw_curves(
    ax, df, y: str, colors: dict, fallback: str = "k", x_scale: float = 1.0, by: str = "algorithm", **style
) -> None:
    """One line per (``by``, split) of ``df``: x = samples_seen / x_scale, the colour of its
    ``by`` value (else ``fallback``), the split's line style (train solid, test dashed). Where
    ``df`` has several runs (seeds) of a line, their mean over a band from their min to max."""
    for (key, split), g in df.groupby([by, "split"]):
        color = colors.get(key, fallback)
        if "run" in g and g.run.nunique() > 1:
            g = g.groupby("samples_seen")[y].agg(["mean", "min", "max"]).reset_index().rename(columns={"mean": y})
            x = g.samples_seen / x_scale
            ax.fill_between(x, g["min"], g["max"], color=color, alpha=0.2, lw=0, zorder=style.get("zorder", 2) - 0.5)
        g = g.sort_values("samples_seen")
        ax.plot(
            g.samples_seen / x_scale if x_scale != 1.0 else g.samples_seen,
            g[y],
            color=color,
            ls=LINESTYLES[split],
            **style,
        )


def seeds_title(ours) -> str:
    """A figure title's note on seeds: "" for one, else ", N seeds (mean, min-max band)"."""
    n = ours.run.map(lambda run: split_seed(run)[1]).nunique(dropna=False)
    return f", {n} seeds (mean, min-max band)" if n > 1 else ""


def legend_handles(algorithms, ours_lw: float = 1.6, paper_lw: float = 1.0) -> list:
    """The legend: each algorithm ours, each algorithm the paper's, then train and test."""
    from matplotlib.lines import Line2D

    return (
        [Line2D([], [], color=COLORS[a], lw=ours_lw, label=f"{ALGORITHM_LABELS[a]} (ours)") for a in algorithms]
        + [
            Line2D([], [], color=PAPER_COLORS[a], lw=paper_lw, label=f"{ALGORITHM_LABELS[a]} (paper)")
            for a in algorithms
        ]
        + [Line2D([], [], color="k", lw=1.2, ls=ls, label=split) for split, ls in LINESTYLES.items()]
    )


def save_figure(fig, path: str | Path) -> None:
    """``fig`` as a PNG (130 dpi), written atomically, then closed."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)
