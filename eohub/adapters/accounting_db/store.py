"""The accounting store: the one object the service's handlers and loops talk to.

Every method is one short transaction. Methods are synchronous: the service calls them
on its event loop, as JupyterHub does with its own database, because each is a handful
of indexed queries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, and_, func, insert, or_, select

from eohub.adapters.accounting_db import groups as group_queries
from eohub.adapters.accounting_db.groups import EACH_MEMBER, WHOLE_GROUP, GroupInfo
from eohub.adapters.accounting_db.ingest import (
    IngestResult,
    close_session,
    ingest_events,
    touch_sessions,
)
from eohub.adapters.accounting_db.models import Session, UsageTotal
from eohub.adapters.accounting_db.models import StorageSample as StorageRow
from eohub.domain.accounting_events import Event
from eohub.domain.ledger import Resources, Usage, split_usage, usage_in_window
from eohub.domain.periods import Allocation, PeriodKind
from eohub.domain.quota import Decision, Limits, Running, Standing, budget_left, decide
from eohub.domain.session_record import SessionRecord, StorageSample, UsageRow


def utcnow() -> datetime:
    """Now, in UTC; a module-level function so tests can travel in time."""
    return datetime.now(UTC)


class UnknownGroupError(LookupError):
    """The group is not defined in the accounting service."""


def _record(row: Row[Any]) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user=row.user,
        server=row.server,
        group=row.group,
        resources=Resources(row.millicores, row.memory_bytes, row.gpus),
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        end_reason=row.end_reason,
        profile=row.profile,
        image=row.image,
    )


class AccountingStore:
    """Ledger storage over one SQLAlchemy engine.

    Parameters
    ----------
    engine
        From :func:`~eohub.adapters.accounting_db.schema.create_engine_for`, with the
        schema already ensured.
    clock
        Returns "now"; tests pass their own to travel in time.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    # -- events -------------------------------------------------------------------
    def ingest(self, events: list[Event], *, single: bool = False) -> IngestResult:
        """Apply a batch of events, all or nothing (see :mod:`.ingest`)."""
        with self.engine.begin() as connection:
            return ingest_events(connection, events, self.clock(), single=single)

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
        allocation = group.allocation
        window = allocation.window(now)
        buckets = allocation.bucket_starts(now)
        group_used, user_used = Usage(), Usage()
        group_running, user_running = [0, 0], [0, 0]
        storage = 0
        with self.engine.connect() as connection:
            totals = connection.execute(
                select(
                    UsageTotal.user,
                    func.sum(UsageTotal.cpu_mcore_ms),
                    func.sum(UsageTotal.mem_mib_ms),
                    func.sum(UsageTotal.gpu_ms),
                )
                .where(
                    UsageTotal.group == group.name,
                    UsageTotal.user.in_([WHOLE_GROUP, user]),
                    UsageTotal.kind == allocation.kind.value,
                    UsageTotal.period_start.in_(buckets),
                )
                .group_by(UsageTotal.user)
            )
            for who, cpu, mem, gpu in totals:
                used = Usage(int(cpu or 0), int(mem or 0), int(gpu or 0))
                if who == WHOLE_GROUP:
                    group_used = used
                else:
                    user_used = used
            open_rows = connection.execute(
                select(
                    Session.user,
                    Session.millicores,
                    Session.memory_bytes,
                    Session.gpus,
                    Session.started_at,
                ).where(Session.group == group.name, Session.stopped_at.is_(None))
            )
            for who, mcores, mem_bytes, gpus, started in open_rows:
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
        """Allow or deny ``request`` for ``user`` charged to ``group_name``, with the reason."""
        try:
            group = self.group(group_name)
        except UnknownGroupError:
            return Decision(
                False,
                f"The group {group_name!r} has no allocation in accounting; ask an admin.",
                budget_left([]),
            )
        return decide(request, self.standings(user, group, self.clock()))

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
        """Usage per period of ``kind`` in ``[start, end)``, open sessions up to now.

        Rows are per group (``user == ""``), or per user within each group when
        ``by_user`` is true or ``user`` is given.
        """
        now = self.clock()
        acc: dict[tuple[datetime, str, str], Usage] = defaultdict(Usage)
        with self.engine.connect() as connection:
            query = select(UsageTotal).where(
                UsageTotal.kind == kind.value,
                UsageTotal.period_start >= start,
                UsageTotal.period_start < end,
            )
            if groups is not None:
                query = query.where(UsageTotal.group.in_(groups))
            if user is not None:
                query = query.where(UsageTotal.user == user)
            elif not by_user:
                query = query.where(UsageTotal.user == WHOLE_GROUP)
            else:
                query = query.where(UsageTotal.user != WHOLE_GROUP)
            for t in connection.execute(query):
                acc[(t.period_start, t.group, t.user)] += Usage(
                    t.cpu_mcore_ms, t.mem_mib_ms, t.gpu_ms
                )
            open_query = select(Session).where(
                Session.stopped_at.is_(None), Session.started_at < end
            )
            if groups is not None:
                open_query = open_query.where(Session.group.in_(groups))
            if user is not None:
                open_query = open_query.where(Session.user == user)
            for s in connection.execute(open_query):
                who = s.user if (user is not None or by_user) else WHOLE_GROUP
                resources = Resources(s.millicores, s.memory_bytes, s.gpus)
                for period, piece in split_usage(
                    resources, max(s.started_at, start), min(now, end), kind
                ):
                    acc[(period, s.group, who)] += piece
        return [UsageRow(p, g, u, v) for (p, g, u), v in sorted(acc.items()) if v != Usage()]

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
            return [_record(r) for r in connection.execute(query)]

    def _range_query(self, start: datetime, end: datetime, group: str | None, ended: bool):  # type: ignore[no-untyped-def]
        column = Session.stopped_at if ended else Session.started_at
        query = select(Session).where(column >= start, column < end)
        if group is not None:
            query = query.where(Session.group == group)
        return query

    def count_sessions(
        self, start: datetime, end: datetime, *, group: str | None = None, ended: bool = False
    ) -> int:
        query = self._range_query(start, end, group, ended)
        with self.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            )

    def iter_sessions(
        self,
        start: datetime,
        end: datetime,
        *,
        group: str | None = None,
        ended: bool = False,
        chunk: int = 5000,
    ) -> Iterator[SessionRecord]:
        """Sessions started (or, with ``ended``, stopped) in ``[start, end)``, by id, streamed."""
        query = self._range_query(start, end, group, ended).order_by(Session.id)
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=chunk).execute(query)
            for row in result:
                yield _record(row)

    def open_sessions(self) -> list[tuple[SessionRecord, datetime | None]]:
        """Every open session, with the last time its server was seen running."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(Session).where(Session.stopped_at.is_(None)))
            return [(_record(r), r.last_seen_at) for r in rows]

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
