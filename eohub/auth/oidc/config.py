"""What a hub admin configures on OIDCAuthenticator, and the OIDC defaults it changes.

The traits live in :class:`OIDCSettings`, a mixin placed before oauthenticator in the
MRO, so its defaults (PKCE on, ``openid`` scope, ``preferred_username``, auth_state
on) win over oauthenticator's and the validators refuse unsafe settings at start-up.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, Float, List, TraitError, Unicode, default, observe, validate
from traitlets.config import LoggingConfigurable

from eohub.adapters.oidc import DEFAULT_ALGORITHMS, algorithm_problem
from eohub.domain.identity.entitlements import EGI_ENTITLEMENT_PATTERN, compile_entitlement_pattern
from eohub.domain.identity.groups import GroupConfigError
from eohub.logs import get_logger

log = get_logger(__name__)


class OIDCSettings(LoggingConfigurable):
    """The OpenID Connect options of :class:`eohub.auth.oidc.authenticator.OIDCAuthenticator`."""

    issuer = Unicode(
        help="""
        The provider's issuer URL, exactly as its discovery document announces it, e.g.
        ``https://keycloak.example.org/realms/research`` or
        ``https://aai.egi.eu/auth/realms/egi``. The authorization, token, userinfo,
        end-session and JWKS endpoints are read from
        ``{issuer}/.well-known/openid-configuration``; endpoint URLs you set explicitly
        (``authorize_url``, ``token_url``, ``userdata_url``) take precedence.

        Leave it empty only with a GenericOAuthenticator-style config that sets
        ``authorize_url``, ``token_url`` and ``userdata_url``: the issuer is then looked
        for once, at the first login, among the authorize URL's path prefixes, and
        used only if its discovery document announces those same endpoints; if none
        does, logins run as plain OAuth 2 without ID tokens (the log says which).
        Set it to require ID token verification.
        """,
    ).tag(config=True)
    discovery_cache_seconds = Float(
        3600,
        help="""
        How long (seconds) the discovery document and the provider's signing keys are
        reused before being fetched again. A token signed with a key the hub has not
        seen always triggers one refetch of the keys, so key rotation needs no restart.
        """,
    ).tag(config=True)
    id_token_algorithms = List(
        Unicode(),
        default_value=list(DEFAULT_ALGORITHMS),
        help="""
        Signature algorithms accepted on ID tokens. Only asymmetric algorithms can be
        listed: ``none`` and ``HS256``/``HS384``/``HS512`` are refused at start-up. Narrow it to
        what your provider uses (Keycloak and EGI Check-in sign with RS256).
        """,
    ).tag(config=True)
    id_token_leeway = Float(
        60,
        help="""
        Clock skew (seconds) tolerated between the hub and the provider when checking an
        ID token's ``exp`` and ``iat``. Raise it only if the hub's clock cannot be fixed.
        """,
    ).tag(config=True)
    entitlement_claim = Unicode(
        "eduperson_entitlement",
        help="""
        User-info claim holding entitlement URNs (EGI Check-in, AARC-G002). Each URN
        that matches ``entitlement_pattern`` adds its group, which then goes through
        ``group_rules``; a role such as ``role=manager`` in ``pi_roles`` makes the user a PI of
        that group. Set to "" to ignore entitlements.
        """,
    ).tag(config=True)
    entitlement_pattern = Unicode(
        EGI_ENTITLEMENT_PATTERN,
        help="""
        Regular expression that an entitlement must match in full, with a named group
        ``(?P<group>...)`` and optionally ``(?P<role>...)`` and ``(?P<authority>...)``. The
        default reads EGI Check-in URNs such as
        ``urn:mace:egi.eu:group:vo.example.org:climate:role=manager#aai.egi.eu``
        (group ``vo.example.org:climate``, role ``manager``).
        """,
    ).tag(config=True)
    logout_from_provider = Bool(
        True,
        help="""
        After the hub logout, send the browser to the provider's ``end_session_endpoint``
        (with ``id_token_hint``) so the provider's session ends too; otherwise the next
        hub login would pass straight through. Used when the provider announces an
        end-session endpoint; ``logout_redirect_url`` applies otherwise.
        """,
    ).tag(config=True)
    post_logout_redirect_uri = Unicode(
        "",
        help="""
        Where the provider sends the browser after its logout, e.g.
        ``https://hub.example.org/hub/login``. It must be registered as a valid post-logout
        redirect URI of the client at the provider. Empty: the provider shows its own
        logged-out page.
        """,
    ).tag(config=True)

    # The environment variables GenericOAuthenticator reads keep working unchanged.

    @default("login_service")
    def _login_service_default(self) -> str:
        return os.environ.get("LOGIN_SERVICE", "OpenID Connect")

    @default("username_claim")
    def _username_claim_default(self) -> str:
        return os.environ.get("OAUTH2_USERNAME_KEY", "preferred_username")

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email"]

    @default("basic_auth")
    def _basic_auth_default(self) -> bool:
        # client_secret_basic is OIDC's default token endpoint authentication method.
        return os.environ.get("OAUTH2_BASIC_AUTH", "true").lower() in {"true", "1"}

    @default("enable_pkce")
    def _enable_pkce_default(self) -> bool:
        return True

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        # Refresh and RP-initiated logout need the tokens; without a crypt key the hub
        # stops at start-up with a message saying so, rather than half-working.
        return True

    @validate("id_token_algorithms")
    def _validate_algorithms(self, proposal: dict[str, Any]) -> list[str]:
        algorithms = list(proposal["value"])
        if not algorithms:
            raise TraitError("OIDCAuthenticator.id_token_algorithms must not be empty")
        for alg in algorithms:
            problem = algorithm_problem(alg)
            if problem:
                raise TraitError(f"OIDCAuthenticator.id_token_algorithms: {problem}")
        return algorithms

    @validate("id_token_leeway", "discovery_cache_seconds")
    def _validate_non_negative(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if value < 0:
            raise TraitError(f"OIDCAuthenticator.{proposal['trait'].name} must be >= 0")
        return value

    @validate("entitlement_pattern")
    def _validate_entitlement_pattern(self, proposal: dict[str, Any]) -> str:
        where = "OIDCAuthenticator.entitlement_pattern"
        try:
            compile_entitlement_pattern(proposal["value"], where)
        except GroupConfigError as e:
            raise TraitError(str(e)) from e
        return str(proposal["value"])

    @validate("scope")
    def _validate_scope(self, proposal: dict[str, Any]) -> list[str]:
        if "openid" not in proposal["value"]:
            raise TraitError(
                "OIDCAuthenticator.scope must include 'openid': eohub logs in with OpenID"
                " Connect (a provider without it needs oauthenticator's own authenticators)"
            )
        return list(proposal["value"])

    @observe("enable_pkce")
    def _warn_pkce_off(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            log.warning("PKCE is off: stolen authorization codes can then be redeemed")
