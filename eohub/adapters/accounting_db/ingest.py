"""Applying accounting events: idempotent, all-or-nothing per batch.

A batch runs in one transaction. This module reads what the batch needs (the keys
applied before, the groups and sessions it names, the stops held for the sessions it
starts), asks :func:`~eohub.domain.accounting.ingest_rules.plan_ingest` which event
replaces which, and writes the plan. A semantic error (an unknown group) raises
:class:`~eohub.domain.accounting.events.EventError` before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, select, update

import eohub.adapters.accounting_db.postgresql_batch as postgresql_batch
from eohub.adapters.accounting_db.models import Event, Group, PendingStop, Session
from eohub.adapters.accounting_db.queries import chunks
from eohub.adapters.accounting_db.session_stops import drop_late_attributions
from eohub.adapters.accounting_db.totals import TotalsDelta, apply_totals
from eohub.domain.accounting.events import Event as DomainEvent
from eohub.domain.accounting.events import SessionKey, StartEvent
from eohub.domain.accounting.ingest_rules import (
    HeldStop,
    IngestPlan,
    SessionState,
    plan_ingest,
)
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.stop_reasons import normalise


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    corrected: int = 0
    held: int = 0  # stops kept until their start arrives (counted as accepted too)
    # duplicate starts that gave their session the limits it lacked (counted duplicates)
    limited: int = 0


_SESSION_COLUMNS = (
    Session.id,
    Session.user,
    Session.server,
    Session.started_at,
    Session.group,
    Session.millicores,
    Session.memory_bytes,
    Session.gpus,
    Session.stopped_at,
    Session.end_reason,
    Session.stop_reason,
    Session.stopped_by,
    Session.stop_requested_at,
    Session.idle_timeout,
    Session.max_duration,
)


def _load_sessions(
    connection: Connection, keys: set[SessionKey]
) -> dict[SessionKey, SessionState]:
    """The stored sessions among ``keys``: looked up by start time (indexed), then
    matched on user and server here, which is far cheaper than an OR of conditions."""
    found: dict[SessionKey, SessionState] = {}
    times = sorted({k.started_at for k in keys})
    if connection.dialect.name == "postgresql":
        results: Iterable[Iterable[Row[Any]]] = [
            postgresql_batch.sessions_started_at(connection, times)
        ]
    else:
        results = (
            connection.execute(select(*_SESSION_COLUMNS).where(Session.started_at.in_(chunk)))
            for chunk in chunks(times)
        )
    for rows in results:
        for r in rows:
            key = SessionKey(r.user, r.server, r.started_at)
            if key in keys:
                found[key] = SessionState(
                    key,
                    r.group,
                    Resources(r.millicores, r.memory_bytes, r.gpus),
                    r.stopped_at,
                    r.end_reason,
                    id=r.id,
                    stop_reason=r.stop_reason,
                    stopped_by=r.stopped_by,
                    stop_requested_at=r.stop_requested_at,
                    idle_timeout=r.idle_timeout,
                    max_duration=r.max_duration,
                )
    return found


def _load_pending(
    connection: Connection, keys: set[SessionKey]
) -> dict[SessionKey, list[HeldStop]]:
    """The held stops of the sessions ``keys``, in the order they arrived."""
    found: dict[SessionKey, list[HeldStop]] = {}
    for chunk in chunks(sorted({k.started_at for k in keys})):
        rows = connection.execute(
            select(PendingStop).where(PendingStop.started_at.in_(chunk)).order_by(PendingStop.id)
        )
        for r in rows:
            key = SessionKey(r.user, r.server, r.started_at)
            if key in keys:
                found.setdefault(key, []).append(
                    HeldStop(r.key, key, r.stopped_at, normalise(r.reason), stored=True)
                )
    return found


def _has_pending(connection: Connection) -> bool:
    # One cheap probe: the table is empty but for rare out-of-order stops.
    return connection.execute(select(PendingStop.id).limit(1)).first() is not None


def _seen_keys(connection: Connection, keys: list[str], pending_stored: bool) -> set[str]:
    """The keys among ``keys`` applied before, or held waiting for their start."""
    if connection.dialect.name == "postgresql":
        seen = postgresql_batch.known_keys(connection, keys)
    else:
        seen = set()
        for chunk in chunks(keys):
            seen.update(connection.scalars(select(Event.key).where(Event.key.in_(chunk))))
    if pending_stored:
        for chunk in chunks(keys):
            seen.update(
                connection.scalars(select(PendingStop.key).where(PendingStop.key.in_(chunk)))
            )
    return seen


def _known_groups(connection: Connection, names: set[str]) -> set[str]:
    if not names:
        return set()
    return set(connection.scalars(select(Group.name).where(Group.name.in_(names))))


def ingest_events(
    connection: Connection, events: list[DomainEvent], now: datetime, single: bool = False
) -> IngestResult:
    """Apply ``events`` in order inside the caller's transaction.

    A start and its stop in the same batch become one closed row; statements are
    executed once per batch with many parameter sets, never once per event.
    """
    pending_stored = _has_pending(connection)
    seen = _seen_keys(connection, [e.id for e in events], pending_stored)
    fresh = [e for e in events if e.id not in seen]
    starts = [e for e in fresh if isinstance(e, StartEvent)]
    # A start seen before may still bring the limits its session lacks (the reconcile
    # loop opened it under the same key): its session is read too.
    limiting = {
        e.session
        for e in events
        if isinstance(e, StartEvent) and (e.idle_timeout is not None or e.max_duration is not None)
    }
    wanted = {e.session for e in fresh} | limiting
    sessions = _load_sessions(connection, wanted) if wanted else {}
    starting = {e.session for e in starts} - set(sessions)
    plan = plan_ingest(
        events,
        seen=seen,
        known_groups=_known_groups(connection, {e.group for e in starts}),
        sessions=sessions,
        pending=_load_pending(connection, starting) if pending_stored and starting else {},
        single=single,
    )
    if connection.dialect.name == "postgresql":
        _write_postgresql(connection, plan, now)
    else:
        _write_portable(connection, plan, now)
    _write_pending(connection, plan, now)
    delta = TotalsDelta()
    for charge in plan.charges:
        delta.add_session(*charge)
    apply_totals(connection, delta.rows())
    return IngestResult(
        plan.accepted, plan.duplicates, plan.corrected, len(plan.held), len(plan.limited)
    )


def _session_row(state: SessionState) -> dict[str, Any]:
    start = state.start
    assert start is not None  # a session this batch started
    key, r = state.key, state.resources
    return {
        "user": key.user,
        "server": key.server,
        "group": state.group,
        "profile": start.profile,
        "profile_name": start.profile_name or None,
        "image": start.image,
        "millicores": r.millicores,
        "memory_bytes": r.memory_bytes,
        "gpus": r.gpus,
        "started_at": key.started_at,
        "stopped_at": state.stopped_at,
        "end_reason": state.end_reason,
        "last_seen_at": state.stopped_at or key.started_at,
        "idle_timeout": state.idle_timeout,
        "max_duration": state.max_duration,
    }


def _close_values(state: SessionState) -> dict[str, Any]:
    return {
        "stopped_at": state.stopped_at,
        "end_reason": state.end_reason,
        "last_seen_at": state.stopped_at,
    }


def _limit_values(state: SessionState) -> dict[str, Any]:
    return {"idle_timeout": state.idle_timeout, "max_duration": state.max_duration}


def _event_rows(plan: IngestPlan) -> list[tuple[str, str, int]]:
    rows = []
    for key, kind, state in plan.applied:
        assert state.id is not None  # inserted before the events are written
        rows.append((key, kind, state.id))
    return rows


def _write_pending(connection: Connection, plan: IngestPlan, now: datetime) -> None:
    """Hold the stops still waiting for their start, forget those now applied."""
    if plan.held:
        connection.execute(
            insert(PendingStop),
            [
                {
                    "key": stop.key,
                    "user": stop.session.user,
                    "server": stop.session.server,
                    "started_at": stop.session.started_at,
                    "stopped_at": stop.stopped_at,
                    "reason": stop.reason,
                    "received_at": now,
                }
                for stop in plan.held
            ],
        )
    for chunk in chunks(plan.paired):
        connection.execute(delete(PendingStop).where(PendingStop.key.in_(chunk)))


def _write_postgresql(connection: Connection, plan: IngestPlan, now: datetime) -> None:
    if plan.started:
        ids = postgresql_batch.insert_sessions(connection, [_session_row(s) for s in plan.started])
        for state in plan.started:
            state.id = ids[state.key]
    if plan.closed:
        postgresql_batch.close_sessions(
            connection, {i: _close_values(s) for i, s in plan.closed.items()}
        )
        drop_late_attributions(connection, list(plan.closed))
    if plan.limited:
        postgresql_batch.fill_limits(
            connection, {i: _limit_values(s) for i, s in plan.limited.items()}
        )
    if plan.applied:
        postgresql_batch.insert_events(connection, _event_rows(plan), now)


def _write_portable(connection: Connection, plan: IngestPlan, now: datetime) -> None:
    if plan.started:
        # The new ids come back in the rows' order, in one round trip (multi-row
        # INSERT ... RETURNING), instead of being looked up again.
        ids = connection.scalars(
            insert(Session).returning(Session.id, sort_by_parameter_order=True),
            [_session_row(s) for s in plan.started],
        ).all()
        for state, session_id in zip(plan.started, ids, strict=True):
            state.id = session_id
    if plan.closed:
        connection.execute(
            update(Session)
            .where(Session.id == bindparam("session_id"))
            .values(
                stopped_at=bindparam("stopped_at"),
                end_reason=bindparam("end_reason"),
                last_seen_at=bindparam("last_seen_at"),
            ),
            [{"session_id": i, **_close_values(s)} for i, s in plan.closed.items()],
        )
        drop_late_attributions(connection, list(plan.closed))
    if plan.limited:
        # Only where the row still has none: the plan read it without a lock.
        connection.execute(
            update(Session)
            .where(
                Session.id == bindparam("session_id"),
                Session.idle_timeout.is_(None),
                Session.max_duration.is_(None),
            )
            .values(
                idle_timeout=bindparam("idle_timeout"), max_duration=bindparam("max_duration")
            ),
            [{"session_id": i, **_limit_values(s)} for i, s in sorted(plan.limited.items())],
        )
    if plan.applied:
        connection.execute(
            insert(Event),
            [
                {"key": key, "kind": kind, "session_id": session_id, "received_at": now}
                for key, kind, session_id in _event_rows(plan)
            ],
        )


__all__ = ["IngestResult", "ingest_events"]
