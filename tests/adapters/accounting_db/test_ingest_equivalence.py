"""Ingest gives the same ledger on every database, whichever statements it sends.

PostgreSQL applies a batch with statements of its own (``postgresql_batch``), the other
databases with portable ones. Random streams of batches (starts, stops, a start and its
stop in one batch, replays, reconciled closes that the real stop replaces, refused
batches) are applied to SQLite, PostgreSQL and MariaDB, and the sessions, event keys and
running totals must come out identical.
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
            (r.user, r.server, r.started_at, r.group, r.millicores, r.stopped_at, r.end_reason)
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


def _start(user: str, server: str, slot: int, group: str = "climate") -> dict[str, Any]:
    started = T0 + timedelta(hours=7 * slot)
    return start_event_json(
        user=user, server=server, started_at=started, group=group, cpu=0.5, gpus=slot % 2
    )


def _stop(user: str, server: str, slot: int, hours: int, reason: str) -> dict[str, Any]:
    started = T0 + timedelta(hours=7 * slot)
    end = started + timedelta(hours=hours)
    return stop_event_json(
        user=user, server=server, started_at=started, stopped_at=end, reason=reason
    )


@st.composite
def streams(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Batches of a few sessions' lives: each starts, most stop (in the same batch or a
    later one), some are closed by the reconcile loop first; now and then a batch is
    replayed or holds an event that must refuse it."""
    batches: list[list[dict[str, Any]]] = [[] for _ in range(draw(st.integers(1, 5)))]
    last = len(batches) - 1
    for user, server, slot in draw(st.lists(SESSION, min_size=1, max_size=5, unique=True)):
        first = draw(st.integers(0, last))
        batches[first].append(_start(user, server, slot))
        if draw(st.integers(0, 3)) == 0:
            continue  # still running
        hours = draw(st.integers(1, 60))
        if draw(st.booleans()):  # the reconcile loop's estimate, then maybe the real stop
            at = draw(st.integers(first, last))
            batches[at].append(_stop(user, server, slot, hours, "reconciled"))
            first = at
            hours += draw(st.integers(0, 5))
            if draw(st.booleans()):
                continue
        # Now and then the stop comes first: it is held until the start arrives.
        earliest = 0 if draw(st.integers(0, 4)) == 0 else first
        batches[draw(st.integers(earliest, last))].append(
            _stop(user, server, slot, hours, "stopped")
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
        results: list[object] = []
        for batch in batches:
            try:
                result = store.ingest(parse_batch({"events": batch}))
                results.append((result.accepted, result.duplicates, result.corrected))
            except EventError as e:
                results.append(sorted(e.errors))
        results.append(snapshot(store))
        outcomes[name] = results
    ledger = outcomes["sqlite"][-1]
    assert isinstance(ledger, dict)
    event("some usage recorded" if ledger["totals"] else "no usage recorded")
    event(
        "a batch refused" if any(isinstance(r, list) for r in outcomes["sqlite"]) else "all taken"
    )
    assert outcomes["postgresql"] == outcomes["sqlite"]
    assert outcomes["mariadb"] == outcomes["sqlite"]


# -- events out of order -------------------------------------------------------------

A_START = _start("alice", "", 0)
A_STOP = _stop("alice", "", 0, 5, "stopped")
# Another key: the same key would make the real stop a duplicate of the estimate.
A_ESTIMATE = {**_stop("alice", "", 0, 4, "reconciled"), "id": "stop:estimate-alice"}
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
