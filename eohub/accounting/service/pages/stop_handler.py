"""Stopping a member's server from the pages: ask to confirm (GET), then stop (POST).

Only the PIs of the group the server's session is charged to, and accounting admins
(``custom:eohub-accounting:admin``), may stop it: the check is here, on the server, for
both the confirmation page and the stop, whatever the page showed. Someone who leads no
group and is no admin is refused before any session is looked up, and a session the
caller may not stop gets the same 404 as one that does not exist: the pages never tell
which sessions exist, nor which group they are charged to.

The POST is a form of the confirmation page carrying JupyterHub's XSRF token
(``_xsrf``); without it the login cookie counts for nothing and the answer is 403,
before anything is looked up. An API token (``Authorization: token ...``) is refused too:
stopping a member's server is a person's decision, made on the confirmation page. The
stop goes through the hub's REST API, and the ledger records who asked for it
(``sessions.stopped_by``); the hub's own stop event closes the session.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tornado import web

from eohub.accounting.service.pages import views
from eohub.accounting.service.pages.page_base import PageHandler
from eohub.accounting.service.pages.servers import (
    StopResult,
    hub_servers,
    running_servers,
    stop_member_server,
)
from eohub.adapters.accounting_db.store import UnknownGroupError
from eohub.adapters.hub_api import HubAPIError
from eohub.domain.accounting.access import Op, may_stop_server, may_stop_some_server
from eohub.domain.accounting.session_record import SessionRecord

NO_HUB = (
    "This accounting service has no connection to the hub's API (its reconcile and "
    "enforcement loops are off), so it cannot stop servers. Stop it from the hub's admin page."
)
NO_TOKENS = (
    "Servers are stopped from the confirmation page, logged in to the hub in a browser; "
    "an API token cannot stop them. Nothing was stopped."
)
NOT_YOURS = "Only the PIs of a group and accounting admins may stop servers. Nothing was stopped."
NO_SUCH_SESSION = (
    "There is no running server you may stop under that session number. Nothing was stopped."
)


class StopServerHandler(PageHandler):
    """``groups/stop?session=N``: confirm, then stop a member's running server."""

    async def prepare(self) -> None:
        await super().prepare()
        if self.caller is None and self.request.method == "POST":
            if self.cookie_without_xsrf():
                raise web.HTTPError(
                    403,
                    "The form did not carry this page's XSRF token (_xsrf), so nothing was "
                    "stopped. Open the page again from My groups and confirm there.",
                )
            raise web.HTTPError(403, "Log in to the hub to stop a server.")
        if self.request.method == "POST" and getattr(self, "_token_authenticated", False):
            # JupyterHub exempts token requests from the XSRF check: a script holding a
            # PI's token must not stop servers without the person's confirmation.
            raise web.HTTPError(403, NO_TOKENS)

    async def checked_session(self) -> SessionRecord:
        """The session asked for, once the caller is known to be allowed to stop it."""
        self.authorise(Op.STOP_SERVER)
        if not may_stop_some_server(self.caller):
            raise web.HTTPError(403, NOT_YOURS)
        raw = self.get_argument("session", "")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise web.HTTPError(400, "Say which server to stop: session must be a number.")
        store = self.context.store
        session = await store.read(store.session, int(raw))
        if session is None or not may_stop_server(self.caller, session.group):
            raise web.HTTPError(404, NO_SUCH_SESSION)
        return session

    async def group_label(self, name: str) -> str:
        store = self.context.store
        try:
            info = await store.read(store.group, name)
        except UnknownGroupError:
            return name
        return info.display_name or name

    @web.authenticated
    async def get(self) -> None:
        session = await self.checked_session()
        now = self.context.store.clock()
        listed = await hub_servers(self.context.hub, [session.user])
        [server] = running_servers([views.session_row(session, now)], listed, now)
        self.render_page(
            "stop.html",
            server=server,
            closed=session.stopped_at is not None,
            group_label=await self.group_label(session.group),
            hub_known=listed is not None,
            back=self.groups_url(session.group),
        )

    @web.authenticated
    async def post(self) -> None:
        session = await self.checked_session()
        caller = self.caller
        assert caller is not None
        hub = self.context.hub
        if hub is None:
            raise web.HTTPError(503, NO_HUB)
        store = self.context.store
        try:
            result = await stop_member_server(store, hub, session, caller.name)
        except HubAPIError as e:
            raise web.HTTPError(
                502, "The hub did not answer the stop request (%s); nothing was stopped.", e
            ) from None
        query: dict[str, Any] = {"group": session.group, "stopped": session.id}
        if result is not StopResult.STOPPED:
            query["result"] = result.value
        self.redirect(f"{self.prefix}groups?{urlencode(query)}", status=303)

    def groups_url(self, group: str) -> str:
        return f"{self.prefix}groups?{urlencode({'group': group})}"


__all__ = ["StopServerHandler"]
