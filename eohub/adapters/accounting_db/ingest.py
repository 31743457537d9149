"""Applying accounting events: idempotent, all-or-nothing per batch.

A batch runs in one transaction. Keys already applied are skipped (and counted as
duplicates); a semantic error (an unknown group) raises
:class:`~eohub.domain.accounting.events.EventError` and rolls the whole batch back.
Which event replaces which is :mod:`eohub.domain.accounting.pairing`'s rule: a stop whose
start has not arrived is held in ``pending_stops`` and applied when the start comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from eohub.adapters.accounting_db import postgresql_batch
from eohub.adapters.accounting_db.models import Event, Group, PendingStop, Session
from eohub.adapters.accounting_db.totals import TotalsDelta, apply_totals
from eohub.domain.accounting.events import (
    Event as DomainEvent,
)
from eohub.domain.accounting.events import (
    EventError,
    SessionKey,
    StartEvent,
    StopEvent,
)
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.pairing import StopAction, start_is_duplicate, stop_action


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    corrected: int = 0
    held: int = 0  # stops kept until their start arrives (counted as accepted too)


@dataclass
class _Target:
    """A session a batch refers to: already stored (``id``) or inserted by this batch."""

    id: int | None
    user: str
    group: str
    resources: Resources
    started_at: datetime
    stopped_at: datetime | None
    end_reason: str | None
    row: dict[str, Any] | None = None  # the pending insert, for a new session


@dataclass
class _Writes:
    """What a batch writes once it is checked: new rows, closes and event keys."""

    sessions: dict[SessionKey, _Target]
    new_rows: list[dict[str, Any]]
    new_keys: list[SessionKey]
    updates: dict[int, dict[str, Any]]
    applied: list[tuple[str, str, SessionKey]]
    held: list[dict[str, Any]]  # new pending_stops rows
    paired: list[str]  # keys of stored pending stops now applied

    def event_rows(self) -> list[tuple[str, str, int]]:
        rows = []
        for key, kind, session in self.applied:
            session_id = self.sessions[session].id
            assert session_id is not None  # inserted before the events are written
            rows.append((key, kind, session_id))
        return rows


def _field(index: int | None, name: str) -> str:
    return name if index is None else f"events[{index}].{name}"


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
)


def _load_sessions(connection: Connection, keys: set[SessionKey]) -> dict[SessionKey, _Target]:
    """The stored sessions among ``keys``: looked up by start time (indexed), then
    matched on user and server here, which is far cheaper than an OR of conditions."""
    found: dict[SessionKey, _Target] = {}
    times = sorted({k.started_at for k in keys})
    if connection.dialect.name == "postgresql":
        chunks: list[Any] = [postgresql_batch.sessions_started_at(connection, times)]
    else:
        chunks = [
            connection.execute(
                select(*_SESSION_COLUMNS).where(Session.started_at.in_(times[i : i + 1000]))
            )
            for i in range(0, len(times), 1000)
        ]
    for rows in chunks:
        for r in rows:
            key = SessionKey(r.user, r.server, r.started_at)
            if key in keys:
                found[key] = _Target(
                    r.id,
                    r.user,
                    r.group,
                    Resources(r.millicores, r.memory_bytes, r.gpus),
                    r.started_at,
                    r.stopped_at,
                    r.end_reason,
                )
    return found


@dataclass(frozen=True)
class _Stop:
    """A stop to apply: from this batch, or held in ``pending_stops`` (``stored``)."""

    key: str
    session: SessionKey
    stopped_at: datetime
    reason: str
    stored: bool = False


def _load_pending(connection: Connection, keys: set[SessionKey]) -> dict[SessionKey, list[_Stop]]:
    """The held stops of the sessions ``keys``, in the order they arrived."""
    found: dict[SessionKey, list[_Stop]] = {}
    times = sorted({k.started_at for k in keys})
    for i in range(0, len(times), 1000):
        rows = connection.execute(
            select(PendingStop)
            .where(PendingStop.started_at.in_(times[i : i + 1000]))
            .order_by(PendingStop.id)
        )
        for r in rows:
            key = SessionKey(r.user, r.server, r.started_at)
            if key in keys:
                found.setdefault(key, []).append(
                    _Stop(r.key, key, r.stopped_at, r.reason, stored=True)
                )
    return found


class _Batch:
    """The in-memory state of one batch while its events are checked and paired."""

    def __init__(
        self,
        sessions: dict[SessionKey, _Target],
        pending: dict[SessionKey, list[_Stop]],
        now: datetime,
    ) -> None:
        self.sessions = sessions
        self.pending = pending
        self.now = now
        self.delta = TotalsDelta()
        self.writes = _Writes(sessions, [], [], {}, [], [], [])
        self.accepted = self.duplicates = self.corrected = 0

    def start(self, event: StartEvent) -> None:
        if start_is_duplicate(known=event.session in self.sessions):
            # The same session started twice under another key: the first one stands.
            self.duplicates += 1
            self.writes.applied.append((event.id, "start", event.session))
            return
        r = event.resources
        row = {
            "user": event.session.user,
            "server": event.session.server,
            "group": event.group,
            "profile": event.profile,
            "image": event.image,
            "millicores": r.millicores,
            "memory_bytes": r.memory_bytes,
            "gpus": r.gpus,
            "started_at": event.session.started_at,
            "stopped_at": None,
            "end_reason": None,
            "last_seen_at": event.session.started_at,
        }
        self.writes.new_rows.append(row)
        self.writes.new_keys.append(event.session)
        self.sessions[event.session] = _Target(
            None, event.session.user, event.group, r, event.session.started_at, None, None, row
        )
        self.writes.applied.append((event.id, "start", event.session))
        self.accepted += 1
        # Stops that came first are applied now, as if they had arrived after it.
        for held in self.pending.pop(event.session, []):
            if held.stored:
                self.writes.paired.append(held.key)
            self.stop(held, counted=False)

    def stop(self, stop: _Stop, counted: bool = True) -> None:
        target = self.sessions.get(stop.session)
        action = stop_action(
            known=target is not None,
            stopped_at=target.stopped_at if target else None,
            end_reason=target.end_reason if target else None,
            new_stop=stop.stopped_at,
        )
        if action is StopAction.HOLD:
            self.pending.setdefault(stop.session, []).append(stop)
            self.writes.held.append(
                {
                    "key": stop.key,
                    "user": stop.session.user,
                    "server": stop.session.server,
                    "started_at": stop.session.started_at,
                    "stopped_at": stop.stopped_at,
                    "reason": stop.reason,
                    "received_at": self.now,
                }
            )
            self.accepted += 1
            return
        assert target is not None
        self.writes.applied.append((stop.key, "stop", stop.session))
        if action is StopAction.DUPLICATE:
            self.duplicates += counted
            return
        if action is StopAction.REPLACE:
            # The reconcile loop closed it at the last time it was seen; the hub's own
            # stop is the better record, so it replaces the estimate.
            assert target.stopped_at is not None
            self.delta.add_session(
                target.group,
                target.user,
                target.resources,
                target.started_at,
                target.stopped_at,
                sign=-1,
            )
            self.corrected += 1
        self.delta.add_session(
            target.group, target.user, target.resources, target.started_at, stop.stopped_at
        )
        target.stopped_at, target.end_reason = stop.stopped_at, stop.reason
        closed = {
            "stopped_at": stop.stopped_at,
            "end_reason": stop.reason,
            "last_seen_at": stop.stopped_at,
        }
        if target.row is not None:
            target.row.update(closed)
        else:
            assert target.id is not None
            self.writes.updates[target.id] = closed
        self.accepted += counted


def _has_pending(connection: Connection) -> bool:
    # One cheap probe: the table is empty but for rare out-of-order stops.
    return connection.execute(select(PendingStop.id).limit(1)).first() is not None


def ingest_events(
    connection: Connection, events: list[DomainEvent], now: datetime, single: bool = False
) -> IngestResult:
    """Apply ``events`` in order inside the caller's transaction.

    A start and its stop in the same batch become one closed row; statements are
    executed once per batch with many parameter sets, never once per event.
    """
    postgresql = connection.dialect.name == "postgresql"
    keys = [e.id for e in events]
    pending_stored = _has_pending(connection)
    if postgresql:
        seen = postgresql_batch.known_keys(connection, keys)
    else:
        seen = set()
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            seen.update(connection.scalars(select(Event.key).where(Event.key.in_(chunk))))
    if pending_stored:
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            seen.update(
                connection.scalars(select(PendingStop.key).where(PendingStop.key.in_(chunk)))
            )
    fresh = [e for e in events if e.id not in seen]
    groups = {e.group for e in fresh if isinstance(e, StartEvent)}
    known = (
        set(connection.scalars(select(Group.name).where(Group.name.in_(groups))))
        if groups
        else set()
    )
    sessions = _load_sessions(connection, {e.session for e in fresh}) if fresh else {}
    starting = {e.session for e in fresh if isinstance(e, StartEvent)} - set(sessions)
    pending = _load_pending(connection, starting) if pending_stored and starting else {}
    batch = _Batch(sessions, pending, now)
    errors: dict[str, str] = {}
    for index, event in enumerate(events):
        if event.id in seen:
            batch.duplicates += 1
            continue
        seen.add(event.id)
        if isinstance(event, StartEvent):
            if event.group not in known:
                errors[_field(None if single else index, "group")] = (
                    f"unknown group {event.group!r}; an admin must define it first"
                )
                continue
            batch.start(event)
        else:
            assert isinstance(event, StopEvent)
            batch.stop(_Stop(event.id, event.session, event.stopped_at, event.reason))
    if errors:
        raise EventError(errors)
    writes = batch.writes
    if postgresql:
        _write_postgresql(connection, writes, now)
    else:
        _write_portable(connection, writes, now)
    held = _write_pending(connection, writes)
    apply_totals(connection, batch.delta.rows())
    return IngestResult(batch.accepted, batch.duplicates, batch.corrected, held)


def _write_pending(connection: Connection, w: _Writes) -> int:
    """Hold the stops still waiting for their start, forget those now applied; return
    how many are held."""
    # A stop held and paired within this batch is in both lists: it is never stored.
    paired_here = {key for key, kind, _ in w.applied if kind == "stop"}
    held = [row for row in w.held if row["key"] not in paired_here]
    if held:
        connection.execute(insert(PendingStop), held)
    for i in range(0, len(w.paired), 1000):
        connection.execute(delete(PendingStop).where(PendingStop.key.in_(w.paired[i : i + 1000])))
    return len(held)


def _write_postgresql(connection: Connection, w: _Writes, now: datetime) -> None:
    if w.new_rows:
        ids = postgresql_batch.insert_sessions(connection, w.new_rows)
        for key in w.new_keys:
            w.sessions[key].id = ids[key]
    if w.updates:
        postgresql_batch.close_sessions(connection, w.updates)
    if w.applied:
        postgresql_batch.insert_events(connection, w.event_rows(), now)


def _write_portable(connection: Connection, w: _Writes, now: datetime) -> None:
    if w.new_rows:
        # The new ids come back in the rows' order, in one round trip (multi-row
        # INSERT ... RETURNING), instead of being looked up again.
        ids = connection.scalars(
            insert(Session).returning(Session.id, sort_by_parameter_order=True), w.new_rows
        ).all()
        for key, session_id in zip(w.new_keys, ids, strict=True):
            w.sessions[key].id = session_id
    if w.updates:
        connection.execute(
            update(Session)
            .where(Session.id == bindparam("session_id"))
            .values(
                stopped_at=bindparam("stopped_at"),
                end_reason=bindparam("end_reason"),
                last_seen_at=bindparam("last_seen_at"),
            ),
            [{"session_id": sid, **values} for sid, values in w.updates.items()],
        )
    if w.applied:
        connection.execute(
            insert(Event),
            [
                {"key": key, "kind": kind, "session_id": session_id, "received_at": now}
                for key, kind, session_id in w.event_rows()
            ],
        )


def close_session(
    connection: Connection, session_id: int, stopped_at: datetime, reason: str
) -> bool:
    """Close an open session (the reconcile loop, quota stops); False if it was closed."""
    row = connection.execute(
        select(Session).where(Session.id == session_id, Session.stopped_at.is_(None))
    ).first()
    if row is None:
        return False
    stopped_at = max(stopped_at, row.started_at)
    connection.execute(
        update(Session)
        .where(Session.id == session_id)
        .values(stopped_at=stopped_at, end_reason=reason, last_seen_at=stopped_at)
    )
    delta = TotalsDelta()
    delta.add_session(
        row.group,
        row.user,
        Resources(row.millicores, row.memory_bytes, row.gpus),
        row.started_at,
        stopped_at,
    )
    apply_totals(connection, delta.rows())
    return True


def touch_sessions(connection: Connection, session_ids: list[int], seen_at: datetime) -> None:
    """Record that these sessions' servers were seen running at ``seen_at``."""
    for i in range(0, len(session_ids), 1000):
        connection.execute(
            update(Session)
            .where(Session.id.in_(session_ids[i : i + 1000]), Session.stopped_at.is_(None))
            .values(last_seen_at=seen_at)
        )


__all__ = ["IngestResult", "close_session", "ingest_events", "touch_sessions"]
