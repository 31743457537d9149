"""The ldapauthenticator 2.x mapping and the DN rules, as tables, without a directory."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from eohub.auth.ldap_legacy_map import (
    LegacyConfigError,
    common_base,
    directory_root,
    merge,
    translate,
    translate_group_filter,
)
from eohub.domain.identity.access import (
    AccessPolicy,
    NameClash,
    decide_access,
    dn_key,
    refresh_outcome,
    same_name_clashes,
)

F = frozenset
GROUPS = "ou=groups,dc=example,dc=org"
PARTNERS = "ou=groups,ou=partners,dc=example,dc=org"


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        (f"cn=climate,{GROUPS}", f"cn=climate,{GROUPS}"),
        ("CN=Climate, OU=Groups , DC=Example,DC=org", f"cn=climate,{GROUPS}"),
        ("cn=a\\,b,dc=example", "cn=a\\,b,dc=example"),
        ("2.5.4.3=x,dc=example", "2.5.4.3=x,dc=example"),
        ("climate", None),
        ("role=pi", None),  # one RDN: a hub name, not a group's DN
        ("urn:mace:egi.eu:group:vo:role=member#aai.egi.eu", None),
        ("/projects/x=y,z", None),
        ("", None),
    ],
)
def test_dn_key(entry: str, key: str | None) -> None:
    assert dn_key(entry) == key


def test_same_name_clashes_are_by_dn_not_by_spelling() -> None:
    groups = [
        (f"cn=climate,{GROUPS}", "climate"),
        (f"CN=climate, {GROUPS}", "climate"),  # the same group, spelled otherwise
        (f"cn=climate,{PARTNERS}", "climate"),
        (f"cn=staff,{GROUPS}", "staff"),
    ]
    assert same_name_clashes(groups) == (
        NameClash("climate", (f"cn=climate,{GROUPS}", f"cn=climate,{PARTNERS}")),
    )
    assert same_name_clashes(groups[:2] + groups[3:]) == ()


CLIMATE_DN = f"cn=climate,{GROUPS}"
POLICY = AccessPolicy(
    allowed_groups=F({CLIMATE_DN, "researchers"}),
    admin_groups=F({f"CN=Hub-Admins,{GROUPS}"}),
    blocked_groups=F({"suspended", f"cn=banned,{PARTNERS}"}),
)


@pytest.mark.parametrize(
    ("groups", "dns", "withheld", "allowed", "admin", "reason"),
    [
        # A DN entry matches the group with that DN...
        ({"climate"}, [CLIMATE_DN], set(), True, False, "allowed group"),
        # ...never a same-named group elsewhere.
        ({"climate"}, [f"cn=climate,{PARTNERS}"], set(), False, False, "not a member"),
        # A name entry matches the name.
        ({"researchers"}, [f"cn=researchers,{GROUPS}"], set(), True, False, "researchers"),
        # DNs are compared without case and spaces.
        (set(), [f"cn=hub-admins, {GROUPS}"], set(), True, True, "admin"),
        # Without DNs (an OIDC user), DN entries match nothing.
        ({"climate", "hub-admins"}, [], set(), False, False, "not a member"),
        # A withheld (ambiguous) name blocks, but grants nothing.
        ({"researchers"}, [], {"suspended"}, False, None, "blocked group 'suspended'"),
        (set(), [], {"researchers"}, False, False, "not a member"),
        # A blocked DN blocks, whatever else allows.
        ({"researchers"}, [f"cn=banned,{PARTNERS}"], set(), False, None, "blocked group"),
        # A group *name* spelled like a DN entry (an OIDC group may be) matches no DN
        # entry: not admin, not allowed, and not blocked by it either.
        ({f"CN=Hub-Admins,{GROUPS}", CLIMATE_DN}, [], set(), False, False, "not a member"),
        ({"researchers", f"cn=banned,{PARTNERS}"}, [], set(), True, False, "researchers"),
        ({"researchers"}, [], {f"cn=banned,{PARTNERS}"}, True, False, "researchers"),
        # A DN-shaped name entry is still a DN entry: the user's DNs decide.
        ({"x"}, [f"cn=hub-admins,{GROUPS}"], set(), True, True, "admin"),
    ],
)
def test_decide_access_with_dns(
    groups: set[str],
    dns: list[str],
    withheld: set[str],
    allowed: bool,
    admin: bool | None,
    reason: str,
) -> None:
    decision = decide_access("u", F(groups), POLICY, group_dns=dns, withheld=F(withheld))
    assert (decision.allowed, decision.admin) == (allowed, admin)
    assert reason in decision.reason


def test_refresh_outcome_reads_the_dns() -> None:
    kept = refresh_outcome("u", F({"climate"}), POLICY, group_dns=[CLIMATE_DN])
    lost = refresh_outcome("u", F({"climate"}), POLICY, group_dns=[f"cn=climate,{PARTNERS}"])
    assert (kept.withdrawn, kept.groups) == (False, F({"climate"}))
    assert (lost.withdrawn, lost.groups) == (True, F())


@pytest.mark.parametrize(
    ("dns", "base"),
    [
        ([CLIMATE_DN], GROUPS),
        ([CLIMATE_DN, f"cn=staff,{GROUPS}"], GROUPS),
        ([CLIMATE_DN, f"cn=climate,{PARTNERS}"], "dc=example,dc=org"),
        (["cn=a,dc=one", "cn=b,dc=two"], None),
        ([], None),
    ],
)
def test_common_base(dns: list[str], base: str | None) -> None:
    assert common_base(dns) == base


def test_directory_root() -> None:
    assert directory_root("uid={username},ou=people,dc=example,dc=org") == "dc=example,dc=org"
    assert directory_root("o=example") is None


SERVER = {"server_address": "ldap.example.org"}


def settings(old: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return merge(translate(old, **kw), {})


@pytest.mark.parametrize(
    ("old", "expected"),
    [
        (SERVER, {"server_urls": ["ldap://ldap.example.org:389"]}),
        (
            {**SERVER, "tls_strategy": "before_bind"},
            {"server_urls": ["ldap://ldap.example.org:389"], "start_tls": True},
        ),
        (
            {**SERVER, "tls_strategy": "on_connect"},
            {"server_urls": ["ldaps://ldap.example.org:636"]},
        ),
        ({**SERVER, "use_ssl": True}, {"server_urls": ["ldaps://ldap.example.org:636"]}),
        ({**SERVER, "use_ssl": False}, {"server_urls": ["ldap://ldap.example.org:389"]}),
        (
            {**SERVER, "server_port": 3269, "tls_strategy": "on_connect"},
            {"server_urls": ["ldaps://ldap.example.org:3269"]},
        ),
        ({"server_address": "ldaps://dc1"}, {"server_urls": ["ldaps://dc1:636"]}),
        ({"server_address": "::1"}, {"server_urls": ["ldap://[::1]:389"]}),
        (
            {"tls_kwargs": {"ca_certs_file": "/ca.pem", "validate": ssl.CERT_REQUIRED}},
            {"tls_ca_file": "/ca.pem"},
        ),
        ({"tls_kwargs": {"ciphers": "ALL"}}, {}),
        (
            {"bind_dn_template": "uid={username},ou=people,dc=x,dc=y"},
            {"bind_dn_templates": ["uid={username},ou=people,dc=x,dc=y"]},
        ),
        (
            {"bind_dn_template": ["", "uid={username},dc=x", "cn={username},dc=x"]},
            {"bind_dn_templates": ["uid={username},dc=x", "cn={username},dc=x"]},
        ),
        (
            {"lookup_dn": True, "user_attribute": "uid"},
            {"anonymous_search": True, "user_search_filter": "(uid={username})"},
        ),
        (
            {
                "lookup_dn": True,
                "lookup_dn_search_user": "cn=svc,dc=x",
                "lookup_dn_search_password": "pw",
                "user_attribute": "sAMAccountName",
                "lookup_dn_search_filter": "(&(objectClass=user)({login_attr}={login}))",
                "search_filter": "(memberOf=cn=hub,dc=x)",
                "lookup_dn_user_dn_attribute": "sAMAccountName",
                "use_lookup_dn_username": True,
                "bind_dn_template": "ignored={username},dc=x",
            },
            {
                "service_dn": "cn=svc,dc=x",
                "service_password": "pw",
                "user_search_filter": (
                    "(&(&(objectClass=user)(sAMAccountName={username}))(memberOf=cn=hub,dc=x))"
                ),
            },
        ),
        (
            {"lookup_dn": True, "user_attribute": "uid", "search_filter": "{userattr}={username}"},
            {
                "anonymous_search": True,
                "user_search_filter": "(&(uid={username})(uid={username}))",
            },
        ),
        ({"valid_username_regex": r"^[a-z]+$"}, {"login_name_pattern": r"^[a-z]+$"}),
        ({"valid_username_regex": r"[a-z]"}, {"login_name_pattern": r"(?:[a-z]).*"}),
        ({"allow_nested_groups": True}, {"nested_groups": True}),
        ({"escape_userdn": False, "attributes": ["x"], "group_attributes": ["member"]}, {}),
        ({"lookup_dn": False, "lookup_dn_search_user": "cn=svc,dc=x"}, {}),
    ],
)
def test_translate(old: dict[str, Any], expected: dict[str, Any]) -> None:
    assert settings(old) == expected


def test_every_old_setting_gets_one_step() -> None:
    old = {
        **SERVER,
        "server_port": 636,
        "tls_strategy": "on_connect",
        "use_ssl": True,
        "tls_kwargs": {},
        "lookup_dn": True,
        "user_attribute": "uid",
        "lookup_dn_search_filter": "({login_attr}={login})",
        "lookup_dn_user_dn_attribute": "uid",
        "use_lookup_dn_username": False,
        "valid_username_regex": "^x$",
        "escape_userdn": True,
        "attributes": [],
        "group_attributes": [],
        "allow_nested_groups": False,
        "bind_dn_template": [],
    }
    assert sorted(step.old for step in translate(old)) == sorted(old)


@pytest.mark.parametrize(
    ("old", "kw", "problem"),
    [
        ({**SERVER, "tls_strategy": "insecure"}, {}, "tls_strategy: 'insecure' sends passwords"),
        ({**SERVER, "tls_strategy": "tls"}, {}, "tls_strategy: 'tls' is not one of"),
        ({**SERVER, "tls_strategy": "before_bind", "use_ssl": True}, {}, "use_ssl: True means"),
        ({"server_port": 636}, {}, "server_port: is set without server_address"),
        ({"server_address": "ldap.example.org:389"}, {}, "give the port in server_port"),
        ({"server_address": "http://x"}, {}, "not ldap:// or ldaps://"),
        ({"tls_kwargs": {"validate": ssl.CERT_NONE}}, {}, "turns certificate checks off"),
        ({"tls_kwargs": {"validate": ssl.CERT_OPTIONAL}}, {}, "turns certificate checks off"),
        ({"tls_kwargs": {"local_certificate_file": "c.pem"}}, {}, "no eohub equivalent"),
        ({"tls_kwargs": {"ca_certs_path": "/etc/ssl"}}, {}, "no eohub equivalent"),
        ({"bind_dn_template": "{username}@ad.example.org"}, {}, "is not a DN"),
        ({"bind_dn_template": "EXAMPLE\\{username}"}, {}, "is not a DN"),
        ({"search_filter": "(uid={username})"}, {}, "search_filter: eohub applies it"),
        ({"lookup_dn": True}, {}, "lookup_dn: needs user_attribute"),
        (
            {"lookup_dn": True, "user_attribute": "uid", "lookup_dn_search_password": "pw"},
            {},
            "without lookup_dn_search_user",
        ),
        (
            {
                "lookup_dn": True,
                "user_attribute": "mail",
                "lookup_dn_user_dn_attribute": "sAMAccountName",
                "use_lookup_dn_username": True,
            },
            {},
            "use_lookup_dn_username: hub users named by sAMAccountName cannot be kept",
        ),
        (
            {
                "lookup_dn": True,
                "user_attribute": "uid",
                "lookup_dn_user_dn_attribute": "cn",
                "search_filter": "({userattr}={username})",
            },
            {},
            "search_filter: its {username} is the cn value",
        ),
        (
            {"lookup_dn": True, "user_attribute": "uid", "lookup_dn_search_filter": "({x})"},
            {},
            "lookup_dn_search_filter: '({x})' is not a template",
        ),
    ],
)
def test_refused(old: dict[str, Any], kw: dict[str, Any], problem: str) -> None:
    with pytest.raises(LegacyConfigError) as refused:
        settings(old, **kw)
    assert str(refused.value).startswith("LDAPAuthenticator.")
    assert problem in str(refused.value)


def test_insecure_is_honoured_with_allow_plaintext() -> None:
    old = {**SERVER, "tls_strategy": "insecure"}
    assert settings(old, allow_plaintext=True) == {
        "server_urls": ["ldap://ldap.example.org:389"],
        "start_tls": False,
    }


@pytest.mark.parametrize(
    ("configured", "problem"),
    [
        ({"server_urls": ["ldaps://other"]}, "server_address: becomes server_urls"),
        ({"start_tls": False}, "tls_strategy: becomes start_tls = True"),
        ({"service_password": "other"}, "service_password = (hidden), but service_password is"),
    ],
)
def test_old_and_new_that_disagree_are_refused(configured: dict[str, Any], problem: str) -> None:
    old = {
        **SERVER,
        "tls_strategy": "before_bind",
        "lookup_dn": True,
        "user_attribute": "uid",
        "lookup_dn_search_user": "cn=svc,dc=x",
        "lookup_dn_search_password": "secret-pw",
    }
    with pytest.raises(LegacyConfigError) as refused:
        merge(translate(old), configured)
    assert problem in str(refused.value)
    assert "secret-pw" not in str(refused.value)
    assert "'other'" not in str(refused.value)


def test_old_and_new_that_agree_are_fine() -> None:
    steps = translate(SERVER)
    assert merge(steps, {"server_urls": ["ldap://ldap.example.org:389"]}) == {
        "server_urls": ["ldap://ldap.example.org:389"]
    }


def test_group_filter_placeholders() -> None:
    assert (
        translate_group_filter("(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))")
        == "(|(member={dn})(uniqueMember={dn})(memberUid={username}))"
    )
