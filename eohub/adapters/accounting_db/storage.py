"""Storage samples: how many bytes each user holds in a group's volumes, over time.

The unit of storage is the (user, group, source) triple: a user measured at two sources
(``/home`` on one server, ``/scratch`` on another) holds the sum of both in the group.
Each triple's latest sample is kept in ``storage_latest``, written in the transaction of
every samples write, so a group's storage is one indexed sum over its rows: the rows of
the group measured at most ``max_age`` ago (the service's ``storage_sample_max_age``),
so that a user moved to another group, or a folder deleted, stops counting once nobody
measures it.

Whether that is over the group's whole-group ``storage_bytes`` row, and since when, is
kept in ``groups.storage_over_since`` by :func:`refresh_over_since`, in the same
transaction as every write that can change it: samples (:func:`add_samples`) and quota
rows (:func:`eohub.adapters.accounting_db.groups.put_quota`). Quota checks read it as
it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite

from eohub.adapters.accounting_db.models import Group, Quota, StorageLatest, stored_time
from eohub.adapters.accounting_db.models import StorageSample as StorageRow
from eohub.domain.accounting.quota import WHOLE_GROUP
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.accounting.standings import Stored

#: How long a sample counts (None: for ever); the service's ``storage_sample_max_age``.
MaxAge = timedelta | None


def oldest_counted(now: datetime | None, max_age: MaxAge) -> datetime | None:
    """The oldest sample time that still counts at ``now`` (None: every one counts)."""
    if now is None or max_age is None or max_age <= timedelta(0):
        return None
    return now - max_age


#: Sample times per statement that looks up what is stored: one parameter each, under
#: every supported database's limit (SQLite's was 999 before 3.32).
CHUNK = 200

_Key = tuple[str, str, str, datetime]  # user, group, source, measured_at (naive UTC)
_SAMPLE_KEY = (StorageRow.user, StorageRow.group, StorageRow.source, StorageRow.measured_at)
_Triple = tuple[str, str, str]


def add_samples(
    connection: Connection,
    samples: Iterable[StorageSample],
    *,
    now: datetime | None = None,
    max_age: MaxAge = None,
) -> int:
    """Store samples; one already stored (same user, group, source and time) is skipped.

    Each triple's latest sample, and the ``storage_over_since`` of the groups the samples
    are charged to, are brought up to date before the transaction commits. ``now`` and
    ``max_age`` say which samples still count (``now`` None: all of them).

    A sampler's round is one batch of thousands of samples, so the work is a few
    statements per batch, not a few per sample: one lookup per :data:`CHUNK` distinct
    times, one insert and one upsert of the latest samples (both sent as executemany).
    """
    samples = list(samples)
    groups = {s.group for s in samples if s.group}  # no group counts toward no quota
    # Old samples may have stopped counting since the last write: a group they alone kept
    # over is within its row now, and must not keep its old time if these put it over.
    refresh_over_since(connection, groups, now=now, max_age=max_age)
    fresh = _not_stored(connection, samples)
    if fresh:
        connection.execute(
            insert(StorageRow),
            [sample_row(s) for s in fresh],
        )
        _keep_latest(connection, fresh)
    refresh_over_since(connection, groups, now=now, max_age=max_age)
    return len(fresh)


def sample_row(s: StorageSample) -> dict[str, Any]:
    """``s`` as a row of ``storage_samples`` or ``storage_latest`` (the same columns)."""
    return {
        "user": s.user,
        "group": s.group,
        "source": s.source,
        "bytes": s.bytes,
        "measured_at": s.measured_at,
        "file_count": s.file_count,
    }


def _key(s: StorageSample) -> _Key:
    return (s.user, s.group, s.source, stored_time(s.measured_at))


def _not_stored(connection: Connection, samples: list[StorageSample]) -> list[StorageSample]:
    """The samples not stored yet, the first of each key once, in the order given.

    Names compare code point by code point on every database (see
    :class:`~eohub.adapters.accounting_db.models.ExactString`), so Python's ``==`` on
    the keys read back is the database's own.
    """
    first: dict[_Key, StorageSample] = {}
    for s in samples:
        first.setdefault(_key(s), s)
    unique = list(first.values())
    stored: set[_Key] = set()
    # By time alone, then narrowed here: a round's samples share one time, so this reads
    # the rows stored at the batch's few times along their index, on every database.
    # (Lists of users, or row values, made PostgreSQL's generic plan compare each row
    # with every name of the list, and MariaDB scan the table.)
    times = sorted({s.measured_at for s in unique})
    for start in range(0, len(times), CHUNK):
        found = connection.execute(
            select(*_SAMPLE_KEY).where(StorageRow.measured_at.in_(times[start : start + CHUNK]))
        )
        stored.update((u, g, src, stored_time(at)) for u, g, src, at in found)
    return [s for s in unique if _key(s) not in stored]


def _keep_latest(connection: Connection, fresh: list[StorageSample]) -> None:
    """Make the newest of ``fresh`` of each triple its latest sample, unless a later
    one is stored: one upsert of the batch, whose update is guarded by the time."""
    newest: dict[_Triple, StorageSample] = {}
    for s in fresh:
        triple = (s.user, s.group, s.source)
        held = newest.get(triple)
        if held is None or s.measured_at > held.measured_at:
            newest[triple] = s
    table = cast(Table, StorageLatest.__table__)
    statement: Any
    if connection.dialect.name in ("mysql", "mariadb"):
        my = mysql.insert(table)
        newer = my.inserted.measured_at > table.c.measured_at
        # MariaDB assigns left to right: the time goes last, after the other columns
        # have compared against the old one.
        statement = my.on_duplicate_key_update(
            [
                (c, case((newer, my.inserted[c]), else_=table.c[c]))
                for c in ("bytes", "file_count", "measured_at")
            ]
        )
    else:  # SQLite and PostgreSQL share ON CONFLICT
        ins = (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)
        statement = ins.on_conflict_do_update(
            index_elements=[table.c.user, table.c.group, table.c.source],
            set_={c: ins.excluded[c] for c in ("bytes", "file_count", "measured_at")},
            where=table.c.measured_at < ins.excluded.measured_at,
        )
    connection.execute(
        statement,
        [sample_row(s) for s in newest.values()],
    )


def _counted(group: str, now: datetime | None, max_age: MaxAge) -> list[ColumnElement[bool]]:
    conditions = [StorageLatest.group == group]
    oldest = oldest_counted(now, max_age)
    if oldest is not None:
        conditions.append(StorageLatest.measured_at >= oldest)
    return conditions


def _measure(
    connection: Connection, group: str, now: datetime | None, max_age: MaxAge
) -> tuple[int, datetime | None]:
    """The bytes ``group`` holds (the sum of its triples' latest samples that count), and
    the time of the newest of those samples (None: none counts)."""
    total, newest = connection.execute(
        select(func.sum(StorageLatest.bytes), func.max(StorageLatest.measured_at)).where(
            *_counted(group, now, max_age)
        )
    ).one()
    return int(total or 0), newest


def group_storage(
    connection: Connection, group: str, *, now: datetime | None = None, max_age: MaxAge = None
) -> int:
    """The bytes ``group`` holds: the sum of its triples' latest samples that count."""
    return _measure(connection, group, now, max_age)[0]


def stored(connection: Connection, group: str, *, now: datetime, max_age: MaxAge) -> Stored:
    """The bytes ``group`` holds, and since when it is over its storage quota, as a
    quota check reads them: its rows of ``storage_latest`` and its ``groups`` row."""
    over_since = connection.execute(
        select(Group.storage_over_since).where(Group.name == group)
    ).scalar_one_or_none()
    return Stored(group_storage(connection, group, now=now, max_age=max_age), over_since)


def refresh_over_since(
    connection: Connection,
    groups: Iterable[str],
    *,
    now: datetime | None = None,
    max_age: MaxAge = None,
    changed_at: datetime | None = None,
) -> None:
    """Bring each group's ``storage_over_since`` up to date with its samples and its
    whole-group ``storage_bytes`` row.

    A group within its row (or without one) has none. A group over it keeps the time it
    has. One that just went over gets ``changed_at`` when given (a quota row changed:
    the grace starts at the change, not at a sample days old), else the time of the
    newest sample it is measured by: the measurement that showed it over, whatever order
    the samples arrived in. Groups not defined in accounting have no row to keep it in,
    and are skipped.
    """
    wanted = sorted(set(groups))
    if not wanted:
        return
    limits = dict(
        connection.execute(
            select(Quota.group, Quota.storage_bytes).where(
                Quota.group.in_(wanted), Quota.user == WHOLE_GROUP
            )
        ).all()
    )
    rows = connection.execute(
        select(Group.name, Group.storage_over_since).where(Group.name.in_(wanted))
    ).all()
    for name, over_since in rows:
        limit = limits.get(name)
        since = None
        if limit is not None:
            used, newest = _measure(connection, name, now, max_age)
            if used > limit:
                since = over_since or changed_at or newest
        if since != over_since:
            connection.execute(
                update(Group).where(Group.name == name).values(storage_over_since=since)
            )


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
        yield StorageSample(s.user, s.group, s.bytes, s.measured_at, s.file_count, s.source)


class StorageWrites:
    """The store's storage samples (:class:`.store.AccountingStore` has them)."""

    engine: Engine
    clock: Callable[[], datetime]
    storage_sample_max_age: timedelta

    def add_storage_samples(
        self, samples: Iterable[StorageSample], sample_max_age: timedelta | None = None
    ) -> int:
        """Store samples; one already stored (same user, group, source, time) is skipped.

        ``sample_max_age``: how long a sample counts toward its group (None: the store's
        ``storage_sample_max_age``; the service sends it to its writer process).
        """
        max_age = self.storage_sample_max_age if sample_max_age is None else sample_max_age
        with self.engine.begin() as connection:
            return add_samples(connection, samples, now=self.clock(), max_age=max_age)

    def iter_storage(self, start: datetime, end: datetime) -> Iterator[StorageSample]:
        """The samples measured in ``[start, end)``, oldest first."""
        with self.engine.connect() as connection:
            yield from iter_samples(connection, start, end)


__all__ = [
    "MaxAge",
    "StorageWrites",
    "add_samples",
    "group_storage",
    "iter_samples",
    "oldest_counted",
    "refresh_over_since",
    "sample_row",
    "stored",
]
