"""Why each server stopped, and its limits, on every database: the stops the service
asks for (:meth:`AccountingStore.request_stop`), the hub's stop events that close them,
and migration 0005."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.models import Session
from eohub.adapters.accounting_db.schema import alembic_config
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation, PeriodKind
from eohub.domain.accounting.session_record import PI_STOP_WINDOW
from eohub.domain.accounting.stop_reasons import REQUESTED_REASONS
from tests.support.accounting import Clock, empty_database, fresh_store

CLOCK = Clock()
T0 = CLOCK.now - timedelta(hours=2)
MONTH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


@pytest.fixture
def store(database_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(database_url, Clock(CLOCK.now))
    s.put_group("climate", allocation=Allocation.parse("month"))
    yield s
    s.engine.dispose()


def start(store: AccountingStore, user: str = "alice", **limits: int) -> int:
    event = start_event_json(user=user, server="", started_at=T0, group="climate", cpu=1, **limits)
    store.ingest(parse_batch(event))
    (session,) = store.sessions(users={user})
    return session.id


def hub_stop(store: AccountingStore, at: datetime, reason: str, user: str = "alice") -> None:
    """The hub's own stop event, as its client delivers it."""
    event = stop_event_json(user=user, server="", started_at=T0, stopped_at=at, reason=reason)
    store.ingest(parse_batch(event))


def end_reason(store: AccountingStore, session_id: int) -> str | None:
    record = store.session(session_id)
    assert record is not None
    return record.end_reason


def core_hours(store: AccountingStore) -> Fraction:
    rows = store.usage(PeriodKind.MONTH, *MONTH)
    return sum((r.usage.core_hours for r in rows), Fraction(0))


# -- request_stop ------------------------------------------------------------------------


def test_a_request_is_recorded_on_the_open_session(store: AccountingStore) -> None:
    sid = start(store)
    asked = CLOCK.now
    assert store.request_stop(sid, "idle", asked)
    record = store.session(sid)
    assert record is not None
    assert (record.stopped_at, record.stop_reason, record.stop_requested_at) == (
        None,
        "idle",
        asked,
    )
    assert record.stopped_by is None  # the service asked, not a person
    # A retry moves the request on (and may change its reason).
    later = asked + timedelta(minutes=1)
    assert store.request_stop(sid, "max_duration", later)
    again = store.session(sid)
    assert again is not None
    assert (again.stop_reason, again.stop_requested_at) == ("max_duration", later)


def test_a_persons_request_names_them_once(store: AccountingStore) -> None:
    sid = start(store)
    assert store.request_stop(sid, "admin", CLOCK.now, who="carol")
    assert store.request_stop(sid, "admin", CLOCK.now, who="root")
    record = store.session(sid)
    assert record is not None
    assert (record.stop_reason, record.stopped_by, record.stop_asked_by) == (
        "admin",
        "carol",
        "carol",
    )


def test_no_request_for_a_closed_or_unknown_session(store: AccountingStore) -> None:
    sid = start(store)
    hub_stop(store, CLOCK.now - timedelta(seconds=10), "user")
    assert not store.request_stop(sid, "idle", CLOCK.now)
    record = store.session(sid)
    assert record is not None
    assert (record.stop_reason, record.end_reason) == (None, "user")
    assert not store.request_stop(999, "idle", CLOCK.now)


@pytest.mark.parametrize("reason", ["user", "failed", "reconcile", "quota", "bored"])
def test_only_the_services_own_reasons_may_be_requested(
    store: AccountingStore, reason: str
) -> None:
    assert reason not in REQUESTED_REASONS
    sid = start(store)
    with pytest.raises(ValueError, match="must be one of"):
        store.request_stop(sid, reason, CLOCK.now)


# -- the stop that follows ---------------------------------------------------------------


@pytest.mark.parametrize("sent", ["admin", "stopped", "idle"])
def test_the_hubs_stop_after_a_requested_idle_stop_is_idle(
    store: AccountingStore, sent: str
) -> None:
    sid = start(store, idle_timeout=600)
    asked = CLOCK.now - timedelta(seconds=30)
    assert store.request_stop(sid, "idle", asked)
    hub_stop(store, asked + timedelta(seconds=3), sent)
    assert end_reason(store, sid) == "idle"


