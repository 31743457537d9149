"""PostgreSQL's statements for a batch of ledger writes: one short statement per step.

Sent the portable way, a batch of 500 events is a few statements with hundreds of
parameters each (``IN (...)`` lists, a multi-row ``VALUES``) plus hundreds of pipelined
executions. psycopg parses every long statement's text again (it caches only short
ones), which cost more than the database's own work. Here each step is one short
statement, compiled once: lookups take an array (``= ANY(...)``), and rows to write go
as one JSON document (``json_to_recordset``), which the json module's C encoder writes
faster than psycopg quotes array elements. The results are the same rows the portable
statements give (``tests/adapters/accounting_db/test_ingest_equivalence.py``). Totals rows are
upserted the same way, in one order, so that two writers that meet on the same rows
lock them in the same order and never deadlock.

Only what both PostgreSQL drivers bind alike is used: a list (an array, cast to its type
in the text), a string (the JSON document), a number. psycopg 3 and psycopg2 so send
the same statements, and the tests run them through each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, TextClause, text

from eohub.adapters.accounting_db.models import Session, UsageTotal, stored_time
from eohub.domain.accounting.events import SessionKey

SESSION_COLUMNS = (
    "id",
    "user",
    "server",
    "started_at",
    "group",
    "millicores",
    "memory_bytes",
    "gpus",
    "stopped_at",
    "end_reason",
    "stop_reason",
    "stopped_by",
    "stop_requested_at",
    "idle_timeout",
    "max_duration",
)
_INSERTED = (
    ("user", "text"),
    ("server", "text"),
    ("group", "text"),
    ("profile", "text"),
    ("profile_name", "text"),
    ("image", "text"),
    ("millicores", "integer"),
    ("memory_bytes", "bigint"),
    ("gpus", "integer"),
    ("started_at", "timestamp"),
    ("stopped_at", "timestamp"),
    ("end_reason", "text"),
    ("last_seen_at", "timestamp"),
    ("idle_timeout", "integer"),
    ("max_duration", "integer"),
)


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _typed(statement: TextClause, names: Sequence[str]) -> Any:
    # The model's column types read the results (UTCDateTime gives aware times back).
    table = Session.__table__
    return statement.columns(*(table.c[n] for n in names))


# Only the model's own table and column names go into these texts; values are bound.
_KNOWN_KEYS = text("SELECT key FROM events WHERE key = ANY(CAST(:keys AS text[]))")
_SESSIONS_AT = _typed(
    text(
        f"SELECT {_quoted(SESSION_COLUMNS)} FROM sessions "  # noqa: S608
        "WHERE started_at = ANY(CAST(:times AS timestamp[]))"
    ),
    SESSION_COLUMNS,
)


def _recordset(columns: Sequence[tuple[str, str]]) -> str:
    """``json_to_recordset(:rows) AS r(<columns>)``: the rows of one JSON parameter."""
    record = ", ".join(f'"{n}" {t}' for n, t in columns)
    return f"json_to_recordset(CAST(:rows AS json)) AS r({record})"


_INSERT_SESSIONS = _typed(
    text(
        f"INSERT INTO sessions ({_quoted(n for n, _ in _INSERTED)}) "  # noqa: S608
        f"SELECT {_quoted(n for n, _ in _INSERTED)} FROM {_recordset(_INSERTED)} "
        'RETURNING id, "user", server, started_at'
    ),
    ("id", "user", "server", "started_at"),
)
_EVENT_COLUMNS = (
    ("key", "text"),
    ("kind", "text"),
    ("session_id", "bigint"),
    ("received_at", "timestamp"),
)
_INSERT_EVENTS = text(
    "INSERT INTO events (key, kind, session_id, received_at) "  # noqa: S608
    f"SELECT key, kind, session_id, received_at FROM {_recordset(_EVENT_COLUMNS)}"
)
_CLOSE_COLUMNS = (
    ("id", "bigint"),
    ("stopped_at", "timestamp"),
    ("end_reason", "text"),
    ("last_seen_at", "timestamp"),
)
_CLOSE_SESSIONS = text(
    "UPDATE sessions SET stopped_at = r.stopped_at, end_reason = r.end_reason, "  # noqa: S608
    f"last_seen_at = r.last_seen_at FROM {_recordset(_CLOSE_COLUMNS)} "
    "WHERE sessions.id = r.id"
)
_LIMIT_COLUMNS = (("id", "bigint"), ("idle_timeout", "integer"), ("max_duration", "integer"))
# Only where the row still has none: the plan read it without a lock.
_FILL_LIMITS = text(
    "UPDATE sessions SET idle_timeout = r.idle_timeout, max_duration = r.max_duration "  # noqa: S608
    f"FROM {_recordset(_LIMIT_COLUMNS)} WHERE sessions.id = r.id "
    "AND sessions.idle_timeout IS NULL AND sessions.max_duration IS NULL"
)

_TOTALS_KEY = (
    ("group", "text"),
    ("user", "text"),
    ("kind", "text"),
    ("period_start", "timestamp"),
)
_TOTALS_UNITS = (("cpu_mcore_ms", "bigint"), ("mem_mib_ms", "bigint"), ("gpu_ms", "bigint"))
_UPSERT_TOTALS = text(
    f"INSERT INTO {UsageTotal.__tablename__} "  # noqa: S608
    f"({_quoted(n for n, _ in _TOTALS_KEY + _TOTALS_UNITS)}) "
    f"SELECT {_quoted(n for n, _ in _TOTALS_KEY + _TOTALS_UNITS)} "
    f"FROM {_recordset(_TOTALS_KEY + _TOTALS_UNITS)} "
    f"ON CONFLICT ({_quoted(n for n, _ in _TOTALS_KEY)}) DO UPDATE SET "
    + ", ".join(
        f'"{n}" = {UsageTotal.__tablename__}."{n}" + excluded."{n}"' for n, _ in _TOTALS_UNITS
    )
)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return stored_time(value).isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as a column value")


def _document(rows: list[dict[str, Any]]) -> str:
    """Rows as JSON, times as naive UTC (the columns' form, as UTCDateTime writes them)."""
    return json.dumps(rows, default=_iso, separators=(",", ":"))


def known_keys(connection: Connection, keys: list[str]) -> set[str]:
    return set(connection.scalars(_KNOWN_KEYS, {"keys": keys}))


def sessions_started_at(connection: Connection, times: list[datetime]) -> Any:
    """The stored sessions that started at any of ``times`` (rows of SESSION_COLUMNS)."""
    return connection.execute(_SESSIONS_AT, {"times": [stored_time(t) for t in times]})


def insert_sessions(connection: Connection, rows: list[dict[str, Any]]) -> dict[SessionKey, int]:
    """Insert ``rows``; the new ids by session key."""
    result = connection.execute(_INSERT_SESSIONS, {"rows": _document(rows)})
    return {SessionKey(r.user, r.server, r.started_at): r.id for r in result}


def insert_events(
    connection: Connection, applied: list[tuple[str, str, int]], received_at: datetime
) -> None:
    """Record the applied events' keys: ``(key, kind, session id)`` each."""
    rows = [
        {"key": key, "kind": kind, "session_id": session_id, "received_at": received_at}
        for key, kind, session_id in applied
    ]
    connection.execute(_INSERT_EVENTS, {"rows": _document(rows)})


def close_sessions(connection: Connection, updates: dict[int, dict[str, Any]]) -> None:
    """Set the stop of stored sessions: ``{id: {stopped_at, end_reason, last_seen_at}}``."""
    rows = [{"id": i, **updates[i]} for i in sorted(updates)]  # one lock order for writers
    connection.execute(_CLOSE_SESSIONS, {"rows": _document(rows)})


def fill_limits(connection: Connection, updates: dict[int, dict[str, Any]]) -> None:
    """Give stored sessions that have none their limits: ``{id: {idle_timeout,
    max_duration}}``."""
    rows = [{"id": i, **updates[i]} for i in sorted(updates)]  # one lock order for writers
    connection.execute(_FILL_LIMITS, {"rows": _document(rows)})


def upsert_totals(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` (group, user, kind, period_start and units) to the running totals."""
    rows.sort(key=lambda r: (r["group"], r["user"], r["kind"], r["period_start"]))
    connection.execute(_UPSERT_TOTALS, {"rows": _document(rows)})


__all__ = [
    "SESSION_COLUMNS",
    "close_sessions",
    "fill_limits",
    "insert_events",
    "insert_sessions",
    "known_keys",
    "sessions_started_at",
    "upsert_totals",
]
