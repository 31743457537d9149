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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, or_, select
from sqlalchemy.exc import DBAPIError

import eohub.adapters.accounting_db.groups as group_queries
import eohub.adapters.accounting_db.queries as queries
import eohub.adapters.accounting_db.session_rows as session_rows
import eohub.adapters.accounting_db.storage as storage
from eohub.adapters.accounting_db.errors import LEDGER_FULL, ledger_overflow
from eohub.adapters.accounting_db.groups import GroupInfo
from eohub.adapters.accounting_db.ingest import IngestResult, ingest_events
from eohub.adapters.accounting_db.models import Session
from eohub.adapters.accounting_db.session_stops import (
    close_session,
    record_stopped_by,
    request_stop,
    touch_sessions,
    withdraw_stop,
)
from eohub.adapters.accounting_db.storage_history import StorageHistoryReads
from eohub.adapters.accounting_db.store_executors import SeparateWriter, StoreExecutors, run_on
from eohub.adapters.accounting_db.usage import read_usage
from eohub.domain.accounting.events import Event, EventError, parse_batch
from eohub.domain.accounting.ledger import Resources, Usage
from eohub.domain.accounting.periods import Allocation, PeriodKind
from eohub.domain.accounting.quota import (
    WHOLE_GROUP,
    Decision,
    Limits,
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
from eohub.domain.accounting.standings import (
    Stored,
    applicable_quotas,
    standings_of,
    tally_open_sessions,
    totals_owners,
)
from eohub.domain.accounting.storage_quota import (
    DEFAULT_STORAGE_POLICY,
    DEFAULT_STORAGE_SAMPLE_MAX_AGE,
    StoragePolicy,
)

T = TypeVar("T")

# Writes after which this process forgets the groups it holds for quota checks.
CHANGES_GROUPS = frozenset({"put_group"})
# Writes that count storage samples: the writer process's store has no max age of its own.
COUNTS_STORAGE = frozenset({"put_group", "add_storage_samples"})


def utcnow() -> datetime:
    """Now, in UTC; a module-level function so tests can travel in time."""
    return datetime.now(UTC)


class UnknownGroupError(LookupError):
    """The group is not defined in the accounting service."""


class AccountingStore(StorageHistoryReads, storage.StorageWrites):
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
    storage_sample_max_age
        How long a storage sample counts toward its group's storage (0: for ever).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        group_cache_seconds: float = 10.0,
        writer_process: SeparateWriter | None = None,
        storage_sample_max_age: timedelta = DEFAULT_STORAGE_SAMPLE_MAX_AGE,
    ) -> None:
        self.engine = engine
        self.storage_sample_max_age = storage_sample_max_age
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
        if getattr(call, "__name__", "") in COUNTS_STORAGE:
            kwargs.setdefault("sample_max_age", self.storage_sample_max_age)
        try:
            return await self._executors.write(self, call, args, kwargs)
        finally:
            if getattr(call, "__name__", "") in CHANGES_GROUPS:
                self._group_cache.clear()  # this process's quota checks must see it now

    async def read(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)`` (store reads, or a page built from them) on a reader."""
        return await run_on(self._executors.readers, call, args, kwargs)

    async def quota_check(
        self, user: str, group_name: str, request: Resources, storage: StoragePolicy | None = None
    ) -> Decision:
        """:meth:`check_quota` on the quota threads, never queued behind other work."""
        return await run_on(
            self._executors.quota, self.check_quota, (user, group_name, request, storage), {}
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
        sample_max_age: timedelta | None = None,
    ) -> bool:
        """Create or update a group, its PIs and its quota rows in one transaction.

        ``sample_max_age``: how long storage samples count (None: this store's setting).
        """
        max_age = self.storage_sample_max_age if sample_max_age is None else sample_max_age
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
                group_queries.put_quota(
                    connection, name, user, limits, now=self.clock(), max_age=max_age
                )
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
        applies = applicable_quotas(user, group.quotas)
        allocation = group.allocation
        window_keys = {
            "group": group.name,
            "users": list(totals_owners(user)),
            "kind": allocation.kind.value,
            "buckets": allocation.bucket_starts(now),
        }
        closed = {
            who: Usage(int(cpu or 0), int(mem or 0), int(gpu or 0))
            for who, cpu, mem, gpu in queries.window_totals(connection, window_keys)
        }
        open_sessions = (
            (who, Resources(mcores, mem_bytes, gpus), started)
            for who, mcores, mem_bytes, gpus, started in connection.execute(
                queries.OPEN_IN_GROUP, {"group": group.name}
            )
        )
        group_tally, user_tally = tally_open_sessions(
            user,
            open_sessions,
            now,
            allocation.window(now),
            group_used=closed.get(WHOLE_GROUP, Usage()),
            user_used=closed.get(user, Usage()),
        )
        stored = (
            storage.stored(connection, group.name, now=now, max_age=self.storage_sample_max_age)
            if applies.counts_storage
            else Stored()
        )
        return standings_of(
            user, group.name, applies, group=group_tally, member=user_tally, stored=stored
        )

    def check_quota(
        self, user: str, group_name: str, request: Resources, storage: StoragePolicy | None = None
    ) -> Decision:
        """Allow or deny ``request`` for ``user`` charged to ``group_name``, with the reason.

        Two prepared statements on one connection (the group's running totals, its open
        sessions) and the group's quota rows from a short cache: the cost does not grow
        with the sessions recorded. A connection found dead is retried once on a fresh one.
        ``storage``: the service's storage grace and warning fraction (None: defaults).
        """
        try:
            return self._check_quota(user, group_name, request, storage)
        except DBAPIError as e:
            if not e.connection_invalidated:
                raise
            return self._check_quota(user, group_name, request, storage)

    def _check_quota(
        self, user: str, group_name: str, request: Resources, storage: StoragePolicy | None
    ) -> Decision:
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
        policy = storage or DEFAULT_STORAGE_POLICY
        return decide(
            request,
            standings,
            group.display_name,
            now=now,
            storage_grace=policy.grace,
            storage_warning_fraction=policy.warn_fraction,
        )

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
        stopped_by_someone: bool = False,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[SessionRecord]:
        """Newest first, ``limit`` at a time; page on with the last record's id.

        ``stopped_by_someone`` keeps only the closed sessions that a person stopped from
        the pages (an open one with a stop asked for is still running).
        """
        query = select(Session).order_by(Session.id.desc()).limit(limit)
        if users is not None and groups is not None:
            query = query.where(or_(Session.user.in_(users), Session.group.in_(groups)))
        elif users is not None:
            query = query.where(Session.user.in_(users))
        elif groups is not None:
            query = query.where(Session.group.in_(groups))
        if open_only:
            query = query.where(Session.stopped_at.is_(None))
        if stopped_by_someone:
            query = query.where(Session.stopped_by.is_not(None), Session.stopped_at.is_not(None))
        if before_id is not None:
            query = query.where(Session.id < before_id)
        with self.engine.connect() as connection:
            return [queries.record(r) for r in connection.execute(query)]

    def session_id_bounds(
        self, start: datetime, end: datetime, *, group: str | None = None, ended: bool = False
    ) -> tuple[int, int] | None:
        """The lowest and highest id of the sessions :meth:`iter_session_rows` would read."""
        with self.engine.connect() as connection:
            return session_rows.id_bounds(connection, start, end, group, ended)

    def count_sessions(
        self, start: datetime, end: datetime, *, group: str | None = None, ended: bool = False
    ) -> int:
        with self.engine.connect() as connection:
            return session_rows.count(connection, start, end, group, ended)

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
        streamed as plain tuples with naive UTC times (see :func:`.session_rows.stream`).
        """
        with self.engine.connect() as connection:
            yield from session_rows.stream(connection, start, end, group, ended, ids, chunk)

    def open_sessions(self) -> list[tuple[SessionRecord, datetime | None]]:
        """Every open session, with the last time its server was seen running."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(Session).where(Session.stopped_at.is_(None)))
            return [(queries.record(r), r.last_seen_at) for r in rows]

    def close_session(self, session_id: int, stopped_at: datetime, reason: str) -> bool:
        """Close an open session at ``stopped_at`` for ``reason`` (one of
        :data:`~eohub.domain.accounting.stop_reasons.STOP_REASONS`); False if it was
        closed already (the hub's stop came first: its reason stands)."""
        with self.engine.begin() as connection:
            return close_session(connection, session_id, stopped_at, reason)

    def request_stop(
        self, session_id: int, reason: str, requested_at: datetime, who: str | None = None
    ) -> bool:
        """Record, before asking the hub, why the service stops an open session's server
        (see :func:`.session_stops.request_stop`); False if the session is closed or unknown."""
        with self.engine.begin() as connection:
            return request_stop(connection, session_id, reason, requested_at, who)

    def withdraw_stop(self, session_id: int) -> bool:
        """Take back the stop the service recorded for an open session that is no longer
        due (see :func:`.session_stops.withdraw_stop`); whether anything changed."""
        with self.engine.begin() as connection:
            return withdraw_stop(connection, session_id)

    def session(self, session_id: int) -> SessionRecord | None:
        """One session by id, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(select(Session).where(Session.id == session_id)).first()
            return None if row is None else queries.record(row)

    def stop_by(self, session_id: int, who: str, requested_at: datetime) -> bool:
        """Record that ``who`` asked the hub to stop the session's server at
        ``requested_at`` (see :func:`record_stopped_by`); the session stays as it is."""
        with self.engine.begin() as connection:
            return record_stopped_by(connection, session_id, who, requested_at)

    def touch_sessions(self, session_ids: list[int], seen_at: datetime) -> None:
        with self.engine.begin() as connection:
            touch_sessions(connection, session_ids, seen_at)

    # -- metrics ------------------------------------------------------------------
    def open_session_count(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(Session).where(Session.stopped_at.is_(None))
                ).scalar_one()
            )


__all__ = ["AccountingStore", "StorageSample", "UnknownGroupError", "UsageRow", "utcnow"]
