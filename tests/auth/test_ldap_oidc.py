"""LDAPOIDCAuthenticator's rules and start-up checks, and the sources' group prefixes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from eohub.auth.ldap_oidc import LDAPOIDCAuthenticator
from eohub.auth.ldap_oidc_rules import (
    LDAP,
    OIDC,
    login_source,
    misplaced_settings,
    ownership_refusal,
)
from eohub.domain.identity.groups import GroupRule, canonical_groups
from tests.auth.ldap_support import ldap_config
from tests.support.slapd import Directory

LDAP_OK = {
    "server_urls": ["ldaps://ldap.example.org"],
    "service_dn": "cn=reader,dc=example,dc=org",
    "service_password": "pw",
    "user_search_base": "ou=people,dc=example,dc=org",
    "group_search_base": "ou=groups,dc=example,dc=org",
}
OIDC_OK = {"issuer": "https://idp.example.org", "client_id": "hub", "client_secret": "s"}


def combined(**sections: dict[str, Any]) -> LDAPOIDCAuthenticator:
    config = Config({"LDAPAuthenticator": LDAP_OK, "OIDCAuthenticator": OIDC_OK, **sections})
    return LDAPOIDCAuthenticator(config=config)


@pytest.mark.parametrize(
    ("state", "source"),
    [
        ({"eohub": {"source": "ldap"}}, LDAP),
        ({"eohub": {"source": "oidc"}, "ldap": {"dn": "uid=x"}}, OIDC),
        ({"ldap": {"dn": "uid=x,ou=people"}}, LDAP),
        ({"oauth_user": {"sub": "x"}}, OIDC),
        ({"id_token": "a.b.c"}, OIDC),
        ({"eohub": {"source": "pam"}}, None),
        ({"ldap": {"dn": ""}}, None),
        ({}, None),
        (None, None),
    ],
)
def test_the_source_of_a_user_is_read_from_auth_state(
    state: dict[str, Any] | None, source: str | None
) -> None:
    assert login_source(state) == source


@pytest.mark.parametrize(
    ("source", "owner", "refused_with"),
    [
        (LDAP, None, None),
        (OIDC, None, None),
        (LDAP, LDAP, None),
        (OIDC, OIDC, None),
        (OIDC, LDAP, "signs in with the username and password form"),
        (LDAP, OIDC, "signs in with the EGI Check-in button"),
    ],
)
def test_a_user_name_belongs_to_the_source_that_created_it(
    source: str, owner: str | None, refused_with: str | None
) -> None:
    why = ownership_refusal("ann", source, owner, service="EGI Check-in")
    if refused_with is None:
        assert why is None
    else:
        assert why is not None
        assert refused_with in why
        assert "'ann'" in why


def test_misplaced_settings_name_where_they_belong() -> None:
    problems = misplaced_settings(
        {"group_rules", "allowed_groups"}, [("OIDCAuthenticator", "admin_groups")]
    )
    assert problems == [
        "LDAPOIDCAuthenticator.group_rules is per source: set c.LDAPAuthenticator.group_rules"
        " and/or c.OIDCAuthenticator.group_rules instead",
        "OIDCAuthenticator.admin_groups differs from LDAPOIDCAuthenticator.admin_groups:"
        " access, admin and PI rules are decided once for both sources; set"
        " c.LDAPOIDCAuthenticator.admin_groups (or c.Authenticator.admin_groups) instead",
    ]


def test_the_sources_take_the_hubs_policy() -> None:
    hub = combined(
        LDAPOIDCAuthenticator={
            "allowed_groups": {"researchers"},
            "admin_groups": {"hub-admins"},
            "pi_users": {"climate": ["carol"]},
            "withdrawn_access_stops_servers": False,
        },
        Authenticator={"admin_users": {"root"}},
    )
    hub.check_allow_config()
    for source in (hub.ldap, hub.oidc):
        assert source.allowed_groups == {"researchers"}
        assert source.admin_groups == {"hub-admins"}
        assert source.pi_users == {"climate": ["carol"]}
        assert source.withdrawn_access_stops_servers is False
        assert source.enable_auth_state is True
    # JupyterHub changes its authenticator's user sets after start-up: the sources
    # read the hub's policy at each decision.
    hub.allowed_users = {"ann"}
    for source in (hub.ldap, hub.oidc):
        assert source.access_policy() == hub.access_policy()
        assert source.access_policy().allowed_users == {"ann"}


@pytest.mark.parametrize(
    ("sections", "error"),
    [
        ({"LDAPAuthenticator": {}}, "LDAPAuthenticator: server_urls is empty"),
        ({"OIDCAuthenticator": {}}, "OIDCAuthenticator.issuer is not set"),
        (
            {"LDAPOIDCAuthenticator": {"enable_auth_state": False}},
            "enable_auth_state is off",
        ),
        ({"OIDCAuthenticator": {**OIDC_OK, "auto_login": True}}, "auto_login cannot be used"),
        (
            {"OIDCAuthenticator": {**OIDC_OK, "oauth_callback_url": "https://h/hub/callback"}},
            "must end in /hub/oauth_callback",
        ),
        (
            {"LDAPOIDCAuthenticator": {"group_rules": [{"pattern": "x", "replacement": "y"}]}},
            "LDAPOIDCAuthenticator.group_rules is per source",
        ),
        (
            {"LDAPOIDCAuthenticator": {"group_prefix": "egi:"}},
            "LDAPOIDCAuthenticator.group_prefix is per source",
        ),
        (
            {"LDAPAuthenticator": {**LDAP_OK, "allowed_groups": {"staff"}}},
            "LDAPAuthenticator.allowed_groups differs from LDAPOIDCAuthenticator",
        ),
        (
            {"OIDCAuthenticator": {**OIDC_OK, "allow_all": True}},
            "OIDCAuthenticator.allow_all differs",
        ),
        (
            {"OIDCAuthenticator": {**OIDC_OK, "admin_users": {"eve"}}},
            "OIDCAuthenticator.admin_users differs",
        ),
    ],
)
def test_start_up_refuses_what_cannot_work(sections: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match="LDAPOIDCAuthenticator:") as raised:
        combined(**sections).check_allow_config()
    assert error in str(raised.value)


def test_shared_settings_may_be_repeated_with_the_same_value() -> None:
    hub = combined(
        LDAPOIDCAuthenticator={"allowed_groups": {"researchers"}},
        LDAPAuthenticator={**LDAP_OK, "allowed_groups": {"researchers"}},
        Authenticator={"admin_users": {"root"}},
    )
    hub.check_allow_config()
    assert hub.ldap.admin_users == {"root"}


def test_allow_all_does_not_bypass_the_groups_for_either_source() -> None:
    hub = combined(LDAPOIDCAuthenticator={"allow_all": True, "allowed_groups": {"researchers"}})
    outsider = {"name": "dave", "groups": ["visitors"]}
    member = {"name": "bob", "groups": ["researchers"]}
    assert hub.check_blocked_users("dave", outsider) is False
    assert hub.check_blocked_users("bob", member) is True
    assert hub.check_allowed("bob", member) is True


@pytest.mark.parametrize(
    ("raw", "prefix", "expected"),
    [
        (["staff", "climate"], "egi:", {"egi:staff", "egi:climate"}),
        (["staff"], "", {"staff"}),
        (["/projects/a", "drop-me"], "x-", {"x-a"}),
        (["g" * 250], "egi:", {"egi:" + "g" * 250}),
        (["g" * 252], "egi:", set()),  # too long with the prefix: not a hub group
    ],
)
def test_a_group_prefix_comes_after_the_rules(
    raw: list[str], prefix: str, expected: set[str]
) -> None:
    rules = (
        GroupRule.parse({"pattern": r"/projects/(.+)", "replacement": r"\1"}),
        GroupRule.parse({"pattern": "drop-me", "replacement": ""}),
    )
    assert canonical_groups(raw, rules, prefix=prefix) == expected


@pytest.mark.parametrize("prefix", [" egi", "egi\n", "x" * 255])
def test_a_group_prefix_that_cannot_make_group_names_is_refused(prefix: str) -> None:
    with pytest.raises(TraitError, match="group_prefix"):
        combined(OIDCAuthenticator={**OIDC_OK, "group_prefix": prefix})


def test_each_source_maps_its_own_names(directory: Directory) -> None:
    # A directory group and a provider group both called "staff" stay two hub groups.
    ldap = {k: v for k, v in ldap_config(directory)["LDAPAuthenticator"].items()}
    for shared in ("allowed_groups", "admin_groups"):
        ldap.pop(shared)
    hub = combined(
        LDAPAuthenticator=ldap,
        OIDCAuthenticator={**OIDC_OK, "group_prefix": "egi:"},
        LDAPOIDCAuthenticator={"allowed_groups": {"staff", "egi:staff"}},
    )
    hub.check_allow_config()
    try:
        alice = asyncio.run(
            hub.ldap.authenticate(None, {"username": "alice", "password": "alice-pw"})
        )
    finally:
        hub.close()
    assert alice is not None
    assert "staff" in alice["groups"]
    assert not any(g.startswith("egi:") for g in alice["groups"])
    assert hub.oidc.resolve_groups(["staff", "researchers"]) == {"egi:staff", "egi:researchers"}
    assert hub.check_allowed("alice", alice) is True
    assert hub.check_allowed("olga", {"name": "olga", "groups": ["egi:staff"]}) is True
    assert hub.check_allowed("olga", {"name": "olga", "groups": ["staff-x"]}) is False
