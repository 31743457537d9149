"""The accounting store: the one object the service's handlers and loops talk to.

Every method is one short transaction, and blocks. The service's handlers never call
them on the event loop: a batch of 5000 events or a year's report takes far longer
than a request may stall every other. They go through :meth:`AccountingStore.write`
(one at a time, in order, in the service's writer process), :meth:`~AccountingStore.read`
and :meth:`~AccountingStore.quota_check`, each with threads of its own (see
:mod:`.store_executors`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    func,
    insert,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import NullType

from eohub.adapters.accounting_db import groups as group_queries
from eohub.adapters.accounting_db import queries
from eohub.adapters.accounting_db.errors import LEDGER_FULL, ledger_overflow
from eohub.adapters.accounting_db.groups import GroupInfo
from eohub.adapters.accounting_db.ingest import (
    IngestResult,
    close_session,
    ingest_events,
    touch_sessions,
)
from eohub.adapters.accounting_db.models import Session
from eohub.adapters.accounting_db.models import StorageSample as StorageRow
from eohub.adapters.accounting_db.store_executors import StoreExecutors, run_on
from eohub.adapters.accounting_db.usage import read_usage
from eohub.domain.accounting.events import Event, EventError, parse_batch
from eohub.domain.accounting.ledger import Resources, Usage, usage_in_window
from eohub.domain.accounting.periods import Allocation, PeriodKind
from eohub.domain.accounting.quota import (
    EACH_MEMBER,
    WHOLE_GROUP,
    Decision,
    Limits,
    Running,
    Standing,
    budget_left,
    decide,
)
from eohub.domain.accounting.requests import decode_json_body
from eohub.domain.accounting.session_record import (
    SessionFields,
    SessionRecord,
    StorageSample,
    UsageRow,
)

if TYPE_CHECKING:
    from eohub.adapters.accounting_db.writer_process import WriterProcess

T = TypeVar("T")

# Writes after which this process forgets the groups it holds for quota checks.
CHANGES_GROUPS = frozenset({"put_group"})


def utcnow() -> datetime:
    """Now, in UTC; a module-level function so tests can travel in time."""
    return datetime.now(UTC)


class UnknownGroupError(LookupError):
    """The group is not defined in the accounting service."""


class AccountingStore:
    """Ledger storage over one SQLAlchemy engine.

    Parameters
    ----------
    engine
        From :func:`~eohub.adapters.accounting_db.schema.create_engine_for`, with the
        schema already ensured.
    clock
        Returns "now"; tests pass their own to travel in time.
    group_cache_seconds
        How long quota checks reuse a group's allocation and quota rows.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        group_cache_seconds: float = 10.0,
        writer_process: WriterProcess | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.group_cache_seconds = group_cache_seconds
        # Quota checks read a group's allocation and quota rows from here; changes made
        # through this store clear it at once, changes by another process show within
        # ``group_cache_seconds``.
        self._group_cache: dict[str, tuple[float, GroupInfo | None]] = {}
        self._executors = StoreExecutors(writer_process)

    # -- off the event loop -------------------------------------------------------
    async def write(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)``, one of this store's methods, after the writes before it.

        It runs in the store's writer process when it has one (the service: see
        :mod:`.writer_process`), else on the writer thread.
        """
        try:
            return await self._executors.write(self, call, args, kwargs)
        finally:
            if getattr(call, "__name__", "") in CHANGES_GROUPS:
                self._group_cache.clear()  # this process's quota checks must see it now

    async def read(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)`` (store reads, or a page built from them) on a reader."""
        return await run_on(self._executors.readers, call, args, kwargs)

    async def quota_check(self, user: str, group_name: str, request: Resources) -> Decision:
        """:meth:`check_quota` on the quota threads, never queued behind other work."""
        return await run_on(
            self._executors.quota, self.check_quota, (user, group_name, request), {}
        )

    def close(self) -> None:
        """Let the store's threads (and writer process) end once their work is done."""
        self._executors.close()

    # -- events -------------------------------------------------------------------
    def ingest_body(
        self, body: bytes, *, now: datetime, max_clock_skew: timedelta
    ) -> tuple[IngestResult, int]:
        """Decode, check and apply the body of ``POST api/events``; how many it held.

        Parsing a large batch is as much work as applying it, so the writer does both.
        """
        data = decode_json_body(body)
        events = parse_batch(data, now=now, max_clock_skew=max_clock_skew)
        single = not (isinstance(data, dict) and "events" in data)
        return self.ingest(events, single=single), len(events)

    def ingest(self, events: list[Event], *, single: bool = False) -> IngestResult:
        """Apply a batch of events, all or nothing (see :mod:`.ingest`).

        Raises :class:`EventError` (nothing written) when the batch would take a running
        total past the 64-bit columns, the same on every database.
        """
        try:
            with self.engine.begin() as connection:
                return ingest_events(connection, events, self.clock(), single=single)
        except (DBAPIError, OverflowError) as e:
            if isinstance(e, OverflowError) or ledger_overflow(e):
                raise EventError({"events": LEDGER_FULL}) from None
            raise

    # -- groups and quotas --------------------------------------------------------
    def groups(self, names: set[str] | None = None) -> list[GroupInfo]:
        with self.engine.connect() as connection:
            return group_queries.load_groups(connection, names)

    def group(self, name: str) -> GroupInfo:
        found = self.groups({name})
        if not found:
            raise UnknownGroupError(name)
        return found[0]

    def put_group(
        self,
        name: str,
        *,
        display_name: str | None = None,
        allocation: Allocation | None = None,
        pis: set[str] | None = None,
        quotas: dict[str, Limits | None] | None = None,
    ) -> bool:
        """Create or update a group, its PIs and its quota rows in one transaction."""
        self._group_cache.clear()
        with self.engine.begin() as connection:
            created = group_queries.put_group(
                connection,
                name,
                display_name=display_name,
                allocation=allocation,
                pis=pis,
                now=self.clock(),
            )
            for user, limits in (quotas or {}).items():
                group_queries.put_quota(connection, name, user, limits)
            return created

    def pi_groups(self, user: str) -> set[str]:
        with self.engine.connect() as connection:
            return group_queries.pi_groups(connection, user)

    # -- quota --------------------------------------------------------------------
    def standings(self, user: str, group: GroupInfo, now: datetime) -> list[Standing]:
        """Usage and running servers against each quota row that applies to ``user``."""
        with self.engine.connect() as connection:
            return self._standings(connection, user, group, now)

    def _standings(
        self, connection: Connection, user: str, group: GroupInfo, now: datetime
    ) -> list[Standing]:
        allocation = group.allocation
        window = allocation.window(now)
        group_used, user_used = Usage(), Usage()
        group_running, user_running = [0, 0], [0, 0]
        storage = 0
        window_keys = {
            "group": group.name,
            "users": [WHOLE_GROUP, user],
            "kind": allocation.kind.value,
            "buckets": allocation.bucket_starts(now),
        }
        for who, cpu, mem, gpu in queries.window_totals(connection, window_keys):
            used = Usage(int(cpu or 0), int(mem or 0), int(gpu or 0))
            if who == WHOLE_GROUP:
                group_used = used
            else:
                user_used = used
        for who, mcores, mem_bytes, gpus, started in connection.execute(
            queries.OPEN_IN_GROUP, {"group": group.name}
        ):
            piece = usage_in_window(Resources(mcores, mem_bytes, gpus), started, now, window)
            group_used += piece
            group_running[0] += 1
            group_running[1] += mcores
            if who == user:
                user_used += piece
                user_running[0] += 1
                user_running[1] += mcores
        if group.quotas.get(WHOLE_GROUP, Limits()).storage_bytes is not None:
            storage = self._group_storage(connection, group.name)
        standings = []
        if WHOLE_GROUP in group.quotas:
            standings.append(
                Standing(
                    f"group {group.name}",
                    group.quotas[WHOLE_GROUP],
                    group_used,
                    Running(*group_running),
                    storage,
                )
            )
        user_limits = group.quotas.get(user, group.quotas.get(EACH_MEMBER))
        if user_limits is not None:
            standings.append(
                Standing(
                    f"user {user} in group {group.name}",
                    user_limits,
                    user_used,
                    Running(*user_running),
                )
            )
        return standings

    def check_quota(self, user: str, group_name: str, request: Resources) -> Decision:
        """Allow or deny ``request`` for ``user`` charged to ``group_name``, with the reason.

        Two prepared statements on one connection (the group's running totals, its open
        sessions) and the group's quota rows from a short cache: the cost does not grow
        with the sessions recorded. A connection found dead is retried once on a fresh one.
        """
        try:
            return self._check_quota(user, group_name, request)
        except DBAPIError as e:
            if not e.connection_invalidated:
                raise
            return self._check_quota(user, group_name, request)

    def _check_quota(self, user: str, group_name: str, request: Resources) -> Decision:
        now = self.clock()
        with self.engine.connect() as connection:
            group = self._quota_group(connection, group_name)
            if group is None:
                return Decision(
                    False,
                    f"The group {group_name!r} has no allocation in accounting; ask an admin.",
                    budget_left([]),
                )
            standings = self._standings(connection, user, group, now)
        return decide(request, standings)

    def _quota_group(self, connection: Connection, name: str) -> GroupInfo | None:
        cached = self._group_cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < self.group_cache_seconds:
            return cached[1]
        group = group_queries.quota_group(connection, name)
        self._group_cache[name] = (time.monotonic(), group)
        return group

    # -- usage --------------------------------------------------------------------
    def usage(
        self,
        kind: PeriodKind,
        start: datetime,
        end: datetime,
        *,
        groups: set[str] | None = None,
        user: str | None = None,
        by_user: bool = False,
    ) -> list[UsageRow]:
        """Usage per period, open sessions counted up to now (see :func:`read_usage`)."""
        return read_usage(
            self.engine, kind, start, end, self.clock(), groups=groups, user=user, by_user=by_user
        )

    # -- sessions -----------------------------------------------------------------
    def sessions(
        self,
        *,
        users: set[str] | None = None,
        groups: set[str] | None = None,
        open_only: bool = False,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[SessionRecord]:
        """Newest first, ``limit`` at a time; page on with the last record's id."""
        query = select(Session).order_by(Session.id.desc()).limit(limit)
        if users is not None and groups is not None:
            query = query.where(or_(Session.user.in_(users), Session.group.in_(groups)))
        elif users is not None:
            query = query.where(Session.user.in_(users))
        elif groups is not None:
            query = query.where(Session.group.in_(groups))
        if open_only:
            query = query.where(Session.stopped_at.is_(None))
        if before_id is not None:
            query = query.where(Session.id < before_id)
        with self.engine.connect() as connection:
            return [queries.record(r) for r in connection.execute(query)]

    def _range_query(  # type: ignore[no-untyped-def]
        self,
        start: datetime,
        end: datetime,
        group: str | None,
        ended: bool,
        columns=(),
        ids: tuple[int, int] | None = None,
    ):
        column = Session.stopped_at if ended else Session.started_at
        query = select(*(columns or queries.RECORD_COLUMNS)).where(column >= start, column < end)
        if group is not None:
            query = query.where(Session.group == group)
        if ids is not None:
            query = query.where(Session.id.between(*ids))
        return query

    def session_id_bounds(
        self, start: datetime, end: datetime, *, group: str | None = None, ended: bool = False
    ) -> tuple[int, int] | None:
        """The lowest and highest id of the sessions :meth:`iter_session_rows` would read."""
        query = self._range_query(start, end, group, ended, (Session.id,)).subquery()
        with self.engine.connect() as connection:
            low, high = connection.execute(
                select(func.min(query.c.id), func.max(query.c.id))
            ).one()
        return None if low is None else (int(low), int(high))

    def count_sessions(
        self, start: datetime, end: datetime, *, group: str | None = None, ended: bool = False
    ) -> int:
        query = self._range_query(start, end, group, ended)
        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            )

    def iter_session_rows(
        self,
        start: datetime,
        end: datetime,
        *,
        group: str | None = None,
        ended: bool = False,
        ids: tuple[int, int] | None = None,
        chunk: int = 5000,
    ) -> Iterator[SessionFields]:
        """Sessions started (or, with ``ended``, stopped) in ``[start, end)``, by id.

        ``ids`` limits them to ids from its first to its last, inclusive. They are
        streamed as plain tuples with naive UTC times, read straight from the driver: an
        export reads a million of them, and per-value type conversion would double its
        time.
        """
        raw = [
            type_coerce(c, NullType()) if c.key in ("started_at", "stopped_at") else c
            for c in queries.RECORD_COLUMNS
        ]
        query = self._range_query(start, end, group, ended, raw, ids).order_by(Session.id)
        naive = queries.naive_utc
        make = queries.SessionValues
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=chunk).execute(query)
            for rows in result.partitions():
                for i, u, s, g, mc, mb, gp, started, stopped, reason, profile, image in rows:
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
                    )

    def open_sessions(self) -> list[tuple[SessionRecord, datetime | None]]:
        """Every open session, with the last time its server was seen running."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(Session).where(Session.stopped_at.is_(None)))
            return [(queries.record(r), r.last_seen_at) for r in rows]

    def close_session(self, session_id: int, stopped_at: datetime, reason: str) -> bool:
        with self.engine.begin() as connection:
            return close_session(connection, session_id, stopped_at, reason)

    def touch_sessions(self, session_ids: list[int], seen_at: datetime) -> None:
        with self.engine.begin() as connection:
            touch_sessions(connection, session_ids, seen_at)

    # -- storage ------------------------------------------------------------------
    def add_storage_samples(self, samples: Iterable[StorageSample]) -> int:
        """Store samples; one already stored (same user, group and time) is skipped."""
        rows = [
            {"user": s.user, "group": s.group, "bytes": s.bytes, "measured_at": s.measured_at}
            for s in samples
        ]
        added = 0
        with self.engine.begin() as connection:
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

    def _group_storage(self, connection, group: str) -> int:  # type: ignore[no-untyped-def]
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

    def iter_storage(self, start: datetime, end: datetime) -> Iterator[StorageSample]:
        query = (
            select(StorageRow)
            .where(StorageRow.measured_at >= start, StorageRow.measured_at < end)
            .order_by(StorageRow.measured_at, StorageRow.id)
        )
        with self.engine.connect() as connection:
            for s in connection.execute(query):
                yield StorageSample(s.user, s.group, s.bytes, s.measured_at)

    # -- metrics ------------------------------------------------------------------
    def open_session_count(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(Session).where(Session.stopped_at.is_(None))
                ).scalar_one()
            )


__all__ = [
    "AccountingStore",
    "StorageSample",
    "UnknownGroupError",
    "UsageRow",
    "utcnow",
]
