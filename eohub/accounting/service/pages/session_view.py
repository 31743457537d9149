"""A session as the pages show it: one row of a usage page's or a group report's tables.

A row carries its words ready for the templates: why the session stopped (with the limit
it reached), and the time its maximum duration leaves it while it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from eohub.accounting.service.pages.budgets import Notice
from eohub.accounting.service.pages.words import (
    LifetimeWarning,
    stop_reason_text,
    stopping_text,
    time_left_text,
    warning_badge,
    warning_text,
)
from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.session_record import PI_STOP_WINDOW, SessionRecord
from eohub.domain.accounting.stop_reasons import normalise


@dataclass(frozen=True)
class SessionRow:
    id: int
    user: str
    server: str
    group: str
    profile: str
    cores: float
    memory_gib: float
    gpus: int
    started_at: datetime
    stopped_at: datetime | None
    end_reason: str
    hours: float  # wall-clock duration so far
    core_hours: float
    stopped_by: str = ""  # the PI or admin who stopped it (asked to, while it is open)
    environment: str = ""  # the environment's display name, else its name
    stop_asked_by: str = ""  # who asked for a stop still under way ("" if nobody)
    idle_timeout: int | None = None  # the session's limits, in seconds (None: no limit)
    max_duration: int | None = None
    stop_reason: str = ""  # why it stopped, in words ("" while it runs)
    time_left: str = ""  # while it runs: "ends in 5 h 55 min (at most 8 hours)"
    stopping: str = ""  # a stop the service asked the hub for, under way ("" if none)


def session_row(s: SessionRecord, now: datetime) -> SessionRow:
    end = s.stopped_at or now
    return SessionRow(
        s.id,
        s.user,
        s.server,
        s.group,
        s.profile,
        s.resources.millicores / 1000,
        s.resources.memory_bytes / GIB,
        s.resources.gpus,
        s.started_at,
        s.stopped_at,
        normalise(s.end_reason) if s.end_reason else "",
        max(0.0, (end - s.started_at).total_seconds() / 3600),
        float(s.usage(now).core_hours),
        s.stopped_by or "",
        s.profile_name or s.profile,
        s.stop_under_way(now) or "",
        s.idle_timeout,
        s.max_duration,
        stop_reason_text(
            s.end_reason if s.stopped_at is not None else None,
            idle_timeout=s.idle_timeout,
            max_duration=s.max_duration,
            stopped_by=s.stopped_by or "",
        ),
        "" if s.stopped_at is not None else time_left_text(s.max_duration, s.started_at, now),
        _stopping(s, now),
    )


def _stopping(s: SessionRecord, now: datetime) -> str:
    """A stop the service asked for while the server still runs: shown for as long as
    a PI's stop would be (:data:`PI_STOP_WINDOW`), so a stop never carried out does not
    show as under way for ever. A PI's own stop shows as ``stop_asked_by`` instead."""
    if s.stopped_at is not None or s.stopped_by or not s.stop_reason:
        return ""
    if s.stop_requested_at is None or now - s.stop_requested_at > PI_STOP_WINDOW:
        return ""
    return stopping_text(s.stop_reason)


def lifetime_notices(
    warnings: Iterable[LifetimeWarning], rows: Iterable[SessionRow], now: datetime, *, own: bool
) -> tuple[list[Notice], dict[int, str]]:
    """The lifetime warnings for ``rows`` (running sessions): a notice for each, worded
    for the server's owner (``own``) or their PI, and a badge per session id."""
    by_id = {row.id: row for row in rows}
    notices, badges = [], {}
    for w in sorted(warnings, key=lambda w: (w.stop_at, w.session)):
        row = by_id.get(w.session)
        if row is None or row.stopped_at is not None:
            continue
        notices.append(Notice("warning", warning_text(w, row.user, row.server, now, own=own)))
        badges[row.id] = warning_badge(w)
    return notices, badges


__all__ = ["SessionRow", "lifetime_notices", "session_row"]
