"""Base handlers: JupyterHub authentication, JSON bodies and errors.

API calls authenticate with a JupyterHub token (``Authorization: token ...``); pages
use HubOAuth cookies. Anything unauthenticated gets a 403, never a redirect, from the
API, and every error is a JSON body with a message (and field errors for bad input).

Authorisation: ``prepare`` builds a :class:`Caller` from the scopes JupyterHub reports
for the request's token (the hub's ``admin`` flag counts for nothing), and every
handler asks :func:`authorise` / :func:`select` from
:mod:`eohub.domain.accounting.access` before it reads or writes.

XSRF, as JupyterHub >= 4.1 checks it for services: a token in the ``Authorization``
header is exempt; a request authenticated by the OAuth cookie that changes state (or
any non-navigation request) must echo the ``_xsrf`` cookie in an ``X-XSRFToken``
header or an ``_xsrf`` form field. Otherwise HubOAuth ignores the cookie, the request
is anonymous, and gets 403 before anything changes.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from eohub.accounting.service.context import CONTEXT_SETTING, ServiceContext
from eohub.adapters.accounting_db.errors import database_unavailable
from eohub.domain.accounting.access import (
    Caller,
    Forbidden,
    Grant,
    Kind,
    Op,
    Selection,
    authorise,
    select,
)
from eohub.domain.accounting.events import EventError
from eohub.domain.accounting.requests import MAX_BODY_BYTES, decode_json_body
from eohub.logs import get_logger

log = get_logger(__name__)

MAX_BODY = MAX_BODY_BYTES


class AppHubAuth:
    """``hub_auth`` is the application's HubOAuth.

    JupyterHub's handlers default to ``HubOAuth.instance()``; the pages keep their OAuth
    state and PKCE verifier on the instance in the application settings, so the handlers
    and the OAuth callback must all use that one.
    """

    settings: dict[str, Any]

    @property
    def hub_auth(self) -> HubOAuth:
        auth: HubOAuth = self.settings["hub_auth"]
        return auth

    @hub_auth.setter
    def hub_auth(self, value: HubOAuth) -> None:  # pragma: no cover - HubAuthenticated API
        raise AttributeError("hub_auth comes from the application settings")


class BaseHandler(AppHubAuth, HubOAuthenticated, web.RequestHandler):  # type: ignore[misc]
    """Identifies the caller once per request, in ``prepare``."""

    caller: Caller | None = None

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Tornado's own logs the whole URI, and a query string can hold a token
        # (``?token=``, refused here but still sent): the path only, as the access log.
        where = f"{self.request.method} {self.request.path}"
        if isinstance(value, web.HTTPError):
            if value.log_message:
                message = value.log_message % value.args if value.args else value.log_message
                log.warning(
                    "{status} {where}: {message}",
                    status=value.status_code,
                    where=where,
                    message=message,
                )
        else:
            # Tornado calls this inside its ``except``: sys.exc_info() is (typ, value, tb).
            log.exception("Uncaught exception in {where}", where=where)  # noqa: LOG004

    @property
    def context(self) -> ServiceContext:
        """The service's context, from the application settings (see ``context.py``)."""
        context: ServiceContext = self.settings[CONTEXT_SETTING]
        return context

    async def prepare(self) -> None:
        self._in_flight = True
        self.context.in_flight.begin()
        model = await self.hub_auth.get_user(self, sync=False)
        if model:
            name = str(model["name"])
            kind = Kind.USER if model.get("kind", "user") == "user" else Kind.SERVICE
            store = self.context.store
            pi_of = await store.read(store.pi_groups, name) if kind is Kind.USER else set()
            # The token's own scopes, as the hub reported them: a narrowed token of a
            # hub admin holds only what it was narrowed to.
            groups = model.get("groups") if kind is Kind.USER else None
            self.caller = Caller(
                name,
                kind,
                frozenset(model.get("scopes", [])),
                frozenset(pi_of),
                # The hub groups the user is in: the usage page shows their budgets.
                frozenset(str(g) for g in groups) if isinstance(groups, list) else frozenset(),
            )

    def on_finish(self) -> None:
        if getattr(self, "_in_flight", False):
            self._in_flight = False
            self.context.in_flight.end()

    def get_current_user(self) -> Caller | None:
        return self.caller

    def authorise(self, op: Op) -> Grant:
        """The caller's grant for ``op`` (see the table); 403 with the reason if none."""
        try:
            return authorise(self.caller, op)
        except Forbidden as e:
            raise web.HTTPError(403, e.message) from None

    def select(self, op: Op, *, user: str | None = None, group: str | None = None) -> Selection:
        """The rows of ``user``/``group`` the caller may see through ``op``, or 403."""
        try:
            return select(self.caller, op, user=user, group=group)
        except Forbidden as e:
            raise web.HTTPError(403, e.message) from None

    def cookie_without_xsrf(self) -> bool:
        """True when the OAuth cookie was ignored because the XSRF check failed."""
        return (
            not getattr(self, "_token_authenticated", False)
            and self.request.method not in ("GET", "HEAD", "OPTIONS")
            and bool(self.hub_auth._get_token_cookie(self))
        )


