"""A session's limits survive the reconcile loop opening it first, on every database.

The reconcile loop opens a session whose start it has not seen (the hub's outbox could
not reach the service), without limits and under the hub's own key. The hub's start
arrives later: a duplicate, but the only record of the limits, which must be kept, or
nothing would enforce them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.ingest import IngestResult
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation, PeriodKind
from tests.support.accounting import Clock, fresh_store

CLOCK = Clock()
T0 = CLOCK.now - timedelta(hours=2)
MONTH = (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


@pytest.fixture
def store(database_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(database_url, Clock(CLOCK.now))
    s.put_group("climate", allocation=Allocation.parse("month"))
    yield s
    s.engine.dispose()


def begin(user: str = "alice", at: datetime = T0, **limits: int) -> dict[str, Any]:
    """The hub's start with ``limits``; without, the reconcile loop's (the same key)."""
    return start_event_json(user=user, server="", started_at=at, group="climate", cpu=1, **limits)


def end(user: str = "alice", after: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    return stop_event_json(user=user, server="", started_at=T0, stopped_at=T0 + after)


def post(store: AccountingStore, *events: dict[str, Any]) -> IngestResult:
    if len(events) == 1:
        return store.ingest(parse_batch(events[0]), single=True)
    return store.ingest(parse_batch({"events": list(events)}))


def limits(store: AccountingStore, user: str = "alice") -> tuple[int | None, int | None]:
    (record,) = store.sessions(users={user})
    return record.idle_timeout, record.max_duration


def core_hours(store: AccountingStore) -> Fraction:
    rows = store.usage(PeriodKind.MONTH, *MONTH)
    return sum((r.usage.core_hours for r in rows), Fraction(0))


def test_the_hubs_late_start_brings_the_limits(store: AccountingStore) -> None:
    assert post(store, begin()) == IngestResult(1, 0)  # reconcile opens it
    result = post(store, begin(idle_timeout=3600, max_duration=7200))
    # Still a duplicate, as the API reports it; the limits are kept.
    assert (result.accepted, result.duplicates, result.limited) == (0, 1, 1)
    assert limits(store) == (3600, 7200)
    (record,) = store.sessions(users={"alice"})
    assert (record.stopped_at, record.end_reason, record.stop_reason) == (None, None, None)
    assert post(store, end()) == IngestResult(1, 0)
    assert core_hours(store) == 1  # counted once


def test_a_closed_session_gets_them_too(store: AccountingStore) -> None:
    post(store, begin())
    assert store.close_session(store.sessions()[0].id, T0 + timedelta(hours=1), "reconcile")
    result = post(store, begin(idle_timeout=600))
    assert (result.accepted, result.duplicates, result.limited) == (0, 1, 1)
    assert limits(store) == (600, None)
    (record,) = store.sessions(users={"alice"})
    assert (record.stopped_at, record.end_reason) == (T0 + timedelta(hours=1), "reconcile")
    assert core_hours(store) == 1


def test_limits_already_stored_stay(store: AccountingStore) -> None:
    post(store, begin(idle_timeout=3600, max_duration=7200))
    for again in (begin(), begin(idle_timeout=60, max_duration=120)):
        result = post(store, again)
        assert (result.accepted, result.duplicates, result.limited) == (0, 1, 0)
        assert limits(store) == (3600, 7200)


def test_a_batch_brings_the_limits_of_many_sessions(store: AccountingStore) -> None:
    """Many starts in one batch: PostgreSQL's batch statements, the portable ones
    elsewhere; some sessions reconcile opened, one with its limits, one new."""
    users = [f"u{i}" for i in range(30)]
    post(store, *(begin(u) for u in users[:20]))  # reconcile opened these
    post(store, begin(users[20], idle_timeout=5))  # the hub's own start came in time
    result = post(
        store, *(begin(u, idle_timeout=60 + i, max_duration=7200) for i, u in enumerate(users))
    )
    assert (result.accepted, result.duplicates, result.limited) == (9, 21, 20)
    got = {r.user: (r.idle_timeout, r.max_duration) for r in store.sessions(limit=100)}
    want = {u: (60 + i, 7200) for i, u in enumerate(users)}
    want[users[20]] = (5, None)
    assert got == want


def test_another_key_for_the_same_session_brings_them_too(store: AccountingStore) -> None:
    post(store, {**begin(), "id": "start:reconcile-alice"})
    result = post(store, begin(idle_timeout=3600), end())
    assert (result.accepted, result.duplicates, result.limited) == (1, 1, 1)
    assert limits(store) == (3600, None)
    assert core_hours(store) == 1
