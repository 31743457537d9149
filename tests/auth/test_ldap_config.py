"""LDAPAuthenticator's settings and its log lines, without a directory."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from traitlets.config import Config, LoggingConfigurable

from eohub.adapters.ldap.servers import ServerAddress
from eohub.auth.ldap import LDAPAuthenticator
from eohub.auth.ldap_config import LDAPSettings

SEARCH = {
    "server_urls": ["ldaps://ldap.example.org"],
    "service_dn": "cn=hub,dc=example,dc=org",
    "service_password": "service-pw",
    "user_search_base": "ou=people,dc=example,dc=org",
    "group_search_base": "ou=groups,dc=example,dc=org",
}


def settings(**overrides: Any) -> LDAPSettings:
    return LDAPSettings(config=Config({"LDAPSettings": {**SEARCH, **overrides}}))


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({}, None),
        ({"server_urls": []}, "server_urls is empty"),
        ({"server_urls": ["ldap://ldap.example.org"], "start_tls": False}, "clear"),
        ({"server_urls": ["ldap://l"], "start_tls": False, "allow_plaintext": True}, None),
        ({"service_dn": "", "service_password": ""}, "set service_dn"),
        ({"service_dn": "", "bind_dn_templates": ["uid={username},dc=x"]}, None),
        ({"service_dn": "", "anonymous_search": True}, None),
        ({"user_search_base": ""}, "user_search_base is needed"),
        ({"group_search_base": ""}, "group_search_base is needed"),
        ({"group_search_base": "", "group_search_filter": ""}, None),
        ({"group_search_base": "", "group_search_filter": "", "nested_groups": True}, "group"),
        ({"service_password": ""}, "service_password is empty"),
    ],
)
def test_config_problem_names_the_first_setting_to_fix(
    overrides: dict[str, Any], problem: str | None
) -> None:
    found = settings(**overrides).config_problem()
    assert (found is None) is (problem is None)
    assert problem is None or problem in str(found)


@pytest.mark.parametrize(
    ("urls", "start_tls", "allow_plaintext", "plaintext"),
    [
        (["ldaps://a"], True, False, False),
        (["ldaps://a"], False, True, False),
        (["ldap://a"], True, True, False),
        (["ldap://a"], False, True, True),
        (["ldaps://a", "ldap://b"], False, True, True),
    ],
)
def test_sends_plaintext_only_over_ldap_without_starttls(
    urls: list[str], start_tls: bool, allow_plaintext: bool, plaintext: bool
) -> None:
    chosen = settings(server_urls=urls, start_tls=start_tls, allow_plaintext=allow_plaintext)
    assert chosen.sends_plaintext is plaintext


def test_directory_settings_carry_the_traits() -> None:
    chosen = settings(
        server_urls=["ldaps://a", "ldap://b:3389"],
        tls_ca_file="",
        member_of_attribute="",
        pi_attribute="owner",
        nested_group_depth=3,
        max_concurrency=0,
    ).directory_settings()
    assert chosen.servers == (
        ServerAddress.parse("ldaps://a"),
        ServerAddress.parse("ldap://b:3389"),
    )
    assert chosen.ca_file is None  # empty: the system's trust store
    assert chosen.member_of_attribute is None
    assert (chosen.pi_attribute, chosen.nested_depth) == ("owner", 3)
    assert chosen.service_password == "service-pw"
    assert chosen.max_idle_connections == 1


# -- log lines -------------------------------------------------------------------------


def refused(data: dict[str, str], caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    authenticator = LDAPAuthenticator(config=Config({"LDAPAuthenticator": SEARCH}))
    with caplog.at_level(logging.INFO, logger="eohub"):
        assert asyncio.run(authenticator.authenticate(None, data)) is None
    return [r for r in caplog.records if r.name.startswith("eohub.")]


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (
            {"username": "alice", "password": "  "},
            "LDAP login of alice refused: empty password",
        ),
        (
            {"username": "al*ce", "password": "pw-never-logged"},
            "LDAP login refused before any directory call: ",
        ),
    ],
)
def test_a_refused_login_is_one_warning_without_traceback_or_password(
    data: dict[str, str], line: str, caplog: pytest.LogCaptureFixture
) -> None:
    (record,) = refused(data, caplog)
    assert record.name == "eohub.auth.ldap"
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(line)
    assert record.exc_info is None
    assert "pw-never-logged" not in caplog.text


def test_the_authenticator_attaches_the_eohub_loggers_to_its_application() -> None:
    application = LoggingConfigurable()
    application.log = logging.getLogger("eohub-test-hub")
    LDAPAuthenticator(parent=application, config=Config({"LDAPAuthenticator": SEARCH}))
    assert logging.getLogger("eohub").parent is application.log
