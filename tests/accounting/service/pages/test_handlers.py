"""The pages' handlers without a hub: routes, template filters, forgiving query parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tornado import web

from eohub._version import __version__
from eohub.accounting.scopes import ACCESS, Caller, Kind
from eohub.accounting.service.pages.handlers import (
    DASH,
    PageHandler,
    environment,
    page_routes,
    render,
)
from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.lifetimes import LifetimeWarning
from eohub.domain.accounting.periods import Allocation, PeriodKind
from tests.accounting.service.context_support import make_context, make_handler
from tests.accounting.service.pages.pages_support import NOW, pages_store

LINKS = {"prefix": "/services/eohub-accounting/", "hub_prefix": "/hub/"}
HUB_AUTH = SimpleNamespace(hub_prefix="/hub/")


def page(uri: str = "/usage") -> Any:
    handler = make_handler(PageHandler, uri, hub_auth=HUB_AUTH)
    handler.initialize()
    return handler


def test_page_routes() -> None:
    paths = [route[0] for route in page_routes("/services/x/")]
    assert paths == [
        "/services/x/",
        "/services/x/usage",
        "/services/x/groups",
        "/services/x/all",
        "/services/x/groups/stop",
        "/services/x/static/(.*)",
    ]


def test_the_root_redirects_to_my_usage() -> None:
    root = page_routes("/services/x/")[0]
    assert root[1] is web.RedirectHandler
    assert root[2] == {"url": "/services/x/usage"}


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("hours", None, DASH),
        ("hours", 2.0, "2"),
        ("hours", 1234.5678, "1,234.6"),
        ("hours", 16.25, "16.2"),
        ("hours", 0.01, "< 0.1"),
        ("duration", 7500, "2 h 05 min"),
        ("duration", 30, "under 1 min"),
        ("possessive", "researchers", "researchers'"),
        ("when", None, DASH),
        ("when", datetime(2026, 3, 5, 9, 7, tzinfo=UTC), "2026-03-05 09:07"),
        ("day", datetime(2026, 3, 5, 9, 7, tzinfo=UTC), "2026-03-05"),
        ("size", None, DASH),
        ("size", 300 * 1024, "300.0 KiB"),
        ("size", 3 * GIB // 2, "1.5 GiB"),
        ("size", 2048 * GIB, "2.0 TiB"),
        ("size_limit", None, DASH),
        ("size_limit", 10 * GIB, "10 GiB"),
        ("size_limit", 512 * 2**20, "512 MiB"),
        ("percent", None, DASH),
        ("percent", 89.6, "90%"),
        ("sentence", "your share", "Your share"),
        ("sentence", "", ""),
        ("renews", Allocation.parse("rolling:7"), "rolling 7 days"),
        ("span", 7200, "2 hours"),
        ("span", 36 * 3600, "36 hours"),
    ],
)
def test_template_filters(name: str, value: Any, shown: str) -> None:
    assert environment().filters[name](value) == shown


def test_render_links_the_services_and_the_hubs_static_files() -> None:
    caller = Caller("alice", Kind.USER, frozenset({ACCESS}))
    html = render(
        "error.html", caller=caller, **LINKS, status_code=404, reason="Not Found", message="x"
    )
    assert "/services/eohub-accounting/static/" in html or f"?v={__version__}" in html
    assert 'href="/hub/static/css/style.min.css"' in html


@pytest.mark.parametrize(
    ("query", "value", "note"),
    [
        ("", None, None),
        ("?before=42", 42, None),
        ("?before=", None, None),
        ("?before=-1", None, "Ignored before='-1': not a whole number."),
        ("?before=1.5", None, "Ignored before='1.5': not a whole number."),
        ("?before=%C2%B2", None, "Ignored before='²': not a whole number."),
        ("?before=" + "9" * 19, None, f"Ignored before='{'9' * 19}': not a whole number."),
        ("?before=" + "9" * 18, int("9" * 18), None),
    ],
)
def test_a_bad_whole_number_is_ignored_with_a_note(
    query: str, value: int | None, note: str | None
) -> None:
    handler = page("/usage" + query)
    assert handler.int_argument("before") == value
    assert handler.notes == ([note] if note else [])


@pytest.mark.parametrize(
    ("query", "kind", "noted"),
    [
        ("", PeriodKind.MONTH, False),
        ("?period=day", PeriodKind.DAY, False),
        ("?period=month", PeriodKind.MONTH, False),
        ("?period=year", PeriodKind.MONTH, True),  # not offered on this page
        ("?period=DAY", PeriodKind.MONTH, True),
    ],
)
def test_a_period_not_offered_falls_back_to_months(
    query: str, kind: PeriodKind, noted: bool
) -> None:
    handler = page("/usage" + query)
    assert handler.kind_argument((PeriodKind.DAY, PeriodKind.MONTH)) is kind
    assert bool(handler.notes) is noted
    if noted:
        assert handler.notes[0].endswith(": use day or month.")


@pytest.mark.parametrize(
    ("query", "day", "noted"),
    [
        ("", None, False),
        ("?from=2026-01-31", datetime(2026, 1, 31, tzinfo=UTC), False),
        ("?from=2000-01-01", datetime(2000, 1, 1, tzinfo=UTC), False),
        ("?from=1999-12-31", None, True),
        ("?from=2200-01-01", None, True),
        ("?from=2026-02-30", None, True),
        ("?from=31.01.2026", None, True),
    ],
)
def test_a_bad_date_is_ignored_with_a_note(query: str, day: datetime | None, noted: bool) -> None:
    handler = page("/all" + query)
    assert handler.date_argument("from") == day
    assert bool(handler.notes) is noted
    if noted:
        assert handler.notes[0].endswith(": use a date like 2026-01-31.")


def test_the_pages_read_the_lifetime_workers_warnings(tmp_path: Path) -> None:
    def warned(session: int, user: str) -> LifetimeWarning:
        return LifetimeWarning(session, user, "", "climate", "max_duration", NOW, NOW)

    alice, bob = warned(7, "alice"), warned(8, "bob")
    worker = SimpleNamespace(warnings=lambda: {7: alice, 8: bob})
    store = pages_store(tmp_path)
    handler = page()
    handler.settings["eohub_context"] = make_context(store, lifetimes=worker)
    assert handler.lifetime_warnings("alice") == [alice]
    assert handler.lifetime_warnings() == [alice, bob]
    # Session limits not enforced: no worker, no warnings.
    handler.settings["eohub_context"] = make_context(store)
    assert handler.lifetime_warnings() == []


def test_without_an_enforcer_there_are_no_warnings() -> None:
    handler = page()
    handler.settings["eohub_context"] = SimpleNamespace(enforcer=None)
    assert handler.enforcement_warnings(["climate"]) == []


@pytest.mark.parametrize(
    ("error", "status", "shown"),
    [
        (web.HTTPError(403, "Only the group's %s may see it.", "PIs"), 403, "PIs may see it"),
        (web.HTTPError(404), 404, "404 : Not Found"),
        (RuntimeError("secret detail"), 500, "Something went wrong on our side"),
    ],
)
def test_errors_are_pages_that_hide_server_details(
    error: Exception, status: int, shown: str
) -> None:
    handler = page()
    handler.settings["eohub_context"] = SimpleNamespace(prefix="/services/eohub-accounting/")
    handler.write_error(status, exc_info=(type(error), error, None))
    (html,) = handler.finished
    assert shown in html
    assert "secret detail" not in html
    assert handler._headers["Content-Type"] == "text/html; charset=UTF-8"


def test_pages_may_not_be_framed_by_other_sites() -> None:
    """Clickjacking: no other site may frame a page (a stop confirmation above all)."""
    handler = page()
    assert handler._headers["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert handler._headers["X-Frame-Options"] == "SAMEORIGIN"
    handler.clear()  # as Tornado does before it writes an error page
    assert handler._headers["Content-Security-Policy"] == "frame-ancestors 'self'"
