"""A store for the page tests: a group near its budget, a name that tries to be HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from eohub.accounting.service.pages import views
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation, PeriodKind
from eohub.domain.accounting.quota import Limits
from tests.support.accounting import Clock, fresh_store

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
EVIL = "</script><script>alert(1)</script>"


def run(
    store: AccountingStore, user: str, group: str, start: datetime, hours: float, cpu: float
) -> None:
    """Record a session of ``hours`` (0: still running) holding ``cpu`` cores."""
    events = [start_event_json(user=user, server="", started_at=start, group=group, cpu=cpu)]
    if hours:
        stop = start + timedelta(hours=hours)
        events.append(stop_event_json(user=user, server="", started_at=start, stopped_at=stop))
    store.ingest(parse_batch({"events": events}))


def pages_store(tmp_path: Path) -> AccountingStore:
    """Group climate (PI carol, 100 core-hours a month, 20 each) and a group named EVIL."""
    store = fresh_store(f"sqlite:///{tmp_path / 'pages.sqlite'}", Clock(NOW))
    store.put_group(
        "climate",
        display_name="Climate",
        allocation=Allocation.parse("month"),
        pis={"carol"},
        quotas={"": Limits(core_hours=Fraction(100)), "*": Limits(core_hours=Fraction(20))},
    )
    store.put_group(EVIL, allocation=Allocation.parse("rolling:7"))
    run(store, "alice", "climate", datetime(2026, 3, 2, 9, tzinfo=UTC), 8, 2)  # 16 core-hours
    run(store, "bob", "climate", datetime(2026, 2, 10, 9, tzinfo=UTC), 10, 1)  # last month
    run(store, "alice", "climate", NOW - timedelta(hours=2), 0, 1)  # running: 2 so far
    run(store, EVIL, EVIL, NOW - timedelta(days=1), 3, 4)
    return store


def month_range() -> views.Range:
    return views.recent_range(PeriodKind.MONTH, NOW, 12)
