"""The studies ``vaebench reproduce`` knows, by name: add a new figure or study here."""

from __future__ import annotations

from vaebench.engine.study import Study
from vaebench.figures import figure2, figure3, figure4, figure5, full_vb

STUDIES: dict[str, Study] = {
    study.cli_name: study for study in (figure2.STUDY, figure3.STUDY, figure4.STUDY, figure5.STUDY, full_vb.STUDY)
}
