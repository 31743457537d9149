"""Ingest gives the same ledger on every database, whichever statements it sends.

PostgreSQL applies a batch with statements of its own (``postgresql_batch``), the other
databases with portable ones. Random streams of batches (starts, stops, a start and its
stop in one batch, replays, reconcile's closes that the real stop replaces, stops the
service asked for first, reconcile's starts without limits before the hub's own,
refused batches) are applied to SQLite, PostgreSQL and MariaDB,
and the sessions (with their limits and stop reasons), event keys and running totals
must come out identical.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.models import Event, PendingStop, Session, UsageTotal
from eohub.domain.accounting.events import (
    EventError,
    parse_batch,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.stop_reasons import REQUESTED_REASONS, STOP_REASONS
from tests.support.accounting import Clock, three_stores
from tests.support.accounting_names import check_names_kept_apart, name_outcome, wipe

T0 = datetime(2026, 1, 30, 22, 0, tzinfo=UTC)
USERS = ("alice", "bob", "o'brien")


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, mariadb_url: str
) -> Iterator[dict[str, AccountingStore]]:
    sqlite_dir = tmp_path_factory.mktemp("ingest")
    with three_stores(
        sqlite_dir, postgres_url, mariadb_url, Clock(datetime(2026, 3, 1, tzinfo=UTC))
    ) as made:
        yield made


def reset(store: AccountingStore) -> None:
    with store.engine.begin() as connection:
        for model in (Event, UsageTotal, PendingStop, Session):
            connection.execute(model.__table__.delete())  # type: ignore[attr-defined]
    store.put_group("climate", allocation=Allocation.parse("month"))


def snapshot(store: AccountingStore) -> dict[str, Any]:
    with store.engine.connect() as connection:
        sessions = sorted(
            (
                r.user,
                r.server,
                r.started_at,
                r.group,
                r.millicores,
                r.idle_timeout,
                r.max_duration,
                r.stop_reason,
                r.stop_requested_at,
                r.stopped_at,
                r.end_reason,
            )
            for r in connection.execute(select(Session))
        )
        events = sorted((r.key, r.kind) for r in connection.execute(select(Event.key, Event.kind)))
        totals = sorted(
            (r.group, r.user, r.kind, r.period_start, r.cpu_mcore_ms, r.mem_mib_ms, r.gpu_ms)
            for r in connection.execute(select(UsageTotal))
        )
        pending = sorted(
            (r.key, r.user, r.server, r.started_at, r.stopped_at, r.reason)
            for r in connection.execute(select(PendingStop))
        )
    return {"sessions": sessions, "events": events, "totals": totals, "pending": pending}


SESSION = st.tuples(st.sampled_from(USERS), st.sampled_from(["", "gpu"]), st.integers(0, 5))


def _start(
    user: str, server: str, slot: int, group: str = "climate", limits: bool = True
) -> dict[str, Any]:
    """The hub's start; without ``limits``, the reconcile loop's (same key, no limits)."""
    started = T0 + timedelta(hours=7 * slot)
    return start_event_json(
        user=user,
        server=server,
        started_at=started,
        group=group,
        cpu=0.5,
        gpus=slot % 2,
        idle_timeout=600 * slot if limits else None,  # none for slot 0
        max_duration=3600 * (slot % 3) if limits else None,
    )


def _request(user: str, server: str, slot: int, hours: int, reason: str) -> dict[str, Any]:
    """Not an event: the service asks for a stop just before the hub's (see _apply)."""
    at = T0 + timedelta(hours=7 * slot + hours, seconds=-2)
    return {"request": (user, server, T0 + timedelta(hours=7 * slot), reason, at)}


def _apply(store: AccountingStore, batch: list[dict[str, Any]]) -> object:
    """Requests first (each to its session, if it is open), then the events."""
    for item in batch:
        if "request" in item:
            user, server, started, reason, at = item["request"]
            for s in store.sessions(users={user}):
                if (s.server, s.started_at) == (server, started):
                    store.request_stop(s.id, reason, at)
    events = [item for item in batch if "request" not in item]
    if not events:
        return "requests only"
    try:
        result = store.ingest(parse_batch({"events": events}))
    except EventError as e:
        return sorted(e.errors)
    return (result.accepted, result.duplicates, result.corrected, result.limited)


def _stop(user: str, server: str, slot: int, hours: int, reason: str) -> dict[str, Any]:
    started = T0 + timedelta(hours=7 * slot)
    end = started + timedelta(hours=hours)
    return stop_event_json(
        user=user, server=server, started_at=started, stopped_at=end, reason=reason
    )


