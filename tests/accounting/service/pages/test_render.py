"""The page templates rendered against a real store, without a hub: notices, escaping.

The browser tests drive the same pages through JupyterHub; these cover the cases that are
slow or awkward to set up there (a spent budget, an enforcement warning, a frozen clock).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest

from eohub.accounting.scopes import ACCESS, ADMIN, Caller, Kind
from eohub.accounting.service.pages import views
from eohub.accounting.service.pages.budgets import enforcement_notices
from eohub.accounting.service.pages.handlers import HALF, WIDE, render
from eohub.accounting.service.pages.servers import running_servers
from eohub.accounting.service.pages.session_view import lifetime_notices
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.enforcement import WarningInfo
from eohub.domain.accounting.events import parse_batch, start_event_json
from eohub.domain.accounting.lifetimes import LifetimeWarning
from eohub.domain.accounting.reconcile import HubServer
from tests.accounting.service.pages.pages_support import EVIL, NOW, month_range, pages_store

ALICE = Caller("alice", Kind.USER, frozenset({ACCESS}))
CAROL = Caller("carol", Kind.USER, frozenset({ACCESS}), frozenset({"climate"}))
# An admin: the OAuth token carries the admin scope (drop-in 30's role), which includes read.
ROOT = Caller("root", Kind.USER, frozenset({ACCESS, ADMIN}))
LINKS = {"prefix": "/services/eohub-accounting/", "hub_prefix": "/hub/"}


@pytest.fixture
def store(tmp_path: Path) -> AccountingStore:
    return pages_store(tmp_path)


def test_the_usage_page_shows_enforcement_warnings_and_flags_servers(
    store: AccountingStore,
) -> None:
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
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
        warned={},
    )
    assert "The budget is spent. Its servers will be stopped at 2026-03-15 12:15 UTC." in html
    assert html.count("budget spent</span>") == 1
    assert 'href="/hub/static/css/style.min.css"' in html
    assert 'href="/services/eohub-accounting/all"' not in html


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
    "warned": {},
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


def test_the_usage_page_names_groups_and_environments_for_people(
    store: AccountingStore,
) -> None:
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
    html = render(
        "usage.html",
        caller=ALICE,
        **LINKS,
        page=page,
        period="month",
        enforcement=[],
        flagged=set(),
        warned={},
    )
    legend = re.findall(r'aria-hidden="true"></span>([^<]*)</li>', html)
    assert legend == ["Climate"]  # the display name, in the chart's legend as in the tables
    assert "Your share of Climate&#39;s budget" in html
    assert "18 of 20 core-hours" in html


def test_a_pi_sees_a_stop_button_only_for_servers_the_hub_runs(store: AccountingStore) -> None:
    (group,) = store.groups({"climate"})
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    (row,) = report.running
    listed = {"alice": [HubServer("alice", "", row.started_at, last_activity=NOW)]}

    def page(listed: dict[str, list[HubServer]] | None, may_stop: bool) -> str:
        return render(
            "groups.html",
            caller=CAROL,
            **LINKS,
            reports=[report],
            reports_json={},
            period="month",
            focus="",
            enforcement={"climate": []},
            flagged=set(),
            warned={},
            servers={"climate": running_servers(report.running, listed, NOW)},
            may_stop={"climate": may_stop},
            hub_known=listed is not None,
        )

    html = page(listed, True)
    assert f'href="/services/eohub-accounting/groups/stop?session={row.id}"' in html
    assert '<td class="text-end text-nowrap idle">under 1 min</td>' in html
    assert "groups/stop" not in page(listed, False)  # a reader who may not stop
    unknown = page(None, True)
    assert "groups/stop" not in unknown
    assert "The hub did not say how long these servers have been idle" in unknown


# -- why sessions stopped, time left, lifetime warnings --------------------------------


def limited_session(store: AccountingStore, server: str, hours_ago: float, **limits: int) -> int:
    """alice's running server ``server`` in climate, with ``limits``; its session id."""
    started = NOW - timedelta(hours=hours_ago)
    event = start_event_json(
        user="alice", server=server, started_at=started, group="climate", cpu=1, **limits
    )
    store.ingest(parse_batch(event))
    (record,) = [s for s in store.sessions(users={"alice"}, open_only=True) if s.server == server]
    return record.id


def usage_page(store: AccountingStore, warnings: Sequence[LifetimeWarning] = ()) -> str:
    page = views.my_usage(store, "alice", (), month_range(), None, WIDE)
    notices, warned = lifetime_notices(warnings, page.running, NOW, own=True)
    return render(
        "usage.html",
        caller=ALICE,
        **LINKS,
        page=page,
        period="month",
        enforcement=notices,
        flagged=set(),
        warned=warned,
    )


