"""eohub's LDAPAuthenticator against a real slapd: who gets in, with which groups."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection, Server
from tornado import web
from traitlets import TraitError
from traitlets.config import Config

from eohub.auth.ldap import LDAPAuthenticator
from eohub.domain.identity.profile import UserProfile
from tests.auth.ldap_support import login, make_authenticator
from tests.support.process import ServiceProcess
from tests.support.slapd import Directory

PASSWORDS = {
    "alice": "alice-pw",
    "bob": "bob-pw",
    "carol": "carol-pw",
    "dave": "dave-pw",
    "mallory": "mallory-pw",
}


def profile_of(model: dict[str, Any]) -> UserProfile:
    profile = UserProfile.from_auth_state(model["auth_state"])
    assert profile is not None
    return profile


@pytest.mark.parametrize(
    ("username", "groups", "admin", "pi_of"),
    [
        ("alice", {"researchers", "hub-admins", "eo-scientists", "staff"}, True, set()),
        ("bob", {"researchers", "climate"}, False, set()),
        ("carol", {"climate", "staff"}, False, {"climate"}),  # owner of climate
    ],
)
def test_members_log_in_with_their_groups(
    directory: Directory, username: str, groups: set[str], admin: bool, pi_of: set[str]
) -> None:
    model = login(make_authenticator(directory), username, PASSWORDS[username])
    assert model is not None
    assert model["name"] == username
    assert set(model["groups"]) == groups
    assert model["admin"] is admin
    profile = profile_of(model)
    assert profile.groups == groups
    assert profile.pi_of == pi_of
    assert profile.source == "ldap"
    assert model["auth_state"]["ldap"]["dn"] == directory.user_dn(username)


def test_auth_state_carries_the_profile_and_git_identity(directory: Directory) -> None:
    model = login(make_authenticator(directory), "alice", "alice-pw")
    assert model is not None
    state = model["auth_state"]["eohub"]
    assert state["display_name"] == "Alice Liddell"
    assert state["email"] == "alice@example.org"
    assert (state["uid_number"], state["gid_number"]) == (10001, 10001)
    assert state["home_directory"] == "/home/alice"
    assert state["git"] == {"name": "Alice Liddell", "email": "alice@example.org"}


def test_nested_groups_are_followed_only_when_asked(directory: Directory) -> None:
    allow = {"allowed_groups": {"sentinel-team"}}
    flat = login(make_authenticator(directory, **allow), "dave", "dave-pw")
    nested = login(make_authenticator(directory, nested_groups=True, **allow), "dave", "dave-pw")
    assert flat is not None
    assert nested is not None
    assert set(flat["groups"]) == {"sentinel-team"}
    assert set(nested["groups"]) == {"sentinel-team", "eo-scientists"}


def test_nested_group_depth_limit(directory: Directory) -> None:
    model = login(
        make_authenticator(
            directory, nested_groups=True, nested_group_depth=0, allowed_groups={"sentinel-team"}
        ),
        "dave",
        "dave-pw",
    )
    assert model is not None
    assert set(model["groups"]) == {"sentinel-team"}


def test_group_rules_rename_directory_groups(directory: Directory) -> None:
    rules = [
        {"pattern": "eo-(.+)", "replacement": r"earth-observation-\1"},
        {"pattern": "staff", "replacement": ""},
    ]
    model = login(make_authenticator(directory, group_rules=rules), "alice", "alice-pw")
    assert model is not None
    assert set(model["groups"]) == {"researchers", "hub-admins", "earth-observation-scientists"}


@pytest.mark.parametrize(
    ("overrides", "username", "allowed"),
    [
        ({}, "mallory", False),  # in no allowed group
        ({"allow_all": True}, "mallory", False),  # allow_all cannot bypass allowed_groups
        ({"allow_all": True, "allowed_groups": set()}, "mallory", True),
        ({"blocked_groups": {"climate"}}, "bob", False),
        (
            {"blocked_groups": {"hub-admins"}, "allow_all": True},
            "alice",
            False,
        ),  # blocks beat admin
        ({"blocked_users": {"bob"}}, "bob", False),
        ({"allowed_users": {"mallory"}}, "mallory", True),
        ({"allowed_groups": set(), "admin_users": {"mallory"}}, "mallory", True),
    ],
)
def test_access_rules(
    directory: Directory, overrides: dict[str, Any], username: str, allowed: bool
) -> None:
    model = login(make_authenticator(directory, **overrides), username, PASSWORDS[username])
    assert (model is not None) is allowed


@pytest.mark.parametrize(
    ("settings", "username", "groups", "allowed"),
    [
        # bob is in the hub's database (he logged in once, or the API created him).
        ({"allowed_users": {"ops"}, "allowed_groups": {"staff"}}, "bob", [], False),
        ({"allowed_users": {"ops"}, "allowed_groups": {"staff"}}, "bob", ["staff"], True),
        ({"allowed_users": {"ops"}, "allowed_groups": {"staff"}}, "ops", [], True),
        ({"allowed_users": {"ops"}}, "bob", [], False),
        # An admin who asks for JupyterHub's behaviour gets it.
        ({"allowed_users": {"ops"}, "allow_existing_users": True}, "bob", [], True),
    ],
)
def test_users_in_the_database_are_not_allowed_for_that_alone(
    settings: dict[str, Any], username: str, groups: list[str], allowed: bool
) -> None:
    authenticator = LDAPAuthenticator(config=Config({"LDAPAuthenticator": settings}))
    # What JupyterHub does for every user in its database at start-up and for each
    # user created through the API.
    authenticator.add_user(FakeUser("bob"))
    decision = authenticator.decide(username, {"groups": groups})
    assert decision.allowed is allowed, decision.reason
    if groups == [] and username == "bob":
        bob = FakeUser("bob")
        refreshed = asyncio.run(authenticator.finish_refresh(bob, {"name": "bob", "groups": []}))
        assert (refreshed is False) is not allowed


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong"),
        ("nobody", "alice-pw"),
        ("alice", ""),
        ("alice", "   "),
        # An injection corpus: never another user, never an error.
        ("*", "alice-pw"),
        ("alice*", "alice-pw"),
        ("a*", "alice-pw"),
        ("alice)(uid=*", "alice-pw"),
        ("*)(objectClass=*", "alice-pw"),
        ("alice\x00", "alice-pw"),
        ("alice\\00", "alice-pw"),  # the escaped form, typed literally
        ("alice\\2a", "alice-pw"),
        ("alice,ou=people", "alice-pw"),
        ("uid=alice,ou=people,dc=example,dc=org", "alice-pw"),
        ("alice+cn=x", "alice-pw"),
        ("alice=", "alice-pw"),
        ("\u0430lice", "alice-pw"),  # Cyrillic a
        ("al\u200bice", "alice-pw"),  # zero-width space
        ("a" * 10_000, "alice-pw"),
        ("alice", "x" * 100_000),
    ],
)
def test_bad_credentials_and_injection_never_log_anyone_in(
    directory: Directory, username: str, password: str
) -> None:
    assert login(make_authenticator(directory), username, password) is None


@pytest.mark.parametrize("typed", ["Alice", "  alice ", "\uff41\uff4c\uff49\uff43\uff45"])
def test_typed_variants_of_a_name_are_that_user(directory: Directory, typed: str) -> None:
    model = login(make_authenticator(directory), typed, "alice-pw")
    assert model is not None
    assert model["name"] == "alice"


def test_starttls_and_bind_templates_without_a_service_account(directory: Directory) -> None:
    authenticator = make_authenticator(
        directory,
        server_urls=[directory.url],
        start_tls=True,
        service_dn="",
        service_password="",
        bind_dn_templates=[f"uid={{username}},ou=people,{directory.base_dn}"],
    )
    model = login(authenticator, "bob", "bob-pw")
    assert model is not None
    assert set(model["groups"]) == {"researchers", "climate"}
    assert login(authenticator, "bob", "wrong") is None


def test_an_untrusted_certificate_refuses_the_login(directory: Directory) -> None:
    authenticator = make_authenticator(directory, tls_ca_file="")  # system store: not our CA
    with pytest.raises(web.HTTPError) as info:
        login(authenticator, "alice", "alice-pw")
    assert info.value.status_code == 503


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"server_urls": []}, "server_urls is empty"),
        ({"server_urls": ["ldap://127.0.0.1:1"], "start_tls": False}, "clear"),
        ({"service_dn": "", "bind_dn_templates": []}, "set service_dn"),
        ({"user_search_base": ""}, "user_search_base"),
        ({"service_password": ""}, "service_password"),
    ],
)
def test_settings_that_cannot_work_stop_start_up(
    directory: Directory, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_authenticator(directory, **overrides)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"server_urls": ["http://x"]}, "server_urls"),
        ({"user_search_filter": "(uid=x)"}, "must contain"),
        ({"group_search_filter": "(member={user_dn})"}, "unknown placeholders"),
        ({"server_strategy": "random"}, "server_strategy"),
        ({"login_name_pattern": "("}, "login_name_pattern"),
        ({"group_rules": [{"pattern": "a"}]}, r"group_rules\[0\]"),
        ({"refresh_outage_policy": "maybe"}, "refresh_outage_policy"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(
    directory: Directory, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(TraitError, match=message):
        make_authenticator(directory, **overrides)


def connections_left_open(log_text: str) -> int:
    accepted = set(re.findall(r"conn=(\d+) fd=\d+ ACCEPT", log_text))
    closed = set(re.findall(r"conn=(\d+) fd=\d+ closed", log_text))
    return len(accepted - closed)


def test_connections_are_reused_and_unbound(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
) -> None:
    proc, own = directory_factory()
    before = proc.log_path.read_text()
    authenticator = make_authenticator(own)
    for _ in range(5):
        assert login(authenticator, "bob", "bob-pw") is not None
    assert login(authenticator, "bob", "wrong") is None
    new = proc.log_path.read_text()[len(before) :]
    # slapd logs each bind on two lines (method, then mech): count (conn, op) pairs.
    service_binds = set(re.findall(r'conn=(\d+) op=(\d+) BIND dn="cn=hub-reader,ou=services', new))
    user_binds = set(re.findall(r'conn=(\d+) op=(\d+) BIND dn="uid=bob,ou=people', new))
    assert len(service_binds) == 1  # one service connection, reused by every login
    assert len(user_binds) == 6
    # Just the idle service connection stays open; slapd logs a user connection's close
    # a moment after the unbind, so wait for it rather than read the log once.
    proc.wait_until(
        lambda: connections_left_open(proc.log_path.read_text()) == 1,
        timeout=5,
        what="closing the user connections",
    )
    authenticator.directory.close()
    proc.wait_until(
        lambda: connections_left_open(proc.log_path.read_text()) == 0,
        timeout=5,
        what="closing the service connection",
    )


class FakeUser:
    def __init__(self, name: str) -> None:
        self.name = name


def admin_modify(directory: Directory, group_dn: str, changes: dict[str, Any]) -> None:
    conn = Connection(
        Server(directory.host, port=directory.port),
        directory.admin_dn,
        directory.admin_password,
        auto_bind=True,
    )
    assert conn.modify(group_dn, changes), conn.result
    conn.unbind()


def test_refresh_follows_the_directory(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
) -> None:
    _proc, own = directory_factory()
    authenticator = make_authenticator(own, allowed_groups={"researchers"})
    assert login(authenticator, "bob", "bob-pw") is not None
    bob = FakeUser("bob")

    admin_modify(own, own.group_dn("hub-admins"), {"member": [(MODIFY_ADD, [own.user_dn("bob")])]})
    refreshed = asyncio.run(authenticator.refresh_user(bob))
    assert isinstance(refreshed, dict)
    assert refreshed["admin"] is True
    assert "hub-admins" in refreshed["groups"]

    # Removed from every group that lets him in: the next refresh ends the session.
    for group in ("researchers", "hub-admins"):
        admin_modify(own, own.group_dn(group), {"member": [(MODIFY_DELETE, [own.user_dn("bob")])]})
    assert asyncio.run(authenticator.refresh_user(bob)) is False


@pytest.mark.parametrize(("policy", "expected"), [("keep", True), ("logout", False)])
def test_a_directory_outage_during_refresh_grants_nothing(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]], policy: str, expected: bool
) -> None:
    proc, own = directory_factory()
    authenticator = make_authenticator(own, refresh_outage_policy=policy, connect_timeout=1.0)
    assert login(authenticator, "bob", "bob-pw") is not None
    authenticator.directory.close()  # drop the idle service connection too
    proc.stop()
    assert asyncio.run(authenticator.refresh_user(FakeUser("bob"))) is expected


def test_anonymous_search_only_when_configured(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
) -> None:
    _proc, open_dir = directory_factory(anonymous_read=True)
    anonymous = {"service_dn": "", "service_password": "", "anonymous_search": True}
    model = login(make_authenticator(open_dir, **anonymous), "bob", "bob-pw")
    assert model is not None
    assert set(model["groups"]) == {"researchers", "climate"}
    # Without the opt-in there is nothing to search with, and start-up says so.
    with pytest.raises(ValueError, match="set service_dn"):
        make_authenticator(open_dir, service_dn="", service_password="")


def test_a_loop_of_nested_groups_ends(
    directory_factory: Callable[..., tuple[ServiceProcess, Directory]],
) -> None:
    _proc, own = directory_factory()
    # eo-scientists contains sentinel-team; make sentinel-team contain eo-scientists too.
    admin_modify(
        own,
        own.group_dn("sentinel-team"),
        {"member": [(MODIFY_ADD, [own.group_dn("eo-scientists")])]},
    )
    model = login(
        make_authenticator(
            own, nested_groups=True, nested_group_depth=50, allowed_groups={"sentinel-team"}
        ),
        "dave",
        "dave-pw",
    )
    assert model is not None
    assert set(model["groups"]) == {"sentinel-team", "eo-scientists"}
