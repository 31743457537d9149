"""Running totals: add a closed session's usage to every (group, user, period) it meets.

Each session adds to four period kinds (day, month, quarter, year), for the group as a
whole (``user == ""``) and for the user within the group. Deltas of a whole batch are
summed in memory first, then written with one upsert per key, in the dialect's own
``ON CONFLICT`` / ``ON DUPLICATE KEY`` form, so concurrent writers add rather than
overwrite.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite

from eohub.adapters.accounting_db.models import UsageTotal
from eohub.domain.ledger import Resources, Usage, split_usage
from eohub.domain.periods import LEDGER_KINDS

TotalKey = tuple[str, str, str, datetime]


class TotalsDelta:
    """Usage deltas keyed by (group, user, kind, period_start), summed before writing."""

    def __init__(self) -> None:
        self.deltas: dict[TotalKey, Usage] = defaultdict(Usage)

    def add_session(
        self,
        group: str,
        user: str,
        resources: Resources,
        start: datetime,
        end: datetime,
        sign: int = 1,
    ) -> None:
        for kind in LEDGER_KINDS:
            for period, usage in split_usage(resources, start, end, kind):
                if sign < 0:
                    usage = Usage() - usage
                for who in ("", user):
                    key = (group, who, kind.value, period)
                    self.deltas[key] = self.deltas[key] + usage

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "group": g,
                "user": u,
                "kind": k,
                "period_start": p,
                "cpu_mcore_ms": d.cpu_mcore_ms,
                "mem_mib_ms": d.mem_mib_ms,
                "gpu_ms": d.gpu_ms,
            }
            for (g, u, k, p), d in self.deltas.items()
            if d != Usage()
        ]


def apply_totals(connection: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Add ``rows`` to the running totals, inserting keys seen for the first time."""
    rows = list(rows)
    if not rows:
        return
    table = cast(Table, UsageTotal.__table__)
    dialect = connection.dialect.name
    columns = ("cpu_mcore_ms", "mem_mib_ms", "gpu_ms")
    if dialect in ("mysql", "mariadb"):
        my = mysql.insert(table)
        statement: Any = my.on_duplicate_key_update(
            {c: table.c[c] + my.inserted[c] for c in columns}
        )
    else:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        ins = insert(table)
        statement = ins.on_conflict_do_update(
            index_elements=[table.c.group, table.c.user, table.c.kind, table.c.period_start],
            set_={c: table.c[c] + ins.excluded[c] for c in columns},
        )
    connection.execute(statement, rows)
