"""ID token verification against the real oidc-provider's tokens and key set.

Every token here was issued by the provider, or signed with the provider's own private
key (which the test chose when it started the provider) to reach a claim the provider
would never issue, or forged the way an attacker would (``alg=none``, HS256 keyed with
the public key). Each refusal names its check.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from eohub.adapters.oidc import (
    DiscoveryError,
    IDTokenRejected,
    IDTokenVerifier,
    JWKSCache,
    ProviderClient,
    Rejection,
    algorithm_problem,
    discover,
    tornado_fetch_json,
)
from tests.support.faultproxy import FaultProxy
from tests.support.oidc import (
    OIDCClient,
    OIDCProvider,
    ProviderSettings,
    rsa_jwk,
    run_code_flow,
    start_oidc_provider,
)
from tests.support.process import ServiceProcess

OTHER_APP = OIDCClient(client_id="other-app", client_secret="other-secret")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


@dataclass
class Corpus:
    """The provider, its private key, and one genuine login's tokens."""

    provider: OIDCProvider
    key: dict[str, str]
    id_token: str
    nonce: str
    other_app_token: str

    @property
    def claims(self) -> dict[str, Any]:
        return unverified(self.id_token)

    def sign(self, claims: dict[str, Any], *, alg: str = "RS256", kid: str | None = None) -> str:
        """A token signed with the provider's real private key."""
        private = jwt.PyJWK(self.key, algorithm=alg).key
        return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid or self.key["kid"]})

    def public_pem(self) -> bytes:
        public = jwt.PyJWK({k: self.key[k] for k in ("kty", "n", "e")}).key
        pem: bytes = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem

    def verifier(self, fetch: Callable[..., Any] = tornado_fetch_json) -> IDTokenVerifier:
        disc = self.provider.discovery()
        return IDTokenVerifier(
            issuer=self.provider.issuer,
            client_id=self.provider.client.client_id,
            keys=JWKSCache(disc["jwks_uri"], fetch),
            leeway=60,
        )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    key = rsa_jwk(kid="corpus-key")
    settings = ProviderSettings(clients=(OIDCClient(), OTHER_APP), signing_keys=(key,))
    proc, provider = start_oidc_provider(tmp_path_factory.mktemp("oidc-verify"), settings)
    try:
        flow = run_code_flow(provider, "alice")
        other = run_code_flow(provider, "alice", client=OTHER_APP)
        yield Corpus(provider, key, flow.tokens["id_token"], flow.nonce, other.tokens["id_token"])
    finally:
        proc.stop()


def forged_none(c: Corpus) -> str:
    header = {"alg": "none", "kid": c.key["kid"], "typ": "JWT"}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(c.claims).encode())}."


