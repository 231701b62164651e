"""How numbers are shown in the tables and messages of every study, written once."""

from __future__ import annotations

import math


def format_value(v, digits: int = 1, *, missing: str = "n/a", signed: bool = False, general: bool = False) -> str:
    """``v`` with ``digits`` decimals (``general``: significant digits, format's ``g``), with a
    sign before positive values where ``signed``; ``missing`` for None, "" or NaN."""
    if v is None or (isinstance(v, str) and v == "") or (isinstance(v, float) and math.isnan(v)):
        return missing
    return f"{float(v):{'+' if signed else ''}.{digits}{'g' if general else 'f'}}"


def format_samples(s: int) -> str:
    """A sample count the way the tables show it: 1e6, 2e6, 5e5."""
    exp = int(math.floor(math.log10(s)))
    mant = s / 10**exp
    return f"1e{exp}" if mant == 1 else f"{mant:g}e{exp}"


def format_spread(row, digits: int = 1) -> str:
    """A table row's ``ours``, with " ± <ours_std>" where it is a mean over seeds."""
    std = getattr(row, "ours_std", None)
    spread = "" if std is None or math.isnan(std) else f" ± {std:.{digits}f}"
    return format_value(row.ours, digits) + spread
