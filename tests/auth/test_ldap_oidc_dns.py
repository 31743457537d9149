"""On the combined hub, LDAP users meet eohub-ldap's DN entries and same-named-group rule.

The policy is set once, on ``c.LDAPOIDCAuthenticator``, and JupyterHub asks the hub's
authenticator (``check_blocked_users``, ``check_allowed``, ``is_admin``): these tests log
in through that pipeline against a real slapd whose directory has two ``cn=climate``
groups (``ou=groups`` and ``ou=partners``; bob is in both, mallory only in the
partners' one, carol only in the first), and refresh through the hub's authenticator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE
from traitlets.config import Config

from eohub.auth.ldap_oidc import LDAPOIDCAuthenticator
from tests.auth.ldap_support import ldap_config
from tests.auth.test_ldap import admin_modify
from tests.support.ldap_two_subtrees import PARTNER_CLIMATE, two_subtrees
from tests.support.slapd import Directory

__all__ = ["two_subtrees"]  # the fixture, imported for this module

OIDC = {"issuer": "https://idp.example.org", "client_id": "hub", "client_secret": "s"}


class StoredUser:
    """What the hub's refresh_user reads from JupyterHub's User: name and auth_state."""

    def __init__(self, name: str, auth_state: dict[str, Any]) -> None:
        self.name = name
        self.auth_state = auth_state

    async def get_auth_state(self) -> dict[str, Any]:
        return self.auth_state


@pytest.fixture
def hubs() -> Iterator[list[LDAPOIDCAuthenticator]]:
    """Authenticators made by a test, closed after it (their LDAP worker threads)."""
    made: list[LDAPOIDCAuthenticator] = []
    yield made
    for hub in made:
        hub.close()


def combined_hub(
    d: Directory, made: list[LDAPOIDCAuthenticator], **policy: Any
) -> LDAPOIDCAuthenticator:
    """The combined authenticator, its groups searched under the whole base DN."""
    ldap = dict(ldap_config(d, group_search_base=d.base_dn)["LDAPAuthenticator"])
    for shared in ("allowed_groups", "admin_groups"):
        ldap.pop(shared)  # shared settings belong to the hub's own section
    config = Config(
        {
            "LDAPAuthenticator": ldap,
            "OIDCAuthenticator": OIDC,
            "LDAPOIDCAuthenticator": policy,
        }
    )
    hub = LDAPOIDCAuthenticator(config=config)
    hub.check_allow_config()
    made.append(hub)
    return hub


def login(hub: LDAPOIDCAuthenticator, username: str) -> dict[str, Any] | None:
    """JupyterHub's pipeline on the hub's authenticator: authenticate, block, allow."""
    data = {"username": username, "password": f"{username}-pw"}
    result: dict[str, Any] | None = asyncio.run(hub.get_authenticated_user(None, data))
    return result


def test_dn_entries_decide_for_ldap_users(
    two_subtrees: Directory, hubs: list[LDAPOIDCAuthenticator]
) -> None:
    d = two_subtrees
    hub = combined_hub(
        d, hubs, allowed_groups={PARTNER_CLIMATE}, admin_groups={d.group_dn("hub-admins")}
    )
    bob, mallory = login(hub, "bob"), login(hub, "mallory")
    assert bob is not None  # by the partners' climate DN, though the name is ambiguous
    assert (bob["admin"], "climate" in bob["groups"]) == (False, False)
    assert mallory is not None
    assert (mallory["admin"], mallory["groups"]) == (False, ["climate"])
    assert login(hub, "carol") is None  # only the other climate: not that DN
    alice = login(hub, "alice")
    assert alice is not None
    assert alice["admin"] is True  # by the admin group's DN
    # The hub's own answers read the LDAP facts, as JupyterHub calls them.
    assert hub.check_allowed("bob", bob) is True
    assert hub.is_admin(None, alice) is True
    # The same groups without the DNs (an OIDC user's model) allow nothing here.
    assert hub.check_allowed("olga", {"name": "olga", "groups": ["climate"]}) is False


def test_a_name_two_subtrees_share_grants_nothing_and_is_logged(
    two_subtrees: Directory,
    hubs: list[LDAPOIDCAuthenticator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = two_subtrees
    hub = combined_hub(d, hubs, allowed_groups={"climate"})
    with caplog.at_level(logging.WARNING, logger="eohub"):
        assert login(hub, "bob") is None
    mallory, carol = login(hub, "mallory"), login(hub, "carol")
    assert mallory is not None
    assert mallory["groups"] == ["climate"]
    assert carol is not None
    assert "climate" in carol["groups"]
    (clash,) = [r.getMessage() for r in caplog.records if "share the name" in r.getMessage()]
    assert d.group_dn("climate") in clash
    assert PARTNER_CLIMATE in clash


def test_an_ambiguous_name_still_blocks(
    two_subtrees: Directory, hubs: list[LDAPOIDCAuthenticator]
) -> None:
    hub = combined_hub(two_subtrees, hubs, allow_all=True, blocked_groups={"climate"})
    assert login(hub, "bob") is None
    assert login(hub, "mallory") is None
    assert login(hub, "alice") is not None


def test_a_refresh_through_the_hub_decides_by_dn(
    two_subtrees: Directory, hubs: list[LDAPOIDCAuthenticator]
) -> None:
    d = two_subtrees
    hub = combined_hub(d, hubs, allowed_groups={PARTNER_CLIMATE})
    mallory = login(hub, "mallory")
    assert mallory is not None
    stored = StoredUser("mallory", mallory["auth_state"])
    refreshed = asyncio.run(hub.refresh_user(stored))
    assert isinstance(refreshed, dict)
    assert refreshed["groups"] == ["climate"]

    change = {"member": [(MODIFY_DELETE, [d.user_dn("mallory")])]}
    admin_modify(d, PARTNER_CLIMATE, change)
    try:
        assert asyncio.run(hub.refresh_user(stored)) is False
    finally:
        admin_modify(d, PARTNER_CLIMATE, {"member": [(MODIFY_ADD, [d.user_dn("mallory")])]})