def forged_hs256_with_public_key(c: Corpus) -> str:
    # The classic confusion: HMAC keyed with the provider's *public* key, which anyone
    # can download, in the hope that the verifier feeds that key to HS256.
    header = b64(json.dumps({"alg": "HS256", "kid": c.key["kid"], "typ": "JWT"}).encode())
    payload = b64(json.dumps(c.claims).encode())
    signature = hmac.new(c.public_pem(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64(signature.digest())}"


def tampered_signature(c: Corpus) -> str:
    head, payload, signature = c.id_token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[-1] ^= 0x01
    return f"{head}.{payload}.{b64(bytes(raw))}"


def tampered_payload(c: Corpus) -> str:
    head, _, signature = c.id_token.split(".")
    claims = {**c.claims, "sub": "mallory", "groups": ["hub-admins"]}
    return f"{head}.{b64(json.dumps(claims).encode())}.{signature}"


def with_claims(**changes: Any) -> Callable[[Corpus], str]:
    """The genuine claims changed (None removes one), signed with the provider's key."""

    def make(c: Corpus) -> str:
        claims = {**c.claims, **changes}
        return c.sign({k: v for k, v in claims.items() if v is not None})

    return make


def with_times(*, exp: int, iat: int) -> Callable[[Corpus], str]:
    """Genuine claims with ``exp`` and ``iat`` set relative to the moment of signing."""

    def make(c: Corpus) -> str:
        now = int(time.time())
        return with_claims(exp=now + exp, iat=now + iat)(c)

    return make


CASES: list[tuple[str, Callable[[Corpus], str], str | None, Rejection | None]] = [
    # (case, token, nonce to expect ("login" = this login's), refusal or None to pass)
    ("genuine", lambda c: c.id_token, "login", None),
    ("genuine-on-refresh-without-nonce", lambda c: c.id_token, None, None),
    ("bad-signature", tampered_signature, "login", Rejection.BAD_SIGNATURE),
    ("tampered-claims", tampered_payload, "login", Rejection.BAD_SIGNATURE),
    ("alg-none", forged_none, "login", Rejection.DISALLOWED_ALGORITHM),
    ("hs256-public-key", forged_hs256_with_public_key, "login", Rejection.DISALLOWED_ALGORITHM),
    ("wrong-audience", lambda c: c.other_app_token, None, Rejection.WRONG_AUDIENCE),
    ("wrong-issuer", with_claims(iss="https://evil.example.org"), "login", Rejection.WRONG_ISSUER),
    (
        "two-audiences-no-azp",
        with_claims(aud=["jupyterhub", "other-app"]),
        "login",
        Rejection.WRONG_AUTHORIZED_PARTY,
    ),
    (
        "azp-other-client",
        with_claims(aud=["jupyterhub", "other-app"], azp="other-app"),
        "login",
        Rejection.WRONG_AUTHORIZED_PARTY,
    ),
    (
        "two-audiences-azp-us",
        with_claims(aud=["jupyterhub", "x"], azp="jupyterhub"),
        "login",
        None,
    ),
    ("expired", with_times(exp=-120, iat=-600), "login", Rejection.EXPIRED),
    ("expired-within-leeway", with_times(exp=-30, iat=-600), "login", None),
    (
        "issued-in-future",
        with_times(iat=600, exp=3600),
        "login",
        Rejection.NOT_YET_VALID,
    ),
    ("no-exp", with_claims(exp=None), "login", Rejection.MISSING_CLAIM),
    ("no-sub", with_claims(sub=None), "login", Rejection.MISSING_CLAIM),
    ("nonce-mismatch", lambda c: c.id_token, "another-login", Rejection.NONCE_MISMATCH),
    ("no-nonce-claim", with_claims(nonce=None), "login", Rejection.NONCE_MISMATCH),
    (
        "unknown-kid",
        lambda c: c.sign(c.claims, kid="never-published"),
        None,
        Rejection.UNKNOWN_KEY,
    ),
    # A published RS256 key must not verify another algorithm, even one it could do.
    ("alg-switched-on-key", lambda c: c.sign(c.claims, alg="PS256"), None, Rejection.UNKNOWN_KEY),
    ("not-a-jwt", lambda c: "not.a.jwt", None, Rejection.MALFORMED),
]


@pytest.mark.parametrize(
    ("token", "nonce", "refusal"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_token_corpus(
    corpus: Corpus,
    token: Callable[[Corpus], str],
    nonce: str | None,
    refusal: Rejection | None,
) -> None:
    verifier = corpus.verifier()
    expected_nonce = corpus.nonce if nonce == "login" else nonce
    if refusal is None:
        claims = await verifier.verify(token(corpus), nonce=expected_nonce)
        assert claims["sub"] == "alice"
        return
    with pytest.raises(IDTokenRejected) as refused:
        await verifier.verify(token(corpus), nonce=expected_nonce)
    assert refused.value.reason is refusal
    assert corpus.id_token.split(".")[2] not in str(refused.value)


async def test_a_nonce_is_accepted_once(corpus: Corpus) -> None:
    verifier = corpus.verifier()
    await verifier.verify(corpus.id_token, nonce=corpus.nonce)
    with pytest.raises(IDTokenRejected) as replayed:
        await verifier.verify(corpus.id_token, nonce=corpus.nonce)
    assert replayed.value.reason is Rejection.NONCE_REPLAYED


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "HS384", "HS512", "hs256", "XX999"])
def test_unsafe_algorithms_cannot_be_allowed(corpus: Corpus, alg: str) -> None:
    assert algorithm_problem(alg)
    with pytest.raises(ValueError, match="algorithm"):
        IDTokenVerifier(
            issuer=corpus.provider.issuer,
            client_id="jupyterhub",
            keys=JWKSCache("http://unused"),
            algorithms=("RS256", alg),
        )


async def test_a_provider_token_expires_for_real(
    oidc_provider_factory: Callable[..., OIDCProvider],
) -> None:
    provider = oidc_provider_factory(ProviderSettings(id_token_ttl=1))
    flow = run_code_flow(provider, "bob")
    token = flow.tokens["id_token"]
    # Valid but for its time: a loaded machine may take longer than the token's second
    # to get here, so the first check allows an hour of leeway.
    tolerant = ProviderClient(provider.issuer, "jupyterhub", leeway=3600)
    assert (await tolerant.verify(token))["sub"] == "bob"
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.2)
    strict = ProviderClient(provider.issuer, "jupyterhub", leeway=0)
    with pytest.raises(IDTokenRejected) as expired:
        await strict.verify(token)
    assert expired.value.reason is Rejection.EXPIRED