def test_enforcements_close_then_the_hubs_stop_is_idle_counted_once(
    store: AccountingStore,
) -> None:
    sid = start(store, idle_timeout=600)
    asked = CLOCK.now - timedelta(seconds=30)
    store.request_stop(sid, "idle", asked)
    # The server is gone: enforcement closes the session itself...
    assert store.close_session(sid, asked + timedelta(seconds=5), "idle")
    charged = core_hours(store)
    assert charged == Fraction(2 * 3600 - 25, 3600)
    # ...then the hub's own stop arrives: a duplicate, which changes nothing.
    event = stop_event_json(
        user="alice",
        server="",
        started_at=T0,
        stopped_at=asked + timedelta(seconds=2),
        reason="admin",
    )
    result = store.ingest(parse_batch(event))
    assert (result.accepted, result.duplicates, result.corrected) == (0, 1, 0)
    assert end_reason(store, sid) == "idle"
    assert core_hours(store) == charged
    # Enforcement's close after the hub's: nothing to do.
    assert not store.close_session(sid, CLOCK.now, "idle")


def test_the_hubs_stop_first_then_enforcements_close_changes_nothing(
    store: AccountingStore,
) -> None:
    sid = start(store, max_duration=7200)
    asked = CLOCK.now - timedelta(seconds=30)
    store.request_stop(sid, "max_duration", asked)
    hub_stop(store, asked + timedelta(seconds=1), "admin")
    assert not store.close_session(sid, CLOCK.now, "max_duration")
    assert end_reason(store, sid) == "max_duration"
    assert core_hours(store) == Fraction(2 * 3600 - 29, 3600)


def test_a_failure_stays_a_failure(store: AccountingStore) -> None:
    sid = start(store)
    store.request_stop(sid, "budget", CLOCK.now - timedelta(seconds=30))
    hub_stop(store, CLOCK.now - timedelta(seconds=29), "failed")
    assert end_reason(store, sid) == "failed"


def test_a_request_the_hub_never_carried_out_does_not_name_a_later_stop(
    store: AccountingStore,
) -> None:
    sid = start(store)
    asked = T0 + timedelta(minutes=10)
    store.request_stop(sid, "idle", asked)
    hub_stop(store, asked + PI_STOP_WINDOW + timedelta(seconds=1), "user")
    record = store.session(sid)
    assert record is not None
    assert (record.end_reason, record.stop_reason, record.stop_requested_at) == (
        "user",
        None,
        None,
    )


def test_the_hubs_stop_replacing_reconciles_estimate_keeps_the_reason_asked_for(
    store: AccountingStore,
) -> None:
    sid = start(store, max_duration=3600)
    asked = CLOCK.now - timedelta(minutes=5)
    store.request_stop(sid, "max_duration", asked)
    # The hub was restarting: reconcile closed the session at the last time it saw it.
    assert store.close_session(sid, asked - timedelta(seconds=40), "reconcile")
    assert end_reason(store, sid) == "reconcile"
    real = asked + timedelta(seconds=2)
    hub_stop(store, real, "admin")
    record = store.session(sid)
    assert record is not None
    assert (record.stopped_at, record.end_reason) == (real, "max_duration")
    assert core_hours(store) == Fraction(int((real - T0).total_seconds()), 3600)


@pytest.mark.parametrize(
    ("sent", "kept"), [("idle", "idle"), ("culled", "idle"), ("user", "user")]
)
def test_a_stop_before_its_start_keeps_its_reason(
    store: AccountingStore, sent: str, kept: str
) -> None:
    hub_stop(store, T0 + timedelta(hours=1), sent, user="bob")  # held for its start
    assert store.sessions(users={"bob"}) == []
    sid = start(store, "bob", idle_timeout=60)
    record = store.session(sid)
    assert record is not None
    assert (record.stopped_at, record.end_reason, record.idle_timeout) == (
        T0 + timedelta(hours=1),
        kept,
        60,
    )


def test_a_stop_and_its_start_in_one_batch_keep_the_reason(store: AccountingStore) -> None:
    stop = stop_event_json(
        user="dan", server="", started_at=T0, stopped_at=T0 + timedelta(hours=1), reason="budget"
    )
    begin = start_event_json(user="dan", server="", started_at=T0, group="climate", cpu=1)
    store.ingest(parse_batch({"events": [stop, begin]}))
    (record,) = store.sessions(users={"dan"})
    assert record.end_reason == "budget"


def test_the_sessions_limits_are_kept_and_exported(store: AccountingStore) -> None:
    both = start(store, idle_timeout=1800, max_duration=86_400)
    none = start(store, "bob")
    for sid, limits in ((both, (1800, 86_400)), (none, (None, None))):
        record = store.session(sid)
        assert record is not None
        assert (record.idle_timeout, record.max_duration) == limits
    rows = {
        r.id: (r.idle_timeout, r.max_duration)
        for r in store.iter_session_rows(T0, T0 + timedelta(seconds=1))
    }
    assert rows == {both: (1800, 86_400), none: (None, None)}


# -- migration 0005 ----------------------------------------------------------------------

