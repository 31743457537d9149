"""Taking back a stop the service asked for, once it is no longer due
(:meth:`AccountingStore.withdraw_stop`), on every database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from tests.support.accounting import Clock, fresh_store

CLOCK = Clock()
T0 = CLOCK.now - timedelta(hours=2)
ASKED = CLOCK.now - timedelta(minutes=1)


@pytest.fixture
def store(database_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(database_url, Clock(CLOCK.now))
    s.put_group("climate", allocation=Allocation.parse("month"))
    yield s
    s.engine.dispose()


def start(store: AccountingStore) -> int:
    event = start_event_json(user="alice", server="", started_at=T0, group="climate", cpu=1)
    store.ingest(parse_batch(event))
    (session,) = store.sessions(users={"alice"})
    return session.id


def hub_stop(store: AccountingStore, at: datetime, reason: str) -> None:
    event = stop_event_json(user="alice", server="", started_at=T0, stopped_at=at, reason=reason)
    store.ingest(parse_batch(event))


def asked(store: AccountingStore, sid: int) -> tuple[str | None, str | None, datetime | None]:
    record = store.session(sid)
    assert record is not None
    return record.stop_reason, record.stopped_by, record.stop_requested_at


@pytest.mark.parametrize("reason", ["idle", "budget", "max_duration"])
def test_a_request_no_longer_due_is_taken_back(store: AccountingStore, reason: str) -> None:
    sid = start(store)
    assert store.request_stop(sid, reason, ASKED)
    assert store.withdraw_stop(sid)
    assert asked(store, sid) == (None, None, None)
    assert not store.withdraw_stop(sid)  # nothing left to take back
    # The hub's stop that comes later is its own, not the withdrawn request's.
    hub_stop(store, CLOCK.now, "user")
    record = store.session(sid)
    assert record is not None
    assert record.end_reason == "user"


def test_nothing_to_take_back(store: AccountingStore) -> None:
    sid = start(store)
    assert not store.withdraw_stop(sid)  # no request
    assert not store.withdraw_stop(sid + 1000)  # no such session
    assert asked(store, sid) == (None, None, None)


def test_a_closed_session_keeps_its_request(store: AccountingStore) -> None:
    sid = start(store)
    assert store.request_stop(sid, "idle", ASKED)
    hub_stop(store, ASKED + timedelta(seconds=5), "admin")
    assert not store.withdraw_stop(sid)
    assert asked(store, sid) == ("idle", None, ASKED)
    record = store.session(sid)
    assert record is not None
    assert record.end_reason == "idle"


def test_a_persons_stop_is_left_alone(store: AccountingStore) -> None:
    """A PI's stop from the pages records a name, not a reason: nothing to take back."""
    sid = start(store)
    assert store.stop_by(sid, "carol", ASKED)
    assert not store.withdraw_stop(sid)
    assert asked(store, sid) == (None, "carol", ASKED)


def test_the_reason_goes_but_a_persons_name_stays_with_its_time(
    store: AccountingStore,
) -> None:
    """The name counts only for a stop in time after the request: the time stays with it."""
    sid = start(store)
    assert store.stop_by(sid, "carol", ASKED - timedelta(seconds=30))
    assert store.request_stop(sid, "idle", ASKED)
    assert store.withdraw_stop(sid)
    assert asked(store, sid) == (None, "carol", ASKED)
    record = store.session(sid)
    assert record is not None
    assert record.stop_asked_by == "carol"
