"""How eohub words quantities for people: durations, hours of a budget, possessives.

Pure text, so every page says the same thing the same way: "2 h 05 min", "200
core-hours", "researchers' budget". Budgets are hours left per kind, as
:func:`eohub.domain.accounting.quota.budget_left` gives them (``core_hours``,
``gpu_hours``, ``memory_gib_hours``; ``None`` or missing: no limit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: What a page says when the accounting service could not be asked, or did not answer.
BUDGET_UNKNOWN = "budget unknown"

#: Each budget kind, in the order pages list them, with its unit (singular, plural).
BUDGET_UNITS: tuple[tuple[str, str, str], ...] = (
    ("core_hours", "core-hour", "core-hours"),
    ("gpu_hours", "GPU-hour", "GPU-hours"),
    ("memory_gib_hours", "GiB-hour of memory", "GiB-hours of memory"),
)


def number_text(value: float) -> str:
    """``12.5``, ``3``, ``1,250``: one decimal at most, none when it is zero."""
    if not math.isfinite(value):
        return "∞" if value > 0 else "0"
    text = f"{value:,.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def quantity_text(value: float, singular: str, plural: str) -> str:
    """``200 core-hours``, ``1 core-hour``, ``0.5 core-hours``: the unit agrees with the number."""
    text = number_text(value)
    return f"{text} {singular if text == '1' else plural}"


def duration_text(seconds: float) -> str:
    """A span of time at minute precision: ``under 1 min``, ``5 min``, ``2 h 05 min``,
    ``8 h``, ``3 d 4 h`` (as :func:`eohub.domain.reports.wording.duration_text` words
    days).

    Hours come with their minutes zero-padded (the eye reads ``2 h 05 min`` as a clock);
    whole hours and days drop the zero part. Negative spans count as none.
    """
    minutes = int(max(seconds, 0) // 60)
    if minutes < 1:
        return "under 1 min"
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes} min"
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d" if hours == 0 else f"{days} d {hours} h"
    return f"{hours} h" if minutes == 0 else f"{hours} h {minutes:02d} min"


def possessive(name: str) -> str:
    """``alice's``, ``researchers'``: English possessive of a name (a plural in -s takes
    the bare apostrophe, as do names ending in s)."""
    if not name:
        return name
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"


def budget_left_text(budget_left: Mapping[str, float | None] | None) -> str:
    """A group's budget left: ``200 core-hours left``, ``no limit``, or
    :data:`BUDGET_UNKNOWN` (``None``: accounting did not answer).

    A spent budget reads ``0 core-hours left``; budgets are listed in
    :data:`BUDGET_UNITS` order.
    """
    if budget_left is None:
        return BUDGET_UNKNOWN
    parts = [
        quantity_text(max(value, 0.0), singular, plural) + " left"
        for key, singular, plural in BUDGET_UNITS
        if (value := budget_left.get(key)) is not None
    ]
    return ", ".join(parts) if parts else "no limit"


def runs_for_text(hours: float | None) -> str:
    """How long the budget left runs a server of its size: ``enough for about 40 h
    more``, ``enough for about 25 min more``, ``spent``; empty when no budget limits it."""
    if hours is None:
        return ""
    if hours <= 0:
        return "spent"
    return f"enough for about {duration_text(_round_span(hours * 3600))} more"


def _round_span(seconds: float) -> float:
    """Round a budget's running time as people estimate it: to the minute below an hour,
    to the hour below two days, to the day beyond."""
    for unit, below in ((60, 3600), (3600, 48 * 3600)):
        if seconds < below:
            return max(round(seconds / unit), 1) * unit
    return round(seconds / 86400) * 86400


def limit_text(max_duration: int | None, running_seconds: float) -> str:
    """A session limit and the time it leaves: ``8 h (ends in 5 h 55 min)``; empty
    when the environment sets none. A server past its limit "ends any moment"."""
    if not max_duration:
        return ""
    left = max_duration - running_seconds
    ending = f"ends in {duration_text(left)}" if left >= 60 else "ends any moment"
    return f"{duration_text(max_duration)} ({ending})"


__all__ = [
    "BUDGET_UNITS",
    "BUDGET_UNKNOWN",
    "budget_left_text",
    "duration_text",
    "limit_text",
    "number_text",
    "possessive",
    "quantity_text",
    "runs_for_text",
]
