"""Real logins through a real JupyterHub with eohub's OIDCAuthenticator and oidc-provider."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import jwt
import pytest
import requests
from tornado import web

from tests.auth.oidc_support import (
    ACCOUNTS,
    EGI,
    CallbackRequest,
    hub_client,
    hub_login,
    make_authenticator,
    oidc_hub_config,
)
from tests.auth.test_ldap_hub import api_as, offered_environments, user_token
from tests.support.hub import Hub, start_hub
from tests.support.oidc import OIDCProvider, ProviderSettings, start_oidc_provider
from tests.support.process import free_port


@dataclass
class Site:
    """One provider and one hub registered with it, shared by this module's tests."""

    provider: OIDCProvider
    hub: Hub
    port: int

    def user(self, name: str) -> dict[str, Any]:
        response = self.hub.api("GET", f"/users/{name}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    port = free_port()
    settings = ProviderSettings(accounts=ACCOUNTS, clients=(hub_client(port),))
    proc, provider = start_oidc_provider(tmp_path_factory.mktemp("oidc"), settings)
    try:
        hub = start_hub(tmp_path_factory.mktemp("hub"), oidc_hub_config(provider, port), port=port)
        try:
            yield Site(provider, hub, port)
        finally:
            hub.process.stop(timeout=20)
    finally:
        proc.stop()


@pytest.mark.hub
def test_allowed_user_logs_in_with_groups_and_auth_state(site: Site) -> None:
    login = hub_login(site.hub.url, "bob")
    assert login.logged_in, login.response.text[:300]
    assert login.session.get(f"{site.hub.url}/hub/home", timeout=10).status_code == 200

    bob = site.user("bob")
    assert bob["admin"] is False
    assert bob["groups"] == ["researchers"]  # "/researchers" through group_rules
    state = bob["auth_state"]
    assert {"access_token", "refresh_token", "id_token", "token_response", "oauth_user"} <= set(
        state
    )
    assert state["oauth_user"]["sub"] == "bob"
    assert jwt.decode(state["id_token"], options={"verify_signature": False})["sub"] == "bob"
    assert state["eohub"] == {
        "username": "bob",
        "source": "oidc",
        "display_name": "Bob Builder",
        "email": "bob@example.org",
        "uid_number": None,
        "gid_number": None,
        "home_directory": "",
        "groups": ["researchers"],
        "pi_of": [],
        "group_roles": {},
        "git": {"name": "Bob Builder", "email": "bob@example.org"},
    }
    assert "bob" in site.hub.api("GET", "/groups/researchers").json()["users"]


@pytest.mark.hub
def test_admin_groups_make_admins(site: Site) -> None:
    assert hub_login(site.hub.url, "alice").logged_in
    alice = site.user("alice")
    assert alice["admin"] is True
    assert sorted(alice["groups"]) == ["hub-admins", "researchers"]


@pytest.mark.hub
@pytest.mark.parametrize(
    ("username", "why"),
    [
        ("dave", "not in an allowed group, although allow_all is True"),
        ("mallory", "in a blocked group, although in an allowed one"),
        ("oscar", "user name outside login_name_pattern"),
    ],
)
def test_refused_logins_are_403_without_a_cookie(site: Site, username: str, why: str) -> None:
    login = hub_login(site.hub.url, username)
    assert login.response.status_code == 403, why
    assert "jupyterhub-hub-login" not in login.session.cookies
    assert site.hub.api("GET", f"/users/{username}").status_code == 404


@pytest.mark.hub
def test_entitlements_give_groups_and_pi_roles(site: Site) -> None:
    assert hub_login(site.hub.url, "erin").logged_in
    erin = site.user("erin")
    assert sorted(erin["groups"]) == ["climate", "ocean"]
    profile = erin["auth_state"]["eohub"]
    assert profile["pi_of"] == ["climate"]  # role=manager is one of the pi_roles
    assert profile["group_roles"] == {"climate": ["manager", "member"], "ocean": ["member"]}
    assert "erin" in site.hub.api("GET", "/groups/climate").json()["users"]


@pytest.mark.hub
def test_authorization_request_has_pkce_s256_nonce_and_state(site: Site) -> None:
    response = requests.get(f"{site.hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    query = parse_qs(urlparse(response.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert len(query["nonce"][0]) >= 32
    assert query["scope"][0].split() == ["openid", "email", "profile", "groups", "entitlements"]
    assert "oauthenticator-state" in response.cookies


@pytest.mark.hub
def test_a_replayed_callback_is_refused(site: Site) -> None:
    login = hub_login(site.hub.url, "bob")
    assert login.logged_in
    # The same browser again: its state cookie was used up by the first callback.
    again = login.session.get(login.callback_url, allow_redirects=False, timeout=30)
    assert again.status_code == 400
    # An attacker who also stole the state cookie: the code is single-use.
    thief = requests.Session()
    thief.cookies.set("oauthenticator-state", login.state_cookie)
    stolen = thief.get(login.callback_url, allow_redirects=False, timeout=30)
    assert stolen.status_code == 403
    assert "jupyterhub-hub-login" not in thief.cookies
    code = parse_qs(urlparse(login.callback_url).query)["code"][0]
    assert code not in site.hub.process.log_path.read_text()


@pytest.mark.hub
def test_logout_ends_the_provider_session(site: Site) -> None:
    login = hub_login(site.hub.url, "bob")
    id_token = site.user("bob")["auth_state"]["id_token"]
    out = login.session.get(f"{site.hub.url}/hub/logout", allow_redirects=False, timeout=30)
    end_session = site.provider.discovery()["end_session_endpoint"]
    assert out.status_code == 302
    assert out.headers["location"].startswith(end_session + "?")
    query = parse_qs(urlparse(out.headers["location"]).query)
    (state,) = query.pop("state")  # fresh and opaque; some providers require it
    assert len(state) >= 16
    assert query == {
        "id_token_hint": [id_token],
        "client_id": ["jupyterhub"],
        "post_logout_redirect_uri": [f"{site.hub.url}/hub/login"],
    }
    home = login.session.get(f"{site.hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302  # the hub cookie is gone

    # Confirm on the provider's page; it sends the browser back to the hub.
    page = login.session.get(out.headers["location"], timeout=10)
    form = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    xsrf = re.search(r'name="xsrf" value="([^"]+)"', page.text)
    assert form, page.text[:300]
    assert xsrf, page.text[:300]
    done = login.session.post(
        urljoin(page.url, form.group(1)),
        data={"xsrf": xsrf.group(1), "logout": "yes"},
        allow_redirects=False,
        timeout=10,
    )
    assert done.headers["location"] == f"{site.hub.url}/hub/login?state={state}"
    assert login.session.get(done.headers["location"], timeout=10).status_code == 200
    # The provider session is over: a new hub login asks for the password again.
    response = login.session.get(f"{site.hub.url}/hub/oauth_login", timeout=10)
    assert 'name="login"' in response.text


@pytest.mark.hub
@pytest.mark.parametrize(
    ("case", "overrides", "state_change", "refusal"),
    [
        ("genuine", {}, {}, None),
        ("nonce-of-another-login", {}, {"nonce": "another-login"}, "nonce_mismatch"),
        ("algorithm-not-allowed", {"id_token_algorithms": ["ES256"]}, {}, "disallowed_algorithm"),
    ],
)
def test_a_failed_id_token_check_ends_the_login_with_403(
    site: Site,
    caplog: pytest.LogCaptureFixture,
    case: str,
    overrides: dict[str, Any],
    state_change: dict[str, str],
    refusal: str | None,
) -> None:
    # The hub's own callback, replayed into an authenticator outside it: a real code
    # from the provider, the hub's real signed state cookie (PKCE verifier and nonce).
    login = hub_login(site.hub.url, "bob", follow_callback=False)
    request = CallbackRequest.from_login(login, site.hub.workdir)
    request.state.update(state_change)
    authenticator = make_authenticator(site.provider, site.port, **overrides)

    async def callback() -> Any:
        return await authenticator.get_authenticated_user(request, None)

    if refusal is None:
        assert asyncio.run(callback())["name"] == "bob"
        return
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(callback())
    assert refused.value.status_code == 403
    assert f"({refusal})" in refused.value.log_message
    assert f"ID token refused ({refusal})" in caplog.text
    assert "eyJ" not in caplog.text  # no JWT in the log


@dataclass
class StoredUser:
    """What refresh_user reads from JupyterHub's User: the name and the auth_state."""

    name: str
    auth_state: dict[str, Any]

    async def get_auth_state(self) -> dict[str, Any]:
        return self.auth_state


@pytest.mark.hub
def test_refresh_rechecks_the_user_with_the_real_provider(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    assert hub_login(site.hub.url, "erin").logged_in
    stored = site.user("erin")["auth_state"]

    async def refresh(auth_state: dict[str, Any], **overrides: Any) -> Any:
        authenticator = make_authenticator(site.provider, site.port, **overrides)
        return await authenticator.refresh_user(StoredUser("erin", auth_state))

    model = asyncio.run(refresh(stored))
    assert model["name"] == "erin"
    assert model["groups"] == ["climate", "ocean"]
    state = model["auth_state"]
    assert state["access_token"] != stored["access_token"]  # redeemed the refresh token
    assert state["eohub"]["pi_of"] == ["climate"]
    # The refreshed ID token is verified like a login's (here: an algorithm refused).
    assert asyncio.run(refresh(state, id_token_algorithms=["ES256"])) is False
    assert "ID token refused (disallowed_algorithm)" in caplog.text

    # The hub's policy changed since the login: refresh withdraws access.
    assert asyncio.run(refresh(state, allowed_groups={"researchers"})) is False
    assert "access withdrawn (not a member of any allowed group)" in caplog.text
    assert asyncio.run(refresh(state, blocked_groups={"ocean"})) is False
    assert "access withdrawn (member of blocked group 'ocean')" in caplog.text
    # A refresh token the provider does not know: log in again.
    assert asyncio.run(refresh({**state, "refresh_token": "forged"})) is False
    # Someone else's identity behind the tokens: log in again.
    other = {**state, "oauth_user": {**state["oauth_user"], "sub": "bob"}}
    assert asyncio.run(refresh(other)) is False
    assert asyncio.run(refresh({})) is False


def test_email_user_names_need_a_verified_email(
    oidc_provider_factory: Callable[..., OIDCProvider], hub_factory: Callable[..., Hub]
) -> None:
    port = free_port()
    provider = oidc_provider_factory(
        ProviderSettings(accounts=ACCOUNTS, clients=(hub_client(port),))
    )
    config = oidc_hub_config(
        provider,
        port,
        username_claim="email",
        login_name_pattern=r"[a-z0-9._-]+@example\.org",
    )
    hub = hub_factory(config, port=port)
    refused = hub_login(hub.url, "carol")  # email_verified is false
    assert refused.response.status_code == 403
    assert "not verified" in refused.response.text
    assert hub_login(hub.url, "bob").logged_in
    assert hub.api("GET", "/users/bob@example.org").json()["groups"] == ["researchers"]


# Environments as an admin configures them: ocean's is for the ocean group only.
OCEAN_LAUNCH = {
    "environments": {
        "base": {"image": "eohub/base:1", "default": True},
        "ocean": {"image": "eohub/ocean:1", "allowed_groups": ["ocean"]},
    },
    "sizes": {"small": {"cpu": 1, "memory": "2G"}},
}


def move_users_at_the_provider(provider: OIDCProvider) -> None:
    """The admin is removed from every group, erin from ocean, and bob is suspended."""
    provider.set_account("alice", {**ACCOUNTS["alice"], "groups": []})
    entitlements = [f"{EGI}:climate:role=member#aai.egi.eu"]
    provider.set_account("erin", {**ACCOUNTS["erin"], "eduperson_entitlement": entitlements})
    provider.set_account("bob", {**ACCOUNTS["bob"], "groups": ["/researchers", "suspended"]})


def assert_the_admins_kept_token_grants_nothing(
    hub: Hub, alice: requests.Session, token: str
) -> None:
    # The admin's token, still stored, is refused: no admin, no group, no role left.
    assert api_as(hub, token, "/users").status_code == 403
    assert api_as(hub, token, "/users/alice").status_code == 403
    assert len(hub.api("GET", "/users/alice/tokens").json()["api_tokens"]) == 1
    record = hub.api("GET", "/users/alice").json()
    assert (record["admin"], record["groups"], record["roles"]) == (False, [], [])
    home = alice.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302


# Long enough that the steps between a refresh and the request that must not refresh
# again fit in it on a loaded machine.
REFRESH_AGE = 5


def test_a_refresh_in_the_hub_follows_the_provider(
    tmp_path_factory: pytest.TempPathFactory, hub_factory: Callable[..., Hub]
) -> None:
    port = free_port()
    settings = ProviderSettings(accounts=ACCOUNTS, clients=(hub_client(port),))
    proc, provider = start_oidc_provider(tmp_path_factory.mktemp("oidc"), settings)
    try:
        # Tokens kept and servers left running: even so, a kept token grants nothing.
        hub = hub_factory(
            oidc_hub_config(
                provider,
                port,
                withdrawn_access_revokes_tokens=False,
                withdrawn_access_stops_servers=False,
            )
            + f"c.OIDCAuthenticator.auth_refresh_age = {REFRESH_AGE}\n",
            port=port,
        )
        alice, bob, erin = (hub_login(hub.url, u).session for u in ("alice", "bob", "erin"))
        token = user_token(hub, "alice")
        assert api_as(hub, token, "/users").status_code == 200
        first = hub.api("GET", "/users/erin").json()["auth_state"]["access_token"]
        assert offered_environments(hub, "erin", OCEAN_LAUNCH) == ["base", "ocean"]

        move_users_at_the_provider(provider)
        time.sleep(REFRESH_AGE + 0.5)

        assert_the_admins_kept_token_grants_nothing(hub, alice, token)

        # erin keeps climate (the refresh token was redeemed) but loses ocean and its
        # environment.
        home = erin.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
        assert home.status_code == 200
        record = hub.api("GET", "/users/erin").json()
        assert record["groups"] == ["climate"]
        assert record["auth_state"]["access_token"] != first
        assert "erin" not in hub.api("GET", "/groups/ocean").json()["users"]
        assert offered_environments(hub, "erin", OCEAN_LAUNCH) == ["base"]

        # bob's new blocked group applies at his next request.
        home = bob.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
        assert home.status_code == 302
        assert hub.api("GET", "/users/bob").json()["groups"] == []
        log = hub.process.log_path.read_text()
        assert "Refresh of alice: access withdrawn (not a member of any allowed group)" in log
        assert "Refresh of bob: access withdrawn (member of blocked group 'suspended')" in log
        assert "Failed to get current user" not in log  # refusals are not errors

        # erin's refresh, while the provider still answers, starts the window below.
        time.sleep(REFRESH_AGE + 0.5)
        home = erin.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
        assert home.status_code == 200
    finally:
        proc.stop()
    # Within auth_refresh_age nothing asks the (now gone) provider; after it, a
    # provider that cannot answer means logging in again (and takes nothing away).
    home = erin.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 200
    time.sleep(REFRESH_AGE + 0.5)
    home = erin.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302
    assert "/hub/login" in home.headers["location"]
    assert hub.api("GET", "/users/erin").json()["groups"] == ["climate"]


def test_a_wrong_issuer_is_reported_as_a_configuration_problem(
    oidc_provider_factory: Callable[..., OIDCProvider], hub_factory: Callable[..., Hub]
) -> None:
    port = free_port()
    # The provider announces its realm's issuer; the admin configured the bare host.
    announced = "http://127.0.0.1:1/realms/research"
    provider = oidc_provider_factory(
        ProviderSettings(accounts=ACCOUNTS, clients=(hub_client(port),), issuer=announced)
    )
    configured = f"http://127.0.0.1:{provider.port}"
    hub = hub_factory(oidc_hub_config(provider, port, issuer=configured), port=port)
    response = requests.get(f"{hub.url}/hub/oauth_login", allow_redirects=False, timeout=30)
    assert response.status_code == 500
    assert "identity provider settings are wrong; tell the hub&#39;s admins" in response.text
    assert "cannot be reached" not in response.text
    log = hub.process.log_path.read_text()
    assert f"configured with issuer {configured!r}" in log
    assert f"announces {announced!r}" in log
