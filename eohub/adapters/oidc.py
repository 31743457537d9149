"""OpenID Connect I/O: provider discovery, the signing keys (JWKS), and ID token checks.

The authenticator hands in one ``fetch_json`` coroutine (oauthenticator's ``httpfetch``
in the hub), so every request goes through the same non-blocking client, timeouts and
TLS settings. Errors are translated here, once: :class:`DiscoveryError` when the
provider cannot be used, and :class:`IDTokenRejected` with a :class:`Rejection` code
when an ID token must not be trusted. Neither message ever contains a token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
from tornado.httpclient import AsyncHTTPClient
from tornado.httputil import url_concat

from eohub.logs import get_logger

log = get_logger(__name__)

FetchJSON = Callable[[str], Awaitable[Any]]

# Asymmetric algorithms only: a symmetric (HS*) token would be checked against a key
# the client also holds, and "none" is no signature at all.
DEFAULT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")
FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})


def algorithm_problem(alg: str) -> str | None:
    """Why ``alg`` may never verify an ID token, or None when it may be allowed."""
    if alg.lower() == "none" or alg.upper().startswith("HS") or alg in FORBIDDEN_ALGORITHMS:
        return f"{alg!r} is not an asymmetric signature algorithm"
    if alg not in jwt.algorithms.get_default_algorithms():
        return f"{alg!r} is not an algorithm PyJWT can verify"
    return None


class DiscoveryError(RuntimeError):
    """The provider's discovery document or key set cannot be fetched or trusted."""


class IssuerMismatch(DiscoveryError):
    """The provider announces another issuer than the hub's config: a setting is wrong.

    Unlike an unreachable provider, waiting will not help; an admin must fix the
    hub's ``issuer`` (often a missing or extra trailing slash, or a realm name).
    """

    def __init__(self, configured: str, announced: object) -> None:
        super().__init__(
            f"discovery document announces issuer {announced!r}, not the configured {configured!r}"
        )
        self.configured = configured
        self.announced = announced


class Rejection(StrEnum):
    """Why an ID token was refused; one code per check, for logs and tests."""

    MALFORMED = "malformed"
    DISALLOWED_ALGORITHM = "disallowed_algorithm"
    UNKNOWN_KEY = "unknown_key"
    BAD_KEY = "bad_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_AUTHORIZED_PARTY = "wrong_authorized_party"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    MISSING_CLAIM = "missing_claim"
    NONCE_MISMATCH = "nonce_mismatch"
    NONCE_REPLAYED = "nonce_replayed"


class IDTokenRejected(Exception):
    """An ID token failed verification; ``reason`` says which check."""

    def __init__(self, reason: Rejection, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


async def tornado_fetch_json(url: str) -> Any:
    """GET ``url`` with tornado's non-blocking client and parse the JSON body."""
    response = await AsyncHTTPClient().fetch(
        url, headers={"Accept": "application/json"}, request_timeout=10
    )
    return json.loads(response.body)


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of a discovery document the hub uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""
    code_challenge_methods: tuple[str, ...] = ()

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], expected_issuer: str) -> ProviderMetadata:
        # OIDC Discovery 4.3: the announced issuer must be exactly the one configured,
        # or a provider could speak for another.
        if doc.get("issuer") != expected_issuer:
            raise IssuerMismatch(expected_issuer, doc.get("issuer"))
        missing = [
            k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)
        ]
        if missing:
            raise DiscoveryError(f"discovery document lacks {', '.join(missing)}")
        return cls(
            issuer=expected_issuer,
            authorization_endpoint=str(doc["authorization_endpoint"]),
            token_endpoint=str(doc["token_endpoint"]),
            jwks_uri=str(doc["jwks_uri"]),
            userinfo_endpoint=str(doc.get("userinfo_endpoint") or ""),
            end_session_endpoint=str(doc.get("end_session_endpoint") or ""),
            code_challenge_methods=tuple(doc.get("code_challenge_methods_supported") or ()),
        )


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


async def discover(issuer: str, fetch_json: FetchJSON = tornado_fetch_json) -> ProviderMetadata:
    """Fetch and check ``{issuer}/.well-known/openid-configuration``."""
    try:
        doc = await fetch_json(discovery_url(issuer))
    except Exception as e:
        # fetch_json is injected, so its error types are not ours to list.
        raise DiscoveryError(f"cannot fetch {discovery_url(issuer)}: {e}") from e
    if not isinstance(doc, Mapping):
        raise DiscoveryError(f"{discovery_url(issuer)} did not return a JSON object")
    return ProviderMetadata.from_document(doc, issuer)


