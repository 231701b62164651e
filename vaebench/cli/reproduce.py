"""Reproduce a paper figure or a study: train every run of its config (in parallel, resumable,
finished runs skipped), then write the tidy CSV, the figure with the paper's curves beside
ours, the obtained-versus-paper table and provenance.json (vaebench.pipeline)."""

from __future__ import annotations

import argparse

from vaebench import pipeline
from vaebench.figures.registry import STUDIES


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="study", required=True, metavar="STUDY", parser_class=type(p),
                           help=", ".join(STUDIES))
    for name, study in STUDIES.items():
        sp = sub.add_parser(name, help=study.description, description=study.description)
        pipeline.add_arguments(sp, study)
        sp.set_defaults(_study=study)


def run(args) -> int:
    return pipeline.reproduce(args._study, args)
