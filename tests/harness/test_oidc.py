"""The oidc-provider runs a real code flow whose ID token verifies against its JWKS."""

import time
from collections.abc import Callable

import jwt
import pytest
import requests

from tests.support.oidc import OIDCProvider, ProviderSettings, rsa_jwk, run_code_flow


def verify_id_token(
    provider: OIDCProvider, id_token: str, nonce: str, *, leeway: float = 0
) -> dict[str, object]:
    disc = provider.discovery()
    jwks = jwt.PyJWKClient(disc["jwks_uri"], cache_keys=False)
    key = jwks.get_signing_key_from_jwt(id_token)
    claims: dict[str, object] = jwt.decode(
        id_token,
        key,
        algorithms=["RS256"],
        audience=provider.client.client_id,
        issuer=provider.issuer,
        leeway=leeway,
    )
    assert claims["nonce"] == nonce
    return claims


def test_code_flow_ends_with_verified_id_token(oidc_provider: OIDCProvider) -> None:
    disc = oidc_provider.discovery()
    assert disc["issuer"] == oidc_provider.issuer
    assert "S256" in disc["code_challenge_methods_supported"]

    result = run_code_flow(oidc_provider, "alice")
    claims = verify_id_token(oidc_provider, result.tokens["id_token"], result.nonce)
    assert claims["sub"] == "alice"
    assert claims["groups"] == ["researchers", "hub-admins"]

    userinfo = requests.get(
        disc["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {result.tokens['access_token']}"},
        timeout=5,
    ).json()
    assert userinfo["email"] == "alice@example.org"


def test_a_tampered_id_token_fails_verification(oidc_provider: OIDCProvider) -> None:
    result = run_code_flow(oidc_provider, "bob")
    header, payload, signature = result.tokens["id_token"].split(".")
    forged = ".".join(
        [header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")]
    )
    with pytest.raises(jwt.InvalidSignatureError):
        verify_id_token(oidc_provider, forged, result.nonce)


def test_per_test_accounts_claims_and_keys(
    oidc_provider_factory: Callable[..., OIDCProvider],
) -> None:
    key = rsa_jwk(kid="rotated-key-2")
    urn = "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu"
    provider = oidc_provider_factory(
        ProviderSettings(
            accounts={"erin": {"preferred_username": "erin", "eduperson_entitlement": [urn]}},
            signing_keys=(key,),
            id_token_ttl=1,
        )
    )
    result = run_code_flow(provider, "erin", scope="openid profile entitlements")
    assert jwt.get_unverified_header(result.tokens["id_token"])["kid"] == "rotated-key-2"
    assert provider.public_jwks["keys"][0]["kid"] == "rotated-key-2"
    assert "d" not in provider.public_jwks["keys"][0]
    # The token lives one second, and the flow and the key fetch may take longer on a
    # loaded machine: the claims are checked with a minute's leeway, the expiry without.
    claims = verify_id_token(provider, result.tokens["id_token"], result.nonce, leeway=60)
    assert claims["eduperson_entitlement"] == [urn]

    expires = claims["exp"]
    assert isinstance(expires, int)
    time.sleep(max(0.0, expires - time.time()) + 1.5)  # past the 1 s ID token lifetime
    with pytest.raises(jwt.ExpiredSignatureError):
        verify_id_token(provider, result.tokens["id_token"], result.nonce)