class JWKSCache:
    """The provider's public signing keys, by key id, fetched on demand.

    The set is refetched when it is older than ``max_age`` and at most once per
    verification when a token names an unknown key (the provider rotated its keys).
    """

    def __init__(
        self, jwks_uri: str, fetch_json: FetchJSON = tornado_fetch_json, *, max_age: float = 3600
    ) -> None:
        self.jwks_uri = jwks_uri
        self.max_age = max_age
        self.fetches = 0
        self._fetch_json = fetch_json
        self._keys: dict[str, _Key] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key that signed a token with header ``kid`` and ``alg``."""
        stale = self._fetched_at is None or time.monotonic() - self._fetched_at > self.max_age
        if stale:
            await self.refresh()
        found = self._find(kid, alg)
        if found is None and not stale:
            await self.refresh()
            found = self._find(kid, alg)
        if found is None:
            raise IDTokenRejected(
                Rejection.UNKNOWN_KEY, f"no signing key {kid!r} for {alg} in {self.jwks_uri}"
            )
        return found

    async def refresh(self) -> None:
        async with self._lock:
            try:
                doc = await self._fetch_json(self.jwks_uri)
            except Exception as e:
                # fetch_json is injected, so its error types are not ours to list.
                raise DiscoveryError(f"cannot fetch the key set {self.jwks_uri}: {e}") from e
            self.fetches += 1
            if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
                raise DiscoveryError(f"{self.jwks_uri} is not a JSON Web Key Set")
            self._keys = dict(_signing_keys(doc["keys"]))
            self._fetched_at = time.monotonic()

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        if kid is not None:
            key = self._keys.get(kid)
            return key.jwk if key is not None and key.fits(alg) else None
        # Without a kid, only an unambiguous key will do.
        fitting = [k.jwk for k in self._keys.values() if k.fits(alg)]
        return fitting[0] if len(fitting) == 1 else None


_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


@dataclass(frozen=True)
class _Key:
    kty: str
    alg: str | None
    jwk: jwt.PyJWK

    def fits(self, alg: str) -> bool:
        # A key published for one algorithm must not verify another (RFC 7517 4.4).
        return (self.alg is None or self.alg == alg) and _KEY_TYPES.get(alg[:2]) == self.kty


def _signing_keys(jwks: Iterable[Any]) -> Iterable[tuple[str, _Key]]:
    for index, data in enumerate(jwks):
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        if data.get("kty") == "oct":
            continue  # a published symmetric key could only serve forgeries
        try:
            jwk = jwt.PyJWK(data)
        except jwt.PyJWTError:
            continue  # a key type we cannot use must not hide the others
        kid = str(data.get("kid") or f"#{index}")
        yield kid, _Key(kty=str(data["kty"]), alg=data.get("alg"), jwk=jwk)


class SeenNonces:
    """Nonces already used in a login, remembered until their tokens expire."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def consume(self, nonce: str, until: float) -> bool:
        """Record ``nonce``; False if it was already used (a replayed login)."""
        now = time.time()
        for old in [n for n, t in self._until.items() if t < now]:
            del self._until[old]
        if nonce in self._until:
            return False
        self._until[nonce] = until
        return True


_DECODE_ERRORS: tuple[tuple[type[jwt.PyJWTError], Rejection], ...] = (
    (jwt.InvalidSignatureError, Rejection.BAD_SIGNATURE),
    (jwt.ExpiredSignatureError, Rejection.EXPIRED),
    (jwt.ImmatureSignatureError, Rejection.NOT_YET_VALID),
    (jwt.InvalidIssuedAtError, Rejection.NOT_YET_VALID),
    (jwt.InvalidAudienceError, Rejection.WRONG_AUDIENCE),
    (jwt.InvalidIssuerError, Rejection.WRONG_ISSUER),
    (jwt.MissingRequiredClaimError, Rejection.MISSING_CLAIM),
    (jwt.InvalidKeyError, Rejection.BAD_KEY),
    (jwt.InvalidAlgorithmError, Rejection.DISALLOWED_ALGORITHM),
)


