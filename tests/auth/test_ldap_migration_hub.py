"""A real JupyterHub started with an unchanged ldapauthenticator 2.x config.

Only ``authenticator_class`` changes (to ``eohub-ldap``); every ``c.LDAPAuthenticator``
line is as an admin wrote it for jupyterhub-ldapauthenticator 2.0.2.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.hub import Hub
from tests.support.ldap_two_subtrees import PARTNER_CLIMATE, two_subtrees
from tests.support.slapd import Directory

__all__ = ["two_subtrees"]  # the fixture, imported for this module

pytestmark = pytest.mark.hub

OLD_SETTINGS = (
    "server_address",
    "server_port",
    "tls_strategy",
    "tls_kwargs",
    "lookup_dn",
    "lookup_dn_search_user",
    "lookup_dn_search_password",
    "lookup_dn_user_dn_attribute",
    "user_attribute",
    "use_lookup_dn_username",
    "group_search_filter",
)


def ldapauthenticator_config(d: Directory) -> str:
    """A 2.x config as found in a Zero to JupyterHub hub.extraConfig, switched to eohub."""
    return f"""
c.JupyterHub.authenticator_class = "eohub-ldap"  # was "ldapauthenticator.LDAPAuthenticator"
c.JupyterHub.spawner_class = "simple"
c.Authenticator.enable_auth_state = True
c.Authenticator.admin_users = {{"alice"}}

c.LDAPAuthenticator.server_address = {d.host!r}
c.LDAPAuthenticator.server_port = {d.ldaps_port}
c.LDAPAuthenticator.tls_strategy = "on_connect"
c.LDAPAuthenticator.tls_kwargs = {{"ca_certs_file": {str(d.tls.ca_cert)!r}}}
c.LDAPAuthenticator.lookup_dn = True
c.LDAPAuthenticator.lookup_dn_search_user = {d.service_dn!r}
c.LDAPAuthenticator.lookup_dn_search_password = {d.service_password!r}
c.LDAPAuthenticator.lookup_dn_user_dn_attribute = "uid"
c.LDAPAuthenticator.use_lookup_dn_username = False
c.LDAPAuthenticator.user_search_base = "ou=people,{d.base_dn}"
c.LDAPAuthenticator.user_attribute = "uid"
c.LDAPAuthenticator.allowed_groups = [
    {d.group_dn("researchers")!r},
    {d.group_dn("climate")!r},
]
c.LDAPAuthenticator.group_search_filter = "(|(member={{userdn}})(uniqueMember={{userdn}}))"
c.LDAPAuthenticator.auth_state_attributes = ["mail"]
"""


def test_an_unchanged_ldapauthenticator_config_runs_the_hub(
    two_subtrees: Directory, hub_factory: Callable[..., Hub]
) -> None:
    hub = hub_factory(ldapauthenticator_config(two_subtrees))

    hub.login("alice", "alice-pw")
    alice = hub.api("GET", "/users/alice").json()
    assert alice["admin"] is True
    assert {"researchers", "hub-admins"} <= set(alice["groups"])
    assert alice["auth_state"]["user_attributes"] == {"mail": ["alice@example.org"]}

    # carol is allowed by the climate DN; bob by researchers, and his two climates
    # (ou=groups and ou=partners) are not merged into one hub group.
    hub.login("carol", "carol-pw")
    hub.login("bob", "bob-pw")
    bob = hub.api("GET", "/users/bob").json()
    assert "climate" not in bob["groups"]
    assert hub.api("GET", "/groups/climate").json()["users"] == ["carol"]

    # mallory's only climate is the partners' one: the allowed climate DN is not hers.
    _, refused = hub.submit_login("mallory", "mallory-pw")
    assert refused.status_code == 403
    assert hub.api("GET", "/users/mallory").status_code == 404

    log = hub.process.log_path.read_text()
    for name in OLD_SETTINGS:
        assert log.count(f"LDAPAuthenticator.{name} ") == 1, name
    assert two_subtrees.service_password not in log
    assert "alice-pw" not in log
    assert PARTNER_CLIMATE in log  # the clash names both DNs
    assert "Traceback" not in log
