"""The service's Prometheus metrics: ledger gauges read at scrape time, and its counters."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from eohub.accounting.service.metrics import Metrics
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from tests.support.accounting import Clock, fresh_store

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, Clock(NOW))
    yield s
    s.engine.dispose()


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def session(user: str, group: str, start: datetime, hours: float | None, cpu: float) -> list:
    events = [start_event_json(user=user, server="", started_at=start, group=group, cpu=cpu)]
    if hours is not None:
        stop = start + timedelta(hours=hours)
        events.append(stop_event_json(user=user, server="", started_at=start, stopped_at=stop))
    return events


def test_an_empty_ledger_has_no_open_sessions_and_no_groups(store: AccountingStore) -> None:
    got = samples(Metrics(store))
    assert got[("eohub_accounting_open_sessions", ())] == 0
    assert not [k for k in got if k[0] == "eohub_accounting_core_hours"]
    assert got[("eohub_accounting_events_total", ())] == 0


def test_the_ledger_gauges_are_read_at_scrape_time(store: AccountingStore) -> None:
    metrics = Metrics(store)
    store.put_group("climate", allocation=Allocation.parse("month"))
    store.put_group("astro", allocation=Allocation.parse("month"))
    events = [
        *session("alice", "climate", datetime(2026, 3, 2, tzinfo=UTC), 3, 2),  # 6 core-hours
        *session("bob", "climate", NOW - timedelta(hours=1), None, 1),  # open: 1 so far
        *session("carl", "astro", datetime(2026, 2, 2, tzinfo=UTC), 5, 1),  # last month
    ]
    store.ingest(parse_batch({"events": events}))
    got = samples(metrics)
    assert got[("eohub_accounting_open_sessions", ())] == 1
    assert got[("eohub_accounting_core_hours", (("group", "climate"),))] == 7
    assert ("eohub_accounting_core_hours", (("group", "astro"),)) not in got
    store.clock.advance(hours=2)  # type: ignore[attr-defined]
    assert samples(metrics)[("eohub_accounting_core_hours", (("group", "climate"),))] == 9


def test_the_counters_count(store: AccountingStore) -> None:
    metrics = Metrics(store)
    metrics.observe_ingest(3, 0.25)
    metrics.observe_ingest(2, 0.5)
    metrics.quota_denials.labels(group="climate").inc()
    got = samples(metrics)
    assert got[("eohub_accounting_events_total", ())] == 5
    assert got[("eohub_accounting_ingest_seconds_count", ())] == 2
    assert got[("eohub_accounting_ingest_seconds_sum", ())] == 0.75
    assert got[("eohub_accounting_quota_denials_total", (("group", "climate"),))] == 1


def test_each_service_has_its_own_registry(store: AccountingStore) -> None:
    first, second = Metrics(store), Metrics(store)
    first.observe_ingest(4, 0.1)
    assert samples(second)[("eohub_accounting_events_total", ())] == 0
