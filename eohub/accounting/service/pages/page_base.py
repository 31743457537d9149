"""What every page handler shares: the templates, their filters, and :class:`PageHandler`.

Pages are rendered on the server with Jinja2 (autoescaped), link the hub's stylesheet so
they look like the hub, and turn errors into HTML pages rather than tracebacks. The
handlers themselves are in :mod:`.handlers` (the reports) and :mod:`.stop_handler`
(stopping a member's server).
"""

from __future__ import annotations

import functools
import http
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from tornado import web

from eohub._version import __version__
from eohub.accounting.scopes import Caller
from eohub.accounting.service.handlers import BaseHandler
from eohub.accounting.service.pages.budgets import describe_allocation
from eohub.accounting.service.pages.words import LifetimeWarning, size_text
from eohub.domain.accounting.enforcement import WarningInfo
from eohub.domain.accounting.periods import PeriodKind
from eohub.domain.reports.charts import Frame
from eohub.domain.reports.wording import (
    duration_text,
    hours_text,
    possessive,
    quantity,
    whose_server,
)
from eohub.domain.wording import idle_limit_text, size_limit_text, span_text

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: Only pages of the hub's own origin may frame the service's pages.
FRAME_POLICY = "frame-ancestors 'self'"
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
    env.filters["hours"] = hours_text
    env.filters["quantity"] = quantity
    env.filters["duration"] = duration_text
    env.filters["possessive"] = possessive
    env.globals["whose_server"] = whose_server
    env.filters["when"] = lambda t: DASH if t is None else t.strftime("%Y-%m-%d %H:%M")
    env.filters["day"] = lambda t: t.strftime("%Y-%m-%d")
    env.filters["size"] = lambda b: DASH if b is None else size_text(b)  # "300.0 KiB"
    env.filters["size_limit"] = lambda b: DASH if b is None else size_limit_text(b)  # "1 GiB"
    env.filters["percent"] = lambda v: DASH if v is None else f"{v:.0f}%"
    env.filters["sentence"] = lambda text: text[:1].upper() + text[1:]
    env.filters["renews"] = describe_allocation
    env.filters["span"] = span_text  # a limit: "2 hours"
    env.globals["idle_limit"] = idle_limit_text
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

    def set_default_headers(self) -> None:
        # No other site may frame these pages (clickjacking a stop confirmation):
        # frame-ancestors for current browsers, X-Frame-Options for older ones. Error
        # pages keep them too (Tornado resets headers to these before an error).
        super().set_default_headers()
        self.set_header("Content-Security-Policy", FRAME_POLICY)
        self.set_header("X-Frame-Options", "SAMEORIGIN")

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
        if status_code >= 500 and not (isinstance(error, web.HTTPError) and message):
            # An unexpected error; a deliberate one (the hub is unreachable) says why.
            message = "Something went wrong on our side; the service log has the details."
        try:
            reason = http.HTTPStatus(status_code).phrase
        except ValueError:
            reason = self._reason
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            self.render_text("error.html", status_code=status_code, reason=reason, message=message)
        )

    def lifetime_warnings(self, user: str | None = None) -> list[LifetimeWarning]:
        """The coming max-duration stops (only ``user``'s when given); none while session
        limits are not enforced."""
        return list(self.context.lifetime_warnings(user).values())

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


__all__ = [
    "DASH",
    "FRAME_POLICY",
    "HALF",
    "STATIC",
    "WIDE",
    "PageHandler",
    "environment",
    "render",
]
