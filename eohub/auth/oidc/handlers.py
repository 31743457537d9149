"""The OIDC login, callback and logout handlers: oauthenticator's, plus nonce and logout.

oauthenticator keeps the OAuth ``state`` and the PKCE ``code_verifier`` in one signed,
http-only cookie that the callback reads and clears. The login handler adds the OIDC
``nonce`` to that same cookie and to the authorization request, so the callback can
match the ID token to this browser's login; the logout handler sends the browser on to
the provider's ``end_session_endpoint``.
"""

from __future__ import annotations

import secrets
from typing import Any

from oauthenticator.oauth2 import (
    OAuthCallbackHandler,
    OAuthLoginHandler,
    OAuthLogoutHandler,
    _deserialize_state,
    _serialize_state,
)
from tornado import web

from eohub.adapters.oidc import DiscoveryError, IssuerMismatch
from eohub.logs import get_logger

log = get_logger(__name__)

CONFIG_PROBLEM = "The hub's identity provider settings are wrong; tell the hub's admins."
UNREACHABLE = "The identity provider cannot be reached; try again later."


def provider_unusable(error: DiscoveryError) -> web.HTTPError:
    """The error page for a provider the hub cannot use, logged once with the cause.

    A wrong ``issuer`` is the admins' to fix, and waiting will not help: the user is
    told so, and the log names both issuers. Anything else is an outage.
    """
    if isinstance(error, IssuerMismatch):
        log.error(
            "OIDC issuer mismatch: the hub is configured with issuer {configured!r}, but the"
            " provider's discovery document announces {announced!r}; fix"
            " OIDCAuthenticator.issuer",
            configured=error.configured,
            announced=error.announced,
        )
        return web.HTTPError(500, CONFIG_PROBLEM)
    log.error("OIDC discovery failed: {error}", error=error)
    return web.HTTPError(503, UNREACHABLE)


def login_nonce(handler: Any) -> str:
    """The nonce this browser's login sent, from the state cookie the callback holds."""
    get_state_cookie = getattr(handler, "get_state_cookie", None)
    state = _deserialize_state(get_state_cookie() or "") if get_state_cookie else {}
    nonce = state.get("nonce") if isinstance(state, dict) else None
    if not isinstance(nonce, str) or not nonce:
        raise web.HTTPError(403, "Login refused: this login has no nonce; please log in again.")
    return nonce


async def ensure_metadata(handler: Any) -> None:
    """Discover the provider before a handler reads the endpoints from the authenticator."""
    try:
        await handler.authenticator.provider_metadata()
    except DiscoveryError as e:
        raise provider_unusable(e) from e


class OIDCLoginHandler(OAuthLoginHandler):  # type: ignore[misc]
    """Redirect to the provider with state, PKCE (S256) and a fresh nonce."""

    _nonce = ""

    async def get(self) -> None:
        await ensure_metadata(self)
        self._nonce = secrets.token_urlsafe(32)
        super().get()

    def set_state_cookie(self, state_cookie_value: str) -> None:
        state = _deserialize_state(state_cookie_value)
        state["nonce"] = self._nonce
        super().set_state_cookie(_serialize_state(state))

    def authorize_redirect(self, *args: Any, **kwargs: Any) -> None:
        kwargs["extra_params"] = {**(kwargs.get("extra_params") or {}), "nonce": self._nonce}
        super().authorize_redirect(*args, **kwargs)


class OIDCCallbackHandler(OAuthCallbackHandler):  # type: ignore[misc]
    """oauthenticator's callback, with discovery done before the code exchange."""

    async def get(self) -> None:
        await ensure_metadata(self)
        await super().get()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):
            # tornado's own line would include the query string: the code and state.
            log.warning(
                "{method} {path}: HTTP {status}: {why}",
                method=self.request.method,
                path=self.request.path,
                status=value.status_code,
                why=value.log_message or value.reason or "",
            )
            return
        super().log_exception(typ, value, tb)


class OIDCLogoutHandler(OAuthLogoutHandler):  # type: ignore[misc]
    """After the hub logout, end the provider's session too (RP-initiated logout)."""

    _end_session_url: str | None = None

    async def handle_logout(self) -> None:
        await super().handle_logout()
        # The login cookie is gone, but this request still knows whose it was.
        user = self.current_user
        if user is not None:
            auth_state = await user.get_auth_state()
            # An opaque, fresh value: providers that require `state` on RP-initiated
            # logout then send the browser back to post_logout_redirect_uri.
            self._end_session_url = await self.authenticator.end_session_url(
                auth_state, state=secrets.token_urlsafe(16)
            )

    async def render_logout_page(self) -> None:
        if self._end_session_url:
            self.redirect(self._end_session_url)
            return
        await super().render_logout_page()
