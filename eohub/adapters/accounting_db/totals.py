"""Running totals: add a closed session's usage to every (group, user, period) it meets.

Each session adds to four period kinds (day, month, quarter, year), for the group as a
whole (``WHOLE_GROUP``) and for the user within the group. Deltas of a whole batch are
summed in memory first, then written with one upsert per key, in the dialect's own
``ON CONFLICT`` / ``ON DUPLICATE KEY`` form, so concurrent writers add rather than
overwrite.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, case, func, null
from sqlalchemy.dialects import mysql, sqlite

import eohub.adapters.accounting_db.postgresql_batch as postgresql_batch
from eohub.adapters.accounting_db.models import UsageTotal
from eohub.domain.accounting.ledger import Resources, elapsed_us, split_usage, usage_units
from eohub.domain.accounting.periods import (
    LEDGER_KINDS,
    PeriodKind,
    ensure_utc,
    next_period_start,
    period_start,
)
from eohub.domain.accounting.quota import WHOLE_GROUP

TotalKey = tuple[str, str, str, datetime]
MAX_TOTAL = 2**63 - 1  # BIGINT on every database


class TotalsDelta:
    """Usage deltas keyed by (group, user, kind, period_start), summed before writing.

    Deltas are kept as ``[cpu, mem, gpu]`` integer lists: ingest adds eight of them per
    stopped session, thousands of sessions per batch.
    """

    def __init__(self) -> None:
        self.deltas: dict[TotalKey, list[int]] = {}

    def _add(
        self, group: str, user: str, kind: str, period: datetime, units: tuple[int, int, int]
    ) -> None:
        for who in (WHOLE_GROUP, user):
            key = (group, who, kind, period)
            found = self.deltas.get(key)
            if found is None:
                self.deltas[key] = list(units)
            else:
                found[0] += units[0]
                found[1] += units[1]
                found[2] += units[2]

    def add_session(
        self,
        group: str,
        user: str,
        resources: Resources,
        start: datetime,
        end: datetime,
        sign: int = 1,
    ) -> None:
        start, end = ensure_utc(start), ensure_utc(end)
        if end <= start:
            return
        day = period_start(PeriodKind.DAY, start)
        if end <= next_period_start(PeriodKind.DAY, day):
            # Within one day, so within one period of every kind: no split to compute.
            cpu, mem, gpu = usage_units(
                resources.millicores,
                resources.memory_bytes,
                resources.gpus,
                elapsed_us(start, end),
            )
            units = (sign * cpu, sign * mem, sign * gpu)
            for kind in LEDGER_KINDS:
                self._add(group, user, kind.value, period_start(kind, day), units)
            return
        for kind in LEDGER_KINDS:
            for period, usage in split_usage(resources, start, end, kind):
                units = (sign * usage.cpu_mcore_ms, sign * usage.mem_mib_ms, sign * usage.gpu_ms)
                self._add(group, user, kind.value, period, units)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "group": g,
                "user": u,
                "kind": k,
                "period_start": p,
                "cpu_mcore_ms": d[0],
                "mem_mib_ms": d[1],
                "gpu_ms": d[2],
            }
            for (g, u, k, p), d in self.deltas.items()
            if d != [0, 0, 0]
        ]


def _checked_sum(total: Any, delta: Any) -> Any:
    """``total + delta``, or NULL (which the NOT NULL column refuses) past 64 bits.

    SQLite's ``+`` turns an integer that overflows into an inexact REAL and goes on;
    PostgreSQL and MariaDB refuse it. This makes SQLite refuse it too, so that every
    database gives the same answer (errors.ledger_overflow recognises all three).
    """
    added = total + delta
    return case((func.typeof(added) == "integer", added), else_=null())


def apply_totals(connection: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Add ``rows`` to the running totals, inserting keys seen for the first time."""
    rows = list(rows)
    if not rows:
        return
    for row in rows:  # a batch's own sum past 64 bits: no driver would take it
        if any(abs(row[c]) > MAX_TOTAL for c in ("cpu_mcore_ms", "mem_mib_ms", "gpu_ms")):
            raise OverflowError("a running total delta does not fit 64 bits")
    table = cast(Table, UsageTotal.__table__)
    dialect = connection.dialect.name
    columns = ("cpu_mcore_ms", "mem_mib_ms", "gpu_ms")
    if dialect == "postgresql":
        postgresql_batch.upsert_totals(connection, rows)
        return
    if dialect in ("mysql", "mariadb"):
        my = mysql.insert(table)
        statement: Any = my.on_duplicate_key_update(
            {c: table.c[c] + my.inserted[c] for c in columns}
        )
    else:
        ins = sqlite.insert(table)
        statement = ins.on_conflict_do_update(
            index_elements=[table.c.group, table.c.user, table.c.kind, table.c.period_start],
            set_={c: _checked_sum(table.c[c], ins.excluded[c]) for c in columns},
        )
    connection.execute(statement, rows)
