"""Storage over time: what each user holds in each group at given instants.

A sampler measures a user's space in a group at several sources (a home root, a
scratch root, a volume claim), each its own series: the unit is the (user, group,
source) triple. What a triple holds at an instant is its latest sample at or before it,
unless that sample is older than the service's ``storage_sample_max_age`` (a folder
deleted or a user moved stops counting once nobody measures it); what a user holds in
a group is the sum over their sources, a group the sum over its members (as the quota
check counts it from ``storage_latest``, see :mod:`.storage`), and a user the sum over
the groups they are charged in (``""``: no group).

A series over many instants never reads every sample into Python: one query finds each
triple's latest sample that still counts at the first instant, then one query per step
finds the latest sample of each triple measured since the step before (a range on
``ix_storage_samples_measured_at``, grouped in SQL), and the figures are carried
forward between them, each dropped once it is older than the max age. Each sample in
the range is read by the database once, and Python sees at most one row per triple and
step. The latest figures (:func:`current_holdings`) are read from ``storage_latest``,
one row per triple, as the quota check reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, func, select

from eohub.adapters.accounting_db.models import StorageLatest
from eohub.adapters.accounting_db.models import StorageSample as StorageRow
from eohub.adapters.accounting_db.storage import MaxAge, oldest_counted

#: A series has at most this many points (one query each).
MAX_POINTS = 500
#: The steps a series is drawn at when none is asked for, finest first.
STEPS = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
    timedelta(days=91),
    timedelta(days=365),
)
#: A step is chosen so that a range has at most this many points.
DEFAULT_POINTS = 100

#: What a :class:`Holding` is read from.
HOLDING_COLUMNS: tuple[Any, ...] = (
    StorageRow.user,
    StorageRow.group,
    StorageRow.source,
    StorageRow.bytes,
    StorageRow.file_count,
    StorageRow.measured_at,
)
#: A (user, group, source) triple: ``group`` is ``""`` for space charged to no group,
#: ``source`` ``""`` for a sampler that did not name where it measured.
Triple = tuple[str, str, str]
#: The bytes each triple held at each instant asked for.
Held = dict[Triple, list[int]]
#: Names to keep (None: any).
Names = Collection[str] | None
Points = Sequence[datetime]
#: ``(instant, bytes)`` pairs.
Series = list[tuple[datetime, int]]


@dataclass(frozen=True)
class Holding:
    """A triple's latest sample: the bytes and files it held when last measured."""

    user: str
    group: str
    source: str
    bytes: int
    file_count: int
    measured_at: datetime

    @property
    def key(self) -> Triple:
        return (self.user, self.group, self.source)


def default_step(start: datetime, end: datetime, points: int = DEFAULT_POINTS) -> timedelta:
    """The finest of :data:`STEPS` that draws ``[start, end)`` in at most ``points`` points."""
    span = end - start
    return next((s for s in STEPS if span / s <= points), STEPS[-1])


def series_points(
    start: datetime, end: datetime, step: timedelta, now: datetime
) -> list[datetime]:
    """The instants a series over ``[start, end)`` is read at: ``start`` and each step
    after it, up to ``now`` (storage to come is unknown), and ``now`` itself when it
    falls in the range, so that the last point is today's figure."""
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    points = []
    t = start
    while t < end and t <= now:
        points.append(t)
        t += step
    if start <= now < end and (not points or points[-1] < now):
        points.append(now)
    return points


def total_series(series: Iterable[Sequence[int]], length: int) -> list[int]:
    """Every series summed, point by point."""
    totals = [0] * length
    for values in series:
        totals = [a + b for a, b in zip(totals, values, strict=True)]
    return totals


def _where(users: Names, groups: Names) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if users is not None:
        conditions.append(StorageRow.user.in_(list(users)))
    if groups is not None:
        conditions.append(StorageRow.group.in_(list(groups)))
    return conditions


def _latest(conditions: list[ColumnElement[bool]]) -> Select[Any]:
    """Each triple's latest sample among those meeting ``conditions``, whole (the
    unique key makes it one row)."""
    latest = (
        select(
            StorageRow.user,
            StorageRow.group,
            StorageRow.source,
            func.max(StorageRow.measured_at).label("at"),
        )
        .where(*conditions)
        .group_by(StorageRow.user, StorageRow.group, StorageRow.source)
        .subquery()
    )
    return select(*HOLDING_COLUMNS).join(
        latest,
        and_(
            StorageRow.user == latest.c.user,
            StorageRow.group == latest.c.group,
            StorageRow.source == latest.c.source,
            StorageRow.measured_at == latest.c.at,
        ),
    )


def _holdings(rows: Iterable[Any]) -> list[Holding]:
    found = [
        Holding(r.user, r.group, r.source, int(r.bytes), int(r.file_count), r.measured_at)
        for r in rows
    ]
    # Sorted here by code point, the same on every database (see groups.load_groups).
    return sorted(found, key=lambda h: h.key)


def latest_holdings(
    connection: Connection,
    *,
    at: datetime,
    max_age: MaxAge,
    users: Names = None,
    groups: Names = None,
) -> list[Holding]:
    """Each triple's latest sample at or before ``at`` that still counts then, of the
    ``users`` in the ``groups`` (None: any), by user, group and source."""
    conditions = [*_where(users, groups), StorageRow.measured_at <= at]
    oldest = oldest_counted(at, max_age)
    if oldest is not None:
        # The latest sample in the window is the latest of all when that one counts,
        # and none when it does not: an older one would count even less.
        conditions.append(StorageRow.measured_at >= oldest)
    return _holdings(connection.execute(_latest(conditions)))


