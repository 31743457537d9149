"""LDAP and OIDC logins on one real hub: real slapd, the real OIDC provider, one policy."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from ldap3 import MODIFY_DELETE

from tests.auth.ldap_support import ldap_config
from tests.auth.oidc_support import hub_client, hub_login, oidc_settings
from tests.auth.test_ldap import admin_modify
from tests.auth.test_ldap_hub import api_as, user_token
from tests.support.hub import Hub, start_hub
from tests.support.oidc import OIDCProvider, ProviderSettings, start_oidc_provider
from tests.support.process import ServiceProcess, free_port
from tests.support.slapd import Directory

# The provider's people. bob and carol are also names in the directory (tests/data).
ACCOUNTS: dict[str, dict[str, Any]] = {
    "olga": {
        "preferred_username": "olga",
        "name": "Olga Oidc",
        "email": "olga@example.org",
        "email_verified": True,
        "groups": ["/researchers"],
    },
    "otto": {"preferred_username": "otto", "groups": ["/hub-admins", "researchers"]},
    "bob": {"preferred_username": "bob", "groups": ["researchers"]},
    "carol": {"preferred_username": "carol", "groups": ["climate"]},
    "dave": {"preferred_username": "dave", "groups": ["visitors"]},
    "mallory": {"preferred_username": "mallory", "groups": ["researchers", "suspended"]},
}

# Decided once, for both sources, on the hub's authenticator.
POLICY: dict[str, Any] = {
    "allow_all": True,  # present to prove it bypasses nothing
    "allowed_groups": {"researchers", "climate"},
    "blocked_groups": {"suspended"},
    "admin_groups": {"hub-admins"},
}
_PER_HUB = {"allow_all", "allowed_groups", "blocked_groups", "admin_groups", "enable_auth_state"}


def combined_hub_config(
    directory: Directory, provider: OIDCProvider, port: int, **policy: Any
) -> str:
    """Python source for a hub with LDAPOIDCAuthenticator: each source as it would be
    alone, minus the policy, which goes on the combined authenticator."""
    ldap = {
        k: v for k, v in ldap_config(directory)["LDAPAuthenticator"].items() if k not in _PER_HUB
    }
    oidc = {k: v for k, v in oidc_settings(provider, port).items() if k not in _PER_HUB}
    lines = ['c.JupyterHub.authenticator_class = "eohub.auth.ldap_oidc.LDAPOIDCAuthenticator"']
    lines += [f"c.LDAPAuthenticator.{key} = {value!r}" for key, value in ldap.items()]
    lines += [f"c.OIDCAuthenticator.{key} = {value!r}" for key, value in oidc.items()]
    settings = {**POLICY, **policy}
    lines += [f"c.LDAPOIDCAuthenticator.{key} = {value!r}" for key, value in settings.items()]
    lines += [
        'c.JupyterHub.spawner_class = "simple"',
        # Refresh only before a spawn: each test says when a refresh happens.
        "c.Authenticator.auth_refresh_age = 3600",
        "c.Authenticator.refresh_pre_spawn = True",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Site:
    """The directory, the provider and one hub with both logins."""

    directory: Directory
    provider: OIDCProvider
    hub: Hub

    def user(self, name: str) -> dict[str, Any]:
        response = self.hub.api("GET", f"/users/{name}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def log(self) -> str:
        return self.hub.process.log_path.read_text()


def provider_settings(port: int) -> ProviderSettings:
    return ProviderSettings(accounts=ACCOUNTS, clients=(hub_client(port),))


@pytest.fixture(scope="module")
def site(directory: Directory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    port = free_port()
    proc, provider = start_oidc_provider(tmp_path_factory.mktemp("oidc"), provider_settings(port))
    try:
        config = combined_hub_config(directory, provider, port)
        hub = start_hub(tmp_path_factory.mktemp("hub"), config, port=port)
        try:
            yield Site(directory, provider, hub)
        finally:
            hub.process.stop(timeout=20)
    finally:
        proc.stop()


pytestmark = pytest.mark.hub


def test_one_login_page_offers_the_form_and_the_provider(site: Site) -> None:
    page = requests.get(f"{site.hub.url}/hub/login?next=/hub/home", timeout=10)
    assert page.status_code == 200
    assert re.search(r'<form action="/hub/login\?next=%2Fhub%2Fhome"\s+method="post"', page.text)
    assert 'name="password"' in page.text
    button = re.search(r'id="eohub-oidc-login-button"[^>]*href="([^"]+)"', page.text)
    assert button, page.text
    assert button.group(1) == "/hub/oauth_login?next=%2Fhub%2Fhome"
    assert "Sign in with OpenID Connect" in page.text


def test_both_sources_land_in_the_same_hub_groups(site: Site) -> None:
    bob = site.hub.login("bob", "bob-pw")
    assert bob.get(f"{site.hub.url}/hub/home", timeout=10).status_code == 200
    olga = hub_login(site.hub.url, "olga")
    assert olga.logged_in, olga.response.text[:300]

    researchers = site.hub.api("GET", "/groups/researchers").json()["users"]
    assert {"bob", "olga"} <= set(researchers)
    assert site.user("bob")["auth_state"]["eohub"]["source"] == "ldap"
    assert site.user("bob")["auth_state"]["ldap"]["dn"] == site.directory.user_dn("bob")
    olga_state = site.user("olga")["auth_state"]
    assert olga_state["eohub"]["source"] == "oidc"
    assert olga_state["eohub"]["groups"] == ["researchers"]  # "/researchers", group_rules
    assert site.user("olga")["admin"] is False


def test_admin_groups_make_admins_from_each_source(site: Site) -> None:
    site.hub.login("alice", "alice-pw")
    assert hub_login(site.hub.url, "otto").logged_in
    assert site.user("alice")["admin"] is True
    assert site.user("otto")["admin"] is True
    admins = site.hub.api("GET", "/groups/hub-admins").json()["users"]
    assert set(admins) == {"alice", "otto"}


@pytest.mark.parametrize(
    ("username", "ldap_password"),
    [("dave", "dave-pw"), ("mallory", "mallory-pw")],
)
def test_the_one_policy_refuses_outsiders_of_both_sources(
    site: Site, username: str, ldap_password: str
) -> None:
    # dave: in no allowed group (allow_all is on); mallory: blocked at the provider,
    # outside the allowed groups in the directory.
    _, response = site.hub.submit_login(username, ldap_password)
    assert response.status_code == 403
    login = hub_login(site.hub.url, username)
    assert login.response.status_code == 403
    assert site.hub.api("GET", f"/users/{username}").status_code == 404


def test_a_name_belongs_to_the_source_that_created_it(site: Site) -> None:
    site.hub.login("bob", "bob-pw")
    # Another person, called bob at the provider, cannot become the directory's bob.
    other_bob = hub_login(site.hub.url, "bob")
    assert other_bob.response.status_code == 403
    assert "jupyterhub-hub-login" not in other_bob.session.cookies
    assert "belongs to an account that signs in with the username and password form" in (
        other_bob.response.text
    )
    assert site.user("bob")["auth_state"]["eohub"]["source"] == "ldap"

    # carol came through the provider first: the directory's carol is refused, in the form.
    assert hub_login(site.hub.url, "carol").logged_in
    _, response = site.hub.submit_login("carol", "carol-pw")
    assert response.status_code == 403
    assert "jupyterhub-hub-login" not in response.cookies
    assert 'class="login_error"' in response.text
    assert "signs in with the OpenID Connect button" in response.text
    assert site.user("carol")["auth_state"]["eohub"]["source"] == "oidc"

    log = site.log()
    assert log.count("Login of bob through OIDC refused") == 1
    assert log.count("Login of carol through LDAP refused") == 1
    assert "carol-pw" not in log


def test_logout_follows_each_users_source(site: Site) -> None:
    bob = site.hub.login("bob", "bob-pw")
    out = bob.get(f"{site.hub.url}/hub/logout", allow_redirects=False, timeout=30)
    assert (out.status_code, out.headers["location"]) == (302, "/hub/login")

    olga = hub_login(site.hub.url, "olga")
    out = olga.session.get(f"{site.hub.url}/hub/logout", allow_redirects=False, timeout=30)
    assert out.status_code == 302
    assert out.headers["location"].startswith(site.provider.discovery()["end_session_endpoint"])
    home = olga.session.get(f"{site.hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302


def spawn_as(hub: Hub, username: str, token: str) -> requests.Response:
    return requests.post(
        f"{hub.url}/hub/api/users/{username}/server",
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )


def test_refresh_before_a_spawn_follows_each_source_and_withdraws_access(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
    oidc_provider_factory: Callable[..., OIDCProvider],
    hub_factory: Callable[..., Hub],
) -> None:
    _, own = directory_factory()
    port = free_port()
    provider = oidc_provider_factory(provider_settings(port))
    hub = hub_factory(combined_hub_config(own, provider, port), port=port)
    hub.login("bob", "bob-pw")
    assert hub_login(hub.url, "olga").logged_in
    # An account created through the API belongs to no source: refresh leaves it alone.
    assert hub.api("POST", "/users/robot").status_code == 201
    tokens = {name: user_token(hub, name) for name in ("bob", "olga", "robot")}

    # The provider adds olga to climate: the refresh before her spawn brings it in.
    provider.set_account("olga", {**ACCOUNTS["olga"], "groups": ["/researchers", "climate"]})
    hub.spawn("olga")
    assert hub.api("GET", "/users/olga").json()["groups"] == ["climate", "researchers"]
    hub.stop("olga")
    hub.spawn("bob")  # the directory agrees: bob keeps his groups
    hub.stop("bob")

    # Both leave every allowed group at their source.
    for group, attribute in (("researchers", "member"), ("climate", "uniqueMember")):
        admin_modify(
            own, own.group_dn(group), {attribute: [(MODIFY_DELETE, [own.user_dn("bob")])]}
        )
    provider.set_account("olga", {**ACCOUNTS["olga"], "groups": ["/visitors"]})

    for name in ("bob", "olga"):
        response = spawn_as(hub, name, tokens[name])
        assert response.status_code == 403, response.text
        assert f"Access of {name} has been withdrawn" in response.text
        record = hub.api("GET", f"/users/{name}").json()
        assert (record["admin"], record["groups"], record["roles"]) == (False, [], [])
        assert record["servers"] == {}
        assert api_as(hub, tokens[name], "/user").status_code == 403
    assert api_as(hub, tokens["robot"], "/user").status_code == 200

    log = hub.process.log_path.read_text()
    for name in ("bob", "olga"):
        assert f"Refresh of {name}: access withdrawn (not a member of any allowed group)" in log
    assert "Refresh of robot" not in log
