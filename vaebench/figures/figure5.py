"""Figure 5 of the paper: random samples from the learned MNIST models (N_z = 2, 5, 10, 20).

The study lives beside Figure 4's in vaebench.figures.figure4 (they share how runs are chosen
and models loaded); this module is its ``python -m vaebench.figures.figure5 DIR`` entry.
"""

from __future__ import annotations

import sys

from vaebench.figures.figure4 import FIGURE5 as STUDY


def main(argv: list[str] | None = None) -> int:
    from vaebench.cli.summarize import main as summarize_main  # python -m vaebench.figures.<name> DIR

    return summarize_main(STUDY, argv)


if __name__ == "__main__":
    sys.exit(main())
