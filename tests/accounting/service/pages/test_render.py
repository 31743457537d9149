"""The page views and templates against a real store, without a hub: numbers, notices, escaping.

The browser tests drive the same pages through JupyterHub; these cover the cases that are
slow or awkward to set up there (a spent budget, an enforcement warning, a frozen clock).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from eohub.accounting.scopes import ACCESS, ADMIN, Caller, Kind
from eohub.accounting.service.pages import views
from eohub.accounting.service.pages.budgets import enforcement_notices
from eohub.accounting.service.pages.handlers import HALF, WIDE, page_routes, render
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.enforcement import WarningInfo
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation, PeriodKind
from eohub.domain.accounting.quota import Limits
from tests.support.accounting import Clock, fresh_store

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
EVIL = "</script><script>alert(1)</script>"
ALICE = Caller("alice", Kind.USER, frozenset({ACCESS}))
CAROL = Caller("carol", Kind.USER, frozenset({ACCESS}), frozenset({"climate"}))
# An admin: the OAuth token carries the admin scope (drop-in 30's role), which includes read.
ROOT = Caller("root", Kind.USER, frozenset({ACCESS, ADMIN}))
LINKS = {"prefix": "/services/eohub-accounting/", "hub_prefix": "/hub/"}


def run(
    store: AccountingStore, user: str, group: str, start: datetime, hours: float, cpu: float
) -> None:
    """Record a session of ``hours`` (0: still running) holding ``cpu`` cores."""
    events = [start_event_json(user=user, server="", started_at=start, group=group, cpu=cpu)]
    if hours:
        stop = start + timedelta(hours=hours)
        events.append(stop_event_json(user=user, server="", started_at=start, stopped_at=stop))
    store.ingest(parse_batch({"events": events}))


@pytest.fixture
def store(tmp_path: Path) -> AccountingStore:
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


def test_my_usage_warns_when_a_share_is_nearly_spent(store: AccountingStore) -> None:
    page = views.my_usage(store, "alice", month_range(), None, WIDE)
    assert page.history.labels[-1] == "Mar 2026"
    assert page.history.series[0].name == "climate"
    assert page.history.series[0].values[-1] == 18
    (budget,) = page.budgets
    assert [s.scope for s in budget.scopes] == ["group climate", "your share of climate"]
    assert budget.left["core_hours"] == 2
    (notice,) = page.notices
    assert notice.level == "warning"
    assert notice.text == "Your share of climate has used 90% of its core-hours budget this month."
    assert [s.server for s in page.sessions] == ["", ""]
    assert page.sessions[0].stopped_at is None
    assert page.next_before is None


def test_my_usage_says_when_a_budget_is_spent(store: AccountingStore) -> None:
    run(store, "alice", "climate", datetime(2026, 3, 3, 9, tzinfo=UTC), 2, 2)
    page = views.my_usage(store, "alice", month_range(), None, WIDE)
    (notice,) = page.notices
    assert notice.level == "danger"
    assert notice.text.startswith("The core-hours budget of your share of climate is spent")


def test_the_usage_page_shows_enforcement_warnings_and_flags_servers(
    store: AccountingStore,
) -> None:
    page = views.my_usage(store, "alice", month_range(), None, WIDE)
    running = page.sessions[0].id
    warning = WarningInfo(
        "climate", "alice", "The budget is spent.", NOW, NOW + timedelta(minutes=15), (running,)
    )
    html = render(
        "usage.html",
        caller=ALICE,
        **LINKS,
        page=page,
        period="month",
        enforcement=enforcement_notices([warning]),
        flagged={running},
    )
    assert "The budget is spent. Its servers will be stopped at 2026-03-15 12:15 UTC." in html
    assert html.count("budget spent</span>") == 1
    assert 'href="/hub/static/css/style.min.css"' in html
    assert 'href="/services/eohub-accounting/all"' not in html


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


def test_every_name_is_escaped_in_text_svg_and_json(store: AccountingStore) -> None:
    page = views.all_groups(store, month_range(), WIDE)
    assert [g.name for g in page.groups] == [EVIL, "climate"]
    assert page.groups[1].window_used is not None
    assert page.groups[1].window_used.used == 18
    html = render(
        "all.html",
        caller=ROOT,
        **LINKS,
        page=page,
        start=month_range().start,
        end=month_range().end,
        export_query="from=2025-04-01&to=2026-04-01",
        enforcement=[],
    )
    assert EVIL not in html
    assert "<script>alert" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The chart data is JSON that no </script> in a name can end early.
    (data,) = re.findall(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert json.loads(data)["usage"]["series"][0]["name"] == EVIL
    assert "groups?group=%3C%2Fscript%3E" in html


def test_the_error_page_needs_no_caller() -> None:
    html = render(
        "error.html", caller=None, **LINKS, status_code=403, reason="Forbidden", message=EVIL
    )
    assert "403 : Forbidden" in html
    assert EVIL not in html
    assert "Logout" not in html


# The groups page of a caller with nothing to report.
NO_REPORTS: dict[str, object] = {
    "reports": [],
    "reports_json": {},
    "period": "month",
    "focus": "",
    "enforcement": {},
    "flagged": set(),
}


def test_a_non_pi_gets_a_friendly_groups_page() -> None:
    html = render(
        "groups.html",
        caller=ALICE,
        **LINKS,
        **NO_REPORTS,
    )
    assert "You are not a PI of any group" in html
    assert "eohub-xsrf" not in html


def test_pages_carry_the_xsrf_token_for_their_scripts() -> None:
    token = '2|ab"cd|ef'  # escaped like any other value
    html = render(
        "groups.html",
        caller=CAROL,
        **LINKS,
        xsrf=token,
        **NO_REPORTS,
    )
    assert '<meta name="eohub-xsrf" content="2|ab&#34;cd|ef">' in html


def test_page_routes() -> None:
    paths = [route[0] for route in page_routes("/services/x/")]
    assert paths == [
        "/services/x/",
        "/services/x/usage",
        "/services/x/groups",
        "/services/x/all",
        "/services/x/static/(.*)",
    ]
