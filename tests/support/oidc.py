"""The npm ``oidc-provider`` on loopback, and a requests-driven authorization-code flow."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from .process import ServiceProcess, free_port, start_process
from .tools import node_modules

DEFAULT_ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "alice@example.org",
        "email_verified": True,
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "groups": ["researchers", "hub-admins"],
    },
    "bob": {
        "email": "bob@example.org",
        "email_verified": True,
        "name": "Bob Builder",
        "preferred_username": "bob",
        "groups": ["researchers"],
    },
    "carol": {
        "email": "carol@example.org",
        "email_verified": False,
        "name": "Carol Danvers",
        "preferred_username": "carol",
        "groups": [],
    },
}

DEFAULT_SCOPES_CLAIMS: dict[str, list[str]] = {
    "openid": ["sub"],
    "email": ["email", "email_verified"],
    "profile": ["name", "preferred_username"],
    "groups": ["groups"],
    "entitlements": ["eduperson_entitlement"],
}


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_jwk(kid: str | None = None) -> dict[str, str]:
    """A fresh private RSA signing key as a JWK (tests rotate keys by making another)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    priv = key.private_numbers()
    pub = priv.public_numbers
    return {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid or secrets.token_hex(8),
        "n": _b64(pub.n),
        "e": _b64(pub.e),
        "d": _b64(priv.d),
        "p": _b64(priv.p),
        "q": _b64(priv.q),
        "dp": _b64(priv.dmp1),
        "dq": _b64(priv.dmq1),
        "qi": _b64(priv.iqmp),
    }


@dataclass(frozen=True)
class OIDCClient:
    """A client registered with the provider (the hub, in the end-to-end tests)."""

    client_id: str = "jupyterhub"
    client_secret: str = "hub-client-secret"
    redirect_uris: tuple[str, ...] = ("http://127.0.0.1:8000/hub/oauth_callback",)
    post_logout_redirect_uris: tuple[str, ...] = ("http://127.0.0.1:8000/hub/logout",)

    def registration(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }


@dataclass(frozen=True)
class ProviderSettings:
    """Everything a test may vary about the provider."""

    accounts: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: DEFAULT_ACCOUNTS)
    clients: tuple[OIDCClient, ...] = (OIDCClient(),)
    scopes_claims: Mapping[str, list[str]] = field(default_factory=lambda: DEFAULT_SCOPES_CLAIMS)
    id_token_ttl: int = 3600
    access_token_ttl: int = 3600
    pkce_required: bool = True
    # Override the issuer the provider announces (a wrong-issuer test); port is kept.
    issuer: str | None = None
    # Private JWKs to sign with; a key is generated when empty.
    signing_keys: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True)
class OIDCProvider:
    """A running provider: its issuer, clients, and public signing keys."""

    issuer: str
    port: int
    clients: tuple[OIDCClient, ...]
    public_jwks: dict[str, Any]
    config_path: Path

    def set_account(self, username: str, claims: Mapping[str, Any]) -> None:
        """Change a user's claims at the running provider (read at each lookup)."""
        config = json.loads(self.config_path.read_text())
        config["accounts"][username] = dict(claims)
        self.config_path.write_text(json.dumps(config, indent=2))

    @property
    def client(self) -> OIDCClient:
        return self.clients[0]

    def discovery(self) -> dict[str, Any]:
        r = requests.get(
            f"http://127.0.0.1:{self.port}/.well-known/openid-configuration", timeout=5
        )
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data


def start_oidc_provider(
    workdir: Path, settings: ProviderSettings | None = None
) -> tuple[ServiceProcess, OIDCProvider]:
    """Write the provider's config file, start it, and wait for its discovery document."""
    settings = settings or ProviderSettings()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    issuer = settings.issuer or f"http://127.0.0.1:{port}"
    keys = [dict(k) for k in settings.signing_keys] or [rsa_jwk()]
    config = {
        "issuer": issuer,
        "port": port,
        "clients": [c.registration() for c in settings.clients],
        "accounts": settings.accounts,
        "scopes_claims": settings.scopes_claims,
        "jwks": {"keys": keys},
        "cookie_key": secrets.token_hex(16),
        "pkce_required": settings.pkce_required,
        "ttl": {
            "AccessToken": settings.access_token_ttl,
            "AuthorizationCode": 60,
            "IdToken": settings.id_token_ttl,
            "Interaction": 600,
            "Session": 3600,
            "Grant": 3600,
            "RefreshToken": 86400,
        },
    }
    config_path = workdir / "oidc-provider.json"
    config_path.write_text(json.dumps(config, indent=2))
    config_path.chmod(0o600)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "NODE_ENV": "test"}
    # The script lives beside the node_modules it imports from: ES modules resolve
    # packages from the script's folder upwards and ignore NODE_PATH.
    script = node_modules().parent / "oidc_provider.mjs"
    proc = start_process(
        "oidc-provider",
        ["node", str(script), str(config_path)],
        log_path=workdir / "oidc-provider.log",
        env=env,
    )

    def answers() -> bool:
        try:
            r = requests.get(
                f"http://127.0.0.1:{port}/.well-known/openid-configuration", timeout=1
            )
        except requests.RequestException:
            return False
        return r.status_code == 200

    proc.wait_until(answers, timeout=30, what="serving its discovery document")
    public = [
        {k: v for k, v in key.items() if k in ("kty", "use", "alg", "kid", "n", "e")}
        for key in keys
    ]
    return proc, OIDCProvider(
        issuer=issuer,
        port=port,
        clients=settings.clients,
        public_jwks={"keys": public},
        config_path=config_path,
    )


@dataclass(frozen=True)
class CodeFlowResult:
    """What the client holds at the end of a code flow."""

    tokens: dict[str, Any]
    nonce: str
    state: str


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def run_code_flow(
    provider: OIDCProvider,
    username: str,
    *,
    client: OIDCClient | None = None,
    scope: str = "openid email profile groups",
) -> CodeFlowResult:
    """Log ``username`` in through the provider's own login and consent pages.

    The flow is the one a browser takes (authorize, login form, consent form, redirect
    with a code), driven with requests; then the code is exchanged for tokens.
    """
    client = client or provider.client
    disc = provider.discovery()
    redirect_uri = client.redirect_uris[0]
    state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    verifier, challenge = pkce_pair()
    session = requests.Session()
    response = session.get(
        disc["authorization_endpoint"],
        params={
            "client_id": client.client_id,
            "response_type": "code",
            "scope": scope,
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=10,
    )
    callback = None
    for _ in range(10):
        # Follow the provider's own redirects until its next page, or our redirect_uri.
        while response.is_redirect:
            location = urljoin(response.url, response.headers["location"])
            if location.startswith(redirect_uri):
                callback = location
                break
            response = session.get(location, allow_redirects=False, timeout=30)
        if callback:
            break
        form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        if not form:
            raise AssertionError(f"no form on provider page {response.url}: {response.text[:500]}")
        data = {"prompt": "login", "login": username, "password": "any"}
        if 'name="login"' not in response.text:
            data = {"prompt": "consent"}
        response = session.post(
            urljoin(response.url, form.group(1)), data=data, allow_redirects=False, timeout=10
        )
    if not callback:
        raise AssertionError("the provider never redirected back to the client")
    query = parse_qs(urlparse(callback).query)
    if "error" in query:
        raise AssertionError(f"provider returned an error: {query}")
    assert query["state"] == [state]
    token_response = requests.post(
        disc["token_endpoint"],
        auth=(client.client_id, client.client_secret),
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    token_response.raise_for_status()
    return CodeFlowResult(tokens=token_response.json(), nonce=nonce, state=state)
