"""Reproduce a paper figure or a study: train every run of its config (in parallel, resumable,
finished runs skipped), then write the tidy CSV, the figure with the paper's curves beside
ours, the obtained-versus-paper table and provenance.json (vaebench.engine)."""

from __future__ import annotations

import argparse

from vaebench.cli.run_options import add_arguments as add_study_arguments
from vaebench.cli.run_options import command_line, run_options, study_options
from vaebench.engine.reproduce import default_out, reproduce
from vaebench.figures.registry import STUDIES


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="study", required=True, metavar="STUDY", parser_class=type(p), help=", ".join(STUDIES))
    for name, study in STUDIES.items():
        sp = sub.add_parser(name, help=study.description, description=study.description)
        add_study_arguments(sp, study)
        sp.set_defaults(_study=study)


def run(args) -> int:
    study = args._study
    out = args.out if args.out is not None else default_out(study, args.budget, args.seeds)
    return reproduce(
        study,
        budget=args.budget,
        config=args.config,
        out=out,
        seeds=args.seeds,
        options=study_options(args, study),
        run=run_options(args),
        command=command_line(["vaebench", "reproduce", study.cli_name], args, out),
    )