async def test_discovery_checks_the_issuer(
    corpus: Corpus, oidc_provider_factory: Callable[..., OIDCProvider]
) -> None:
    metadata = await discover(corpus.provider.issuer)
    assert metadata.jwks_uri.endswith("/jwks")
    assert metadata.end_session_endpoint.endswith("/session/end")
    assert "S256" in metadata.code_challenge_methods

    impostor = oidc_provider_factory(ProviderSettings(issuer="https://idp.example.org/realms/x"))
    with pytest.raises(DiscoveryError, match="announces issuer"):
        await discover(f"http://127.0.0.1:{impostor.port}")
    flow = run_code_flow(impostor, "alice")
    # Verified as if it came from the issuer we configured: its iss gives it away.
    keys = JWKSCache(f"http://127.0.0.1:{impostor.port}/jwks")
    verifier = IDTokenVerifier(
        issuer=f"http://127.0.0.1:{impostor.port}", client_id="jupyterhub", keys=keys
    )
    with pytest.raises(IDTokenRejected) as refused:
        await verifier.verify(flow.tokens["id_token"], nonce=flow.nonce)
    assert refused.value.reason is Rejection.WRONG_ISSUER


async def test_discovery_failure_is_a_discovery_error() -> None:
    with pytest.raises(DiscoveryError, match="cannot fetch"):
        await discover("http://127.0.0.1:9")


async def test_key_rotation_refetches_once_then_refuses(
    tmp_path: Path, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    # One issuer URL (a proxy) served first by a provider signing with key k1, then by
    # one signing with k2: the provider rotated its key while the hub kept running.
    proxy = fault_proxy_factory("127.0.0.1", 9)
    issuer = f"http://127.0.0.1:{proxy.port}"
    processes: list[ServiceProcess] = []
    providers = []
    try:
        for kid in ("k1", "k2"):
            settings = ProviderSettings(issuer=issuer, signing_keys=(rsa_jwk(kid=kid),))
            proc, provider = start_oidc_provider(tmp_path / kid, settings)
            processes.append(proc)
            providers.append(provider)
        fetched: list[str] = []

        async def counting_fetch(url: str) -> Any:
            fetched.append(url)
            return await tornado_fetch_json(url)

        client = ProviderClient(issuer, "jupyterhub", counting_fetch)
        jwks_fetches = lambda: sum(u.endswith("/jwks") for u in fetched)  # noqa: E731

        proxy.upstream_port = providers[0].port
        old = run_code_flow(providers[0], "alice").tokens["id_token"]
        assert (await client.verify(old))["sub"] == "alice"
        assert jwks_fetches() == 1

        proxy.upstream_port = providers[1].port
        new = run_code_flow(providers[1], "bob").tokens["id_token"]
        assert (await client.verify(new))["sub"] == "bob"
        assert jwks_fetches() == 2  # the unknown kid k2 made it refetch, once
        await client.verify(new)
        assert jwks_fetches() == 2  # and k2 is now cached

        stranger = rsa_jwk(kid="k3")
        forged = jwt.encode(
            unverified(new), jwt.PyJWK(stranger).key, algorithm="RS256", headers={"kid": "k3"}
        )
        for token in (forged, old):  # never published / no longer published
            with pytest.raises(IDTokenRejected) as refused:
                await client.verify(token)
            assert refused.value.reason is Rejection.UNKNOWN_KEY
        assert jwks_fetches() == 4  # exactly one refetch per unknown kid
        # The discovery document was fetched once and cached throughout.
        assert sum(u.endswith("/.well-known/openid-configuration") for u in fetched) == 1
    finally:
        for proc in processes:
            proc.stop()
