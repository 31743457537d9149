"""Real logins through a real JupyterHub with eohub's LDAPAuthenticator and slapd."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ldap3 import MODIFY_DELETE
from playwright.sync_api import Page, expect

from tests.auth.ldap_support import ldap_hub_config
from tests.auth.test_ldap import admin_modify
from tests.support.hub import Hub
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


def test_refresh_revokes_access_and_logout_ends_the_session(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
    hub_factory: Callable[..., Hub],
) -> None:
    _, own = directory_factory()
    hub = hub_factory(
        ldap_hub_config(own, allowed_groups={"researchers"})
        + "c.Authenticator.auth_refresh_age = 1\n"
    )
    bob = hub.login("bob", "bob-pw")
    assert bob.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False).status_code == 200
    alice = hub.login("alice", "alice-pw")

    admin_modify(
        own, own.group_dn("researchers"), {"member": [(MODIFY_DELETE, [own.user_dn("bob")])]}
    )
    time.sleep(1.5)  # past auth_refresh_age
    home = bob.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False)
    assert home.status_code == 302
    assert "/hub/login" in home.headers["location"]

    # Logout clears the session cookie: the same session is sent to the login page.
    assert alice.get(f"{hub.url}/hub/logout", timeout=10).status_code == 200
    after = alice.get(f"{hub.url}/hub/home", timeout=10, allow_redirects=False)
    assert after.status_code == 302


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
