"""Past the ledger's 64-bit columns, every database gives the same answer.

The domain bounds one session so that the largest server over the longest window fits
(``accounting_events``). Many such servers in one group and period can still take a
running total past ``2**63 - 1``. PostgreSQL and MariaDB refuse that, SQLite would turn
the total into an inexact REAL, and SQLite's ``sum()`` over a quota window stops with
"integer overflow". Here all three refuse the batch with a field error and write nothing,
and quota checks over totals that sum past 64 bits stay exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import insert, select

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.errors import LEDGER_FULL
from eohub.adapters.accounting_db.models import Event, PendingStop, Session, UsageTotal
from eohub.domain.accounting.events import (
    EventError,
    StartEvent,
    parse_batch,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.requests import MAX_HOURS
from eohub.domain.wording import number_text
from tests.support.accounting import Clock, three_stores

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
MONTH = datetime(2026, 3, 1, tzinfo=UTC)
MAX = 2**63 - 1


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, mariadb_url: str
) -> Iterator[dict[str, AccountingStore]]:
    sqlite_dir = tmp_path_factory.mktemp("overflow")
    with three_stores(sqlite_dir, postgres_url, mariadb_url, Clock(NOW)) as made:
        yield made


LIMIT = Fraction(MAX_HOURS)  # core-hours, the most a quota row may hold


def reset(store: AccountingStore, allocation: str, totals: list[dict[str, Any]]) -> None:
    with store.engine.begin() as connection:
        for model in (Event, UsageTotal, PendingStop, Session):
            connection.execute(model.__table__.delete())  # type: ignore[attr-defined]
        if totals:
            connection.execute(insert(UsageTotal), totals)
    store.put_group(
        "climate",
        allocation=Allocation.parse(allocation),
        quotas={"": Limits(core_hours=LIMIT)},
    )


def snapshot(store: AccountingStore) -> dict[str, Any]:
    with store.engine.connect() as connection:
        return {
            "sessions": connection.execute(select(Session.user, Session.stopped_at)).all(),
            "events": sorted(connection.scalars(select(Event.key))),
            "totals": sorted(
                connection.execute(
                    select(
                        UsageTotal.user,
                        UsageTotal.kind,
                        UsageTotal.cpu_mcore_ms,
                        UsageTotal.mem_mib_ms,
                        UsageTotal.gpu_ms,
                    )
                ).all()
            ),
        }


def total(user: str, kind: str, start: datetime, cpu: int) -> dict[str, Any]:
    return {
        "group": "climate",
        "user": user,
        "kind": kind,
        "period_start": start,
        "cpu_mcore_ms": cpu,
        "mem_mib_ms": 0,
        "gpu_ms": 0,
    }


def session_events(user: str, hours: int) -> list[dict[str, Any]]:
    started = datetime(2026, 3, 2, tzinfo=UTC)
    stopped = started.replace(hour=hours)
    return [
        start_event_json(
            user=user, server="", started_at=started, group="climate", cpu=4, memory_bytes=0
        ),
        stop_event_json(user=user, server="", started_at=started, stopped_at=stopped),
    ]


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mariadb"])
def test_a_batch_that_would_pass_the_columns_is_refused_and_writes_nothing(
    stores: dict[str, AccountingStore], database: str
) -> None:
    store = stores[database]
    # The group's month is one hour of four cores short of the columns' limit.
    reset(store, "month", [total("", "month", MONTH, MAX - 4000 * 3_600_000 + 1)])
    before = snapshot(store)
    with pytest.raises(EventError) as refused:
        store.ingest(parse_batch({"events": session_events("alice", 1)}))
    assert refused.value.errors == {"events": LEDGER_FULL}
    assert snapshot(store) == before
    # One millisecond less fits, exactly at the limit.
    reset(store, "month", [total("", "month", MONTH, MAX - 4000 * 3_600_000)])
    store.ingest(parse_batch({"events": session_events("alice", 1)}))
    month_total = [row for row in snapshot(store)["totals"] if row[:2] == ("", "month")]
    assert month_total == [("", "month", MAX, 0, 0)]


def test_a_batch_whose_own_sum_passes_the_columns_is_refused_everywhere(
    stores: dict[str, AccountingStore],
) -> None:
    for store in stores.values():
        reset(store, "month", [])
        store.ingest(parse_batch({"events": session_events("alice", 1)}))
        before = snapshot(store)
        # A batch's deltas are summed before they are written: pretend a huge one.
        start, stop = parse_batch({"events": session_events("bob", 1)})
        assert isinstance(start, StartEvent)
        events = [replace(start, resources=Resources(2**62)), stop]
        with pytest.raises(EventError) as refused:
            store.ingest(events)
        assert refused.value.errors == {"events": LEDGER_FULL}
        assert snapshot(store) == before


def test_quota_windows_that_sum_past_64_bits_stay_exact(
    stores: dict[str, AccountingStore],
) -> None:
    # Two days of a rolling window, each just under the limit: their sum is not.
    days = [datetime(2026, 3, 14, tzinfo=UTC), datetime(2026, 3, 15, tzinfo=UTC)]
    decisions = {}
    for name, store in stores.items():
        reset(store, "rolling:2", [total("", "day", d, MAX - 7) for d in days])
        decision = store.check_quota("alice", "climate", Resources.from_cpu(1, 0))
        decisions[name] = decision.to_json()
    assert len({repr(d) for d in decisions.values()}) == 1, decisions
    used = Fraction(2 * (MAX - 7), 1000 * 3_600_000)  # mcore-ms to core-hours
    assert decisions["sqlite"]["allowed"] is False
    assert f"spent: {number_text(float(used))} of" in decisions["sqlite"]["reason"]
