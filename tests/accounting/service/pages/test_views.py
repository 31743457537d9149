"""What the usage pages show: ranges, labels, history, and each page's plain objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from eohub.accounting.service.pages import views
from eohub.accounting.service.pages.handlers import HALF, WIDE
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.ledger import MS_PER_HOUR, Usage
from eohub.domain.accounting.periods import Allocation, PeriodKind
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.session_record import PI_STOP_WINDOW, UsageRow
from tests.accounting.service.pages.pages_support import EVIL, NOW, month_range, pages_store, run


@pytest.fixture
def store(tmp_path: Path) -> AccountingStore:
    return pages_store(tmp_path)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- ranges and labels -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "t", "label"),
    [
        (PeriodKind.DAY, utc(2026, 3, 5), "05 Mar"),
        (PeriodKind.MONTH, utc(2026, 3, 1), "Mar 2026"),
        (PeriodKind.QUARTER, utc(2026, 1, 1), "Q1 2026"),
        (PeriodKind.QUARTER, utc(2026, 4, 1), "Q2 2026"),
        (PeriodKind.QUARTER, utc(2026, 12, 1), "Q4 2026"),
        (PeriodKind.YEAR, utc(2026, 1, 1), "2026"),
    ],
)
def test_period_labels(kind: PeriodKind, t: datetime, label: str) -> None:
    assert views.period_label(kind, t) == label


@pytest.mark.parametrize(
    ("kind", "count", "start", "end"),
    [
        (PeriodKind.MONTH, 1, utc(2026, 3, 1), utc(2026, 4, 1)),
        (PeriodKind.MONTH, 12, utc(2025, 4, 1), utc(2026, 4, 1)),
        (PeriodKind.DAY, 1, utc(2026, 3, 15), utc(2026, 3, 16)),
        (PeriodKind.DAY, 31, utc(2026, 2, 13), utc(2026, 3, 16)),
        (PeriodKind.YEAR, 2, utc(2025, 1, 1), utc(2027, 1, 1)),
    ],
)
def test_a_recent_range_ends_with_the_current_period(
    kind: PeriodKind, count: int, start: datetime, end: datetime
) -> None:
    rng = views.recent_range(kind, NOW, count)
    assert (rng.kind, rng.start, rng.end) == (kind, start, end)
    assert len(rng.periods) == count
    assert rng.periods[0] == start


# -- usage over time ---------------------------------------------------------------


def core_hours(hours: int) -> Usage:
    return Usage(cpu_mcore_ms=1000 * hours * MS_PER_HOUR)


def test_history_sums_per_name_and_period_and_keeps_totals_beyond_the_range() -> None:
    rng = views.Range(PeriodKind.MONTH, utc(2026, 1, 1), utc(2026, 3, 1))
    rows = [
        UsageRow(utc(2026, 1, 1), "climate", "alice", core_hours(3)),
        UsageRow(utc(2026, 2, 1), "climate", "bob", core_hours(2)),
        UsageRow(utc(2026, 2, 1), "climate", "alice", core_hours(1)),
        UsageRow(utc(2026, 2, 1), "astro", "alice", core_hours(5)),
        UsageRow(utc(2025, 12, 1), "climate", "carol", core_hours(7)),  # before the range
    ]
    hist = views.history(rows, rng, lambda r: r.group, WIDE)
    assert hist.labels == ("Jan 2026", "Feb 2026")
    assert [(s.name, s.values) for s in hist.series] == [
        ("astro", (0.0, 5.0)),
        ("climate", (3.0, 3.0)),
    ]
    assert hist.totals["climate"].core_hours == 13  # carol's 7 counts in the total
    assert not hist.empty
    assert hist.to_json() == {
        "period": "month",
        "labels": ["Jan 2026", "Feb 2026"],
        "series": [
            {"name": "astro", "core_hours": [0.0, 5.0]},
            {"name": "climate", "core_hours": [3.0, 3.0]},
        ],
    }
    empty = views.history([], rng, lambda r: r.user, WIDE)
    assert empty.empty
    assert empty.series == ()


# -- rows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "label"), [("", "The whole group"), ("*", "Each member"), ("alice", "alice")]
)
def test_quota_rows_are_labelled_by_their_owner(owner: str, label: str) -> None:
    assert views.QuotaRow(owner, Limits()).label == label


def test_a_member_row_meters_core_hours_against_the_members_limit() -> None:
    row = views.MemberRow("alice", core_hours(9), 45.0, 10.0, 1)
    assert (row.meter.what, row.meter.used, row.meter.limit) == ("core-hours", 9.0, 10.0)
    assert row.meter.level == "warning"
    assert views.MemberRow("bob", core_hours(9), 45.0, None, 0).meter.level == "secondary"


# -- the pages, from a real store ----------------------------------------------------


def test_my_usage_warns_when_a_share_is_nearly_spent(store: AccountingStore) -> None:
    page = views.my_usage(store, "alice", {"climate"}, month_range(), None, WIDE)
    assert page.history.labels[-1] == "Mar 2026"
    assert page.history.series[0].name == "climate"
    assert page.history.series[0].values[-1] == 18
    (budget,) = page.budgets
    assert [s.scope for s in budget.scopes] == [
        "Climate's budget",
        "your share of Climate's budget",
    ]
    assert budget.left["core_hours"] == 2
    (notice,) = page.notices
    assert notice.level == "warning"
    assert notice.text == (
        "Your share of Climate's budget is 90% used: 18 of 20 core-hours this month."
    )
    assert [s.server for s in page.sessions] == ["", ""]
    assert page.sessions[0].stopped_at is None
    assert page.next_before is None
    assert page.labels == {"climate": "Climate"}


def test_my_usage_says_when_a_budget_is_spent(store: AccountingStore) -> None:
    run(store, "alice", "climate", datetime(2026, 3, 3, 9, tzinfo=UTC), 2, 2)
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
    (notice,) = page.notices
    assert notice.level == "danger"
    assert notice.text == (
        "Your share of Climate's budget is spent: 22 of 20 core-hours used this month. "
        "New servers charged to Climate are refused until it renews."
    )


# (the user's hub groups) -> the groups whose budgets the usage page shows, in the order
# of their display names ("All researchers", "Climate")
MEMBER_BUDGETS = [
    # dave never ran anything: his chargeable groups show all the same
    ("dave", {"climate", "researchers"}, ["researchers", "climate"]),
    # a hub group without an allocation in accounting is not chargeable: not shown
    ("dave", {"hub-admins"}, []),
    # alice charged climate, and is in researchers too
    ("alice", {"researchers"}, ["researchers", "climate"]),
    ("alice", set(), ["climate"]),
]


@pytest.mark.parametrize(("user", "member_of", "shown"), MEMBER_BUDGETS)
def test_my_usage_shows_every_chargeable_groups_budget(
    store: AccountingStore, user: str, member_of: set[str], shown: list[str]
) -> None:
    store.put_group(
        "researchers",
        display_name="All researchers",
        allocation=Allocation.parse("rolling:30"),
        quotas={"*": Limits(core_hours=Fraction(50))},
    )
    page = views.my_usage(store, user, member_of, month_range(), None, WIDE)
    assert [b.group for b in page.budgets] == shown
    for budget in page.budgets:
        assert budget.defined
    if "researchers" in shown:
        (researchers,) = [b for b in page.budgets if b.group == "researchers"]
        assert [s.scope for s in researchers.scopes] == ["your share of All researchers' budget"]
        assert researchers.left["core_hours"] == 50


def test_a_session_stopped_by_a_person_says_who(store: AccountingStore) -> None:
    (running,) = store.sessions(users={"alice"}, open_only=True)
    assert store.stop_by(running.id, "carol", NOW)
    (group,) = store.groups({"climate"})
    # Asked, not stopped yet: still running, "stopping, asked by carol".
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    assert [(s.id, s.stop_asked_by) for s in report.running] == [(running.id, "carol")]
    assert running.id not in {s.id for s in report.stopped}
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
    assert (page.sessions[0].stopped_at, page.sessions[0].stop_asked_by) == (None, "carol")
    # A request the hub never carried out is not shown as under way for ever.
    (record,) = store.sessions(users={"alice"}, open_only=True)
    late = NOW + PI_STOP_WINDOW + timedelta(seconds=1)
    assert views.session_row(record, late).stop_asked_by == ""
    # The hub's stop closes it, at its own time.
    stopped = NOW + timedelta(seconds=3)
    store.ingest(
        parse_batch(
            stop_event_json(
                user="alice", server="", started_at=running.started_at, stopped_at=stopped
            )
        )
    )
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
    assert page.sessions[0].stopped_by == "carol"
    assert page.sessions[0].stopped_at == stopped
    assert page.sessions[0].stop_asked_by == ""
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    assert report.running == ()
    latest = report.stopped[0]
    assert (latest.user, latest.stopped_by, latest.stop_reason) == (
        "alice",
        "carol",
        "stopped by carol",
    )


def test_a_group_report_burns_down_its_budget(store: AccountingStore) -> None:
    (group,) = store.groups({"climate"})
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    assert [m.user for m in report.members] == ["alice"]
    assert report.members[0].meter.level == "warning"
    assert [r.label for r in report.quotas] == ["The whole group", "Each member"]
    assert [s.user for s in report.running] == ["alice"]
    names = [line["name"] for line in report.burn_down_data["lines"]]
    assert names == ["Limit", "Even pace", "Budget left"]
    left = report.burn_down_data["lines"][2]["points"]
    # Full at the start, 16 gone after 2 March, and 2 more by now (14.5 days in).
    assert left[0] == (0.0, 100.0)
    assert left[1] == (1.0, 100.0)
    assert left[2] == (2.0, 84.0)
    assert left[-1] == (14.5, 82.0)
    assert report.burn_down.markers[0].label == "now"
    assert {s.name for s in report.history.series} == {"alice", "bob"}


def test_a_group_without_a_limit_shows_its_use(store: AccountingStore) -> None:
    (group,) = store.groups({EVIL})
    report = views.group_report(store, group, "root", month_range(), (HALF, HALF))
    assert not report.has_limit
    (line,) = report.burn_down_data["lines"]
    assert line["name"] == "Used"
    assert line["points"][-1] == (7.0 - 0.5, 12.0)


# -- why sessions stopped, and the time they have left ----------------------------------

HOUR, DAY = 3600, 86400
# (the reason the stop is recorded with, and the words a user, a PI and an admin see)
REASONS = [
    ("idle", "stopped after being idle for its limit (2 hours)"),
    ("max_duration", "reached its maximum duration (24 hours)"),
    ("budget", "the budget it was charged to was spent"),
    ("user", "stopped by its user"),
    ("admin", "stopped by an admin or a PI"),
    ("failed", "the server failed or could not start"),
    ("reconcile", "found stopped by the accounting service"),
    ("shutdown", "the hub shut down"),
    ("stopped", "stopped (by whom is not known)"),
]


def limited(store: AccountingStore, user: str, server: str, start: datetime, **limits: int) -> int:
    """Record a running session with ``limits`` (idle_timeout, max_duration); its id."""
    event = start_event_json(
        user=user, server=server, started_at=start, group="climate", cpu=1, **limits
    )
    store.ingest(parse_batch(event))
    (record,) = [s for s in store.sessions(users={user}, open_only=True) if s.server == server]
    return record.id


@pytest.mark.parametrize(("reason", "words"), REASONS)
def test_every_stop_says_why_to_its_user_and_the_groups_pi(
    store: AccountingStore, reason: str, words: str
) -> None:
    started = NOW - timedelta(hours=5)
    sid = limited(store, "alice", "lab", started, idle_timeout=2 * HOUR, max_duration=DAY)
    assert store.close_session(sid, NOW - timedelta(minutes=1), reason)
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
    (row,) = [s for s in page.sessions if s.id == sid]
    assert (row.end_reason, row.stop_reason, row.time_left) == (reason, words, "")
    assert (row.idle_timeout, row.max_duration) == (2 * HOUR, DAY)
    (group,) = store.groups({"climate"})
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    assert report.stopped[0].id == sid
    assert report.stopped[0].stop_reason == words


def test_a_stop_the_service_asked_for_is_under_way_then_recorded_with_its_reason(
    store: AccountingStore,
) -> None:
    started = NOW - timedelta(hours=8)
    sid = limited(store, "alice", "lab", started, max_duration=8 * HOUR)
    assert store.request_stop(sid, "max_duration", NOW)
    (running,) = [
        s
        for s in views.my_usage(store, "alice", (), month_range(), None, WIDE).running
        if s.id == sid
    ]
    assert running.stopping == "stopping: reached its maximum duration"
    assert running.stop_reason == ""
    assert running.time_left == "ends any moment (at most 8 hours)"
    # The hub's stop (sent as the service's own, an admin's) closes it as max_duration.
    store.ingest(
        parse_batch(
            stop_event_json(
                user="alice",
                server="lab",
                started_at=started,
                stopped_at=NOW + timedelta(seconds=5),
                reason="admin",
            )
        )
    )
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
    (row,) = [s for s in page.sessions if s.id == sid]
    assert (row.stopping, row.stop_reason) == ("", "reached its maximum duration (8 hours)")
    assert sid not in {s.id for s in page.running}


def test_a_stop_under_way_is_not_shown_for_ever(store: AccountingStore) -> None:
    sid = limited(store, "alice", "lab", NOW - timedelta(hours=3), idle_timeout=HOUR)
    assert store.request_stop(sid, "idle", NOW)
    (record,) = [s for s in store.sessions(users={"alice"}, open_only=True) if s.id == sid]
    assert views.session_row(record, NOW).stopping == "stopping: idle for its limit"
    late = NOW + PI_STOP_WINDOW + timedelta(seconds=1)
    assert views.session_row(record, late).stopping == ""


def test_a_running_session_shows_the_time_its_maximum_leaves(store: AccountingStore) -> None:
    sid = limited(
        store, "alice", "lab", NOW - timedelta(hours=2, minutes=5), max_duration=8 * HOUR
    )
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
    (row,) = [s for s in page.sessions if s.id == sid]
    assert row.time_left == "ends in 5 h 55 min (at most 8 hours)"
    assert (row.stop_reason, row.stopping) == ("", "")
    assert {s.id for s in page.running} >= {sid}
    (group,) = store.groups({"climate"})
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    assert [s.time_left for s in report.running if s.id == sid] == [row.time_left]


def test_a_groups_recent_stops_keep_the_ones_a_person_asked_for(
    store: AccountingStore,
) -> None:
    (running,) = store.sessions(users={"alice"}, open_only=True)
    assert store.stop_by(running.id, "carol", NOW)
    store.ingest(
        parse_batch(
            stop_event_json(user="alice", server="", started_at=running.started_at, stopped_at=NOW)
        )
    )
    # Many later servers, all stopped idle: carol's stop stays listed.
    for n in range(views.RECENT_SCAN + 5):
        sid = limited(store, "bob", f"s{n}", NOW + timedelta(minutes=n), idle_timeout=HOUR)
        assert store.close_session(sid, NOW + timedelta(hours=2, minutes=n), "idle")
    (group,) = store.groups({"climate"})
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    assert len(report.stopped) == views.RECENT_STOPS + 1
    assert report.stopped[-1].id == running.id
    assert report.stopped[-1].stop_reason == "stopped by carol"
    stops = [s.stopped_at for s in report.stopped]
    assert stops == sorted(stops, reverse=True)