class APIHandler(BaseHandler):
    """JSON in, JSON out; 403 for anonymous callers; errors as JSON."""

    # check_xsrf_cookie is HubAuthenticated's: HubOAuth calls it before it accepts the
    # cookie, and skips it for token-authenticated requests, exactly as in JupyterHub.

    async def prepare(self) -> None:
        await super().prepare()
        if self.caller is None:
            if self.cookie_without_xsrf():
                raise web.HTTPError(
                    403,
                    "A request authenticated by the login cookie that changes state needs "
                    "the _xsrf cookie's value in an X-XSRFToken header or _xsrf field.",
                )
            raise web.HTTPError(403, "A JupyterHub token is required (Authorization: token ...).")

    def json_body(self) -> Any:
        """The body's JSON value: 413 past ``MAX_BODY``, 400 if too deep or not JSON.

        The declared Content-Length is checked first, so an oversized body is refused
        before anything parses it (the HTTP server's own ``max_body_size`` bounds what
        it reads at all).
        """
        return decode_json_body(self.raw_body())

    def raw_body(self) -> bytes:
        """The body, not parsed yet: 413 past ``MAX_BODY`` (declared or read)."""
        declared = self.request.headers.get("Content-Length", "")
        body = self.request.body
        too_large = declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY
        if too_large or len(body) > MAX_BODY:
            raise web.HTTPError(413, f"The request body is larger than {MAX_BODY} bytes.")
        return body

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.clear_header("Content-Disposition")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, sort_keys=True))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        body: dict[str, Any] = {"status": status_code, "message": self._reason}
        exc_info = kwargs.get("exc_info")
        if exc_info:
            error = exc_info[1]
            if isinstance(error, web.HTTPError) and error.log_message:
                body["message"] = (
                    error.log_message % error.args if error.args else error.log_message
                )
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.clear_header("Content-Disposition")  # an export's error is not its file
        self.finish(json.dumps(body))

    def send_error_for(self, error: EventError) -> None:
        self.write_json(
            {"status": 400, "message": "The request has invalid fields.", "errors": error.errors},
            400,
        )

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, EventError):
            self.send_error_for(e)
            return
        if database_unavailable(e):
            # The database is unreachable, went away mid-request or is too busy (see
            # database_unavailable). The transaction rolled back, so the caller can
            # safely send the same request again; 503 tells the hub's client to do so.
            # Any other database error is a 500: a resend would fail the same way.
            log.warning(
                "Database unavailable for {path}: {error}",
                path=self.request.path,
                error=type(e).__name__,
            )
            self.write_json(
                {"status": 503, "message": "The accounting database is unavailable; retry."}, 503
            )
            return
        super()._handle_request_exception(e)


class OAuthCallbackHandler(AppHubAuth, HubOAuthCallbackHandler):  # type: ignore[misc]
    """Finishes the pages' OAuth login with the application's own HubOAuth."""