@st.composite
def streams(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Batches of a few sessions' lives: each starts, most stop (in the same batch or a
    later one), some are opened or closed by the reconcile loop first; now and then a
    batch is replayed or holds an event that must refuse it."""
    batches: list[list[dict[str, Any]]] = [[] for _ in range(draw(st.integers(1, 5)))]
    last = len(batches) - 1
    for user, server, slot in draw(st.lists(SESSION, min_size=1, max_size=5, unique=True)):
        first = draw(st.integers(0, last))
        if draw(st.integers(0, 3)) == 0:  # reconcile opened it while the hub's start was late
            batches[draw(st.integers(0, first))].append(_start(user, server, slot, limits=False))
        batches[first].append(_start(user, server, slot))
        if draw(st.integers(0, 3)) == 0:
            continue  # still running
        hours = draw(st.integers(1, 60))
        if draw(st.integers(0, 2)) == 0:  # the service asks for the stop first
            reason = draw(st.sampled_from(sorted(REQUESTED_REASONS)))
            batches[draw(st.integers(first, last))].append(
                _request(user, server, slot, hours, reason)
            )
        if draw(st.booleans()):  # the reconcile loop's estimate, then maybe the real stop
            at = draw(st.integers(first, last))
            batches[at].append(_stop(user, server, slot, hours, "reconcile"))
            first = at
            hours += draw(st.integers(0, 5))
            if draw(st.booleans()):
                continue
        # Now and then the stop comes first: it is held until the start arrives.
        earliest = 0 if draw(st.integers(0, 4)) == 0 else first
        batches[draw(st.integers(earliest, last))].append(
            _stop(user, server, slot, hours, draw(st.sampled_from(STOP_REASONS)))
        )
    if draw(st.integers(0, 5)) == 0:
        bad = draw(
            st.sampled_from(
                [_start("bob", "x", 9, group="nope"), _stop("bob", "y", 9, 1, "stopped")]
            )
        )
        batches[draw(st.integers(0, last))].append(bad)
    if draw(st.booleans()):
        batches.append(list(batches[draw(st.integers(0, last))]))  # a replay
    return [b for b in batches if b]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=streams())
def test_every_database_keeps_the_same_ledger(
    stores: dict[str, AccountingStore], batches: list[list[dict[str, Any]]]
) -> None:
    outcomes: dict[str, list[object]] = {}
    for name, store in stores.items():
        reset(store)
        results: list[object] = [_apply(store, batch) for batch in batches]
        results.append(snapshot(store))
        outcomes[name] = results
    ledger = outcomes["sqlite"][-1]
    assert isinstance(ledger, dict)
    event("some usage recorded" if ledger["totals"] else "no usage recorded")
    asked = any(row[7] is not None for row in ledger["sessions"])
    event("a stop the service asked for" if asked else "no stop asked for")
    event(
        "a batch refused" if any(isinstance(r, list) for r in outcomes["sqlite"]) else "all taken"
    )
    filled = any(isinstance(r, tuple) and r[3] for r in outcomes["sqlite"])
    event("limits brought by a late start" if filled else "no limits brought late")
    assert outcomes["postgresql"] == outcomes["sqlite"]
    assert outcomes["mariadb"] == outcomes["sqlite"]


# -- events out of order -------------------------------------------------------------

A_START = _start("alice", "", 0)
A_STOP = _stop("alice", "", 0, 5, "stopped")
# Another key: the same key would make the real stop a duplicate of the estimate.
A_ESTIMATE = {**_stop("alice", "", 0, 4, "reconcile"), "id": "stop:estimate-alice"}
# Posts, each a list of events; the in-order case of each is its events sorted by time.
ORDERINGS = {
    "start then stop": [[A_START], [A_STOP]],
    "stop then start": [[A_STOP], [A_START]],
    "stop twice then start": [[A_STOP], [A_STOP], [A_START]],
    "stop, start, duplicate start": [[A_STOP], [A_START], [A_START]],
    "stop and start in one batch": [[A_STOP, A_START]],
    "stop twice in one batch, then start": [[A_STOP, A_STOP], [A_START]],
    "stop, then start twice in one batch": [[A_STOP], [A_START, A_START, A_STOP]],
    "estimate and stop before start": [[A_ESTIMATE], [A_STOP], [A_START]],
    "estimate, start, stop": [[A_ESTIMATE, A_START], [A_STOP]],
}
IN_ORDER = {
    "estimate and stop before start": [[A_START], [A_ESTIMATE], [A_STOP]],
    "estimate, start, stop": [[A_START], [A_ESTIMATE], [A_STOP]],
}


def _post(store: AccountingStore, events: list[dict[str, Any]], single: bool) -> None:
    if single:
        for e in events:
            store.ingest(parse_batch(e), single=True)
    else:
        store.ingest(parse_batch({"events": events}))


@pytest.mark.parametrize("single", [True, False], ids=["single posts", "batch posts"])
@pytest.mark.parametrize("name", sorted(ORDERINGS))
def test_out_of_order_events_give_the_in_order_ledger(
    stores: dict[str, AccountingStore], name: str, single: bool
) -> None:
    ledgers: dict[str, dict[str, Any]] = {}
    for db, store in stores.items():
        reset(store)
        for post in IN_ORDER.get(name, [[A_START], [A_STOP]]):
            _post(store, post, single)
        expected = snapshot(store)
        reset(store)
        for post in ORDERINGS[name]:
            _post(store, post, single)
        ledgers[db] = snapshot(store)
        # Closed once, for [start, stop], with nothing left waiting.
        assert ledgers[db] == expected, db
        assert ledgers[db]["pending"] == []
        [session] = ledgers[db]["sessions"]
        assert (session[-2], session[-1]) == (T0 + timedelta(hours=5), "stopped")
    assert ledgers["postgresql"] == ledgers["sqlite"]
    assert ledgers["mariadb"] == ledgers["sqlite"]


def test_names_are_compared_exactly_on_every_database(
    stores: dict[str, AccountingStore],
) -> None:
    """``BiUser``/``biuser``, ``climate``/``CLIMATE``/``climate ``, NFC/NFD ``zoë``:
    different users and groups in groups, PIs, ingest, usage, sessions, quota checks and
    storage, alike on SQLite, PostgreSQL and MariaDB (see tests/support/accounting_names)."""
    outcomes = {}
    try:
        for db, store in stores.items():
            outcomes[db] = name_outcome(store)
    finally:
        for store in stores.values():
            wipe(store)
    check_names_kept_apart(outcomes["sqlite"])
    assert outcomes["postgresql"] == outcomes["sqlite"]
    assert outcomes["mariadb"] == outcomes["sqlite"]


# -- limits brought by the hub's late start ----------------------------------------------

B_HUB = _start("bob", "", 1)  # idle_timeout 600, max_duration 3600
B_RECONCILE = _start("bob", "", 1, limits=False)  # the same key, without limits
B_ESTIMATE = {**_stop("bob", "", 1, 4, "reconcile"), "id": "stop:estimate-bob"}
B_STOP = _stop("bob", "", 1, 5, "user")
# Posts, each a list of events, and the posts in order whose ledger they must give.
LATE_STARTS = {
    "reconcile's start, then the hub's": ([[B_RECONCILE], [B_HUB], [B_STOP]], None),
    "both in one batch": ([[B_RECONCILE, B_HUB], [B_STOP]], None),
    "the hub's start, then reconcile's": ([[B_HUB], [B_RECONCILE], [B_STOP]], None),
    "reconcile's start and stop, then the hub's": (
        [[B_RECONCILE], [B_ESTIMATE], [B_HUB], [B_STOP]],
        [[B_HUB], [B_ESTIMATE], [B_STOP]],
    ),
    "closed by the hub, then its start": ([[B_RECONCILE], [B_STOP], [B_HUB]], None),
}


@pytest.mark.parametrize("single", [True, False], ids=["single posts", "batch posts"])
@pytest.mark.parametrize("name", sorted(LATE_STARTS))
def test_the_hubs_late_start_brings_the_sessions_limits(
    stores: dict[str, AccountingStore], name: str, single: bool
) -> None:
    """Reconcile opened the session without limits under the hub's key: the hub's start,
    a duplicate, still brings them; usage is counted once, and the ledger is the one the
    events in order give."""
    posts, in_order = LATE_STARTS[name]
    ledgers: dict[str, dict[str, Any]] = {}
    for db, store in stores.items():
        reset(store)
        for post in in_order or [[B_HUB], [B_STOP]]:
            _post(store, post, single)
        expected = snapshot(store)
        reset(store)
        for post in posts:
            _post(store, post, single)
        ledgers[db] = snapshot(store)
        assert ledgers[db] == expected, db
        [session] = ledgers[db]["sessions"]
        assert session[5:7] == (600, 3600), db
    assert ledgers["postgresql"] == ledgers["sqlite"]
    assert ledgers["mariadb"] == ledgers["sqlite"]
