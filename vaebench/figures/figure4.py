"""Figures 4 and 5 of the paper: what the learned generative models draw.

Figure 4: the learned data manifolds of AEVB models with N_z = 2 (Frey Face and MNIST): a grid
of z placed by the inverse Gaussian CDF on evenly spaced points of the unit square, each drawn
as the decoder's mean (vaebench.uses.manifold). Figure 5: random samples, z ~ N(0, I), drawn as
the decoder's mean, from the MNIST models with N_z = 2, 5, 10, 20.

Both train their runs with Figure 2's config (``reproductions/figure2.toml``: the same settings
and budgets, so a run here is the Figure 2 run of that N_z), into
``<out>/<dataset>_nz<N>_aevb/``; the summary writes

  figure4.png / figure5.png       the manifolds / the samples (a fixed sampling seed)
  figure4.csv / figure5.csv       every run's bound curve (as figure2.csv)
  figure4_table.md / _table.csv   each run's bound at the end of its training
  provenance.json                 machine, versions, budget, command, wall time per run

Drawing needs the trained parameters (checkpoint.pt); committed results carry none, so
``vaebench reproduce`` trains them again.
"""

from __future__ import annotations

import re
import sys

from vaebench.engine.config import run_config
from vaebench.engine.study import Study
from vaebench.engine.summary import ranks
from vaebench.errors import VaebenchError
from vaebench.runs import METRIC_COLUMNS, RunFolder

DATASET_TITLES = {"mnist": "MNIST", "frey": "Frey Face"}
IMAGE_SHAPES = {"mnist": (28, 28), "frey": (28, 20)}
SAMPLE_SEED = 0  # the generator of Figure 5's z draws


class LearnedModelFigure(Study):
    """A figure drawn from trained AEVB models of Figure 2's config: which (data set, N_z)."""

    config_name = "figure2"
    algorithms = ("aevb", "wake-sleep")
    panels: tuple[tuple[str, int], ...] = ()
    columns = ("budget", *METRIC_COLUMNS, "lr", "status", "run")
    row_order = ("dataset", "nz", "seed", "samples_seen", "split")
    row_ranks = {"dataset": ranks("frey", "mnist"), "split": ranks("train", "test")}

    def __init__(self):
        self.run_pattern = ", ".join(f"{d}_nz{nz}_aevb/" for d, nz in self.panels)
        self._folders: dict[str, RunFolder] = {}

    def run_specs(self, conf, budget, selection, overrides):
        specs = []
        for dataset, nz in self.panels:
            if dataset not in conf.get("datasets", {}):
                raise VaebenchError(f"{self.title} needs [datasets.{dataset}] in its config")
            ds = conf["datasets"][dataset]
            panel = {k: v for k, v in ds.items() if k not in ("nz", "hidden")}
            cfg = run_config(
                conf,
                budget,
                panel,
                algorithm="aevb",
                overrides=overrides,
                dataset=dataset,
                nz=nz,
                hidden=ds.get("hidden"),
            )
            specs.append((cfg, f"{dataset}_nz{nz}_aevb"))
        return specs

    def run_key(self, name):
        m = re.fullmatch(r"(mnist|frey)_nz(\d+)_aevb", name)
        if not m or (m.group(1), int(m.group(2))) not in self.panels:
            return None
        return self.panels.index((m.group(1), int(m.group(2))))

    def run_rows(self, folder, settings):
        self._folders[folder.name] = folder
        return folder.read_metrics()[list(METRIC_COLUMNS)]

    def compare(self, ours):
        """Each run's bound at the end of its training, per split."""
        last = ours[ours.samples_seen == ours.groupby("run").samples_seen.transform("max")]
        return last[["run", "dataset", "nz", "seed", "samples_seen", "split", "lower_bound"]].reset_index(drop=True)

    def table_markdown(self, table, summary):
        lines = [
            f"## {self.title}: the runs drawn{f' (budget: {summary.budget})' if summary.budget else ''}",
            "",
            "| run | data set | N_z | samples | test bound | train bound |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for run, g in table.groupby("run", sort=False):
            by = dict(zip(g.split, g.lower_bound))
            r = g.iloc[0]
            lines.append(
                f"| {run} | {DATASET_TITLES[r.dataset]} | {r.nz} | {int(r.samples_seen):,} | "
                f"{by.get('test', float('nan')):.1f} | {by.get('train', float('nan')):.1f} |"
            )
        lines += [
            "",
            "Average lower bound per datapoint (SGVB B, whole split) of the parameters drawn in the "
            "figure; the paper gives no numbers for this figure.",
            "",
        ]
        return "\n".join(lines)

    def models(self, ours):
        """(label, dataset, model) of every run in ``ours``, with its final parameters."""
        from vaebench.uses.trained import load_trained

        out = []
        for run in dict.fromkeys(ours.run):
            folder = self._folders[run]
            if not folder.has_checkpoint():
                raise VaebenchError(
                    f"{self.title} draws from trained parameters, and {folder.path} has none "
                    "(committed results carry none): run `vaebench reproduce "
                    f"{self.name}` to train it"
                )
            trained = load_trained(folder.path)
            out.append(
                (f"{DATASET_TITLES[trained.cfg.dataset]}, $N_z = {trained.cfg.nz}$", trained.cfg.dataset, trained.model)
            )
        return out


class Figure4(LearnedModelFigure):
    name, title = "figure4", "Figure 4"
    description = "Figure 4: the learned 2-D latent manifolds (AEVB, N_z = 2) of Frey Face and MNIST"
    panels = (("frey", 2), ("mnist", 2))
    grid = 20  # z values per side

    def plot(self, ours, path, budget):
        from vaebench.uses.manifold import manifold_grid
        from vaebench.uses.plots import tile

        images = [
            (label, tile(manifold_grid(model, self.grid).cpu().numpy(), IMAGE_SHAPES[dataset], pad=0))
            for label, dataset, model in self.models(ours)
        ]
        draw_panels(path, images, f"{self.title}: learned manifolds" + (f" (budget: {budget})" if budget else ""))


class Figure5(LearnedModelFigure):
    name, title = "figure5", "Figure 5"
    description = "Figure 5: random samples from the learned MNIST models (AEVB, N_z = 2, 5, 10, 20)"
    panels = (("mnist", 2), ("mnist", 5), ("mnist", 10), ("mnist", 20))
    samples = 100  # per model (10 x 10)

    def plot(self, ours, path, budget):
        import torch

        from vaebench.uses.manifold import random_samples
        from vaebench.uses.plots import tile

        images = []
        for label, dataset, model in self.models(ours):
            x = random_samples(model, self.samples, torch.Generator().manual_seed(SAMPLE_SEED))
            images.append((label, tile(x.cpu().numpy().reshape(10, self.samples // 10, -1), IMAGE_SHAPES[dataset])))
        draw_panels(path, images, f"{self.title}: random samples" + (f" (budget: {budget})" if budget else ""))


def draw_panels(path, images: list[tuple[str, object]], title: str) -> None:
    """One gray-scale panel per (label, image), side by side, written atomically."""
    from vaebench.figures.common import new_figure, save_figure

    fig, axes = new_figure(1, len(images), (3.4 * len(images), 3.9))
    for ax, (label, img) in zip(axes[0], images):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


STUDY = FIGURE4 = Figure4()
FIGURE5 = Figure5()


def main(argv: list[str] | None = None) -> int:
    from vaebench.cli.summarize import main as summarize_main  # python -m vaebench.figures.<name> DIR

    return summarize_main(FIGURE4, argv)


if __name__ == "__main__":
    sys.exit(main())
