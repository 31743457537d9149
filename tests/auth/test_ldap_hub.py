"""Real logins through a real JupyterHub with eohub's LDAPAuthenticator and slapd."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE
from playwright.sync_api import Page, expect

from eohub.domain.identity.profile import UserProfile
from eohub.domain.launch.policy import Member, visible_environments
from eohub.spawner.settings import load_launch_config
from tests.auth.ldap_support import ldap_hub_config
from tests.auth.test_ldap import admin_modify
from tests.support.hub import Hub, add_user_scopes
from tests.support.process import ServiceProcess
from tests.support.slapd import Directory


def test_login_admin_groups_and_auth_state(
    directory: Directory, hub_factory: Callable[..., Hub]
) -> None:
    hub = hub_factory(ldap_hub_config(directory))
    session = hub.login("alice", "alice-pw")
    assert session.get(f"{hub.url}/hub/home", timeout=10).status_code == 200

    alice = hub.api("GET", "/users/alice").json()
    assert alice["admin"] is True
    assert {"researchers", "hub-admins", "eo-scientists", "staff"} <= set(alice["groups"])
    state = alice["auth_state"]["eohub"]
    assert state["git"] == {"name": "Alice Liddell", "email": "alice@example.org"}
    assert state["uid_number"] == 10001

    hub.login("bob", "bob-pw")
    bob = hub.api("GET", "/users/bob").json()
    assert bob["admin"] is False
    # JupyterHub groups mirror the directory (manage_groups).
    climate = hub.api("GET", "/groups/climate").json()
    assert climate["users"] == ["bob"]


def test_refused_logins_get_403_never_500(
    directory: Directory, hub_factory: Callable[..., Hub]
) -> None:
    hub = hub_factory(ldap_hub_config(directory))
    for username, password in [
        ("mallory", "mallory-pw"),  # not in an allowed group
        ("alice", "wrong"),
        ("*", "alice-pw"),
        ("alice)(uid=*", "alice-pw"),
        ("a" * 5000, "x"),
        ("alice", ""),
    ]:
        _, response = hub.submit_login(username, password)
        assert response.status_code == 403, (username, response.status_code)
        assert "jupyterhub-hub-login" not in response.cookies
    assert hub.api("GET", "/users/mallory").status_code == 404


def test_directory_down_is_a_clear_503(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
    hub_factory: Callable[..., Hub],
) -> None:
    proc, own = directory_factory()
    hub = hub_factory(ldap_hub_config(own, connect_timeout=1.0))
    proc.stop()
    _, response = hub.submit_login("bob", "bob-pw")
    assert response.status_code == 503
    assert "cannot reach the directory" in response.text
    assert "bob-pw" not in hub.process.log_path.read_text()


def user_token(hub: Hub, username: str, scopes: list[str] | None = None) -> str:
    """An API token of ``username``, as a script of theirs would hold."""
    body = {"note": "script"} | ({"scopes": scopes} if scopes is not None else {})
    response = hub.api("POST", f"/users/{username}/tokens", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def api_as(hub: Hub, token: str, path: str) -> requests.Response:
    return requests.get(
        f"{hub.url}/hub/api{path}", headers={"Authorization": f"token {token}"}, timeout=30
    )


# Environments as an admin configures them: climate's is for the climate group only.
CLIMATE_LAUNCH = {
    "environments": {
        "base": {"image": "eohub/base:1", "default": True},
        "climate": {"image": "eohub/climate:1", "allowed_groups": ["climate"]},
    },
    "sizes": {"small": {"cpu": 1, "memory": "2G"}},
}


def offered_environments(hub: Hub, username: str, launch: dict[str, Any]) -> list[str]:
    """The environments the launch form offers ``username``, from the groups the hub
    stored for them (the spawner reads them from auth_state)."""
    state = hub.api("GET", f"/users/{username}").json()["auth_state"]
    profile = UserProfile.from_auth_state(state)
    assert profile is not None
    config = load_launch_config("kube", launch)
    return [e.name for e in visible_environments(config, Member(username, profile.groups))]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def move_users_at_the_directory(own: Directory) -> None:
    """The admin leaves every allowed group and the admin group, bob leaves climate,
    carol joins a blocked group."""
    alice_dn = own.user_dn("alice")
    admin_modify(own, own.group_dn("researchers"), {"member": [(MODIFY_DELETE, [alice_dn])]})
    # groupOfNames needs a member: dave takes the admin group over.
    admin_modify(
        own, own.group_dn("hub-admins"), {"member": [(MODIFY_REPLACE, [own.user_dn("dave")])]}
    )
    admin_modify(
        own, own.group_dn("climate"), {"uniqueMember": [(MODIFY_DELETE, [own.user_dn("bob")])]}
    )
    admin_modify(
        own, own.group_dn("sentinel-team"), {"member": [(MODIFY_ADD, [own.user_dn("carol")])]}
    )


def assert_the_admin_lost_everything(
    hub: Hub, alice: requests.Session, tokens: tuple[str, ...]
) -> None:
    # The admin's existing tokens are refused, the first request included.
    for token in tokens:
        assert api_as(hub, token, "/users").status_code == 403
    record = hub.api("GET", "/users/alice").json()
    assert (record["admin"], record["groups"], record["roles"]) == (False, [], [])
    assert hub.api("GET", "/users/alice/tokens").json()["api_tokens"] == []
    wait_for(lambda: hub.server("alice") is None, "alice's server still runs")
    home = alice.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False)
    assert home.status_code == 302
    assert "/hub/login" in home.headers["location"]


def test_a_refresh_brings_the_hub_in_line_with_the_directory(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
    hub_factory: Callable[..., Hub],
) -> None:
    _, own = directory_factory()
    hub = hub_factory(
        ldap_hub_config(own, blocked_groups={"sentinel-team"})
        + "c.Authenticator.auth_refresh_age = 1\n"
    )
    # Someone outside the allowed groups is logged as that, not as blocked.
    _, refused = hub.submit_login("mallory", "mallory-pw")
    assert refused.status_code == 403
    log = hub.process.log_path.read_text()
    assert "Login of mallory refused: not a member of any allowed group" in log
    assert "'mallory' blocked" not in log

    alice, bob, carol = (hub.login(u, f"{u}-pw") for u in ("alice", "bob", "carol"))
    full, narrow = user_token(hub, "alice"), user_token(hub, "alice", ["list:users"])
    carol_token = user_token(hub, "carol")
    # A service account created through the API, never in the directory.
    assert hub.api("POST", "/users/robot").status_code == 201
    robot_token = user_token(hub, "robot")
    assert api_as(hub, full, "/users").status_code == 200
    assert api_as(hub, narrow, "/users").status_code == 200
    assert api_as(hub, carol_token, "/users/carol").status_code == 200
    assert "climate" in offered_environments(hub, "bob", CLIMATE_LAUNCH)
    hub.spawn("alice")

    move_users_at_the_directory(own)
    time.sleep(1.5)  # past auth_refresh_age

    assert_the_admin_lost_everything(hub, alice, (full, narrow))

    # The API-created user is not the directory's to withdraw: its token still works.
    assert api_as(hub, robot_token, "/users/robot").status_code == 200
    assert api_as(hub, robot_token, "/user").status_code == 200

    # bob keeps his access but loses climate, and the climate environment with it.
    assert bob.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False).status_code == 200
    assert hub.api("GET", "/users/bob").json()["groups"] == ["researchers"]
    assert "bob" not in hub.api("GET", "/groups/climate").json()["users"]
    assert offered_environments(hub, "bob", CLIMATE_LAUNCH) == ["base"]

    # carol's blocked group applies at her next request, token or browser.
    assert api_as(hub, carol_token, "/users/carol").status_code == 403
    assert api_as(hub, carol_token, "/user").status_code == 403
    assert carol.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False).status_code == 302
    assert hub.api("GET", "/users/carol").json()["groups"] == []
    _, again = hub.submit_login("carol", "carol-pw")
    assert again.status_code == 403

    log = hub.process.log_path.read_text()
    assert log.count("Refresh of alice: access withdrawn (not a member of any allowed group)") == 1
    assert "Refresh of carol: access withdrawn (member of blocked group 'sentinel-team')" in log
    assert "Removing user bob from group(s): {'climate'}" in log
    assert "Failed to get current user" not in log  # refusals are not errors
    assert "Refresh of robot" not in log

    # Logout clears the session cookie: the same session is sent to the login page.
    assert bob.get(f"{hub.url}/hub/logout", timeout=10).status_code == 200
    assert bob.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False).status_code == 302


def test_a_withdrawn_user_cannot_start_a_server_with_a_kept_token(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
    hub_factory: Callable[..., Hub],
) -> None:
    _, own = directory_factory()
    # No refresh at the start of a request: only the one before a spawn, which comes
    # after JupyterHub computed the request's scopes.
    hub = hub_factory(
        ldap_hub_config(own, withdrawn_access_revokes_tokens=False)
        + "c.Authenticator.auth_refresh_age = 3600\n"
        + "c.Authenticator.refresh_pre_spawn = True\n"
        # Users may share their servers, with users they name.
        + add_user_scopes("shares!user", "read:users:name")
    )
    hub.login("bob", "bob-pw")
    hub.login("carol", "carol-pw")
    bob_token, carol_token = user_token(hub, "bob"), user_token(hub, "carol")
    # carol shares her server with bob.
    hub.spawn("carol")
    shares = f"{hub.url}/hub/api/shares/carol/"
    carol_auth = {"Authorization": f"token {carol_token}"}
    shared = requests.post(shares, json={"user": "bob"}, headers=carol_auth, timeout=30)
    assert shared.status_code == 200, shared.text
    assert api_as(hub, bob_token, "/users/bob").status_code == 200
    for group, attribute in (("researchers", "member"), ("climate", "uniqueMember")):
        admin_modify(
            own, own.group_dn(group), {attribute: [(MODIFY_DELETE, [own.user_dn("bob")])]}
        )

    response = requests.post(
        f"{hub.url}/hub/api/users/bob/server",
        headers={"Authorization": f"token {bob_token}"},
        timeout=30,
    )
    assert response.status_code == 403, response.text
    assert "Access of bob has been withdrawn" in response.text
    assert hub.server("bob") is None
    # The kept token reaches nothing: no scopes of its own, no shared server.
    assert api_as(hub, bob_token, "/users/bob").status_code == 403
    assert requests.get(shares, headers=carol_auth, timeout=30).json()["items"] == []
    assert hub.api("GET", "/users/bob").json()["auth_state"]["eohub"]["groups"] == []
    log = hub.process.log_path.read_text()
    assert "Refresh of bob: access withdrawn (not a member of any allowed group)" in log
    assert "shares removed 1" in log
    assert "Uncaught exception" not in log


def test_browser_login_and_refusal(
    directory: Directory, hub_factory: Callable[..., Hub], page: Page, artifacts: Path
) -> None:
    hub = hub_factory(ldap_hub_config(directory))
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "mallory")
    page.fill("input[name=password]", "mallory-pw")
    page.click("button[type=submit], input[type=submit]")
    expect(page.locator(".login_error")).to_contain_text("Invalid username or password")
    page.screenshot(path=str(artifacts / "ldap-refused.png"))

    page.fill("input[name=username]", "Alice")  # typed with a capital: still alice
    page.fill("input[name=password]", "alice-pw")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/hub/**")
    page.goto(f"{hub.url}/hub/home")
    expect(page.locator("body")).to_contain_text("alice")
    expect(page.get_by_role("link", name="Admin")).to_be_visible()  # admin via hub-admins
    page.screenshot(path=str(artifacts / "ldap-home.png"))
