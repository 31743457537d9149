"""A session as the pages show it: one row of a usage page's or a group report's tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.session_record import SessionRecord


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
        s.end_reason or "",
        max(0.0, (end - s.started_at).total_seconds() / 3600),
        float(s.usage(now).core_hours),
        s.stopped_by or "",
        s.profile_name or s.profile,
        s.stop_under_way(now) or "",
    )


__all__ = ["SessionRow", "session_row"]
