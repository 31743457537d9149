"""Stops the service and people ask for, and the closes the service makes itself.

The hub's own stop events go through :mod:`.ingest`; these are the other writes that
stop a session: the reconcile loop's and enforcement's closes, the reasons the service
records before it asks the hub to stop a server (and takes back when the stop is no
longer due), and the names of people who asked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, select, update

from eohub.adapters.accounting_db.models import Session
from eohub.adapters.accounting_db.queries import chunks
from eohub.adapters.accounting_db.totals import TotalsDelta, apply_totals
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.session_record import stop_was_requested, stopped_too_late
from eohub.domain.accounting.stop_reasons import ADMIN, REQUESTED_REASONS, STOPPED, UNKNOWN


def close_session(
    connection: Connection, session_id: int, stopped_at: datetime, reason: str
) -> bool:
    """Close an open session with ``reason`` (the reconcile loop, enforcement's stops);
    False if it was closed already."""
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
    drop_late_attributions(connection, [session_id])
    return True


def drop_late_attributions(connection: Connection, session_ids: list[int]) -> None:
    """Forget who asked for the stop of these just-closed sessions, and why, where the
    server stopped too long after the request for it to be theirs (see
    :func:`~eohub.domain.accounting.session_record.stopped_too_late`)."""
    late: list[int] = []
    for chunk in chunks(session_ids):
        rows = connection.execute(
            select(Session.id, Session.stop_requested_at, Session.stopped_at).where(
                Session.id.in_(chunk), Session.stop_requested_at.is_not(None)
            )
        )
        late.extend(
            r.id
            for r in rows
            if r.stopped_at is not None and stopped_too_late(r.stop_requested_at, r.stopped_at)
        )
    for chunk in chunks(late):
        connection.execute(
            update(Session)
            .where(Session.id.in_(chunk))
            .values(stopped_by=None, stop_requested_at=None, stop_reason=None)
        )


def request_stop(
    connection: Connection,
    session_id: int,
    reason: str,
    requested_at: datetime,
    who: str | None = None,
) -> bool:
    """The accounting service is about to ask the hub, at ``requested_at``, to stop the
    server of an open session, for ``reason`` (one of
    :data:`~eohub.domain.accounting.stop_reasons.REQUESTED_REASONS`); ``who`` is the
    person who asked, if one did. False if the session is closed, or there is none.

    The reason is recorded on the session, and becomes its end reason when the hub's
    stop (or enforcement's own close) comes in time. A request made again (a retry)
    moves ``stop_requested_at`` on and replaces the reason; a name already recorded
    stays.
    """
    if reason not in REQUESTED_REASONS:
        raise ValueError(
            f"a requested stop's reason must be one of {sorted(REQUESTED_REASONS)}, not {reason!r}"
        )
    row = connection.execute(
        select(Session.stopped_by).where(Session.id == session_id, Session.stopped_at.is_(None))
    ).first()
    if row is None:
        return False
    values: dict[str, Any] = {"stop_reason": reason, "stop_requested_at": requested_at}
    if who is not None and row.stopped_by is None:
        values["stopped_by"] = who
    connection.execute(update(Session).where(Session.id == session_id).values(**values))
    return True


def withdraw_stop(connection: Connection, session_id: int) -> bool:
    """Take back the stop the service recorded (:func:`request_stop`) for an open
    session, once it is no longer due (the user became active again, the budget has
    room again): the session no longer waits for that stop, and a later stop is not
    recorded for its reason. False if nothing changed: the session is closed, unknown,
    or has no such request.

    A person's name (``stopped_by``) stays, and so does ``stop_requested_at`` with it:
    the name counts only for a stop that comes in time after a request
    (:func:`drop_late_attributions`), and without the time it would count for any.
    """
    changed = connection.execute(
        update(Session)
        .where(
            Session.id == session_id,
            Session.stopped_at.is_(None),
            Session.stop_reason.is_not(None),
        )
        .values(
            stop_reason=None,
            stop_requested_at=case(
                (Session.stopped_by.is_(None), None), else_=Session.stop_requested_at
            ),
        )
    )
    return bool(changed.rowcount)


def record_stopped_by(
    connection: Connection, session_id: int, who: str, requested_at: datetime
) -> bool:
    """``who`` (a PI, an admin) asked the hub, at ``requested_at``, to stop the session's
    server, and the hub accepted: name them on the session. False if there is no such
    session.

    The session is not closed here: the hub's own stop event closes it with the real
    stop time (or reconcile does, if that event never comes), and a close long after the
    request drops the name again (:func:`drop_late_attributions`). If the hub's stop
    event came first, the session only gains the name, when its stop fits the request,
    and a stop the hub could not attribute (``stopped``, ``unknown``) becomes ``admin``.
    A name already recorded stays.
    """
    row = connection.execute(
        select(Session.stopped_at, Session.stopped_by, Session.end_reason).where(
            Session.id == session_id
        )
    ).first()
    if row is None:
        return False
    if row.stopped_by is not None:
        return True
    if row.stopped_at is not None and not stop_was_requested(requested_at, row.stopped_at):
        return True  # it stopped on its own before the request: not theirs
    values: dict[str, Any] = {"stopped_by": who, "stop_requested_at": requested_at}
    if row.stopped_at is not None and row.end_reason in (STOPPED, UNKNOWN):
        values["end_reason"] = ADMIN
    connection.execute(
        update(Session)
        .where(Session.id == session_id, Session.stopped_by.is_(None))
        .values(**values)
    )
    return True


def touch_sessions(connection: Connection, session_ids: list[int], seen_at: datetime) -> None:
    """Record that these sessions' servers were seen running at ``seen_at``."""
    for chunk in chunks(session_ids):
        connection.execute(
            update(Session)
            .where(Session.id.in_(chunk), Session.stopped_at.is_(None))
            .values(last_seen_at=seen_at)
        )


__all__ = [
    "close_session",
    "drop_late_attributions",
    "record_stopped_by",
    "request_stop",
    "touch_sessions",
    "withdraw_stop",
]
