"""Base handlers: JupyterHub authentication, JSON bodies and errors.

API calls authenticate with a JupyterHub token (``Authorization: token ...``); pages
use HubOAuth cookies. Anything unauthenticated gets a 403, never a redirect, from the
API, and every error is a JSON body with a message (and field errors for bad input).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from sqlalchemy.exc import DBAPIError, OperationalError
from tornado import web

from eohub.accounting.scopes import Caller
from eohub.domain.accounting_events import EventError

if TYPE_CHECKING:
    from eohub.accounting.app import AccountingService

MAX_BODY = 16 * 1024 * 1024


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

    @property
    def service(self) -> AccountingService:
        service: AccountingService = self.settings["eohub_service"]
        return service

    async def prepare(self) -> None:
        model = await self.hub_auth.get_user(self, sync=False)
        if model:
            name = str(model["name"])
            kind = str(model.get("kind", "user"))
            pi_of = self.service.store.pi_groups(name) if kind == "user" else set()
            self.caller = Caller(
                name,
                kind,
                frozenset(model.get("scopes", [])),
                frozenset(pi_of),
                hub_admin=bool(model.get("admin")) and self.service.hub_admins_are_admins,
            )

    def get_current_user(self) -> Caller | None:
        return self.caller


class APIHandler(BaseHandler):
    """JSON in, JSON out; 403 for anonymous callers; errors as JSON."""

    def check_xsrf_cookie(self) -> None:
        # Token-authenticated API calls carry no cookie; HubAuth already refuses
        # cookie-authenticated writes without the XSRF token (its own _patch_xsrf).
        return

    async def prepare(self) -> None:
        await super().prepare()
        if self.caller is None:
            raise web.HTTPError(403, "A JupyterHub token is required (Authorization: token ...).")

    def json_body(self) -> Any:
        body = self.request.body
        if len(body) > MAX_BODY:
            raise web.HTTPError(413, "The request body is too large.")
        try:
            return json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise EventError({"body": f"is not valid JSON ({e})"}) from None

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, sort_keys=True))

    def require(self, allowed: bool, message: str) -> None:
        if not allowed:
            raise web.HTTPError(403, message)

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
        if (isinstance(e, DBAPIError) and e.connection_invalidated) or isinstance(
            e, OperationalError
        ):
            # The database went away mid-request (a restart, a cut connection). The
            # transaction rolled back, so the caller can safely send the same request
            # again; 503 tells the hub's client to do so.
            self.service.log.warning(
                "Database unavailable for %s: %s", self.request.path, type(e).__name__
            )
            self.write_json(
                {"status": 503, "message": "The accounting database is unavailable; retry."}, 503
            )
            return
        super()._handle_request_exception(e)


class OAuthCallbackHandler(AppHubAuth, HubOAuthCallbackHandler):  # type: ignore[misc]
    """Finishes the pages' OAuth login with the application's own HubOAuth."""
