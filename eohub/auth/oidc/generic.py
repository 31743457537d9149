"""Running a GenericOAuthenticator config unchanged: the issuer, refusals, start-up notes.

A GenericOAuthenticator config names the provider's endpoints (``authorize_url``,
``token_url``, ``userdata_url``) instead of its issuer. eohub then looks for the issuer
itself, once, at the first login: it tries the authorize URL's path prefixes on the
same origin, longest first, and takes the first whose discovery document announces
that very issuer *and* the configured authorization and token endpoints. So only the
provider the admin already trusts with the tokens can supply the keys that verify
its ID tokens. When none does, logins run as plain OAuth 2, as GenericOAuthenticator
runs them: the user comes from ``userdata_url``, fetched with the access token the
token endpoint returned over the back channel, and the ID token is not used.

Only answers count: a candidate that answers a discovery URL with a server error, a
network failure or a page that is not JSON (a maintenance page served with 200) has
not said "no issuer here", so the login fails with a 503 and the search runs again at
the next login. A plain OAuth 2 decision is itself searched again after
``discovery_cache_seconds`` (a 404 during maintenance does not stick until restart).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError

from eohub.adapters.oidc import DiscoveryError, IssuerMismatch, ProviderMetadata, discover
from eohub.domain.identity.usernames import (
    DEFAULT_USERNAME_PATTERN,
    EMAIL_LIKE_USERNAME_PATTERN,
)
from eohub.logs import get_logger

log = get_logger(__name__)

FetchJSON = Callable[[str], Awaitable[Any]]

# Settings a GenericOAuthenticator config may carry that eohub cannot honour, and why.
REFUSED: dict[str, str] = {
    "allowed_scopes": (
        "eohub decides access from groups only, and re-checks it at every refresh; a"
        " granted scope is not re-checked. Map the scope to a group at the provider and"
        " list that group in allowed_groups"
    ),
}


def issuer_candidates(authorize_url: str) -> list[str]:
    """Possible issuers for ``authorize_url``: its path prefixes, longest first.

    ``https://kc.example.org/realms/r/protocol/openid-connect/auth`` gives
    ``.../realms/r/protocol/openid-connect``, ``.../realms/r/protocol``,
    ``.../realms/r``, ``.../realms`` and ``https://kc.example.org``.
    """
    parts = urlsplit(authorize_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return []
    segments = [s for s in parts.path.split("/") if s]
    candidates = []
    for end in range(max(len(segments) - 1, 0), -1, -1):
        path = "/" + "/".join(segments[:end]) if end else ""
        candidates.append(urlunsplit((parts.scheme, parts.netloc, path, "", "")))
    return candidates


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


class NotADiscoveryDocument(ValueError):
    """A discovery URL answered 2xx with something that is not JSON (an HTML page)."""


def _unanswered(error: DiscoveryError) -> bool:
    """Whether the candidate could not be asked, rather than answered "not me".

    Answers: a JSON document (announcing another issuer or endpoints) and a 4xx ("no
    discovery here"). Not answers: a 5xx, a network failure, a non-JSON 2xx page.
    """
    cause = error.__cause__
    if cause is None:
        return False  # a JSON document that does not fit: an answer
    if isinstance(cause, HTTPClientError):
        return cause.code >= 500
    return True


async def _discover(candidate: str, fetch_json: FetchJSON) -> ProviderMetadata:
    try:
        return await discover(candidate, fetch_json)
    except IssuerMismatch as e:
        # "https://idp.example.org/" announced for "https://idp.example.org".
        if isinstance(e.announced, str) and e.announced.rstrip("/") == candidate:
            return await discover(e.announced, fetch_json)
        raise


async def derive_issuer(
    authorize_url: str, token_url: str, fetch_json: FetchJSON
) -> ProviderMetadata | None:
    """The provider metadata that vouches for these endpoints, or None if none does.

    Raises :class:`DiscoveryError` when a candidate could not be asked (a network
    failure, a server error): the answer is then unknown, not "no issuer", and the
    caller tries again at the next login.
    """
    for candidate in issuer_candidates(authorize_url):
        try:
            metadata = await _discover(candidate, fetch_json)
        except DiscoveryError as e:
            if _unanswered(e):
                raise
            continue  # no discovery here (404, not JSON, another issuer)
        if _same_url(metadata.authorization_endpoint, authorize_url) and (
            not token_url or _same_url(metadata.token_endpoint, token_url)
        ):
            return metadata
    return None


# Claims whose values carry an "@domain" (EGI Check-in's voperson_id: "<id>@egi.eu").
SCOPED_CLAIMS = frozenset({"email", "voperson_id", "eduperson_principal_name", "eppn", "upn"})


def default_login_name_pattern(username_claim: Any) -> str:
    """``login_name_pattern`` when the admin sets none: e-mail-like for scoped claims.

    GenericOAuthenticator takes any name; eohub checks it. A claim whose values carry
    ``@domain`` gets :data:`EMAIL_LIKE_USERNAME_PATTERN`, so such a config loads
    unchanged; a callable keeps the conservative default (its names are unknown).
    """
    if isinstance(username_claim, str) and username_claim in SCOPED_CLAIMS:
        return EMAIL_LIKE_USERNAME_PATTERN
    return DEFAULT_USERNAME_PATTERN


def username_claim_unset(authenticator: Any) -> bool:
    """Whether a GenericOAuthenticator-style config (a ``c.GenericOAuthenticator``
    section, or endpoints without an issuer) leaves ``username_claim`` to the default,
    which differs: ``username`` there, ``preferred_username`` here."""
    config = authenticator.config
    configured = any(
        config._has_section(section)
        and bool({"username_claim", "username_key"} & set(config[section]))
        for section in authenticator.section_names()
    )
    if configured or os.environ.get("OAUTH2_USERNAME_KEY"):
        return False
    return bool(config._has_section("GenericOAuthenticator") or not authenticator.issuer)


def warn_username_claim_unset(authenticator: Any) -> None:
    """Log, at start-up, the WARNING of :func:`username_claim_unset`."""
    if username_claim_unset(authenticator):
        log.warning(
            "OIDCAuthenticator.username_claim is not set: eohub reads user names from"
            " {claim!r}, GenericOAuthenticator from 'username'. Set username_claim"
            " explicitly: existing hub users keep their names (servers, files, groups)"
            " only if the claim gives the same names",
            claim=authenticator.username_claim,
        )


def startup_problems(authenticator: Any) -> list[str]:
    """Why this configuration cannot run, one reason per setting (empty: it can)."""
    problems = [
        f"{name} is not supported: {why}"
        for name, why in REFUSED.items()
        if getattr(authenticator, name, None)
    ]
    if authenticator.issuer:
        return problems
    if not (authenticator.authorize_url and authenticator.token_url):
        problems.append(
            "issuer must be set to the provider's issuer URL (or, as in a"
            " GenericOAuthenticator config, authorize_url, token_url and userdata_url)"
        )
    elif not (authenticator.userdata_url or authenticator.userdata_from_id_token):
        problems.append(
            "userdata_url must be set when issuer is not: without a discovered issuer the"
            " user is read from the provider's userinfo endpoint"
        )
    return problems
