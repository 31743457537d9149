"""A real hub switched from GenericOAuthenticator to eohub-oidc, its config unchanged.

Only ``authenticator_class`` changes; every setting stays under
``c.GenericOAuthenticator``, as in a jupyterhub_config.py (or the Zero to JupyterHub
``hub.config.GenericOAuthenticator`` values) written for oauthenticator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.auth.oidc.test_generic_config import ACCOUNTS, SCOPES_CLAIMS, keycloak
from tests.auth.oidc_support import hub_client, hub_login
from tests.support.hub import Hub
from tests.support.oidc import OIDCProvider, ProviderSettings
from tests.support.process import free_port

pytestmark = pytest.mark.hub


def generic_hub_config(provider: OIDCProvider, port: int) -> str:
    """A jupyterhub_config.py for GenericOAuthenticator; only the class line is new."""
    client = hub_client(port)
    settings: dict[str, Any] = {
        **keycloak(provider),
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "oauth_callback_url": client.redirect_uris[0],
    }
    lines = ['c.JupyterHub.authenticator_class = "eohub-oidc"  # was "generic-oauth"']
    lines += [f"c.GenericOAuthenticator.{key} = {value!r}" for key, value in settings.items()]
    lines.append('c.JupyterHub.spawner_class = "simple"')
    return "\n".join(lines) + "\n"


def test_an_unchanged_generic_config_logs_in_on_a_real_hub(
    oidc_provider_factory: Callable[..., OIDCProvider], hub_factory: Callable[..., Hub]
) -> None:
    port = free_port()
    provider = oidc_provider_factory(
        ProviderSettings(
            accounts=ACCOUNTS, clients=(hub_client(port),), scopes_claims=SCOPES_CLAIMS
        )
    )
    hub = hub_factory(generic_hub_config(provider, port), port=port)
    page = requests.get(f"{hub.url}/hub/login", timeout=10)
    assert "Keycloak" in page.text  # login_service, from the Generic section

    alice, bob = hub_login(hub.url, "alice"), hub_login(hub.url, "bob")
    assert alice.logged_in
    assert bob.logged_in
    dave = hub_login(hub.url, "dave")
    assert dave.response.status_code == 403
    assert hub.api("GET", "/users/dave").status_code == 404

    users = {name: hub.api("GET", f"/users/{name}").json() for name in ("alice", "bob")}
    assert (users["alice"]["admin"], sorted(users["alice"]["groups"])) == (
        True,
        ["hub-admins", "researchers"],
    )
    assert (users["bob"]["admin"], users["bob"]["groups"]) == (False, ["researchers"])
    assert users["bob"]["auth_state"]["eohub"]["groups"] == ["researchers"]
    assert sorted(hub.api("GET", "/groups/researchers").json()["users"]) == ["alice", "bob"]

    log = hub.process.log_path.read_text()
    assert "OIDCAuthenticator.claim_groups_key is deprecated" in log
    assert "use OIDCAuthenticator.auth_state_groups_key instead" in log
    assert "OIDCAuthenticator.issuer is not set" in log
    assert f"OIDC issuer {provider.issuer} found for the configured authorize_url" in log

    # The issuer was found, so the logout ends the provider session too.
    out = bob.session.get(f"{hub.url}/hub/logout", allow_redirects=False, timeout=30)
    assert out.status_code == 302
    assert out.headers["location"].startswith(provider.discovery()["end_session_endpoint"])
