"""Point an OIDCAuthenticator at a harness oidc-provider, and log in through a hub."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from oauthenticator.oauth2 import _deserialize_state, _serialize_state
from tornado.web import decode_signed_value
from traitlets.config import Config

from eohub.auth.oidc.authenticator import OIDCAuthenticator
from tests.support.oidc import DEFAULT_ACCOUNTS, OIDCClient, OIDCProvider

# Accounts the provider serves in the auth tests; the default ones plus EGI-style
# entitlements, an outsider, a blocked member and a name that breaks the pattern.
EGI = "urn:mace:egi.eu:group:vo.example.org"
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": dict(DEFAULT_ACCOUNTS["alice"]),
    # bob's group comes as a Keycloak path, which the tests' group_rules strip.
    "bob": {**DEFAULT_ACCOUNTS["bob"], "groups": ["/researchers"]},
    # carol's e-mail is not verified: refused where e-mail is the user name.
    "carol": {**DEFAULT_ACCOUNTS["carol"], "groups": ["researchers"]},
    "dave": {"preferred_username": "dave", "groups": ["visitors"]},
    "erin": {
        "name": "Erin Entitled",
        "email": "erin@example.org",
        "email_verified": True,
        "preferred_username": "erin",
        "eduperson_entitlement": [
            f"{EGI}:climate:role=member#aai.egi.eu",
            f"{EGI}:climate:role=manager#aai.egi.eu",
            f"{EGI}:ocean#aai.egi.eu",
            "urn:example:not-an-egi-entitlement",
        ],
    },
    "mallory": {"preferred_username": "mallory", "groups": ["researchers", "suspended"]},
    "oscar": {"preferred_username": "Oscar O'Brien", "groups": ["researchers"]},
}

SCOPE = ["openid", "email", "profile", "groups", "entitlements"]


def hub_client(port: int) -> OIDCClient:
    """The hub registered with the provider, for a hub on 127.0.0.1:``port``."""
    return OIDCClient(
        redirect_uris=(f"http://127.0.0.1:{port}/hub/oauth_callback",),
        post_logout_redirect_uris=(f"http://127.0.0.1:{port}/hub/login",),
    )


def oidc_settings(provider: OIDCProvider, port: int, **overrides: Any) -> dict[str, Any]:
    """The test hub's OIDCAuthenticator settings against ``provider``."""
    settings: dict[str, Any] = {
        "issuer": provider.issuer,
        "client_id": provider.client.client_id,
        "client_secret": provider.client.client_secret,
        "oauth_callback_url": f"http://127.0.0.1:{port}/hub/oauth_callback",
        "post_logout_redirect_uri": f"http://127.0.0.1:{port}/hub/login",
        "scope": SCOPE,
        "allow_all": True,  # present to prove it cannot bypass allowed_groups
        "allowed_groups": {"researchers", "climate"},
        "blocked_groups": {"suspended"},
        "admin_groups": {"hub-admins"},
        "group_rules": [
            {"pattern": r"/(.+)", "replacement": r"\1"},
            {"pattern": r"vo\.example\.org:(.+)", "replacement": r"\1"},
        ],
        "enable_auth_state": True,
    }
    settings.update(overrides)
    return settings


def make_authenticator(provider: OIDCProvider, port: int, **overrides: Any) -> OIDCAuthenticator:
    config = Config({"OIDCAuthenticator": oidc_settings(provider, port, **overrides)})
    authenticator = OIDCAuthenticator(config=config)
    authenticator.check_allow_config()
    return authenticator


def oidc_hub_config(provider: OIDCProvider, port: int, **overrides: Any) -> str:
    """Python source for a test hub that logs in with eohub's OIDCAuthenticator."""
    settings = oidc_settings(provider, port, **overrides)
    lines = ['c.JupyterHub.authenticator_class = "eohub.auth.OIDCAuthenticator"']
    lines += [f"c.OIDCAuthenticator.{key} = {value!r}" for key, value in settings.items()]
    lines.append('c.JupyterHub.spawner_class = "simple"')
    return "\n".join(lines) + "\n"


@dataclass
class Login:
    """A browser-style login: the session, the callback URL it was sent to, the result."""

    session: requests.Session
    authorize_url: str
    callback_url: str
    state_cookie: str
    response: requests.Response

    @property
    def logged_in(self) -> bool:
        return "jupyterhub-hub-login" in self.session.cookies and self.response.status_code == 302


def hub_login(hub_url: str, username: str, *, follow_callback: bool = True) -> Login:
    """Log in as a browser would: hub → provider login and consent pages → hub callback.

    With ``follow_callback=False`` the browser stops before the callback, holding the
    code in ``callback_url`` and the hub's signed state cookie.
    """
    session = requests.Session()
    callback_prefix = f"{hub_url}/hub/oauth_callback"
    response = session.get(f"{hub_url}/hub/oauth_login", allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text[:300]
    authorize_url = response.headers["location"]
    response = session.get(authorize_url, allow_redirects=False, timeout=30)
    for _ in range(10):
        while response.is_redirect:
            location = urljoin(response.url, response.headers["location"])
            if location.startswith(callback_prefix):
                state = session.cookies.get("oauthenticator-state") or ""
                if not follow_callback:
                    return Login(session, authorize_url, location, state, response)
                callback = session.get(location, allow_redirects=False, timeout=30)
                return Login(session, authorize_url, location, state, callback)
            response = session.get(location, allow_redirects=False, timeout=30)
        response = answer_provider_page(session, response, username)
    raise AssertionError("the provider never redirected back to the hub")


@dataclass
class CallbackRequest:
    """What oauthenticator reads from the hub's callback handler: code and state cookie.

    Built from a real login stopped before the callback, so the authenticator can be
    driven outside the hub against the real provider.
    """

    code: str
    state: dict[str, Any]

    @classmethod
    def from_login(cls, login: Login, hub_workdir: Path) -> CallbackRequest:
        secret = bytes.fromhex((hub_workdir / "jupyterhub_cookie_secret").read_text().strip())
        raw = decode_signed_value(secret, "oauthenticator-state", login.state_cookie.strip('"'))
        assert raw is not None, "the hub's state cookie did not verify"
        code = parse_qs(urlparse(login.callback_url).query)["code"][0]
        return cls(code=code, state=_deserialize_state(raw.decode()))

    def get_argument(self, name: str, default: Any = None) -> Any:
        return self.code if name == "code" else default

    def get_state_cookie(self) -> str:
        return str(_serialize_state(self.state))


def answer_provider_page(
    session: requests.Session, response: requests.Response, username: str
) -> requests.Response:
    """Submit the provider's login page (as ``username``, any password) or its consent
    page, whichever ``response`` is; the provider's answer, not followed."""
    form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
    assert form, f"no form on provider page {response.url}: {response.text[:300]}"
    data = {"prompt": "login", "login": username, "password": "any"}
    if 'name="login"' not in response.text:
        data = {"prompt": "consent"}
    return session.post(
        urljoin(response.url, form.group(1)), data=data, allow_redirects=False, timeout=10
    )
