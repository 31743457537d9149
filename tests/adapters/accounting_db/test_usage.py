"""The usage report: the running totals per period plus open sessions counted up to now."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.usage import read_usage
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation, PeriodKind
from tests.support.accounting import Clock, fresh_store

T0 = datetime(2026, 4, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NOW = T0 + 3 * HOUR
CORE_HOUR = 1000 * 3_600_000  # millicore-milliseconds


@pytest.fixture
def store(sqlite_url: str) -> Iterator[AccountingStore]:
    store = fresh_store(sqlite_url, Clock(NOW))
    for group in ("climate", "ocean"):
        store.put_group(group, allocation=Allocation.parse("month"))

    def start(user: str, group: str, at: datetime) -> dict[str, object]:
        return start_event_json(user=user, server="", started_at=at, group=group, cpu=1)

    def stop(user: str, at: datetime, end: datetime) -> dict[str, object]:
        return stop_event_json(user=user, server="", started_at=at, stopped_at=end)

    events = [
        start("ada", "climate", T0),
        stop("ada", T0, T0 + 2 * HOUR),
        start("bob", "climate", T0 + HOUR),  # still running: 2 hours by now
        start("carl", "ocean", T0),
        stop("carl", T0, T0 + HOUR),
    ]
    store.ingest(parse_batch({"events": events}))
    yield store
    store.close()
    store.engine.dispose()


def report(store: AccountingStore, **kwargs: object) -> list[tuple[str, str, float]]:
    rows = read_usage(store.engine, PeriodKind.DAY, T0, T0 + DAY, NOW, **kwargs)  # type: ignore[arg-type]
    assert all(r.period_start == T0 for r in rows)
    return [(r.group, r.user, r.usage.cpu_mcore_ms / CORE_HOUR) for r in rows]


@pytest.mark.parametrize(
    ("kwargs", "rows"),
    [
        ({}, [("climate", "", 4.0), ("ocean", "", 1.0)]),
        (
            {"by_user": True},
            [("climate", "ada", 2.0), ("climate", "bob", 2.0), ("ocean", "carl", 1.0)],
        ),
        ({"user": "bob"}, [("climate", "bob", 2.0)]),
        ({"user": "ada"}, [("climate", "ada", 2.0)]),
        ({"groups": {"ocean"}}, [("ocean", "", 1.0)]),
        ({"groups": {"ocean"}, "by_user": True}, [("ocean", "carl", 1.0)]),
        ({"groups": set()}, []),
    ],
)
def test_the_report_counts_open_sessions_up_to_now(
    store: AccountingStore, kwargs: dict[str, object], rows: list[tuple[str, str, float]]
) -> None:
    assert report(store, **kwargs) == rows


def test_periods_outside_the_range_are_left_out(store: AccountingStore) -> None:
    later = read_usage(store.engine, PeriodKind.DAY, T0 + DAY, T0 + 2 * DAY, NOW)
    assert later == []
    monthly = read_usage(store.engine, PeriodKind.MONTH, T0, T0 + 30 * DAY, NOW)
    assert [(r.group, r.usage.cpu_mcore_ms) for r in monthly] == [
        ("climate", 4 * CORE_HOUR),
        ("ocean", CORE_HOUR),
    ]
