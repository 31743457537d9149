"""The usage report: running totals per period, plus open sessions up to now.

A yearly report by user is some 200k rows, read for the usage pages, the API, the
``usage.csv`` export and the metrics; it is the store's largest read, so it lives here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Executable, or_, select, type_coerce
from sqlalchemy.types import NullType

import eohub.adapters.accounting_db.queries as queries
from eohub.adapters.accounting_db.gc_pause import collector_paused
from eohub.adapters.accounting_db.models import Session, UsageTotal
from eohub.domain.accounting.ledger import Resources, Usage, split_usage
from eohub.domain.accounting.periods import PeriodKind
from eohub.domain.accounting.quota import WHOLE_GROUP
from eohub.domain.accounting.session_record import UsageRow


def read_usage(
    engine: Engine,
    kind: PeriodKind,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    groups: set[str] | None = None,
    user: str | None = None,
    by_user: bool = False,
) -> list[UsageRow]:
    """Usage per period of ``kind`` in ``[start, end)``, open sessions up to now.

    Rows are per group (``user == ""``), or per user within each group when
    ``by_user`` is true or ``user`` is given, sorted by period, group and user; rows
    of zero usage are left out.
    """
    query = _totals_query(kind, start, end, groups, user, by_user)
    # Whose name each open session's usage goes under: the one user asked about,
    # each session's own user (None), or the group's total.
    row_user = user if user is not None else (None if by_user else WHOLE_GROUP)
    with collector_paused():
        with engine.connect() as connection:
            running = _running_usage(connection, kind, start, end, now, groups, row_user)
            totals: Sequence[Any] = connection.execute(query).all()
        return _merged(totals, running)


def _totals_query(
    kind: PeriodKind,
    start: datetime,
    end: datetime,
    groups: set[str] | None,
    user: str | None,
    by_user: bool,
) -> Executable:
    """The running totals of the report: (period start, group, user, cpu, mem, gpu)."""
    cpu, mem, gpu = UsageTotal.cpu_mcore_ms, UsageTotal.mem_mib_ms, UsageTotal.gpu_ms
    # A yearly report by user is some 200k rows: they are fetched in bulk, with the
    # few distinct period starts converted once each rather than once per row.
    query = select(
        type_coerce(UsageTotal.period_start, NullType()),
        UsageTotal.group,
        UsageTotal.user,
        cpu,
        mem,
        gpu,
    ).where(
        UsageTotal.kind == kind.value,
        UsageTotal.period_start >= start,
        UsageTotal.period_start < end,
        or_(cpu != 0, mem != 0, gpu != 0),
    )
    if groups is not None:
        query = query.where(UsageTotal.group.in_(groups))
    if user is not None:
        return query.where(UsageTotal.user == user)
    if not by_user:
        return query.where(UsageTotal.user == WHOLE_GROUP)
    return query.where(UsageTotal.user != WHOLE_GROUP)


def _merged(
    totals: Sequence[Any], running: dict[tuple[datetime, str, str], Usage]
) -> list[UsageRow]:
    """The totals rows plus the open sessions' usage, sorted; zero rows left out."""
    starts: set[datetime | str] = {row[0] for row in totals}
    times = {p: queries.aware_utc(p) for p in starts}
    merged: list[tuple[datetime, str, str, int, int, int]] = []
    for p, g, u, c, m, gp in totals:
        t = times[p]
        extra = running.pop((t, g, u), None) if running else None
        if extra is None:
            merged.append((t, g, u, c, m, gp))
        else:
            merged.append(
                (t, g, u, c + extra.cpu_mcore_ms, m + extra.mem_mib_ms, gp + extra.gpu_ms)
            )
    merged.extend(
        (p, g, u, v.cpu_mcore_ms, v.mem_mib_ms, v.gpu_ms)
        for (p, g, u), v in running.items()
        if v != queries.ZERO
    )
    # Keys are unique, so plain tuple order is (period, group, user) order, and
    # sorting tuples needs no key function.
    merged.sort()
    return [UsageRow(p, g, u, Usage(c, m, gp)) for p, g, u, c, m, gp in merged]


def _running_usage(
    connection: Connection,
    kind: PeriodKind,
    start: datetime,
    end: datetime,
    now: datetime,
    groups: set[str] | None,
    row_user: str | None,
) -> dict[tuple[datetime, str, str], Usage]:
    """Usage of open sessions per (period, group, user) up to ``now``.

    ``row_user`` is the user of every row (``WHOLE_GROUP`` for group totals), or
    None for a row per session's own user.
    """
    running: dict[tuple[datetime, str, str], Usage] = defaultdict(Usage)
    open_query = select(
        Session.user,
        Session.group,
        Session.millicores,
        Session.memory_bytes,
        Session.gpus,
        Session.started_at,
    ).where(Session.stopped_at.is_(None), Session.started_at < end)
    if groups is not None:
        open_query = open_query.where(Session.group.in_(groups))
    if row_user not in (None, WHOLE_GROUP):
        open_query = open_query.where(Session.user == row_user)
    for who, group, mcores, mem, gpus, started in connection.execute(open_query):
        resources = Resources(mcores, mem, gpus)
        key_user = who if row_user is None else row_user
        for period, piece in split_usage(resources, max(started, start), min(now, end), kind):
            running[(period, group, key_user)] += piece
    return running