def current_holdings(
    connection: Connection,
    now: datetime,
    *,
    max_age: MaxAge,
    users: Names = None,
    groups: Names = None,
) -> list[Holding]:
    """Each triple's latest sample, read from ``storage_latest`` as the quota check
    reads it: those older than ``max_age`` at ``now`` no longer count."""
    query = select(
        StorageLatest.user,
        StorageLatest.group,
        StorageLatest.source,
        StorageLatest.bytes,
        StorageLatest.file_count,
        StorageLatest.measured_at,
    )
    if users is not None:
        query = query.where(StorageLatest.user.in_(list(users)))
    if groups is not None:
        query = query.where(StorageLatest.group.in_(list(groups)))
    oldest = oldest_counted(now, max_age)
    if oldest is not None:
        query = query.where(StorageLatest.measured_at >= oldest)
    return _holdings(connection.execute(query))


def _measured_between(
    connection: Connection,
    low: datetime,
    high: datetime,
    conditions: list[ColumnElement[bool]],
) -> dict[Triple, tuple[int, datetime]]:
    """Each triple's latest bytes, and when, among its samples measured in ``(low, high]``."""
    since = [*conditions, StorageRow.measured_at > low, StorageRow.measured_at <= high]
    return {
        (r.user, r.group, r.source): (int(r.bytes), r.measured_at)
        for r in connection.execute(_latest(since))
    }


def holdings_over_time(
    connection: Connection,
    points: Points,
    users: Names = None,
    groups: Names = None,
    *,
    max_age: MaxAge = None,
) -> Held:
    """The bytes each triple held at each of ``points`` (ascending): 0 before its first
    sample and once its latest is older than ``max_age``. Only triples counted at one
    of the points appear."""
    if list(points) != sorted(points):
        raise ValueError("points must be in ascending order")
    if len(points) > MAX_POINTS:
        raise ValueError(f"at most {MAX_POINTS} points")
    if not points:
        return {}
    conditions = _where(users, groups)
    last = {
        h.key: (h.bytes, h.measured_at)
        for h in latest_holdings(
            connection, at=points[0], max_age=max_age, users=users, groups=groups
        )
    }
    series: Held = {}
    for i, point in enumerate(points):
        if i:
            last.update(_measured_between(connection, points[i - 1], point, conditions))
        oldest = oldest_counted(point, max_age)
        for key, (size, measured_at) in last.items():
            counts = oldest is None or measured_at >= oldest
            series.setdefault(key, [0] * i).append(size if counts else 0)
    return series


def storage_series(
    connection: Connection,
    user: str | None,
    group: str | None,
    now: datetime,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    max_age: MaxAge,
) -> Series:
    """The bytes ``user`` (over their groups) or ``group`` (over its members), or both
    (``user`` in ``group``), held at each of :func:`series_points`."""
    points = series_points(start, end, step, now)
    held = holdings_over_time(
        connection,
        points,
        None if user is None else {user},
        None if group is None else {group},
        max_age=max_age,
    )
    return list(zip(points, total_series(held.values(), len(points)), strict=True))


class StorageHistoryReads:
    """The store's reads of storage over time (:class:`.store.AccountingStore` has them);
    ``users`` or ``groups`` None means any. A sample counts for the store's
    ``storage_sample_max_age`` (``sample_max_age`` overrides it; zero: for ever), as in
    its quota checks, so that the pages count what the quota check counts."""

    engine: Engine
    clock: Callable[[], datetime]
    storage_sample_max_age: timedelta

    def _max_age(self, sample_max_age: timedelta | None) -> timedelta:
        return self.storage_sample_max_age if sample_max_age is None else sample_max_age

    def latest_storage(
        self,
        users: Names = None,
        groups: Names = None,
        *,
        sample_max_age: timedelta | None = None,
    ) -> list[Holding]:
        """Each triple's latest sample that counts now (:func:`current_holdings`)."""
        with self.engine.connect() as connection:
            return current_holdings(
                connection,
                self.clock(),
                max_age=self._max_age(sample_max_age),
                users=users,
                groups=groups,
            )

    def storage_holdings(
        self,
        at: Points,
        users: Names = None,
        groups: Names = None,
        *,
        sample_max_age: timedelta | None = None,
    ) -> Held:
        """What each triple held at each of ``at`` (:func:`holdings_over_time`)."""
        max_age = self._max_age(sample_max_age)
        with self.engine.connect() as connection:
            return holdings_over_time(connection, at, users, groups, max_age=max_age)

    def storage_series(
        self,
        *,
        user: str | None = None,
        group: str | None = None,
        start: datetime,
        end: datetime,
        step: timedelta,
        sample_max_age: timedelta | None = None,
    ) -> Series:
        """The bytes ``user`` or ``group`` held from ``start`` to ``end`` every ``step``
        (:func:`storage_series`), up to now."""
        with self.engine.connect() as connection:
            return storage_series(
                connection,
                user,
                group,
                self.clock(),
                start=start,
                end=end,
                step=step,
                max_age=self._max_age(sample_max_age),
            )


__all__ = [
    "DEFAULT_POINTS",
    "MAX_POINTS",
    "STEPS",
    "Held",
    "Holding",
    "Names",
    "Points",
    "Series",
    "StorageHistoryReads",
    "Triple",
    "current_holdings",
    "default_step",
    "holdings_over_time",
    "latest_holdings",
    "series_points",
    "storage_series",
    "total_series",
]
