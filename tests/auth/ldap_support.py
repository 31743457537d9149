"""Build an LDAPAuthenticator pointed at a harness slapd, and log in through it."""

from __future__ import annotations

import asyncio
from typing import Any

from traitlets.config import Config

from eohub.auth.ldap import LDAPAuthenticator
from tests.support.slapd import Directory


def ldap_config(directory: Directory, **overrides: Any) -> Config:
    """The test hub's LDAP settings: LDAPS with the harness CA, service account search."""
    settings: dict[str, Any] = {
        "server_urls": [directory.ldaps_url],
        "tls_ca_file": str(directory.tls.ca_cert),
        "service_dn": directory.service_dn,
        "service_password": directory.service_password,
        "user_search_base": f"ou=people,{directory.base_dn}",
        "group_search_base": f"ou=groups,{directory.base_dn}",
        "allowed_groups": {"researchers", "climate"},
        "admin_groups": {"hub-admins"},
        "pi_attribute": "owner",
        "connect_timeout": 2.0,
        "receive_timeout": 3,
        "group_cache_ttl": 0.0,
    }
    settings.update(overrides)
    return Config({"LDAPAuthenticator": settings})


def make_authenticator(directory: Directory, **overrides: Any) -> LDAPAuthenticator:
    authenticator = LDAPAuthenticator(config=ldap_config(directory, **overrides))
    authenticator.check_allow_config()
    return authenticator


def login(authenticator: LDAPAuthenticator, username: str, password: str) -> dict[str, Any] | None:
    """JupyterHub's own pipeline: authenticate, normalise, block, allow, admin."""
    result: dict[str, Any] | None = asyncio.run(
        authenticator.get_authenticated_user(None, {"username": username, "password": password})
    )
    return result


def ldap_hub_config(directory: Directory, **overrides: Any) -> str:
    """Python source for a test hub that logs in with eohub's LDAPAuthenticator."""
    settings = ldap_config(directory, **overrides)["LDAPAuthenticator"]
    lines = ['c.JupyterHub.authenticator_class = "eohub.auth.ldap.LDAPAuthenticator"']
    lines += [f"c.LDAPAuthenticator.{key} = {value!r}" for key, value in settings.items()]
    lines.append('c.JupyterHub.spawner_class = "simple"')
    return "\n".join(lines) + "\n"
