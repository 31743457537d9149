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

import functools
import http
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from tornado import web

from eohub._version import __version__
from eohub.accounting.scopes import Caller
from eohub.accounting.service.handlers import BaseHandler
from eohub.accounting.service.pages import views
from eohub.accounting.service.pages.budgets import describe_allocation, enforcement_notices
from eohub.adapters.accounting_db.store import UnknownGroupError
from eohub.domain.accounting.access import Op, grant_for, may_read_group
from eohub.domain.accounting.enforcement import WarningInfo
from eohub.domain.accounting.events import NAME
from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.periods import PeriodKind, next_period_start, period_start
from eohub.domain.reports.charts import Frame, format_number

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: How many periods the history charts show, per granularity.
HISTORY_LENGTH = {PeriodKind.DAY: 31, PeriodKind.MONTH: 12}
#: The longest range the admin page charts per day (beyond it, per month), and per month.
MAX_DAYS = 62
MAX_MONTHS = 60
DASH = "\u2013"  # shown for "none" and "unlimited"
WIDE = Frame(width=960, height=280)
HALF = Frame(width=560, height=260)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hours"] = lambda v: DASH if v is None else format_number(round(float(v), 2))
    env.filters["when"] = lambda t: DASH if t is None else t.strftime("%Y-%m-%d %H:%M")
    env.filters["day"] = lambda t: t.strftime("%Y-%m-%d")
    env.filters["gib"] = lambda b: DASH if b is None else f"{b / GIB:,.1f} GiB"
    env.filters["percent"] = lambda v: DASH if v is None else f"{v:.0f}%"
    env.filters["sentence"] = lambda text: text[:1].upper() + text[1:]
    env.filters["renews"] = describe_allocation
    return env


def render(
    template: str,
    *,
    caller: Caller | None,
    prefix: str,
    hub_prefix: str,
    notes: list[str] | None = None,
    xsrf: str = "",
    **context: Any,
) -> str:
    """Render a page template with what every page needs (the nav bar, the links)."""
    return (
        environment()
        .get_template(template)
        .render(
            caller=caller,
            prefix=prefix,
            hub_prefix=hub_prefix,
            static=lambda path: f"{prefix}static/{path}?v={__version__}",
            hub_static=lambda path: f"{hub_prefix}static/{path}",
            notes=notes or [],
            xsrf=xsrf,
            active=template.removesuffix(".html"),
            urlencode=urlencode,
            **context,
        )
    )


class PageHandler(BaseHandler):
    """Renders templates with the hub's look; errors are HTML pages, not tracebacks."""

    notes: list[str]

    def initialize(self) -> None:
        self.notes = []

    @property
    def prefix(self) -> str:
        return self.context.prefix

    def render_page(self, template: str, **context: Any) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(self.render_text(template, **context))

    def render_text(self, template: str, **context: Any) -> str:
        return render(
            template,
            caller=self.caller,
            prefix=self.prefix,
            hub_prefix=self.hub_auth.hub_prefix,
            notes=self.notes,
            # Reading the token sets the _xsrf cookie on page views, as JupyterHub does.
            xsrf=self.xsrf_token.decode("ascii") if self.caller is not None else "",
            **context,
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = ""
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, web.HTTPError) and error.log_message:
            message = error.log_message % error.args if error.args else error.log_message
        if status_code >= 500:
            message = "Something went wrong on our side; the service log has the details."
        try:
            reason = http.HTTPStatus(status_code).phrase
        except ValueError:
            reason = self._reason
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            self.render_text("error.html", status_code=status_code, reason=reason, message=message)
        )

    def enforcement_warnings(self, groups: Iterable[str]) -> list[WarningInfo]:
        """Warnings in force for ``groups`` (none while enforcement is off)."""
        enforcer = self.context.enforcer
        if enforcer is None:
            return []
        by_group = enforcer.warnings()
        return [w for g in sorted(set(groups)) for w in by_group.get(g, ())]

    # -- forgiving query parameters --------------------------------------------------
    def int_argument(self, name: str) -> int | None:
        value = self.get_argument(name, "")
        if not value:
            return None
        # isdigit() alone takes digits int() refuses, such as superscripts.
        if not (value.isascii() and value.isdigit()) or len(value) > 18:
            self.notes.append(f"Ignored {name}={value[:40]!r}: not a whole number.")
            return None
        return int(value)

    def kind_argument(self, allowed: tuple[PeriodKind, ...]) -> PeriodKind:
        value = self.get_argument("period", "")
        for kind in allowed:
            if value == kind.value:
                return kind
        if value:
            self.notes.append(f"Ignored period={value[:40]!r}: use day or month.")
        return PeriodKind.MONTH

    def date_argument(self, name: str) -> datetime | None:
        value = self.get_argument(name, "")
        if not value:
            return None
        try:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            day = None
        if day is None or not 2000 <= day.year <= 2199:
            self.notes.append(f"Ignored {name}={value[:40]!r}: use a date like 2026-01-31.")
            return None
        return day


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
        page = await store.read(views.my_usage, store, caller.name, rng, before, WIDE)
        warnings = [
            w
            for w in self.enforcement_warnings(b.group for b in page.budgets)
            if w.user in ("", caller.name)
        ]
        self.render_page(
            "usage.html",
            page=page,
            period=kind.value,
            enforcement=enforcement_notices(warnings),
            flagged={i for w in warnings for i in w.sessions},
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
        if wanted:
            if not NAME.fullmatch(wanted):
                raise web.HTTPError(404, "There is no such group.")
            if not may_read_group(caller, Op.PAGE_GROUPS, wanted):
                raise web.HTTPError(403, "Only the group's PIs and admins may see its usage.")
            try:
                infos = [await store.read(store.group, wanted)]
            except UnknownGroupError:
                raise web.HTTPError(
                    404, "That group has no allocation in accounting (yet)."
                ) from None
        else:
            led = set(caller.groups_led)
            infos = await store.read(store.groups, led) if led else []
        kind = self.kind_argument((PeriodKind.DAY, PeriodKind.MONTH))
        rng = views.recent_range(kind, store.clock(), HISTORY_LENGTH[kind])
        reports = [
            await store.read(views.group_report, store, info, caller.name, rng, (HALF, HALF))
            for info in infos
        ]
        charts = {
            r.info.name: {"burn_down": r.burn_down_data, "usage": r.history.to_json()}
            for r in reports
        }
        warnings = self.enforcement_warnings(r.info.name for r in reports)
        self.render_page(
            "groups.html",
            reports=reports,
            reports_json=charts,
            period=kind.value,
            focus=wanted,
            enforcement={
                r.info.name: enforcement_notices(w for w in warnings if w.group == r.info.name)
                for r in reports
            },
            flagged={i for w in warnings for i in w.sessions},
        )


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
        (prefix + "static/(.*)", web.StaticFileHandler, {"path": str(STATIC)}),
    ]


__all__ = ["page_routes", "render"]
