"""The combined hub's owners of user names, DN entries against OIDC names, legacy LDAP.

Logins go through :class:`LDAPOIDCAuthenticator` itself, as JupyterHub calls it: LDAP
against the real slapd, OIDC against the real provider (the authorization code of a
real login, handed to the hub's authenticator as the callback handler would). The
hub's user table is stood in for by :class:`HubUsers`: ``find_user`` and, per user,
what JupyterHub's ``User`` answers (``encrypted_auth_state``, ``get_auth_state()``,
which is None both without a state and when the stored one cannot be decrypted).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from oauthenticator.oauth2 import OAuthCallbackHandler
from traitlets.config import Config

from eohub.auth.ldap_oidc import LDAPOIDCAuthenticator
from eohub.auth.ldap_oidc_handlers import SourceConflict
from tests.auth.ldap_support import ldap_config
from tests.auth.oidc.test_generic_config import BASIC, CALLBACK, SCOPES_CLAIMS, provider_code
from tests.auth.oidc_support import CallbackRequest
from tests.support.oidc import OIDCProvider, ProviderSettings, start_oidc_provider
from tests.support.slapd import BASE_DN, Directory

HUB_ADMINS_DN = f"cn=hub-admins,ou=groups,{BASE_DN}"
RESEARCHERS_DN = f"cn=researchers,ou=groups,{BASE_DN}"

ACCOUNTS: dict[str, dict[str, Any]] = {
    # Keycloak allows "," and "=" in group names: olga's groups are spelled like the
    # directory's DNs, and must not pass for them.
    "olga": {
        "preferred_username": "olga",
        "groups": [HUB_ADMINS_DN, RESEARCHERS_DN, "staff"],
    },
    "omar": {"preferred_username": "omar", "groups": ["researchers"]},
    # Also a name in the directory (tests/data): a preset admin's name, say.
    "carol": {"preferred_username": "carol", "groups": ["researchers"]},
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    settings = ProviderSettings(accounts=ACCOUNTS, clients=(BASIC,), scopes_claims=SCOPES_CLAIMS)
    proc, running = start_oidc_provider(tmp_path_factory.mktemp("oidc"), settings)
    try:
        yield running
    finally:
        proc.stop()


@dataclass
class StoredUser:
    """What the combined authenticator reads of a JupyterHub ``User``."""

    name: str
    auth_state: dict[str, Any] | None = None
    # Bytes JupyterHub holds; with auth_state None, ones it cannot decrypt.
    encrypted_auth_state: bytes | None = None

    async def get_auth_state(self) -> dict[str, Any] | None:
        return self.auth_state


@dataclass
class HubUsers:
    """The hub's users, as a login handler finds them (``find_user``)."""

    users: dict[str, StoredUser] = field(default_factory=dict)

    def find_user(self, name: str) -> StoredUser | None:
        return self.users.get(name)


class Callback(CallbackRequest, OAuthCallbackHandler):  # type: ignore[misc]
    """The hub's OAuth callback handler for one real login, with the hub's users."""

    hub_users = HubUsers()

    def find_user(self, name: str) -> StoredUser | None:
        return self.hub_users.find_user(name)


class FormPost(HubUsers):
    """The hub's login form handler: ``find_user`` only."""


@pytest.fixture
def hubs() -> Iterator[list[LDAPOIDCAuthenticator]]:
    made: list[LDAPOIDCAuthenticator] = []
    yield made
    for hub in made:
        hub.close()


def ldap_section(d: Directory) -> dict[str, Any]:
    ldap = dict(ldap_config(d)["LDAPAuthenticator"])
    for shared in ("allowed_groups", "admin_groups"):
        ldap.pop(shared)
    return ldap


def combined_hub(
    made: list[LDAPOIDCAuthenticator],
    ldap: dict[str, Any],
    provider: OIDCProvider,
    **policy: Any,
) -> LDAPOIDCAuthenticator:
    oidc = {
        "issuer": provider.issuer,
        "client_id": BASIC.client_id,
        "client_secret": BASIC.client_secret,
        "oauth_callback_url": CALLBACK,
    }
    config = Config(
        {"LDAPAuthenticator": ldap, "OIDCAuthenticator": oidc, "LDAPOIDCAuthenticator": policy}
    )
    hub = LDAPOIDCAuthenticator(config=config)
    made.append(hub)
    hub.check_allow_config()
    return hub


async def oidc_login(
    hub: LDAPOIDCAuthenticator, name: str, users: HubUsers | None = None
) -> dict[str, Any] | None:
    """A real provider login of ``name``, through the hub's authenticator's pipeline."""
    await hub.provider_metadata()
    request, _ = provider_code(hub.oidc, name)
    callback = Callback(code=request.code, state=request.state)
    callback.hub_users = users or HubUsers()
    result: dict[str, Any] | None = await hub.get_authenticated_user(callback, None)
    return result


async def ldap_login(
    hub: LDAPOIDCAuthenticator, name: str, users: HubUsers | None = None
) -> dict[str, Any] | None:
    data = {"username": name, "password": f"{name}-pw"}
    result: dict[str, Any] | None = await hub.get_authenticated_user(users or FormPost(), data)
    return result


# 1. A DN entry matches only an LDAP user's group DNs, never an OIDC group name.


