"""The ``vaebench`` command line: a thin layer over the library.

One module per command (``vaebench/cli/<command>.py``), each with
``add_arguments(parser)`` and ``run(args) -> int``; they parse options and call
the library, nothing more. A VaebenchError (or a kernel's input error) is
printed as one line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

HELP = {
    "train": "train one model (AEVB, wake-sleep or MCEM)",
    "evaluate": "estimate the marginal likelihood of a trained run",
    "reproduce": "reproduce a paper figure or study (figure2, figure3, ...)",
    "bench": "time the hot-path ops on every backend against eager PyTorch",
    "infer": "posterior inference of z: the encoder's inference, approximation and amortisation gaps",
    "restore": "restore corrupted images (inpaint, denoise, superres) with a trained run as the prior",
    "sweep": "train a grid of run settings x seeds from a TOML file, locally or on Ray",
    "families": "list the reparameterizable families (section 2.4), or measure pathwise against "
    "score-function gradients (--measure)",
}


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def command_modules() -> dict:
    """The command modules by name (imported here, not at package import, so that Ctrl-C
    while they import is handled by ``main``)."""
    from vaebench.cli import bench, evaluate, families, infer, reproduce, restore, sweep, train

    return {
        "train": train,
        "evaluate": evaluate,
        "reproduce": reproduce,
        "sweep": sweep,
        "infer": infer,
        "restore": restore,
        "bench": bench,
        "families": families,
    }


def build_parser() -> argparse.ArgumentParser:
    from vaebench import __version__

    parser = OneLineErrorParser(
        prog="vaebench", description="Reproduce and benchmark Auto-Encoding Variational Bayes (Kingma & Welling, 2013)."
    )
    parser.add_argument("--version", action="version", version=f"vaebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineErrorParser)
    for name, module in command_modules().items():
        p = sub.add_parser(name, help=HELP[name], description=(module.__doc__ or HELP[name]).strip())
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        from vaebench.errors import user_errors

        parser = build_parser()
    except KeyboardInterrupt:
        print("vaebench: interrupted while starting", file=sys.stderr)
        return 130
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (one line, code 2), --help or --version (code 0)
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return int(args._run(args) or 0)
    except user_errors() as exc:
        print(f"vaebench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vaebench {args.command}: interrupted (a resumable run continues with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
