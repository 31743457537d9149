"""OIDCAuthenticator: OpenID Connect login (Keycloak, EGI Check-in, ...) with eohub groups.

oauthenticator's ``GenericOAuthenticator`` runs the code flow (state, PKCE, token
exchange, userinfo). This class adds what makes it OpenID Connect rather than plain
OAuth 2: discovery from the ``issuer``, a verified ID token (signature against the
provider's JWKS, issuer, audience, lifetime and the login's nonce), RP-initiated
logout, and a refresh that re-checks the user against the hub's group policy.

Groups come from a claim and from entitlement URNs; :class:`GroupPolicyMixin` maps
them and answers every access question, so oauthenticator's own ``allowed_groups`` /
``admin_groups`` logic never decides anything here.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPRequest
from traitlets import default

from eohub.adapters.oidc import (
    DiscoveryError,
    IDTokenRejected,
    ProviderClient,
    ProviderMetadata,
)
from eohub.auth.common import GroupPolicyMixin
from eohub.auth.oidc.claims import claim_at, claimed_groups, entitlement_roles, string_list
from eohub.auth.oidc.config import OIDCSettings
from eohub.auth.oidc.generic import (
    NotADiscoveryDocument,
    default_login_name_pattern,
    derive_issuer,
    startup_problems,
    warn_username_claim_unset,
)
from eohub.auth.oidc.handlers import (
    CONFIG_PROBLEM,
    OIDCCallbackHandler,
    OIDCLoginHandler,
    OIDCLogoutHandler,
    login_nonce,
    provider_unusable,
)
from eohub.domain.identity.entitlements import compile_entitlement_pattern
from eohub.domain.identity.profile import AUTH_STATE_KEY, UserProfile
from eohub.domain.identity.usernames import EMAIL_LIKE_USERNAME_PATTERN
from eohub.logs import get_logger

log = get_logger(__name__)

_ENDPOINT_TRAITS = {
    "authorize_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "userdata_url": "userinfo_endpoint",
}


class TokenResponse(dict[str, Any]):
    """The token endpoint's JSON, carrying the verified ID token claims alongside.

    It is stored in ``auth_state["token_response"]`` as the plain dict it is; the
    claims ride along only until the user info is fetched.
    """

    id_token_claims: dict[str, Any] | None = None


def _refused(message: str) -> web.HTTPError:
    return web.HTTPError(403, f"Login refused: {message}")


class OIDCAuthenticator(GroupPolicyMixin, OIDCSettings, GenericOAuthenticator):  # type: ignore[misc]
    """Log in with an OpenID Connect provider; groups, admins and PIs from its claims.

    Set ``issuer``, ``client_id``, ``client_secret`` and ``oauth_callback_url``; the
    endpoints are discovered. Requires ``JUPYTERHUB_CRYPT_KEY`` (auth_state holds the
    tokens used for refresh and logout).

    A GenericOAuthenticator config (endpoint URLs, no ``issuer``) runs unchanged: see
    :mod:`eohub.auth.oidc.generic` for how the issuer is then found, or not.
    """

    login_handler = OIDCLoginHandler
    callback_handler = OIDCCallbackHandler
    logout_handler = OIDCLogoutHandler

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._provider: ProviderClient | None = None
        self._configured_endpoints = {name for name in _ENDPOINT_TRAITS if getattr(self, name)}
        self._issuer_lock = asyncio.Lock()
        # When no provider vouched for the configured endpoints: plain OAuth 2, until
        # the search runs again (after discovery_cache_seconds).
        self._plain_oauth2 = False
        self._plain_since = 0.0

    @default("login_name_pattern")
    def _login_name_pattern_default(self) -> str:
        return default_login_name_pattern(self.username_claim)

    def check_allow_config(self) -> None:
        problems = startup_problems(self)
        if problems:
            raise ValueError("; ".join(f"OIDCAuthenticator.{p}" for p in problems))
        warn_username_claim_unset(self)
        if self.login_name_pattern == EMAIL_LIKE_USERNAME_PATTERN:
            log.info(
                "OIDC user names come from {claim!r} and must match the e-mail-like"
                " login_name_pattern {pattern} (any domain); to admit only your domains,"
                " set OIDCAuthenticator.login_name_pattern, e.g. {example}",
                claim=self.username_claim,
                pattern=self.login_name_pattern,
                example=r"[a-z0-9._+-]+@example\.org",
            )
        if not self.validate_server_cert:
            # Checked here: traitlets does not notify a False set over the static default.
            log.warning(
                "OIDCAuthenticator.validate_server_cert is False: anyone on the network path"
                " to the provider can then impersonate it and log in as any user"
            )
        if not self.issuer:
            log.warning(
                "OIDCAuthenticator.issuer is not set: at the first login eohub looks for the"
                " provider whose discovery document announces authorize_url {url} and"
                " token_url, and then verifies ID tokens; if none does, logins run as plain"
                " OAuth 2 (the user from userdata_url, no ID token). Set"
                " OIDCAuthenticator.issuer to require ID token verification",
                url=self.authorize_url,
            )
        super().check_allow_config()

    # Discovery and verification.

    @property
    def provider(self) -> ProviderClient:
        """The provider client, built from the traits on first use."""
        if self._provider is None:
            if not self.issuer:
                raise DiscoveryError("OIDCAuthenticator.issuer is not set")
            self._provider = ProviderClient(
                self.issuer,
                self.client_id,
                self._fetch_json,
                cache_seconds=self.discovery_cache_seconds,
                algorithms=self.id_token_algorithms,
                leeway=self.id_token_leeway,
            )
        return self._provider

    async def _fetch_json(self, url: str) -> Any:
        return await self.httpfetch(
            url,
            label="fetching OIDC provider metadata",
            method="GET",
            headers={"Accept": "application/json"},
            validate_cert=self.validate_server_cert,
        )

    async def _fetch_discovery(self, url: str) -> Any:
        # Not httpfetch: it logs every 404 of the issuer search as an error.
        request = HTTPRequest(
            url,
            **{
                **self.http_request_kwargs,
                "method": "GET",
                "headers": {"Accept": "application/json"},
                "validate_cert": self.validate_server_cert,
            },
        )
        response = await self.http_client.fetch(request)
        try:
            return json.loads(response.body)
        except ValueError as e:
            kind = response.headers.get("Content-Type", "no Content-Type")
            raise NotADiscoveryDocument(f"HTTP {response.code} {kind}, not JSON") from e

    async def _has_issuer(self) -> bool:
        """Whether ID tokens can be verified: an issuer configured, or found once."""
        if not (self.issuer or self._plain_oauth2_current()):
            async with self._issuer_lock:
                if not (self.issuer or self._plain_oauth2_current()):
                    await self._derive_issuer()
        return bool(self.issuer)

    def _plain_oauth2_current(self) -> bool:
        age = time.monotonic() - self._plain_since
        return self._plain_oauth2 and age < self.discovery_cache_seconds

    async def _derive_issuer(self) -> None:
        # A DiscoveryError (provider unreachable) propagates: asked again next login.
        found = await derive_issuer(self.authorize_url, self.token_url, self._fetch_discovery)
        if found is None:
            was_plain, self._plain_oauth2 = self._plain_oauth2, True
            self._plain_since = time.monotonic()
            if was_plain:
                return  # searched again, still none: said once already
            log.warning(
                "No OIDC discovery document on {url}'s host announces the configured"
                " authorize_url and token_url: logging in with plain OAuth 2 (the user"
                " from userdata_url over the back channel; ID tokens are not used; logout"
                " uses logout_redirect_url). Set OIDCAuthenticator.issuer to require"
                " ID token verification",
                url=self.authorize_url,
            )
            return
        self.issuer, self._plain_oauth2 = found.issuer, False
        log.info(
            "OIDC issuer {issuer} found for the configured authorize_url: ID tokens are"
            " verified against its keys. Set OIDCAuthenticator.issuer to {issuer} to"
            " skip this look-up",
            issuer=found.issuer,
        )

    async def provider_metadata(self) -> ProviderMetadata | None:
        """The discovered metadata; fills the endpoint traits the admin did not set.

        None when there is no issuer (see :mod:`eohub.auth.oidc.generic`).
        """
        if not await self._has_issuer():
            return None
        metadata = await self.provider.metadata()
        for trait, field_name in _ENDPOINT_TRAITS.items():
            if trait in self._configured_endpoints:
                continue
            if trait == "userdata_url" and self.userdata_from_id_token:
                continue
            if getattr(self, trait) != getattr(metadata, field_name):
                setattr(self, trait, getattr(metadata, field_name))
        return metadata

    async def verify_id_token(self, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        """Verified claims of ``id_token``; a failed check ends the login with a 403."""
        try:
            return await self.provider.verify(id_token, nonce=nonce)
        except IDTokenRejected as e:
            log.warning(
                "ID token refused ({reason}): {detail}", reason=e.reason.value, detail=e.detail
            )
            raise _refused(
                f"the identity provider's ID token failed verification ({e.reason.value})."
            ) from e
        except DiscoveryError as e:
            raise provider_unusable(e) from e

    # oauthenticator's hooks, in the order authenticate() calls them.

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> TokenResponse:
        metadata = await self.provider_metadata()
        login = params.get("grant_type") == "authorization_code"
        try:
            token_info = await super().get_token_info(handler, params)
        except HTTPClientError as e:
            if not login:
                raise
            # A reused or expired code (a replayed callback, a slow user) lands here.
            log.warning(
                "The OIDC provider refused the authorization code: HTTP {status}", status=e.code
            )
            raise _refused("the identity provider did not accept this login.") from e
        tokens = TokenResponse(token_info)
        if metadata is None:
            # Plain OAuth 2: no keys to check an ID token with, so none is relied on.
            return tokens
        id_token = token_info.get("id_token")
        if login and not id_token:
            log.warning("The OIDC provider returned no ID token; is 'openid' in scope?")
            raise _refused("the identity provider returned no ID token.")
        if id_token:
            nonce = login_nonce(handler) if login else None
            tokens.id_token_claims = await self.verify_id_token(id_token, nonce=nonce)
        return tokens

    async def token_to_user(self, token_info: dict[str, Any]) -> dict[str, Any]:
        claims: dict[str, Any] | None = getattr(token_info, "id_token_claims", None)
        if self.userdata_from_id_token:
            # Never oauthenticator's unverified decode: only claims we checked.
            if claims is None and self._plain_oauth2:
                log.error(
                    "userdata_from_id_token needs a verified ID token, and no issuer is"
                    " known: set OIDCAuthenticator.issuer, or userdata_url instead"
                )
                raise web.HTTPError(503, CONFIG_PROBLEM)
            if claims is None:
                raise _refused("no verified ID token to read the user from.")
            return dict(claims)
        await self.provider_metadata()
        try:
            user_info: dict[str, Any] = await super().token_to_user(token_info)
        except HTTPClientError as e:
            log.warning(
                "The OIDC provider refused the user info request: HTTP {status}", status=e.code
            )
            raise _refused("the identity provider did not return your user information.") from e
        # OIDC Core 5.3.2: user info about someone else must not log this user in.
        if claims is not None and user_info.get("sub") != claims.get("sub"):
            log.warning("User info subject differs from the ID token subject")
            raise _refused("the identity provider's user information does not match.")
        return user_info

    def user_info_to_username(self, user_info: dict[str, Any]) -> str:
        if callable(self.username_claim):
            raw = self.username_claim(user_info)
        else:
            raw = claim_at(user_info, self.username_claim)
            if self.username_claim == "email" and user_info.get("email_verified") not in (
                True,
                "true",
            ):
                log.warning("Login refused: e-mail used as user name is not verified")
                raise _refused("your e-mail address is not verified at the identity provider.")
        if not isinstance(raw, str):
            log.warning(
                "Login refused: no {claim!r} claim in the user info", claim=self.username_claim
            )
            raise _refused("the identity provider sent no user name.")
        name, problem = self.checked_login_name(raw)
        if problem:
            log.warning(
                "Login refused for user name {user!r}: {why}; if such names should log in,"
                " widen OIDCAuthenticator.login_name_pattern (now {pattern})",
                user=name[:64],
                why=problem,
                pattern=self.login_name_pattern,
            )
            raise _refused(f"{problem}.")
        return name

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Resolve groups, roles and PIs into the shared eohub auth model."""
        auth_state: dict[str, Any] = auth_model["auth_state"]
        user_info = auth_state.get(self.user_auth_state_key) or {}
        username = str(auth_model["name"])
        raw_groups = await claimed_groups(self.auth_state_groups_key, auth_state)
        paths: list[str] = []
        group_roles: dict[str, frozenset[str]] = {}
        if self.entitlement_claim:
            paths, group_roles = entitlement_roles(
                string_list(claim_at(user_info, self.entitlement_claim)),
                compile_entitlement_pattern(self.entitlement_pattern),
                self.resolve_groups,
            )
        groups = self.resolve_groups([*raw_groups, *paths])
        profile = UserProfile(
            username=username,
            source="oidc",
            display_name=_text(user_info.get("name")),
            email=_text(user_info.get("email")),
            groups=groups,
            pi_of=self.resolve_pi_of(username, groups, group_roles=group_roles),
            group_roles=group_roles,
        )
        return self.auth_model_for(profile, extra_state=auth_state)

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        return set((auth_state.get(AUTH_STATE_KEY) or {}).get("groups") or ())

    async def _apply_managed_groups(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        # oauthenticator would recompute groups from the raw claim (skipping our
        # group_rules and entitlements) and admin from its own rule; the model from
        # update_auth_model is already final.
        return auth_model

    # Refresh and logout.

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Redeem the refresh token, re-verify, re-resolve groups, re-check access.

        Returns False (the user must log in again) when the provider refuses or the
        identity changed. When the hub's policy no longer lets the user in, they also
        lose everything they held (see
        :meth:`~eohub.auth.common.GroupPolicyMixin.withdraw_access`); otherwise the
        hub's groups and admin flag follow the provider's claims at once.
        """
        if not self.enable_auth_state:
            return True
        auth_state = await user.get_auth_state()
        if self.refresh_user_hook is not None:
            refreshed = await self._call_refresh_user_hook(user, auth_state)
            if refreshed is not None:
                return refreshed
        if not auth_state:
            return self.login_required(handler)
        try:
            model = await self._refreshed_model(auth_state)
        except (
            HTTPClientError,
            web.HTTPError,
            DiscoveryError,
            OSError,
            KeyError,
            ValueError,
        ) as e:
            log.info("Refresh of {user} failed, login required: {error}", user=user.name, error=e)
            return self.login_required(handler)
        old_sub = claim_at(auth_state, f"{self.user_auth_state_key}.sub")
        new_sub = claim_at(model["auth_state"], f"{self.user_auth_state_key}.sub")
        if model["name"] != user.name or old_sub != new_sub:
            log.warning(
                "Refresh of {user} returned another identity, login required", user=user.name
            )
            return self.login_required(handler)
        return await self.finish_refresh(user, model, handler)

    async def _refreshed_model(self, auth_state: dict[str, Any]) -> dict[str, Any]:
        refresh_token = auth_state.get("refresh_token")
        token_info: dict[str, Any]
        if refresh_token:
            params = self.build_refresh_token_request_params(refresh_token)
            token_info = await self.get_token_info(None, params)
            # Providers may keep the refresh token unchanged and not send it again.
            if not token_info.get("refresh_token"):
                token_info["refresh_token"] = refresh_token
        else:
            token_info = auth_state.get("token_response") or {}
        model: dict[str, Any] = await self._token_to_auth_model(token_info)
        if not model["auth_state"].get("id_token"):
            # Logout still needs an id_token_hint when the refresh sent no new one.
            model["auth_state"]["id_token"] = auth_state.get("id_token")
        return model

    async def end_session_url(
        self, auth_state: dict[str, Any] | None, state: str = ""
    ) -> str | None:
        """The provider's end-session URL for this user, or None to log out locally."""
        id_token = (auth_state or {}).get("id_token")
        if not self.logout_from_provider or not id_token:
            return None
        try:
            if not await self._has_issuer():
                return None  # plain OAuth 2: logout_redirect_url applies
            return await self.provider.end_session_url(
                id_token, self.post_logout_redirect_uri, state
            )
        except DiscoveryError as e:
            log.warning("Logging out of the hub only; provider unavailable: {error}", error=e)
            return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
