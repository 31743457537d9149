"""Migration 0004 on every database: who stopped a server from the pages
(``sessions.stopped_by``), and the environment's display name (``profile_name``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, inspect, select

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.models import Event, Session
from eohub.adapters.accounting_db.schema import alembic_config
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.session_record import PI_STOP_WINDOW
from tests.support.accounting import Clock, empty_database, fresh_store

CLOCK = Clock()
T0 = CLOCK.now - timedelta(hours=2)


@pytest.fixture
def store(database_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(database_url, Clock(CLOCK.now))
    s.put_group("climate", allocation=Allocation.parse("month"))
    yield s
    s.engine.dispose()


def start(store: AccountingStore, user: str = "alice") -> int:
    event = start_event_json(user=user, server="", started_at=T0, group="climate", cpu=2)
    store.ingest(parse_batch(event))
    (session,) = store.sessions(users={user})
    return session.id


def hub_stop(store: AccountingStore, at: datetime, user: str = "alice") -> None:
    """The hub's own stop event, as its client delivers it."""
    stop = stop_event_json(user=user, server="", started_at=T0, stopped_at=at)
    store.ingest(parse_batch(stop))


def test_a_persons_request_names_them_and_the_hubs_stop_closes_at_its_time(
    store: AccountingStore,
) -> None:
    sid = start(store)
    asked = CLOCK.now
    assert store.stop_by(sid, "carol", asked)
    record = store.session(sid)
    assert record is not None
    # Asking does not close the session: the hub's stop event does.
    assert (record.stopped_at, record.stopped_by, record.stop_requested_at) == (
        None,
        "carol",
        asked,
    )
    assert record.stop_asked_by == "carol"
    assert store.sessions(stopped_by_someone=True) == []  # still running
    # The hub's stop, delivered later, keeps its real time (after the request); the
    # person who asked makes it an admin's stop, whatever the hub could tell.
    real = asked + timedelta(seconds=4)
    hub_stop(store, real)
    closed = store.session(sid)
    assert closed is not None
    assert (closed.stopped_at, closed.end_reason, closed.stopped_by) == (real, "admin", "carol")
    assert closed.stop_asked_by is None
    assert [s.id for s in store.sessions(stopped_by_someone=True)] == [sid]


def test_the_hubs_stop_first_keeps_its_time_and_gains_who(store: AccountingStore) -> None:
    sid = start(store)
    asked = CLOCK.now - timedelta(seconds=5)
    hub_stop(store, asked + timedelta(seconds=1))  # the outbox was quicker than the page
    assert store.stop_by(sid, "root", asked)
    record = store.session(sid)
    assert record is not None
    assert (record.stopped_at, record.stopped_by) == (asked + timedelta(seconds=1), "root")
    assert record.end_reason == "admin"  # the hub sent "stopped": by whom, now known
    # A second person's request does not rewrite who stopped it.
    assert store.stop_by(sid, "carol", CLOCK.now)
    assert store.session(sid).stopped_by == "root"  # type: ignore[union-attr]


def test_a_stop_before_the_request_is_not_the_persons(store: AccountingStore) -> None:
    sid = start(store)
    hub_stop(store, CLOCK.now - timedelta(minutes=30))  # alice stopped it herself
    assert store.stop_by(sid, "carol", CLOCK.now)
    record = store.session(sid)
    assert record is not None
    assert (record.stopped_by, record.end_reason) == (None, "stopped")


def test_a_stop_long_after_the_request_drops_who_asked(store: AccountingStore) -> None:
    sid = start(store)
    asked = CLOCK.now - timedelta(hours=1)
    store.stop_by(sid, "carol", asked)  # the hub never finished that stop
    # alice stops it herself an hour later: the ledger must not say carol did.
    hub_stop(store, CLOCK.now)
    record = store.session(sid)
    assert record is not None
    assert (record.stopped_at, record.stopped_by, record.stop_requested_at) == (
        CLOCK.now,
        None,
        None,
    )
    assert record.end_reason == "stopped"  # not "admin": the request was not this stop
    assert store.sessions(stopped_by_someone=True) == []


@pytest.mark.parametrize(
    ("after", "kept"),
    [
        (PI_STOP_WINDOW - timedelta(seconds=1), True),
        (PI_STOP_WINDOW + timedelta(seconds=1), False),
        # reconcile closes at the last time it saw the server: a round before the request
        (-timedelta(seconds=90), True),
    ],
)
def test_reconciles_close_keeps_who_asked_only_within_the_window(
    store: AccountingStore, after: timedelta, kept: bool
) -> None:
    sid = start(store)
    asked = CLOCK.now - timedelta(hours=1)
    store.stop_by(sid, "carol", asked)
    # The hub's event never came; reconcile (or enforcement) closes the session.
    assert store.close_session(sid, asked + after, "reconcile")
    assert store.session(sid).stopped_by == ("carol" if kept else None)  # type: ignore[union-attr]


def test_the_environments_display_name_is_kept(store: AccountingStore) -> None:
    named = start_event_json(
        user="bob", server="lab", started_at=T0, group="climate", cpu=1, profile_name="Lab (GPU)"
    )
    plain = start_event_json(user="carl", server="", started_at=T0, group="climate", cpu=1)
    store.ingest(parse_batch({"events": [named, plain]}))
    (bob,) = store.sessions(users={"bob"})
    (carl,) = store.sessions(users={"carl"})
    assert (bob.profile_name, carl.profile_name) == ("Lab (GPU)", "")


def test_no_such_session(store: AccountingStore) -> None:
    assert store.session(999) is None
    assert not store.stop_by(999, "carol", CLOCK.now)


def test_migration_0004_adds_and_removes_the_column(database_url: str) -> None:
    engine = empty_database(database_url)
    config = alembic_config(engine)
    added = {"stopped_by", "stop_requested_at", "profile_name"}
    command.upgrade(config, "0003")
    assert not added & {c["name"] for c in inspect(engine).get_columns("sessions")}
    command.upgrade(config, "0004")
    columns = {c["name"]: c for c in inspect(engine).get_columns("sessions")}
    assert all(columns[name]["nullable"] for name in added)
    command.downgrade(config, "0003")
    assert not added & {c["name"] for c in inspect(engine).get_columns("sessions")}
    engine.dispose()


def test_downgrading_0004_keeps_every_session_and_event(database_url: str) -> None:
    """On SQLite, rebuilding ``sessions`` (a batch drop) with foreign keys on cascades
    into ``events`` and deletes them all: the downgrade must drop the columns in place."""
    store = fresh_store(database_url, Clock(CLOCK.now))
    store.put_group("climate", allocation=Allocation.parse("month"))
    sid = start(store)
    start(store, "bob")
    hub_stop(store, CLOCK.now)
    store.stop_by(sid, "carol", CLOCK.now)

    def counts() -> tuple[int, int]:
        with store.engine.connect() as connection:
            return (
                connection.scalar(select(func.count()).select_from(Session.__table__)) or 0,
                connection.scalar(select(func.count()).select_from(Event.__table__)) or 0,
            )

    assert counts() == (2, 3)
    config = alembic_config(store.engine)
    command.downgrade(config, "0003")
    assert counts() == (2, 3)
    command.upgrade(config, "head")
    assert counts() == (2, 3)
    store.engine.dispose()
