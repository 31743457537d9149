"""How the usage pages word a session's end: why it stopped, its limits, the time it has left.

Pure text for the templates. The reasons themselves, and their words, are the ledger's
(:mod:`eohub.domain.accounting.stop_reasons`); this module only adds what a page needs
around them: the limit a stop reached ("stopped after being idle for its limit
(2 hours)"), the time a running server has left, and the notice a lifetime warning
gives its owner and their PI.

Storage reads as a disk's size does, in binary units (:func:`size_text`).

Limits read as people say them ("2 hours", "36 hours", "7 days"), not as a clock:
:func:`eohub.domain.wording.span_text`, as the hub's launch form and home page say
them. Times of day are UTC, as everywhere on these pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from eohub.domain.accounting.stop_reasons import (
    BUDGET,
    IDLE,
    MAX_DURATION,
    normalise,
    stop_reason_text,
)
from eohub.domain.reports.wording import whose_server
from eohub.domain.wording import duration_text, ends_text, size_text, span_text

#: How a lifetime warning says why a server will be stopped, after "will be stopped".
_WARNED_FOR = {
    MAX_DURATION: "at its maximum duration",
    IDLE: "for being idle",
    BUDGET: "because its budget is spent",
}


#: A stop the service asked the hub for, while the hub carries it out.
_STOPPING = {
    IDLE: "stopping: idle for its limit",
    MAX_DURATION: "stopping: reached its maximum duration",
    BUDGET: "stopping: its budget is spent",
}


def stopping_text(reason: str) -> str:
    """A running server's badge while the stop the service asked for is under way."""
    return _STOPPING.get(normalise(reason), "stopping")


def time_left_text(max_duration: int | None, started_at: datetime, now: datetime) -> str:
    """What a running session's maximum duration leaves it: ``ends in 5 h 55 min (at
    most 8 hours)``, as the hub's home page says it; empty without a maximum."""
    if not max_duration:
        return ""
    ends = ends_text(max_duration, (now - started_at).total_seconds())
    return f"{ends} (at most {span_text(max_duration)})"


class LifetimeWarning(Protocol):
    """A warning in force that a running server will be stopped: the lifetime worker's
    (:class:`eohub.domain.accounting.lifetimes.LifetimeWarning`), read only through
    these fields."""

    @property
    def session(self) -> int: ...
    @property
    def stop_at(self) -> datetime: ...
    @property
    def reason(self) -> str: ...


def stop_at_text(stop_at: datetime, now: datetime) -> str:
    """When a warned server stops: ``at 14:30 UTC (in 12 min)``; a date is added when the
    stop is not today, and a stop already due is "any moment now"."""
    when = f"{stop_at:%H:%M}" if stop_at.date() == now.date() else f"{stop_at:%Y-%m-%d %H:%M}"
    left = (stop_at - now).total_seconds()
    soon = f"in {duration_text(left)}" if left >= 60 else "any moment now"
    return f"at {when} UTC ({soon})"


def warning_text(
    warning: LifetimeWarning, user: str, server: str, now: datetime, *, own: bool
) -> str:
    """A lifetime warning for people: to the server's owner (``own``), or to their PI.

    ``Your default server will be stopped at its maximum duration at 14:30 UTC (in 12
    min). Save your work before then.``; ``alice's server lab will be stopped ...``.
    """
    why = _WARNED_FOR.get(normalise(warning.reason), "")
    # A user's name keeps its case, even first in a sentence; "your" is capitalised.
    whose = _upper_first(your_server(server)) if own else whose_server(user, server)
    when = stop_at_text(warning.stop_at, now)
    text = f"{whose} will be stopped{' ' + why if why else ''} {when}."
    return f"{text} Save your work before then." if own else text


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def warning_badge(warning: LifetimeWarning) -> str:
    """The short form in a table row: ``stops at 14:30``."""
    return f"stops at {warning.stop_at:%H:%M}"


def your_server(server: str) -> str:
    """``your default server``, ``your server lab``."""
    return "your default server" if not server else f"your server {server}"


def files_text(count: int) -> str:
    """A file count, thousands separated; 0 is "not counted" (samplers that do not count
    files send none)."""
    return f"{count:,}" if count else "not counted"


__all__ = [
    "LifetimeWarning",
    "files_text",
    "size_text",
    "stop_at_text",
    "stop_reason_text",
    "stopping_text",
    "time_left_text",
    "warning_badge",
    "warning_text",
    "your_server",
]
