"""ldapauthenticator 2.x configs loaded unchanged into eohub's LDAPAuthenticator, against slapd.

Each row is a config as people write it for ldapauthenticator 2.x (OpenLDAP with a bind
template, OpenLDAP with a search account, Active Directory style, no TLS); the users of
the test directory then log in through JupyterHub's own pipeline. The directory has a
second ``cn=climate`` under ``ou=partners`` (bob and mallory are in it).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from traitlets.config import Config

from eohub.auth.ldap import LDAPAuthenticator
from tests.auth.ldap_support import login
from tests.support.ldap_two_subtrees import PARTNER_CLIMATE, two_subtrees
from tests.support.slapd import Directory

__all__ = ["two_subtrees"]  # the fixture, imported for this module

Legacy = Callable[[Directory], dict[str, Any]]


def openldap_bind_template(d: Directory) -> dict[str, Any]:
    """OpenLDAP, StartTLS, users bound by template, groups as DNs."""
    return {
        "server_address": d.host,
        "server_port": d.port,
        "tls_strategy": "before_bind",
        "tls_kwargs": {"ca_certs_file": str(d.tls.ca_cert)},
        "bind_dn_template": [f"uid={{username}},ou=people,{d.base_dn}"],
        "allowed_groups": [d.group_dn("researchers")],
        "admin_groups": [d.group_dn("hub-admins")],
        "valid_username_regex": r"^[a-z][.a-z0-9_-]*$",
        "escape_userdn": False,
    }


def openldap_search_account(d: Directory) -> dict[str, Any]:
    """OpenLDAP, LDAPS, a search account finds the user; one allowed group DN."""
    return {
        "server_address": d.host,
        "server_port": d.ldaps_port,
        "tls_strategy": "on_connect",
        "tls_kwargs": {"ca_certs_file": str(d.tls.ca_cert), "validate": ssl.CERT_REQUIRED},
        "lookup_dn": True,
        "lookup_dn_search_user": d.service_dn,
        "lookup_dn_search_password": d.service_password,
        "lookup_dn_user_dn_attribute": "uid",
        "use_lookup_dn_username": False,
        "user_search_base": f"ou=people,{d.base_dn}",
        "user_attribute": "uid",
        "allowed_groups": [d.group_dn("climate")],
        "group_search_filter": "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))",
        "group_attributes": ["member", "uniqueMember", "memberUid"],
        "auth_state_attributes": ["mail", "uidNumber"],
    }


def active_directory_style(d: Directory) -> dict[str, Any]:
    """As written for AD (uid standing in for sAMAccountName): use_ssl, search_filter."""
    return {
        "server_address": d.host,
        "server_port": d.ldaps_port,
        "use_ssl": True,
        "tls_kwargs": {"ca_certs_file": str(d.tls.ca_cert)},
        "lookup_dn": True,
        "lookup_dn_search_user": d.service_dn,
        "lookup_dn_search_password": d.service_password,
        "lookup_dn_search_filter": "(&(objectClass=person)({login_attr}={login}))",
        "user_search_base": d.base_dn,
        "user_attribute": "uid",
        "lookup_dn_user_dn_attribute": "uid",
        "search_filter": f"(&({{userattr}}={{username}})(memberOf={d.group_dn('researchers')}))",
        "attributes": ["uid"],
        "group_search_filter": "(member={userdn})",
        "allow_all": True,
        "admin_users": {"alice"},
    }


def no_tls_template_list(d: Directory) -> dict[str, Any]:
    """No TLS (allowed with allow_plaintext), several templates, names and DNs mixed."""
    return {
        "server_address": d.host,
        "server_port": d.port,
        "tls_strategy": "insecure",
        "allow_plaintext": True,
        "bind_dn_template": [
            "",
            f"uid={{username}},ou=staff,{d.base_dn}",
            f"uid={{username}},ou=people,{d.base_dn}",
        ],
        "allowed_groups": ["researchers", d.group_dn("climate")],
        "admin_groups": ["hub-admins"],
        "allow_nested_groups": True,
    }


# user -> None (refused), or (admin, groups they must have, groups they must not have)
Expect = dict[str, tuple[bool | None, set[str], set[str]] | None]
CASES: list[tuple[Legacy, Expect]] = [
    (
        openldap_bind_template,
        {
            "alice": (True, {"researchers", "hub-admins", "staff"}, set()),
            "bob": (False, {"researchers"}, {"climate"}),  # two climates: withheld
            "carol": None,
            "mallory": None,
        },
    ),
    (
        openldap_search_account,
        {
            "alice": None,
            "bob": (None, {"researchers"}, {"climate"}),  # allowed by the climate DN
            "carol": (None, {"climate", "staff"}, set()),
            "mallory": None,  # only in the partners' climate
        },
    ),
    (
        active_directory_style,
        {
            "alice": (True, {"researchers"}, set()),
            "bob": (None, {"researchers"}, set()),
            "carol": None,  # search_filter: not in researchers
            "mallory": None,
        },
    ),
    (
        no_tls_template_list,
        {
            "alice": (True, {"researchers", "eo-scientists"}, set()),
            "bob": (False, {"researchers"}, {"climate"}),
            "carol": (False, {"climate"}, set()),
            "dave": None,
            "mallory": None,
        },
    ),
]


def legacy_authenticator(settings: dict[str, Any]) -> LDAPAuthenticator:
    authenticator = LDAPAuthenticator(
        config=Config({"LDAPAuthenticator": {**settings, "group_cache_ttl": 0.0}})
    )
    authenticator.check_allow_config()
    return authenticator


@pytest.fixture
def started() -> Iterator[list[LDAPAuthenticator]]:
    """Authenticators the test started; their workers and connections are closed after."""
    authenticators: list[LDAPAuthenticator] = []
    yield authenticators
    for authenticator in authenticators:
        authenticator.close()


@pytest.mark.parametrize(("legacy", "expect"), CASES, ids=[c[0].__name__ for c in CASES])
def test_a_2x_config_logs_users_in(
    legacy: Legacy,
    expect: Expect,
    two_subtrees: Directory,
    started: list[LDAPAuthenticator],
) -> None:
    authenticator = legacy_authenticator(legacy(two_subtrees))
    started.append(authenticator)
    for user, outcome in expect.items():
        model = login(authenticator, user, f"{user}-pw")
        if outcome is None:
            assert model is None, user
            continue
        assert model is not None, user
        admin, has, lacks = outcome
        assert model["name"] == user
        assert model["admin"] is admin, user
        assert has <= set(model["groups"]), (user, model["groups"])
        assert not lacks & set(model["groups"]), (user, model["groups"])
    assert login(authenticator, "alice", "wrong") is None


def test_same_named_groups_are_not_merged(
    two_subtrees: Directory, started: list[LDAPAuthenticator], caplog: pytest.LogCaptureFixture
) -> None:
    d = two_subtrees
    authenticator = legacy_authenticator(
        {**openldap_search_account(d), "allowed_groups": ["climate"]}
    )
    started.append(authenticator)
    with caplog.at_level(logging.WARNING, logger="eohub"):
        bob = login(authenticator, "bob", "bob-pw")
        # A name entry matches the name where it is not ambiguous: mallory's only
        # climate is the partners' one (list the group by DN to pin it).
        mallory = login(authenticator, "mallory", "mallory-pw")
        carol = login(authenticator, "carol", "carol-pw")
    assert bob is None  # his "climate" is ambiguous: it grants nothing
    assert mallory is not None
    assert mallory["groups"] == ["climate"]
    assert carol is not None
    assert "climate" in carol["groups"]
    clash = [r for r in caplog.records if "share the name" in r.getMessage()]
    assert len(clash) == 1
    line = clash[0].getMessage()
    assert d.group_dn("climate") in line
    assert PARTNER_CLIMATE in line
    assert "bob" in line

    # The DN entry keeps bob in (by the DN), and his hub groups still leave climate out.
    pinned = legacy_authenticator(openldap_search_account(d))
    started.append(pinned)
    bob = login(pinned, "bob", "bob-pw")
    assert bob is not None
    assert "climate" not in bob["groups"]
    ldap_state = bob["auth_state"]["ldap"]
    assert PARTNER_CLIMATE in ldap_state["group_dns"]
    assert ldap_state["withheld_groups"] == ["climate"]
    assert bob["auth_state"]["user_attributes"] == {
        "mail": ["bob@example.org"],
        "uidNumber": ["10002"],
    }


def test_same_named_groups_of_different_users_are_merged_loudly(
    two_subtrees: Directory, started: list[LDAPAuthenticator], caplog: pytest.LogCaptureFixture
) -> None:
    d = two_subtrees
    authenticator = legacy_authenticator(
        {**openldap_search_account(d), "allowed_groups": ["climate"]}
    )
    started.append(authenticator)
    with caplog.at_level(logging.WARNING, logger="eohub"):
        for _ in range(2):  # said once per name and DN, however often they log in
            carol = login(authenticator, "carol", "carol-pw")
            mallory = login(authenticator, "mallory", "mallory-pw")
            assert carol is not None
            assert mallory is not None
            # One hub group for two directory groups: as documented, and logged.
            assert "climate" in carol["groups"]
            assert mallory["groups"] == ["climate"]
    (line,) = [r.getMessage() for r in caplog.records if "are both named" in r.getMessage()]
    assert d.group_dn("climate") in line
    assert PARTNER_CLIMATE in line
    assert "merged into hub group climate" in line
    assert "group_search_base" in line


def test_a_blocked_name_blocks_even_when_ambiguous(
    two_subtrees: Directory, started: list[LDAPAuthenticator]
) -> None:
    authenticator = legacy_authenticator(
        {
            **openldap_search_account(two_subtrees),
            "allowed_groups": [],
            "allow_all": True,
            "blocked_groups": ["climate"],
        }
    )
    started.append(authenticator)
    assert login(authenticator, "bob", "bob-pw") is None
    assert login(authenticator, "carol", "carol-pw") is None
    assert login(authenticator, "alice", "alice-pw") is not None


def test_one_warning_per_old_setting_and_no_secret(
    two_subtrees: Directory, started: list[LDAPAuthenticator], caplog: pytest.LogCaptureFixture
) -> None:
    settings = openldap_search_account(two_subtrees)
    with caplog.at_level(logging.WARNING, logger="eohub"):
        authenticator = legacy_authenticator(settings)
        started.append(authenticator)
        authenticator.check_allow_config()  # a second call warns no more
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("eohub.")]
    renamed = set(settings) - {"user_search_base", "allowed_groups", "auth_state_attributes"}
    for name in renamed:
        mine = [line for line in lines if line.startswith(f"LDAPAuthenticator.{name} ")]
        assert len(mine) == 1, (name, mine)
    became = {line.split(" ")[0]: line for line in lines}
    assert "service_dn = 'cn=hub-reader" in became["LDAPAuthenticator.lookup_dn_search_user"]
    assert "(hidden)" in became["LDAPAuthenticator.lookup_dn_search_password"]
    assert "server_urls = ['ldaps://127.0.0.1:" in became["LDAPAuthenticator.tls_strategy"]
    assert "{dn}" in became["LDAPAuthenticator.group_search_filter"]
    assert "ou=groups,dc=example,dc=org" in became["LDAPAuthenticator.group_search_base"]
    assert two_subtrees.service_password not in caplog.text
    assert authenticator.server_urls == [f"ldaps://127.0.0.1:{two_subtrees.ldaps_port}"]
    assert authenticator.service_dn == two_subtrees.service_dn


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"tls_strategy": "insecure"}, "LDAPAuthenticator.tls_strategy: 'insecure'"),
        ({"tls_kwargs": {"validate": ssl.CERT_NONE}}, "LDAPAuthenticator.tls_kwargs: validate"),
        ({"server_urls": ["ldaps://elsewhere:636"]}, "but server_urls is set to"),
        ({"service_dn": "cn=other,dc=example,dc=org"}, "but service_dn is set to"),
        ({"user_search_filter": "(mail={username})"}, "but user_search_filter is set to"),
        ({"login_name_pattern": "[a-z]+", "valid_username_regex": "^x$"}, "login_name_pattern"),
    ],
)
def test_refused_at_start_up(
    change: dict[str, Any], problem: str, two_subtrees: Directory
) -> None:
    settings = {**openldap_search_account(two_subtrees), **change}
    authenticator = LDAPAuthenticator(config=Config({"LDAPAuthenticator": settings}))
    with pytest.raises(ValueError, match="LDAPAuthenticator") as refused:
        authenticator.check_allow_config()
    assert problem in str(refused.value)