def groups_page(store: AccountingStore, warnings: Sequence[LifetimeWarning] = ()) -> str:
    (group,) = store.groups({"climate"})
    report = views.group_report(store, group, "carol", month_range(), (HALF, HALF))
    notices, warned = lifetime_notices(warnings, report.running, NOW, own=False)
    listed = {
        "alice": [
            HubServer("alice", s.server, s.started_at, last_activity=NOW) for s in report.running
        ]
    }
    return render(
        "groups.html",
        caller=CAROL,
        **LINKS,
        reports=[report],
        reports_json={},
        period="month",
        focus="",
        enforcement={"climate": notices},
        flagged=set(),
        warned=warned,
        servers={"climate": running_servers(report.running, listed, NOW)},
        may_stop={"climate": True},
        hub_known=True,
    )


def reason_cell(html: str, session: int) -> str:
    row = re.search(rf'<tr data-session="{session}"[^>]*>(.*?)</tr>', html, re.S)
    assert row, f"no row for session {session}"
    (cell,) = re.findall(r'<td class="reason">(.*?)</td>', row[1], re.S)
    return re.sub(r"<[^>]+>", "", cell).strip()


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        ("idle", "Stopped after being idle for its limit (2 hours)"),
        ("max_duration", "Reached its maximum duration (24 hours)"),
        ("budget", "The budget it was charged to was spent"),
        ("user", "Stopped by its user"),
        ("admin", "Stopped by an admin or a PI"),
        ("failed", "The server failed or could not start"),
        ("reconcile", "Found stopped by the accounting service"),
        ("shutdown", "The hub shut down"),
        ("stopped", "Stopped (by whom is not known)"),
    ],
)
def test_the_usage_and_group_pages_say_why_each_server_stopped(
    store: AccountingStore, reason: str, shown: str
) -> None:
    sid = limited_session(store, "lab", 5, idle_timeout=7200, max_duration=86400)
    assert store.close_session(sid, NOW - timedelta(minutes=1), reason)
    mine = usage_page(store)
    assert reason_cell(mine, sid) == shown
    assert f'data-reason="{reason}"' in mine
    assert reason_cell(groups_page(store), sid) == shown  # a PI's, and an admin's, report


def test_a_running_server_shows_its_limits_and_time_left(store: AccountingStore) -> None:
    sid = limited_session(store, "lab", 2 + 5 / 60, idle_timeout=7200, max_duration=8 * 3600)
    mine = usage_page(store)
    assert reason_cell(mine, sid) == (
        "Ends in 5 h 55 min (at most 8 hours)Stops after 2 hours idle"
    )
    assert '<span class="time-left">Ends in 5 h 55 min (at most 8 hours)</span>' in mine
    pi = groups_page(store)
    row = re.search(rf'<tr data-session="{sid}"[^>]*>(.*?)</tr>', pi, re.S)
    assert row
    assert '<td class="time-left">Ends in 5 h 55 min (at most 8 hours)</td>' in row[1]
    assert "stops after 2 hours idle" in row[1]


def test_a_user_and_their_pi_see_the_warning_of_a_coming_stop(store: AccountingStore) -> None:
    sid = limited_session(store, "lab", 7.8, max_duration=8 * 3600)
    warning = LifetimeWarning(
        session=sid,
        user="alice",
        server="lab",
        group="climate",
        reason="max_duration",
        stop_at=NOW + timedelta(minutes=12),
        first_warned_at=NOW - timedelta(minutes=3),
    )
    mine = usage_page(store, [warning])
    assert (
        '<div class="alert alert-warning" role="alert">Your server lab will be stopped at its '
        "maximum duration at 12:12 UTC (in 12 min). Save your work before then.</div>"
    ) in mine
    assert 'lifetime-warning" title="Times in UTC">stops at 12:12</span>' in mine
    pi = groups_page(store, [warning])
    assert (
        "alice&#39;s server lab will be stopped at its maximum duration at 12:12 UTC (in 12 min)."
    ) in pi
    assert "Save your work" not in pi
    assert 'lifetime-warning" title="Times in UTC">stops at 12:12</span>' in pi
    # Another user's warning, or one for a server no longer running, shows nowhere.
    other = LifetimeWarning(
        session=sid + 1000,
        user="bob",
        server="",
        group="climate",
        reason="max_duration",
        stop_at=NOW + timedelta(minutes=5),
        first_warned_at=NOW,
    )
    assert "will be stopped" not in usage_page(store, [other])
    assert "will be stopped" not in groups_page(store, [other])
