"""The ``vaebench`` command line: train, reproduce, evaluate, bench.

Each subcommand lives in its own module, which provides
``add_arguments(parser)`` and ``run(args) -> int``. A VaebenchError is printed
as one line on stderr and exits with code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vaebench import __version__
from vaebench.errors import VaebenchError

SUBCOMMANDS = {
    "train": ("vaebench.train_cli", "train one model (AEVB, wake-sleep or MCEM)"),
    "reproduce": ("vaebench.reproduce", "reproduce a paper figure (figure2, figure3)"),
    "evaluate": ("vaebench.evaluate_cli", "estimate the marginal likelihood of a trained run"),
    "bench": ("vaebench.bench", "time the hot-path ops on every backend against eager PyTorch"),
}


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (keeps start-up fast)."""
    parser = OneLineErrorParser(
        prog="vaebench",
        description="Reproduce and benchmark Auto-Encoding Variational Bayes (Kingma & Welling, 2013).",
    )
    parser.add_argument("--version", action="version", version=f"vaebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if name != command:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if a in SUBCOMMANDS), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except VaebenchError as exc:
        print(f"vaebench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vaebench {args.command}: interrupted (a resumable run continues with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
