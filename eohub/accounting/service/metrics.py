"""Prometheus metrics of the accounting service, served at ``{prefix}metrics``.

Gauges that describe the ledger (open sessions, this month's core-hours per group) are
read from the store at scrape time, so they are right after a restart too.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from eohub.adapters.accounting_db.store import AccountingStore
from eohub.domain.accounting.periods import PeriodKind, next_period_start, period_start


class LedgerCollector(Collector):
    def __init__(self, store: AccountingStore) -> None:
        self.store = store

    def collect(self) -> Iterable[Metric]:
        open_sessions = GaugeMetricFamily(
            "eohub_accounting_open_sessions", "Servers running now, as the ledger knows them."
        )
        open_sessions.add_metric([], self.store.open_session_count())
        yield open_sessions
        now = self.store.clock()
        start = period_start(PeriodKind.MONTH, now)
        hours = GaugeMetricFamily(
            "eohub_accounting_core_hours",
            "Core-hours used this calendar month (UTC), per group; open sessions up to now.",
            labels=["group"],
        )
        for row in self.store.usage(
            PeriodKind.MONTH, start, next_period_start(PeriodKind.MONTH, start)
        ):
            hours.add_metric([row.group], float(row.usage.core_hours))
        yield hours


class Metrics:
    """The service's metrics registry, its counters, and the scrape output."""

    def __init__(self, store: AccountingStore) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(LedgerCollector(store))
        self.quota_denials = Counter(
            "eohub_accounting_quota_denials",
            "Spawns' quota checks answered with a denial, per group (not the form's).",
            ["group"],
            registry=self.registry,
        )
        self.ingest_seconds = Histogram(
            "eohub_accounting_ingest_seconds",
            "Time to apply one request of events (single or batch) to the ledger.",
            registry=self.registry,
        )
        self.events = Counter(
            "eohub_accounting_events", "Events received by the ingest API.", registry=self.registry
        )

    def observe_ingest(self, count: int, seconds: float) -> None:
        self.events.inc(count)
        self.ingest_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
