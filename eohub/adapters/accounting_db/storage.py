"""Storage samples: how many bytes each user holds in a group's volumes, over time."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import Connection, and_, func, insert, select

from eohub.adapters.accounting_db.models import StorageSample as StorageRow
from eohub.domain.accounting.session_record import StorageSample


def add_samples(connection: Connection, samples: Iterable[StorageSample]) -> int:
    """Store samples; one already stored (same user, group and time) is skipped."""
    rows = [
        {"user": s.user, "group": s.group, "bytes": s.bytes, "measured_at": s.measured_at}
        for s in samples
    ]
    added = 0
    for row in rows:
        exists = connection.execute(
            select(StorageRow.id).where(
                StorageRow.user == row["user"],
                StorageRow.group == row["group"],
                StorageRow.measured_at == row["measured_at"],
            )
        ).first()
        if exists is None:
            connection.execute(insert(StorageRow).values(**row))
            added += 1
    return added


def group_storage(connection: Connection, group: str) -> int:
    """The bytes ``group`` holds: the sum of each member's latest sample."""
    latest = (
        select(StorageRow.user, func.max(StorageRow.measured_at).label("at"))
        .where(StorageRow.group == group)
        .group_by(StorageRow.user)
        .subquery()
    )
    total = connection.execute(
        select(func.sum(StorageRow.bytes)).join(
            latest,
            and_(
                StorageRow.user == latest.c.user,
                StorageRow.measured_at == latest.c.at,
                StorageRow.group == group,
            ),
        )
    ).scalar_one()
    return int(total or 0)


def iter_samples(
    connection: Connection, start: datetime, end: datetime
) -> Iterator[StorageSample]:
    """The samples measured in ``[start, end)``, oldest first."""
    query = (
        select(StorageRow)
        .where(StorageRow.measured_at >= start, StorageRow.measured_at < end)
        .order_by(StorageRow.measured_at, StorageRow.id)
    )
    for s in connection.execute(query):
        yield StorageSample(s.user, s.group, s.bytes, s.measured_at)


__all__ = ["add_samples", "group_storage", "iter_samples"]