@dataclass
class IDTokenVerifier:
    """Checks ID tokens from one issuer for one client (OIDC Core 3.1.3.7)."""

    issuer: str
    client_id: str
    keys: JWKSCache
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = 60.0
    seen_nonces: SeenNonces = field(default_factory=SeenNonces)

    def __post_init__(self) -> None:
        for alg in self.algorithms:
            problem = algorithm_problem(alg)
            if problem:
                raise ValueError(problem)

    async def verify(self, token: str, *, nonce: str | None = None) -> dict[str, Any]:
        """The token's verified claims; raises :class:`IDTokenRejected`.

        ``nonce`` is the value sent with this login's authorization request; a login
        passes it, a token refresh (which has no fresh nonce) passes None.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise IDTokenRejected(Rejection.MALFORMED, f"unreadable header: {e}") from e
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise IDTokenRejected(
                Rejection.DISALLOWED_ALGORITHM,
                f"algorithm {alg!r} is not one of {', '.join(self.algorithms)}",
            )
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None, alg)
        claims = self._decode(token, key, alg)
        self._check_authorized_party(claims)
        if nonce is not None:
            self._check_nonce(claims, nonce)
        return claims

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.PyJWTError as e:
            for error_type, reason in _DECODE_ERRORS:
                if isinstance(e, error_type):
                    raise IDTokenRejected(reason, str(e)) from e
            raise IDTokenRejected(Rejection.MALFORMED, str(e)) from e
        return claims

    def _check_authorized_party(self, claims: Mapping[str, Any]) -> None:
        aud = claims["aud"]
        audiences = [aud] if isinstance(aud, str) else list(aud)
        azp = claims.get("azp")
        if len(audiences) > 1 and azp is None:
            raise IDTokenRejected(
                Rejection.WRONG_AUTHORIZED_PARTY, "several audiences and no azp claim"
            )
        if azp is not None and azp != self.client_id:
            raise IDTokenRejected(
                Rejection.WRONG_AUTHORIZED_PARTY, f"azp is {azp!r}, not {self.client_id!r}"
            )

    def _check_nonce(self, claims: Mapping[str, Any], nonce: str) -> None:
        found = claims.get("nonce")
        if not isinstance(found, str) or not hmac.compare_digest(found, nonce):
            raise IDTokenRejected(
                Rejection.NONCE_MISMATCH, "nonce differs from this login's request"
            )
        if not self.seen_nonces.consume(nonce, float(claims["exp"]) + self.leeway):
            raise IDTokenRejected(Rejection.NONCE_REPLAYED, "nonce was already used")


class ProviderClient:
    """One provider as the hub (a relying party) sees it: discovery, keys, ID tokens.

    The discovery document is cached for ``cache_seconds``; if the provider cannot be
    reached when it is due, the cached one is kept and retried on the next call.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        fetch_json: FetchJSON = tornado_fetch_json,
        *,
        cache_seconds: float = 3600,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 60.0,
        seen_nonces: SeenNonces | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.cache_seconds = cache_seconds
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.seen_nonces = seen_nonces or SeenNonces()
        self._fetch_json = fetch_json
        self._metadata: ProviderMetadata | None = None
        self._fetched_at = 0.0
        self._keys: JWKSCache | None = None
        self._lock = asyncio.Lock()

    async def metadata(self) -> ProviderMetadata:
        async with self._lock:
            if self._metadata and time.monotonic() - self._fetched_at < self.cache_seconds:
                return self._metadata
            try:
                metadata = await discover(self.issuer, self._fetch_json)
            except DiscoveryError as e:
                if self._metadata is None:
                    raise
                log.warning("OIDC discovery failed, reusing the cached document: {error}", error=e)
                # Retry in a minute rather than on every login while the provider is down.
                self._fetched_at = time.monotonic() - max(self.cache_seconds - 60, 0)
                return self._metadata
            if self._keys is None or self._keys.jwks_uri != metadata.jwks_uri:
                self._keys = JWKSCache(
                    metadata.jwks_uri, self._fetch_json, max_age=self.cache_seconds
                )
            self._metadata, self._fetched_at = metadata, time.monotonic()
            return metadata

    async def verify(self, token: str, *, nonce: str | None = None) -> dict[str, Any]:
        """See :meth:`IDTokenVerifier.verify`; discovers the provider first if needed."""
        await self.metadata()
        assert self._keys is not None
        verifier = IDTokenVerifier(
            issuer=self.issuer,
            client_id=self.client_id,
            keys=self._keys,
            algorithms=self.algorithms,
            leeway=self.leeway,
            seen_nonces=self.seen_nonces,
        )
        return await verifier.verify(token, nonce=nonce)

    async def end_session_url(
        self, id_token: str, post_logout_redirect_uri: str = "", state: str = ""
    ) -> str | None:
        """Where to send the browser to end its provider session (RP-initiated logout).

        ``state`` is passed back by the provider with the redirect; some providers
        (Keycloak with strict settings, several certified ones) send the user back to
        ``post_logout_redirect_uri`` only when the request carries one.
        """
        metadata = await self.metadata()
        if not metadata.end_session_endpoint:
            return None
        params = {"id_token_hint": id_token, "client_id": self.client_id}
        if post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = post_logout_redirect_uri
        if state:
            params["state"] = state
        url: str = url_concat(metadata.end_session_endpoint, params)
        return url
