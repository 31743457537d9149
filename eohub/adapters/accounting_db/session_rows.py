"""Sessions by time range, for exports: counted, bounded by id, and streamed in bulk."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, type_coerce
from sqlalchemy.types import NullType

import eohub.adapters.accounting_db.queries as queries
from eohub.adapters.accounting_db.models import Session
from eohub.domain.accounting.session_record import SessionFields

# The record's columns with the times as the driver gives them: converted here, once.
_RAW_COLUMNS = [
    type_coerce(c, NullType()) if c.key in ("started_at", "stopped_at") else c
    for c in queries.RECORD_COLUMNS
]


def range_query(
    start: datetime,
    end: datetime,
    group: str | None,
    ended: bool,
    columns: Sequence[Any] = (),
    ids: tuple[int, int] | None = None,
) -> Select[Any]:
    """Sessions started (or, with ``ended``, stopped) in ``[start, end)``."""
    column = Session.stopped_at if ended else Session.started_at
    query = select(*(columns or queries.RECORD_COLUMNS)).where(column >= start, column < end)
    if group is not None:
        query = query.where(Session.group == group)
    if ids is not None:
        query = query.where(Session.id.between(*ids))
    return query


def id_bounds(
    connection: Connection, start: datetime, end: datetime, group: str | None, ended: bool
) -> tuple[int, int] | None:
    """The lowest and highest id of the sessions :func:`stream` would read."""
    query = range_query(start, end, group, ended, (Session.id,)).subquery()
    low, high = connection.execute(select(func.min(query.c.id), func.max(query.c.id))).one()
    return None if low is None else (int(low), int(high))


def count(
    connection: Connection, start: datetime, end: datetime, group: str | None, ended: bool
) -> int:
    query = range_query(start, end, group, ended)
    return int(connection.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def stream(
    connection: Connection,
    start: datetime,
    end: datetime,
    group: str | None,
    ended: bool,
    ids: tuple[int, int] | None,
    chunk: int,
) -> Iterator[SessionFields]:
    """The sessions of :func:`range_query`, by id, as plain tuples with naive UTC times.

    They are read straight from the driver: an export reads a million of them, and
    per-value type conversion would double its time.
    """
    query = range_query(start, end, group, ended, _RAW_COLUMNS, ids).order_by(Session.id)
    naive = queries.naive_utc
    make = queries.SessionValues
    result = connection.execution_options(yield_per=chunk).execute(query)
    for rows in result.partitions():
        for i, u, s, g, mc, mb, gp, started, stopped, reason, profile, image, idle, most in rows:
            yield make(
                i,
                u,
                s,
                g,
                mc,
                mb,
                gp,
                naive(started),  # type: ignore[arg-type]  # never NULL
                naive(stopped),
                reason,
                profile,
                image,
                idle,
                most,
            )


__all__ = ["count", "id_bounds", "range_query", "stream"]