async def test_an_oidc_group_named_like_a_dn_is_not_that_directory_group(
    directory: Directory, provider: OIDCProvider, hubs: list[LDAPOIDCAuthenticator]
) -> None:
    hub = combined_hub(
        hubs,
        ldap_section(directory),
        provider,
        allowed_groups={RESEARCHERS_DN, "staff"},
        admin_groups={HUB_ADMINS_DN},
    )
    olga = await oidc_login(hub, "olga")
    assert olga is not None  # by the name "staff"
    assert HUB_ADMINS_DN in olga["groups"]  # a hub group of that name...
    assert olga["admin"] is False  # ...that makes no admin
    assert hub.is_admin(None, olga) is False
    # "researchers" is allowed only by its DN: omar's group of that name is not it.
    assert await oidc_login(hub, "omar") is None
    alice = await ldap_login(hub, "alice")  # in the directory's hub-admins: by DN
    assert alice is not None
    assert alice["admin"] is True


async def test_a_blocked_dn_does_not_block_a_same_spelled_oidc_name(
    directory: Directory, provider: OIDCProvider, hubs: list[LDAPOIDCAuthenticator]
) -> None:
    hub = combined_hub(
        hubs,
        ldap_section(directory),
        provider,
        allowed_groups={"staff"},
        blocked_groups={RESEARCHERS_DN},
    )
    # A DN entry blocks the directory group, not a provider group spelled like it.
    olga = await oidc_login(hub, "olga")
    assert olga is not None
    assert RESEARCHERS_DN in olga["groups"]


# 2. A user whose auth_state cannot be decrypted, and names no login created yet.


async def test_an_unreadable_auth_state_is_neither_refreshed_nor_claimed(
    directory: Directory,
    provider: OIDCProvider,
    hubs: list[LDAPOIDCAuthenticator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = combined_hub(
        hubs, ldap_section(directory), provider, allowed_groups={"researchers", "climate"}
    )
    # The crypt key changed: JupyterHub holds the bytes, get_auth_state() gives None.
    carol = StoredUser("carol", None, encrypted_auth_state=b"gAAAAAB-old-key")
    users = HubUsers({"carol": carol})
    with caplog.at_level(logging.WARNING, logger="eohub"):
        assert await hub.refresh_user(carol) is False
        assert await hub.refresh_user(carol) is False
        for login in (oidc_login, ldap_login):
            with pytest.raises(SourceConflict) as refused:
                await login(hub, "carol", users)
            assert "cannot read the sign-in record of the user name 'carol'" in (
                refused.value.jupyterhub_message
            )
    (line,) = [r.getMessage() for r in caplog.records if "cannot be decrypted" in r.getMessage()]
    assert "JUPYTERHUB_CRYPT_KEY" in line
    # A user with no auth_state at all (made through the API) is left alone.
    assert await hub.refresh_user(StoredUser("svc")) is True


@pytest.mark.parametrize(
    ("preset", "ldap_may", "oidc_may"),
    [("ldap", True, False), ("oidc", False, True), ("", True, True)],
)
async def test_a_preset_name_belongs_to_preset_user_source(
    directory: Directory,
    provider: OIDCProvider,
    hubs: list[LDAPOIDCAuthenticator],
    preset: str,
    ldap_may: bool,
    oidc_may: bool,
) -> None:
    policy: dict[str, Any] = {"allowed_groups": {"researchers", "climate"}}
    if preset != "ldap":
        policy["preset_user_source"] = preset
    hub = combined_hub(hubs, ldap_section(directory), provider, **policy)
    assert hub.preset_user_source == preset
    # carol is in admin_users: JupyterHub made her user at start-up, with no state.
    users = HubUsers({"carol": StoredUser("carol")})
    for login, may in ((ldap_login, ldap_may), (oidc_login, oidc_may)):
        if may:
            assert await login(hub, "carol", users) is not None
        else:
            with pytest.raises(SourceConflict):
                await login(hub, "carol", users)


# 3. A 2.x-style LDAP section, as eohub-ldap accepts it.


def test_a_legacy_ldap_section_starts_the_combined_hub(
    directory: Directory,
    provider: OIDCProvider,
    hubs: list[LDAPOIDCAuthenticator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = directory
    legacy = {
        "server_address": d.host,
        "server_port": d.port,
        "tls_strategy": "before_bind",
        "tls_kwargs": {"ca_certs_file": str(d.tls.ca_cert)},
        "bind_dn_template": [f"uid={{username}},ou=people,{d.base_dn}"],
        "group_search_base": f"ou=groups,{d.base_dn}",
    }
    with caplog.at_level(logging.WARNING, logger="eohub"):
        hub = combined_hub(hubs, legacy, provider, allowed_groups={"researchers"})
    assert hub.ldap.server_urls == [f"ldap://{d.host}:{d.port}"]
    assert "LDAPAuthenticator.server_address is a jupyterhub-ldapauthenticator 2.x" in (
        caplog.text
    )
    bob = asyncio.run(ldap_login(hub, "bob"))
    assert bob is not None
    assert "researchers" in bob["groups"]


def test_a_legacy_setting_eohub_cannot_honour_is_a_start_up_error(
    directory: Directory, provider: OIDCProvider, hubs: list[LDAPOIDCAuthenticator]
) -> None:
    d = directory
    legacy = {"server_address": d.host, "server_port": d.port, "tls_strategy": "insecure"}
    with pytest.raises(ValueError, match="LDAPOIDCAuthenticator:") as refused:
        combined_hub(hubs, legacy, provider)
    assert "tls_strategy" in str(refused.value)


# 7. close() after a refused config.


def test_close_is_safe_without_servers(provider: OIDCProvider) -> None:
    hub = LDAPOIDCAuthenticator(
        config=Config({"OIDCAuthenticator": {"issuer": provider.issuer, "client_id": "x"}})
    )
    with pytest.raises(ValueError, match="server_urls is empty"):
        hub.check_allow_config()
    hub.close()
    hub.close()