LEGACY_ROWS = [  # user, end_reason at 0004, end_reason at 0005
    ("a", "quota", "budget"),
    ("b", "reconciled", "reconcile"),
    ("c", "culled", "idle"),
    ("d", "stopped", "stopped"),
    ("e", "failed", "failed"),
    ("f", "unknown", "unknown"),
    ("g", None, None),
]
_SESSIONS = sa.table(
    "sessions",
    *(
        sa.column(name)
        for name in (
            "user",
            "server",
            "group",
            "profile",
            "image",
            "millicores",
            "memory_bytes",
            "gpus",
            "started_at",
            "stopped_at",
            "end_reason",
        )
    ),
)
_PENDING = sa.table(
    "pending_stops",
    *(
        sa.column(name)
        for name in ("key", "user", "server", "started_at", "stopped_at", "reason", "received_at")
    ),
)
_GROUPS = sa.table(
    "groups", *(sa.column(n) for n in ("name", "display_name", "allocation", "created_at"))
)


def _legacy_ledger(connection: sa.Connection) -> None:
    """Rows as eohub before 0005 wrote them."""
    naive = T0.replace(tzinfo=None)
    stop = naive + timedelta(hours=1)
    connection.execute(
        _GROUPS.insert().values(
            name="climate", display_name="Climate", allocation="month", created_at=naive
        )
    )
    connection.execute(
        _SESSIONS.insert(),
        [
            {
                "user": user,
                "server": "",
                "group": "climate",
                "profile": "",
                "image": "",
                "millicores": 1000,
                "memory_bytes": 0,
                "gpus": 0,
                "started_at": naive,
                "stopped_at": None if reason is None else stop,
                "end_reason": reason,
            }
            for user, reason, _ in LEGACY_ROWS
        ],
    )
    connection.execute(
        _PENDING.insert(),
        [
            {
                "key": f"stop:{reason}",
                "user": "z",
                "server": reason,
                "started_at": naive,
                "stopped_at": stop,
                "reason": reason,
                "received_at": naive,
            }
            for reason in ("culled", "quota", "stopped")
        ],
    )


def _reasons(engine: sa.Engine) -> tuple[dict[str, str | None], dict[str, str]]:
    with engine.connect() as connection:
        sessions = dict(
            connection.execute(sa.select(_SESSIONS.c.user, _SESSIONS.c.end_reason)).all()
        )
        pending = dict(connection.execute(sa.select(_PENDING.c.server, _PENDING.c.reason)).all())
    return sessions, pending


def test_migration_0005_renames_the_reasons_and_adds_the_columns(database_url: str) -> None:
    engine = empty_database(database_url)
    config = alembic_config(engine)
    added = {"idle_timeout", "max_duration", "stop_reason"}
    command.upgrade(config, "0004")
    with engine.begin() as connection:
        _legacy_ledger(connection)
    before = _reasons(engine)
    assert not added & {c["name"] for c in inspect(engine).get_columns("sessions")}

    command.upgrade(config, "0005")
    columns = {c["name"]: c for c in inspect(engine).get_columns("sessions")}
    assert all(columns[name]["nullable"] for name in added)
    sessions, pending = _reasons(engine)
    assert sessions == {user: new for user, _, new in LEGACY_ROWS}
    assert pending == {"culled": "idle", "quota": "budget", "stopped": "stopped"}
    with engine.connect() as connection:
        limits = connection.execute(
            sa.select(Session.idle_timeout, Session.max_duration, Session.stop_reason).distinct()
        ).all()
    assert [tuple(r) for r in limits] == [(None, None, None)]

    command.downgrade(config, "0004")
    assert not added & {c["name"] for c in inspect(engine).get_columns("sessions")}
    assert _reasons(engine) == before
    engine.dispose()


def test_downgrading_0005_keeps_every_session_and_event(database_url: str) -> None:
    store = fresh_store(database_url, Clock(CLOCK.now))
    store.put_group("climate", allocation=Allocation.parse("month"))
    sid = start(store, idle_timeout=60)
    start(store, "bob")
    store.request_stop(sid, "idle", CLOCK.now)
    hub_stop(store, CLOCK.now, "admin")
    hub_stop(store, CLOCK.now, "user", user="bob")

    def counts() -> tuple[int, int]:
        with store.engine.connect() as connection:
            return (
                connection.scalar(sa.text("SELECT COUNT(*) FROM sessions")) or 0,
                connection.scalar(sa.text("SELECT COUNT(*) FROM events")) or 0,
            )

    assert counts() == (2, 4)
    config = alembic_config(store.engine)
    command.downgrade(config, "0004")
    assert counts() == (2, 4)
    assert _reasons(store.engine)[0] == {"alice": "culled", "bob": "user"}
    command.upgrade(config, "head")
    assert counts() == (2, 4)
    assert _reasons(store.engine)[0] == {"alice": "idle", "bob": "user"}
    store.engine.dispose()
