"""How the usage pages word numbers, durations and names: the rule of every page.

Numbers, spans of time and possessives follow :mod:`eohub.domain.wording` (the hub's
pages use it too), so the hub's home page and the usage pages say "200 core-hours" and
"2 h 05 min" alike. This module adds what reports need besides: a dash for "none", a
tiny amount that is not zero, the unit after a table's number, and a server's name.
"""

from __future__ import annotations

import math
from fractions import Fraction

from eohub.domain.wording import duration_text as _duration_text
from eohub.domain.wording import number_text, possessive

DASH = "\u2013"  # "none" or "unlimited"
#: The smallest amount shown as a number; anything above zero and below it is "< 0.1".
SMALLEST = 0.05


def hours_text(value: float | Fraction | int | None) -> str:
    """An amount of hours: ``200``, ``12.5``, ``1,234.6``; ``< 0.1`` when tiny; a dash for None.

    One decimal at most (:func:`eohub.domain.wording.number_text`), with thousands
    separators, the same in tables and sentences.
    """
    if value is None:
        return DASH
    v = float(value)
    if not math.isfinite(v):
        return DASH
    if 0 < abs(v) < SMALLEST:
        return f"{'-' if v < 0 else ''}< 0.1"
    return number_text(v)


def quantity(value: float | Fraction | int | None, unit: str) -> str:
    """``200 core-hours``, ``1 core-hour``: the number and its unit, singular for exactly 1.

    ``unit`` is the plural ("core-hours", "GPU-hours", "memory GiB-hours").
    """
    text = hours_text(value)
    if text == "1" and unit.endswith("s"):
        unit = unit[:-1]
    return f"{text} {unit}"


def whose_server(user: str, server: str) -> str:
    """``alice's default server``, ``alice's server lab``: a server, named for people."""
    owner = possessive(user)
    return f"{owner} default server" if not server else f"{owner} server {server}"


def duration_text(seconds: float | None) -> str:
    """A span of time as every page words it (``5 min``, ``2 h 05 min``); a dash for None."""
    return DASH if seconds is None else _duration_text(seconds)


__all__ = ["DASH", "duration_text", "hours_text", "possessive", "quantity", "whose_server"]
