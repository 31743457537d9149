"""The accounting service's HTML pages: my usage, my groups (PIs) and all groups (admins).

Pages log in through the hub (HubOAuth: ``@web.authenticated`` redirects to the hub's
authorize URL, and the callback sets the service's cookie). They are rendered on the
server, charts included (inline SVG from :mod:`eohub.domain.reports.charts`), so they need no
JavaScript beyond the hub's own dark-mode switch; each chart's data is embedded as JSON
too. They link the hub's stylesheet from ``/hub/static/`` so they look like the hub.

Who sees what is the table in :mod:`eohub.domain.accounting.access`, by the scopes of
the pages' OAuth token: every user their own usage, PIs their groups, and holders of
the read or admin scope everything (drop-in 30 gives hub admins the admin scope through
a role). Query parameters are forgiving: a bad one falls back to its default with a note
on the page, and never causes a server error.

Every page carries JupyterHub's XSRF token (``<meta name="eohub-xsrf">``, and the
``_xsrf`` cookie it sets): a script or form of these pages that changes state sends it
back, as JupyterHub requires of cookie-authenticated requests.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from tornado import web

from eohub.accounting.scopes import Caller
from eohub.accounting.service.pages import storage_view, views
from eohub.accounting.service.pages.budgets import enforcement_notices
from eohub.accounting.service.pages.page_base import (
    DASH,
    HALF,
    STATIC,
    WIDE,
    PageHandler,
    environment,
    render,
)
from eohub.accounting.service.pages.servers import hub_servers, running_servers, stop_note
from eohub.accounting.service.pages.session_view import lifetime_notices
from eohub.accounting.service.pages.stop_handler import StopServerHandler
from eohub.adapters.accounting_db.groups import GroupInfo
from eohub.adapters.accounting_db.store import UnknownGroupError
from eohub.domain.accounting.access import Op, grant_for, may_read_group, may_stop_server
from eohub.domain.accounting.events import NAME
from eohub.domain.accounting.periods import PeriodKind, next_period_start, period_start

#: How many periods the history charts show, per granularity.
HISTORY_LENGTH = {PeriodKind.DAY: 31, PeriodKind.MONTH: 12}
#: The longest range the admin page charts per day (beyond it, per month), and per month.
MAX_DAYS = 62
MAX_MONTHS = 60


class UsagePageHandler(PageHandler):
    """Your own usage: per period and group, your budgets, your sessions."""

    @web.authenticated
    async def get(self) -> None:
        self.authorise(Op.PAGE_USAGE)
        caller = self.caller
        assert caller is not None
        kind = self.kind_argument((PeriodKind.DAY, PeriodKind.MONTH))
        before = self.int_argument("before")
        now = self.context.store.clock()
        rng = views.recent_range(kind, now, HISTORY_LENGTH[kind])
        store = self.context.store
        page = await store.read(
            views.my_usage, store, caller.name, caller.groups, rng, before, WIDE
        )
        storage = await store.read(
            storage_view.user_storage,
            store,
            caller.name,
            caller.groups,
            storage_view.Span(rng.start, rng.end, kind),
            self.context.storage,
            WIDE,
        )
        warnings = [
            w
            for w in self.enforcement_warnings(b.group for b in page.budgets)
            if w.user in ("", caller.name)
        ]
        lifetime, warned = lifetime_notices(
            self.lifetime_warnings(caller.name), page.running, now, own=True
        )
        self.render_page(
            "usage.html",
            page=page,
            period=kind.value,
            enforcement=enforcement_notices(warnings) + lifetime,
            flagged={i for w in warnings for i in w.sessions},
            warned=warned,
            storage=storage,
        )


class GroupsPageHandler(PageHandler):
    """The groups a PI leads, or (``?group=``) one group for its PI or an admin."""

    @web.authenticated
    async def get(self) -> None:
        self.authorise(Op.PAGE_GROUPS)
        caller = self.caller
        assert caller is not None
        store = self.context.store
        wanted = self.get_argument("group", "", strip=False)
        infos = await self.groups_shown(caller, wanted)
        kind = self.kind_argument((PeriodKind.DAY, PeriodKind.MONTH))
        rng = views.recent_range(kind, store.clock(), HISTORY_LENGTH[kind])
        reports = [
            await store.read(views.group_report, store, info, caller.name, rng, (HALF, HALF))
            for info in infos
        ]
        span = storage_view.Span(rng.start, rng.end, kind)
        storage = {
            info.name: await store.read(
                storage_view.group_storage, store, info, span, self.context.storage, HALF
            )
            for info in infos
        }
        charts = {
            r.info.name: {
                "burn_down": r.burn_down_data,
                "usage": r.history.to_json(),
                "storage": storage[r.info.name].to_json(),
            }
            for r in reports
        }
        stopped = self.int_argument("stopped")
        if stopped is not None:
            note = await stop_note(store, caller, stopped, self.get_argument("result", ""))
            if note:
                self.notes.append(note)
        listed = await hub_servers(self.context.hub, (s.user for r in reports for s in r.running))
        now = store.clock()
        self.render_page(
            "groups.html",
            reports=reports,
            reports_json=charts,
            period=kind.value,
            focus=wanted,
            servers={r.info.name: running_servers(r.running, listed, now) for r in reports},
            may_stop={r.info.name: may_stop_server(caller, r.info.name) for r in reports},
            hub_known=listed is not None,
            storage=storage,
            **self.group_warnings(reports, now),
        )

    async def groups_shown(self, caller: Caller, wanted: str) -> list[GroupInfo]:
        """The group asked for (``?group=``), if the caller may see it; else theirs."""
        store = self.context.store
        if not wanted:
            led = set(caller.groups_led)
            return await store.read(store.groups, led) if led else []
        if not NAME.fullmatch(wanted):
            raise web.HTTPError(404, "There is no such group.")
        if not may_read_group(caller, Op.PAGE_GROUPS, wanted):
            raise web.HTTPError(403, "Only the group's PIs and admins may see its usage.")
        try:
            return [await store.read(store.group, wanted)]
        except UnknownGroupError:
            raise web.HTTPError(404, "That group has no allocation in accounting (yet).") from None

    def group_warnings(self, reports: list[views.GroupReport], now: datetime) -> dict[str, Any]:
        """The warnings in force for each report's group: budgets spent, and servers
        about to reach their maximum duration (notices, and the sessions they flag)."""
        warnings = self.enforcement_warnings(r.info.name for r in reports)
        lifetimes = self.lifetime_warnings()
        enforcement, warned = {}, {}
        for r in reports:
            notices, badges = lifetime_notices(lifetimes, r.running, now, own=False)
            mine = (w for w in warnings if w.group == r.info.name)
            enforcement[r.info.name] = enforcement_notices(mine) + notices
            warned.update(badges)
        return {
            "enforcement": enforcement,
            "flagged": {i for w in warnings for i in w.sessions},
            "warned": warned,
        }


class AllPageHandler(PageHandler):
    """Every group, totals and the heaviest users, with links to the exports."""

    @web.authenticated
    async def get(self) -> None:
        if grant_for(self.caller, Op.PAGE_ALL) is None:
            raise web.HTTPError(
                403, "This page is for accounting admins (custom:eohub-accounting:read)."
            )
        store = self.context.store
        now = store.clock()
        default = views.recent_range(PeriodKind.MONTH, now, HISTORY_LENGTH[PeriodKind.MONTH])
        start = self.date_argument("from") or default.start
        end = self.date_argument("to") or default.end
        if end <= start:
            self.notes.append("Ignored from and to: to must come after from.")
            start, end = default.start, default.end
        days = (end - start).days
        if days <= MAX_DAYS:
            kind = PeriodKind.DAY
        elif days <= MAX_MONTHS * 31:
            kind = PeriodKind.MONTH
        else:
            kind = PeriodKind.YEAR
        # Periods are whole: widen to the periods that the range touches.
        last = period_start(kind, end - timedelta(microseconds=1))
        rng = views.Range(kind, period_start(kind, start), next_period_start(kind, last))
        page = await store.read(views.all_groups, store, rng, WIDE)
        query = urlencode({"from": f"{start:%Y-%m-%d}", "to": f"{end:%Y-%m-%d}"})
        warnings = self.enforcement_warnings(g.name for g in page.groups)
        self.render_page(
            "all.html",
            page=page,
            start=start,
            end=end,
            export_query=query,
            enforcement=enforcement_notices(warnings),
        )


def page_routes(prefix: str) -> list[Any]:
    """The pages' routes under the service prefix (``/services/eohub-accounting/``)."""
    return [
        (prefix, web.RedirectHandler, {"url": prefix + "usage"}),
        (prefix + "usage", UsagePageHandler),
        (prefix + "groups", GroupsPageHandler),
        (prefix + "all", AllPageHandler),
        (prefix + "groups/stop", StopServerHandler),
        (prefix + "static/(.*)", web.StaticFileHandler, {"path": str(STATIC)}),
    ]


__all__ = ["DASH", "HALF", "WIDE", "PageHandler", "environment", "page_routes", "render"]
