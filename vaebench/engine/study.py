"""The interface of a figure or study of the reproduction suite, and what a reproduction is.

A figure or study subclasses :class:`Study` and says only what is its own: which runs (from its
config at a budget), its own options, what happens after training (Figure 3: the
marginal-likelihood estimates), its tidy rows, the comparison with the paper, the table and the
plot. The engine does the rest:

  vaebench.engine.config     its config (reproductions/<name>.toml) and the runs at a budget
  vaebench.engine.runs_many  training them on an executor (vaebench.engine.executors)
  vaebench.engine.reproduce  check, lock, train, the study's hook, summarize, print
  vaebench.engine.summary    the run folders into <name>.csv (tidy), <name>_table.md/.csv,
                             <name>.png and provenance.json; seed statistics

Seeds: ``--seeds 0,1,2`` trains every run once per seed into ``<run>_seed<N>/`` (one seed keeps
the run's name; vaebench.runs.with_seeds). The summary's tidy CSV has every seed's rows; the
table is the study's compare per seed, then the mean, standard deviation, min and max over seeds
(``ours`` is the mean); the figures draw the seed mean with a min-to-max band.

Configs are ``reproductions/<name>.toml`` (shipped with the package, vaebench.resources):
``budgets`` (each with ``samples``: a number, or a table per data set), ``algorithms`` (one table
per algorithm), optional ``defaults``, and optionally the study's own settings table
(``Study.settings_table``, e.g. Figure 3's ``[marginal]``, overridable per budget).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vaebench.config import RunConfig
from vaebench.engine.config import check_budget
from vaebench.runs import RunFolder

BUDGETS = ("quick", "medium", "paper")  # what the shipped configs define


@dataclass(frozen=True)
class Option:
    """An option of ``vaebench reproduce <study>`` that is the study's own; the command line adds
    it to its parser and hands its value to ``Study.selection`` / ``Study.setting_overrides``."""

    flag: str  # "--datasets"
    help: str
    type: Callable | None = None  # the text's converter (None: the text as it is)
    switch: bool = False  # a flag without a value (False unless given)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass
class Summary:
    """What a summary is made of, handed to the study's table and provenance hooks."""

    out: Path
    budget: str | None
    settings: dict  # the study's settings (Study.settings), {} if none
    folders: list[RunFolder]  # the study's run folders under ``out``
    ours: object = None  # the tidy DataFrame (<name>.csv)
    command: str | None = None
    reproduce_wall_s: float | None = None


@dataclass
class Reproduction:
    """One ``vaebench reproduce`` call, handed to ``Study.after_training``."""

    conf: dict
    budget: str
    out: Path
    runs: list[tuple[RunConfig, Path]]
    settings: dict
    jobs: int
    threads: int
    device: str | None = None
    data_dir: str | None = None
    progress: bool = True
    command: str | None = None
    executor: object = None  # where the runs train (vaebench.engine.executors), and the hook's tasks


class Study:
    """A figure or study of the reproduction suite: only what is its own.

    Output files are <name>.csv, <name>.png, <name>_table.md, <name>_table.csv and
    provenance.json in the output folder (default results/<name>/<budget>/).
    """

    name: str = ""  # the config (reproductions/<name>.toml), the output prefix and folder
    command: str = ""  # its name on the command line if not ``name``: use ``cli_name``
    config_name: str = ""  # another study's config to use instead (its runs, the same settings)
    title: str = ""  # "Figure 2", in messages and headings
    description: str = ""  # one line for ``vaebench reproduce --help``
    run_pattern: str = ""  # its run folders' names, for messages: "<dataset>_nz<N>_<algorithm>/"
    algorithms: tuple[str, ...] = ()  # the [algorithms.<name>] tables its config may have
    columns: tuple[str, ...] = ()  # the tidy CSV's columns
    row_order: tuple[str, ...] = ()  # its rows' order (columns), ...
    row_ranks: dict = {}  # ... a column named here by its value's rank
    settings_table: str | None = None  # a config table of the study's own settings (or None)
    settings_defaults: dict = {}  # its keys and defaults
    options: tuple[Option, ...] = ()  # its own options of ``vaebench reproduce <name>`` (e.g. --datasets)

    @property
    def cli_name(self) -> str:
        """``vaebench reproduce <cli_name>``."""
        return self.command or self.name

    # -- config and runs
    def check_config(self, conf: dict, path: Path) -> None:
        """Check the config's keys of the study's own (the engine checks budgets and algorithms)."""

    def selection(self, values: dict, conf: dict) -> dict:
        """The study's own ``options`` (their values by dest, None: not given), checked, as
        keyword arguments of run_specs' ``selection``."""
        return {}

    def setting_overrides(self, values: dict) -> dict:
        """Those options that override the study's settings (e.g. Full VB's --min-samples)."""
        return {}

    def run_specs(self, conf: dict, budget: str, selection: dict, overrides: dict) -> list[tuple[RunConfig, str]]:
        """(checked RunConfig, run folder name) of every run at ``budget``; build each config with
        run_config(conf, budget, ..., overrides=overrides)."""
        raise NotImplementedError

    def run_key(self, name: str):
        """A sort key if ``name`` is one of the study's run folders, else None."""
        raise NotImplementedError

    def settings(self, conf: dict, budget: str) -> dict:
        """The study's settings at ``budget``: defaults < [<settings_table>] < [budgets.<budget>.<settings_table>]."""
        if not self.settings_table:
            return {}
        s = {
            **self.settings_defaults,
            **conf.get(self.settings_table, {}),
            **check_budget(conf, budget).get(self.settings_table, {}),
        }
        if "min_samples" in s:  # TOML writes 1e5 as a float
            s["min_samples"] = int(float(s["min_samples"]))
        return s

    def announce(self, rep: Reproduction) -> str:
        """What the study adds to the line printed before training."""
        return ""

    def after_training(self, rep: Reproduction) -> None:
        """Work on the trained runs before the summary (Figure 3: the estimates)."""

    # -- the summary
    def stored_settings(self, provenance: dict) -> dict:
        """The settings an earlier provenance.json recorded (for summarizing alone)."""
        return {}

    def run_rows(self, folder: RunFolder, settings: dict):
        """One run's tidy rows (a DataFrame; the engine adds budget, lr, status and run)."""
        raise NotImplementedError

    def compare(self, ours):
        """The obtained-against-paper table (a DataFrame; <name>_table.csv)."""
        raise NotImplementedError

    def table_markdown(self, table, summary: Summary) -> str:
        """<name>_table.md."""
        raise NotImplementedError

    def plot(self, ours, path: Path, budget: str | None) -> None:
        """<name>.png."""
        raise NotImplementedError

    def run_provenance(self, folder: RunFolder, info: dict, summary: Summary) -> dict:
        """What provenance.json records of a run besides the engine's keys."""
        return {}

    def provenance(self, summary: Summary) -> dict:
        """What provenance.json records besides the engine's keys (e.g. the settings)."""
        return {}
