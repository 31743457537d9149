"""GenericOAuthenticator configs load unchanged into eohub's OIDCAuthenticator and log in.

The configs name the provider's endpoints, not its issuer, as GenericOAuthenticator
configs do. :func:`login` drives a real authorization-code login against the harness
provider through an :class:`OIDCAuthenticator` built from such a config, outside a hub:
the authorization request the hub's login handler would send, the provider's own login
and consent pages, then the authenticator's callback half (``get_authenticated_user``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
import requests
import yaml
from oauthenticator.oauth2 import _serialize_state
from traitlets.config import Config

from eohub.auth.oidc.authenticator import OIDCAuthenticator
from tests.auth.oidc_support import CallbackRequest, answer_provider_page
from tests.support.oidc import (
    OIDCClient,
    OIDCProvider,
    ProviderSettings,
    pkce_pair,
    start_oidc_provider,
)
from tests.support.z2jh import CHART_DEFAULTS, hub_config_from_values

EGI = "urn:mace:egi.eu:group:vo.example.org"
# EGI Check-in's voperson_id: 64 hex digits, then "@egi.eu".
ALICE_EGI_ID = "0a1b2c3d" * 8 + "@egi.eu"
CALLBACK = "http://127.0.0.1:8000/hub/oauth_callback"

# Claims as Keycloak sends them with a "groups" mapper on the profile scope, and as
# EGI Check-in sends voperson_id and entitlements.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {
        "preferred_username": "alice",
        "name": "Alice Liddell",
        "email": "alice@example.org",
        "email_verified": True,
        "groups": ["researchers", "hub-admins"],
        "voperson_id": ALICE_EGI_ID,
        "eduperson_entitlement": [f"{EGI}:role=member#aai.egi.eu", f"{EGI}:admins#aai.egi.eu"],
    },
    "bob": {
        "preferred_username": "bob",
        "name": "Bob Builder",
        "email": "bob@example.org",
        "email_verified": True,
        "groups": ["researchers"],
        "voperson_id": "3d4e5f@egi.eu",
        "eduperson_entitlement": [f"{EGI}:role=member#aai.egi.eu"],
    },
    "dave": {
        "preferred_username": "dave",
        "email": "dave@example.org",
        "email_verified": True,
        "groups": ["visitors"],
        "voperson_id": "6a7b8c@egi.eu",
        "eduperson_entitlement": ["urn:mace:egi.eu:group:vo.other.org:role=member#aai.egi.eu"],
    },
}

SCOPES_CLAIMS: dict[str, list[str]] = {
    "openid": ["sub"],
    "email": ["email", "email_verified"],
    "profile": ["name", "preferred_username", "groups"],
    "eduperson_entitlement": ["eduperson_entitlement"],
    "voperson_id": ["voperson_id"],
}


@dataclass(frozen=True)
class PostClient(OIDCClient):
    """A client that sends its secret in the form body (GenericOAuthenticator's default)."""

    def registration(self) -> dict[str, Any]:
        return {**super().registration(), "token_endpoint_auth_method": "client_secret_post"}


BASIC = OIDCClient(client_id="generic-basic", redirect_uris=(CALLBACK,))
POST = PostClient(client_id="generic-post", client_secret="post-secret", redirect_uris=(CALLBACK,))


def endpoints(provider: OIDCProvider, client: OIDCClient = BASIC) -> dict[str, Any]:
    """The lines every GenericOAuthenticator config has: client and endpoint URLs."""
    base = f"http://127.0.0.1:{provider.port}"
    return {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "oauth_callback_url": CALLBACK,
        "authorize_url": f"{base}/auth",
        "token_url": f"{base}/token",
        "userdata_url": f"{base}/me",
    }


def keycloak(provider: OIDCProvider) -> dict[str, Any]:
    """The Keycloak config of the Zero to JupyterHub and oauthenticator docs."""
    return {
        **endpoints(provider),
        "login_service": "Keycloak",
        "username_claim": "preferred_username",
        "userdata_params": {"state": "state"},
        "scope": ["openid", "profile", "email"],
        "manage_groups": True,
        "claim_groups_key": "groups",
        "allowed_groups": ["researchers"],
        "admin_groups": ["hub-admins"],
        "enable_auth_state": True,
        "logout_redirect_url": f"http://127.0.0.1:{provider.port}/session/end",
    }


@dataclass
class CallbackOutcome:
    """What the hub would do at the callback: the auth model, or None if refused."""

    model: dict[str, Any] | None

    @property
    def allowed(self) -> bool:
        return self.model is not None


def provider_code(
    authenticator: OIDCAuthenticator, username: str
) -> tuple[CallbackRequest, requests.Response]:
    """Send ``username`` through the provider as the hub's login handler would."""
    verifier, challenge = pkce_pair()
    nonce, state_id = secrets.token_urlsafe(32), secrets.token_hex(16)
    params = {
        **authenticator.extra_authorize_params,
        "client_id": authenticator.client_id,
        "redirect_uri": authenticator.get_callback_url(),
        "scope": " ".join(authenticator.scope),
        "response_type": "code",
        "state": _serialize_state({"state_id": state_id}),
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    session = requests.Session()
    response = session.get(
        authenticator.authorize_url, params=params, allow_redirects=False, timeout=10
    )
    for _ in range(10):
        while response.is_redirect:
            location = urljoin(response.url, response.headers["location"])
            if location.startswith(CALLBACK):
                code = parse_qs(urlparse(location).query)["code"][0]
                state = {"state_id": state_id, "code_verifier": verifier, "nonce": nonce}
                return CallbackRequest(code=code, state=state), response
            response = session.get(location, allow_redirects=False, timeout=30)
        response = answer_provider_page(session, response, username)
    raise AssertionError("the provider never redirected back to the hub")


async def login(authenticator: OIDCAuthenticator, username: str) -> CallbackOutcome:
    """A whole login of ``username``; the model JupyterHub would store, or None."""
    # The login handler discovers (or finds the issuer) before it redirects.
    await authenticator.provider_metadata()
    request, _ = provider_code(authenticator, username)
    model = await authenticator.get_authenticated_user(request, None)
    return CallbackOutcome(model)


def section(config: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """``config`` under the class section ``name``, as a jupyterhub_config.py sets it."""
    return {name: dict(config)}


# The usual GenericOAuthenticator configs, each with who may log in, as whom, in which
# groups and whether as admin: {account: (hub name, admin, groups)}; None: refused.
Expected = dict[str, tuple[str, bool | None, set[str]] | None]


def callable_username(user_info: Mapping[str, Any]) -> str:
    return str(user_info["email"]).split("@")[0] + "-ext"


def callable_groups(user_info: Mapping[str, Any]) -> list[str]:
    return [f"kc-{g}" for g in user_info.get("groups", [])]


def egi(provider: OIDCProvider) -> dict[str, Any]:
    """An EGI Check-in config: voperson_id names, entitlement URNs as the groups."""
    return {
        **endpoints(provider),
        "login_service": "EGI Check-in",
        "scope": ["openid", "profile", "email", "eduperson_entitlement", "voperson_id"],
        "username_claim": "voperson_id",
        "manage_groups": True,
        "claim_groups_key": "eduperson_entitlement",
        "allowed_groups": [f"{EGI}:role=member#aai.egi.eu"],
        "admin_groups": [f"{EGI}:admins#aai.egi.eu"],
    }


CASES: dict[str, tuple[Any, Expected]] = {
    "keycloak, claim_groups_key": (
        keycloak,
        {
            "alice": ("alice", True, {"researchers", "hub-admins"}),
            "bob": ("bob", False, {"researchers"}),
            "dave": None,
        },
    ),
    "keycloak, auth_state_groups_key and the secret in the form body": (
        lambda p: {
            **{k: v for k, v in keycloak(p).items() if k != "claim_groups_key"},
            **endpoints(p, POST),
            "basic_auth": False,
            "auth_state_groups_key": "oauth_user.groups",
            "extra_authorize_params": {"ui_locales": "en"},
        },
        {"alice": ("alice", True, {"researchers", "hub-admins"}), "dave": None},
    ),
    "callables for the user name and the groups": (
        lambda p: {
            **keycloak(p),
            "username_claim": callable_username,
            "claim_groups_key": callable_groups,
            "allowed_groups": ["kc-researchers"],
            "admin_groups": ["kc-hub-admins"],
        },
        {
            "alice": ("alice-ext", True, {"kc-researchers", "kc-hub-admins"}),
            "bob": ("bob-ext", False, {"kc-researchers"}),
            "dave": None,
        },
    ),
    "deprecated names: username_key, extra_params, tls_verify": (
        lambda p: {
            **endpoints(p),
            "username_key": "sub",
            "extra_params": {"audience": "jupyterhub"},
            "tls_verify": True,
            "scope": ["openid", "profile", "email"],
            "allowed_users": ["bob"],
            "admin_users": ["alice"],
        },
        {
            "alice": ("alice", True, {"researchers", "hub-admins"}),
            "bob": ("bob", None, {"researchers"}),
            "dave": None,
        },
    ),
    "allow_all, groups not managed": (
        lambda p: {**endpoints(p), "allow_all": True, "manage_groups": False},
        {"bob": ("bob", None, {"researchers"}), "dave": ("dave", None, {"visitors"})},
    ),
    "user from the ID token, no userdata_url": (
        lambda p: {
            **{
                k: v
                for k, v in keycloak(p).items()
                if k not in ("userdata_url", "userdata_params")
            },
            "userdata_from_id_token": True,
        },
        {"alice": ("alice", True, {"researchers", "hub-admins"}), "dave": None},
    ),
    "e-mail addresses as user names": (
        lambda p: {**keycloak(p), "username_claim": "email"},
        {
            "alice": ("alice@example.org", True, {"researchers", "hub-admins"}),
            "bob": ("bob@example.org", False, {"researchers"}),
            "dave": None,
        },
    ),
    "EGI Check-in, entitlements as groups": (
        egi,
        {
            "alice": (
                ALICE_EGI_ID,
                True,
                {
                    f"{EGI}:role=member#aai.egi.eu",
                    f"{EGI}:admins#aai.egi.eu",
                    "vo.example.org",
                    "vo.example.org:admins",
                },
            ),
            "bob": ("3d4e5f@egi.eu", False, {f"{EGI}:role=member#aai.egi.eu", "vo.example.org"}),
            "dave": None,
        },
    ),
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    settings = ProviderSettings(
        accounts=ACCOUNTS, clients=(BASIC, POST), scopes_claims=SCOPES_CLAIMS
    )
    proc, running = start_oidc_provider(tmp_path_factory.mktemp("oidc"), settings)
    try:
        yield running
    finally:
        proc.stop()


@pytest.mark.parametrize("section_name", ["GenericOAuthenticator", "OIDCAuthenticator"])
@pytest.mark.parametrize("case", list(CASES))
async def test_a_generic_config_logs_in_unchanged(
    provider: OIDCProvider, case: str, section_name: str
) -> None:
    settings, expected = CASES[case]
    authenticator = OIDCAuthenticator(config=Config(section(settings(provider), section_name)))
    authenticator.check_allow_config()
    for account, outcome in expected.items():
        result = await login(authenticator, account)
        if outcome is None:
            assert not result.allowed, account
            continue
        assert result.model is not None, account
        name, admin, groups = outcome
        assert result.model["name"] == name
        assert result.model.get("admin") is admin, account
        assert set(result.model.get("groups") or ()) == groups
        # eohub's own profile is there whatever the config: the rest of eohub reads it.
        assert set(result.model["auth_state"]["eohub"]["groups"]) == groups
    # The issuer was found from the endpoints, so ID tokens were verified.
    assert authenticator.issuer == provider.issuer


# Zero to JupyterHub: the GenericOAuthenticator keys stay; only the class changes.
Z2JH_VALUES = """
hub:
  config:
    JupyterHub:
      authenticator_class: eohub-oidc   # was: generic-oauth
    GenericOAuthenticator:
      client_id: {client_id}
      client_secret: {client_secret}
      oauth_callback_url: {oauth_callback_url}
      authorize_url: {authorize_url}
      token_url: {token_url}
      userdata_url: {userdata_url}
      login_service: Keycloak
      username_claim: preferred_username
      userdata_params:
        state: state
      scope: [openid, profile, email]
      manage_groups: true
      claim_groups_key: groups
      allowed_groups: [researchers]
      admin_groups: [hub-admins]
"""


async def test_zero_to_jupyterhub_values_keep_their_generic_section(
    provider: OIDCProvider,
) -> None:
    values = yaml.safe_load(Z2JH_VALUES.format(**endpoints(provider)))
    config = hub_config_from_values(values, CHART_DEFAULTS)
    (entry_point,) = entry_points(group="jupyterhub.authenticators", name="eohub-oidc")
    assert entry_point.load() is OIDCAuthenticator
    assert config.GenericOAuthenticator.claim_groups_key == "groups"
    authenticator = OIDCAuthenticator(config=config)
    authenticator.check_allow_config()
    alice = await login(authenticator, "alice")
    assert alice.model is not None
    assert (alice.model["name"], alice.model["admin"]) == ("alice", True)
    assert not (await login(authenticator, "dave")).allowed
