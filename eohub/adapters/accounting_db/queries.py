"""Statements and row shapes the store reuses: built once, so they compile once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, bindparam, func, select
from sqlalchemy.exc import DBAPIError

from eohub.adapters.accounting_db.errors import ledger_overflow
from eohub.adapters.accounting_db.models import Session, UsageTotal
from eohub.domain.accounting.ledger import Resources, Usage
from eohub.domain.accounting.session_record import SessionRecord, UsageRow

# Values per IN (...) list: every database takes this many, and more is rarely faster.
CHUNK = 1000


def chunks(values: list[Any]) -> Iterator[list[Any]]:
    """``values`` in lists of :data:`CHUNK`, one ``IN (...)`` list each."""
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


# Quota checks run these on every launch; built once, they compile once.
TOTALS_IN_WINDOW = (
    select(
        UsageTotal.user,
        func.sum(UsageTotal.cpu_mcore_ms),
        func.sum(UsageTotal.mem_mib_ms),
        func.sum(UsageTotal.gpu_ms),
    )
    .where(
        UsageTotal.group == bindparam("group"),
        UsageTotal.user.in_(bindparam("users", expanding=True)),
        UsageTotal.kind == bindparam("kind"),
        UsageTotal.period_start.in_(bindparam("buckets", expanding=True)),
    )
    .group_by(UsageTotal.user)
)
# The same rows unsummed, for SQLite when its sum() would overflow (store._window_totals).
TOTAL_ROWS_IN_WINDOW = select(
    UsageTotal.user, UsageTotal.cpu_mcore_ms, UsageTotal.mem_mib_ms, UsageTotal.gpu_ms
).where(
    UsageTotal.group == bindparam("group"),
    UsageTotal.user.in_(bindparam("users", expanding=True)),
    UsageTotal.kind == bindparam("kind"),
    UsageTotal.period_start.in_(bindparam("buckets", expanding=True)),
)
OPEN_IN_GROUP = select(
    Session.user, Session.millicores, Session.memory_bytes, Session.gpus, Session.started_at
).where(Session.group == bindparam("group"), Session.stopped_at.is_(None))

# What a SessionRecord needs, and no more: exports read a million of these.
RECORD_COLUMNS = (
    Session.id,
    Session.user,
    Session.server,
    Session.group,
    Session.millicores,
    Session.memory_bytes,
    Session.gpus,
    Session.started_at,
    Session.stopped_at,
    Session.end_reason,
    Session.profile,
    Session.image,
    Session.idle_timeout,
    Session.max_duration,
)


ZERO = Usage()


def usage_order(row: UsageRow) -> tuple[datetime, str, str]:
    return row.period_start, row.group, row.user


class SessionValues(NamedTuple):
    """A session's fields in :data:`RECORD_COLUMNS` order, with naive UTC times."""

    id: int
    user: str
    server: str
    group: str
    millicores: int
    memory_bytes: int
    gpus: int
    started_at: datetime
    stopped_at: datetime | None
    end_reason: str | None
    profile: str
    image: str
    idle_timeout: int | None
    max_duration: int | None


def aware_utc(value: datetime | str) -> datetime:
    """A raw stored time as an aware UTC datetime."""
    t = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return t.replace(tzinfo=UTC)


def naive_utc(value: datetime | str | None) -> datetime | None:
    # SQLite hands back the stored text; the server databases a naive datetime.
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def record(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user=row.user,
        server=row.server,
        group=row.group,
        resources=Resources(row.millicores, row.memory_bytes, row.gpus),
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        end_reason=row.end_reason,
        profile=row.profile,
        image=row.image,
        stopped_by=row.stopped_by,
        profile_name=row.profile_name or "",
        stop_requested_at=row.stop_requested_at,
        idle_timeout=row.idle_timeout,
        max_duration=row.max_duration,
        stop_reason=row.stop_reason,
    )


def window_totals(connection: Connection, keys: dict[str, Any]) -> list[tuple[Any, ...]]:
    """(user, cpu, mem, gpu) summed over a quota window's buckets, exactly.

    PostgreSQL and MariaDB sum BIGINTs as exact decimals; SQLite's ``sum()`` stops with
    "integer overflow" past 64 bits, so there the rows are summed here instead.
    """
    try:
        return [tuple(row) for row in connection.execute(TOTALS_IN_WINDOW, keys)]
    except DBAPIError as e:
        if not ledger_overflow(e):
            raise
    sums: dict[str, list[int]] = {}
    for who, *units in connection.execute(TOTAL_ROWS_IN_WINDOW, keys):
        found = sums.setdefault(who, [0, 0, 0])
        for i, value in enumerate(units):
            found[i] += int(value)
    return [(who, *units) for who, units in sums.items()]
