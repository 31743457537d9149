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


#: Binary units of storage, largest first.
_SIZE_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def _size_unit(size: int) -> tuple[str, int]:
    return next(((unit, scale) for unit, scale in _SIZE_UNITS if size >= scale), ("B", 1))


def size_text(size: int) -> str:
    """Bytes measured, as people read a disk's: ``12.0 GiB``, ``512.5 MiB``, ``300 B``:
    one decimal in the largest unit that is at least one."""
    unit, scale = _size_unit(size)
    return f"{size:,} B" if scale == 1 else f"{size / scale:,.1f} {unit}"


def size_limit_text(size: int) -> str:
    """A size an admin set, as they would write it: ``10 GiB``, ``1.5 GiB``, ``500 MiB``."""
    unit, scale = _size_unit(size)
    return f"{number_text(size / scale)} {unit}"


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


#: Seconds before a limit within which the pages highlight a server as ending soon: the
#: accounting service's default ``max_duration_warning`` (15 minutes).
ENDS_SOON = 900

#: What the launch form says of an environment without any session limit.
NO_TIME_LIMIT = "no time limit"

_SPAN_UNITS: tuple[tuple[str, int], ...] = (
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)


def _count(value: int, unit: str) -> str:
    return f"{value} {unit}" if value == 1 else f"{value} {unit}s"


def span_text(seconds: float) -> str:
    """A session limit in plain words: ``45 seconds``, ``30 minutes``, ``1 hour 30
    minutes``, ``24 hours``, ``7 days``, ``2 days 12 hours``.

    Unlike :func:`duration_text` (a clock, read at a glance), a limit is read as a
    sentence. Hours are kept up to two days, as people say "24 hours" and "36 hours";
    two units at most, the rest is dropped (limits are round numbers).
    """
    whole = max(int(seconds), 0)
    if whole < 60:
        return _count(whole, "second")
    # The largest unit: minutes below an hour, hours below two days, else days.
    first = 2 if whole < 3600 else 1 if whole < 48 * 3600 else 0
    (big, big_size), (small, small_size) = _SPAN_UNITS[first], _SPAN_UNITS[first + 1]
    count, rest = divmod(whole, big_size)
    text = _count(count, big)
    if rest // small_size:
        text += " " + _count(rest // small_size, small)
    return text


def limits_text(idle_timeout: int | None, max_duration: int | None) -> str:
    """An environment's session limits as the launch form says them: ``stops after 2
    hours idle, at most 24 hours``, ``stops after 30 minutes idle``, ``runs at most 8
    hours``, or :data:`NO_TIME_LIMIT` (``None`` or 0: no limit)."""
    if idle_timeout and max_duration:
        return f"stops after {span_text(idle_timeout)} idle, at most {span_text(max_duration)}"
    if idle_timeout:
        return f"stops after {span_text(idle_timeout)} idle"
    if max_duration:
        return f"runs at most {span_text(max_duration)}"
    return NO_TIME_LIMIT


def ends_soon(limit: int | None, elapsed: float, soon: float = ENDS_SOON) -> bool:
    """Whether a server that has spent ``elapsed`` seconds of ``limit`` (running time, or
    idle time) is within ``soon`` seconds of its end; never without a limit."""
    return limit is not None and limit > 0 and limit - elapsed <= soon


def ends_text(max_duration: int | None, running_seconds: float) -> str:
    """The time a running server has left before its maximum duration: ``ends in 5 h 55
    min``, ``ends any moment`` (past it: the next enforcement round stops it); empty
    without a maximum."""
    if not max_duration:
        return ""
    left = max_duration - running_seconds
    return f"ends in {duration_text(left)}" if left >= 60 else "ends any moment"


def idle_limit_text(idle_timeout: int | None, idle_seconds: float, soon: float = ENDS_SOON) -> str:
    """A running server's idle limit, given how long it has been idle: ``stops after 2
    hours idle``, and near the end ``stops in 4 min if still idle`` (``stops any moment
    if still idle`` past it); empty without an idle limit."""
    if not idle_timeout:
        return ""
    left = idle_timeout - idle_seconds
    if left > soon:
        return f"stops after {span_text(idle_timeout)} idle"
    when = f"in {duration_text(left)}" if left >= 60 else "any moment"
    return f"stops {when} if still idle"


def clock_text(
    running_seconds: float,
    idle_seconds: float,
    idle_timeout: int | None,
    max_duration: int | None,
) -> str:
    """A running server's limits and what they leave it, on one line (the launch form):
    ``ends in 5 h 55 min (at most 8 hours); idle 12 min (stops after 2 hours idle)``, or
    ``no maximum duration; idle 3 min`` without limits."""
    if max_duration:
        ends = f"{ends_text(max_duration, running_seconds)} (at most {span_text(max_duration)})"
    else:
        ends = "no maximum duration"
    idle = f"idle {duration_text(idle_seconds)}"
    if idle_timeout:
        idle += f" ({idle_limit_text(idle_timeout, idle_seconds)})"
    return f"{ends}; {idle}"


__all__ = [
    "BUDGET_UNITS",
    "BUDGET_UNKNOWN",
    "ENDS_SOON",
    "NO_TIME_LIMIT",
    "budget_left_text",
    "clock_text",
    "duration_text",
    "ends_soon",
    "ends_text",
    "idle_limit_text",
    "limit_text",
    "limits_text",
    "number_text",
    "possessive",
    "quantity_text",
    "runs_for_text",
    "size_limit_text",
    "size_text",
    "span_text",
]
