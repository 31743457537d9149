"""A GenericOAuthenticator config whose provider has no discovery eohub can trust.

The provider here announces another issuer than its own address (as a provider behind
a proxy may), so no issuer vouches for the configured endpoints: logins run as plain
OAuth 2, as GenericOAuthenticator runs them, and say so once in the log.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from tornado import web
from traitlets.config import Config

from eohub.adapters.oidc import DiscoveryError
from eohub.auth.oidc.authenticator import OIDCAuthenticator
from eohub.auth.oidc.handlers import provider_unusable
from tests.auth.oidc.test_authenticator import StoredUser
from tests.auth.oidc.test_generic_config import (
    ACCOUNTS,
    BASIC,
    CALLBACK,
    POST,
    SCOPES_CLAIMS,
    keycloak,
    login,
    section,
)
from tests.support.oidc import OIDCProvider, ProviderSettings, start_oidc_provider
from tests.support.process import free_port

PLAIN = "logging in with plain OAuth 2"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OIDCProvider]:
    settings = ProviderSettings(
        accounts=ACCOUNTS,
        clients=(BASIC, POST),
        scopes_claims=SCOPES_CLAIMS,
        issuer="https://idp.example.org/realms/research",
    )
    proc, running = start_oidc_provider(tmp_path_factory.mktemp("oidc"), settings)
    try:
        yield running
    finally:
        proc.stop()


def generic(provider: OIDCProvider, **changes: object) -> OIDCAuthenticator:
    config = {**keycloak(provider), **changes}
    authenticator = OIDCAuthenticator(config=Config(section(config, "GenericOAuthenticator")))
    authenticator.check_allow_config()
    return authenticator


async def test_logins_run_as_plain_oauth2_and_say_so_once(
    provider: OIDCProvider, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = generic(provider)
    alice = await login(authenticator, "alice")
    bob = await login(authenticator, "bob")
    assert not (await login(authenticator, "dave")).allowed
    assert alice.model is not None
    assert bob.model is not None
    assert (alice.model["name"], alice.model["admin"]) == ("alice", True)
    assert (bob.model["name"], bob.model["admin"], bob.model["groups"]) == (
        "bob",
        False,
        ["researchers"],
    )
    assert authenticator.issuer == ""
    assert caplog.text.count(PLAIN) == 1
    assert "ID tokens are not used" in caplog.text
    # The ID token is kept, as GenericOAuthenticator keeps it, but nothing reads it:
    # the logout goes to logout_redirect_url, not to a discovered end-session URL.
    state = bob.model["auth_state"]
    assert state["id_token"]
    assert await authenticator.end_session_url(state) is None


async def test_refresh_follows_the_provider_without_an_issuer(provider: OIDCProvider) -> None:
    authenticator = generic(provider)
    bob = await login(authenticator, "bob")
    assert bob.model is not None
    refreshed = await authenticator.refresh_user(StoredUser("bob", bob.model["auth_state"]))
    assert refreshed["groups"] == ["researchers"]
    assert refreshed["auth_state"]["access_token"] != bob.model["auth_state"]["access_token"]
    provider.set_account("bob", {**ACCOUNTS["bob"], "groups": ["visitors"]})
    try:
        stored = StoredUser("bob", refreshed["auth_state"])
        assert await authenticator.refresh_user(stored) is False
    finally:
        provider.set_account("bob", ACCOUNTS["bob"])


async def test_user_from_an_unverifiable_id_token_is_a_configuration_error(
    provider: OIDCProvider, caplog: pytest.LogCaptureFixture
) -> None:
    authenticator = generic(provider, userdata_url="", userdata_from_id_token=True)
    with pytest.raises(web.HTTPError) as refused:
        await login(authenticator, "bob")
    # The admins' problem, not the user's, and no server error: a 503 that says so.
    assert refused.value.status_code == 503
    assert "tell the hub's admins" in str(refused.value.log_message)
    assert "userdata_from_id_token needs a verified ID token" in caplog.text


async def test_an_unreachable_provider_is_asked_again_not_taken_as_plain(
    provider: OIDCProvider, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    authenticator = generic(provider, authorize_url=f"{closed}/auth", token_url=f"{closed}/token")
    for _ in range(2):
        with pytest.raises(DiscoveryError):
            await authenticator.provider_metadata()
    assert PLAIN not in caplog.text


MAINTENANCE = b"<html><body><h1>Down for maintenance</h1></body></html>"


class StandIn(ThreadingHTTPServer):
    """The provider's address: forwards to the real provider, or answers as ``mode`` says.

    ``"proxy"``: the real provider's answer; ``"html"``: a maintenance page with 200;
    ``"404"``: not found, as a proxy in front of a stopped provider may answer.
    """

    mode = "proxy"
    upstream = ""


class StandInHandler(BaseHTTPRequestHandler):
    server: StandIn

    def do_GET(self) -> None:
        if self.server.mode == "html":
            self._answer(200, "text/html", MAINTENANCE)
        elif self.server.mode == "404":
            self._answer(404, "text/plain", b"not found")
        else:
            # The provider names its endpoints after the Host it was asked on.
            host = {"Host": self.headers["Host"]}
            r = requests.get(self.server.upstream + self.path, headers=host, timeout=5)
            self._answer(r.status_code, r.headers.get("Content-Type", ""), r.content)

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StandIn, OIDCProvider]]:
    """A real provider whose issuer is the stand-in's address, and the stand-in."""
    server = StandIn(("127.0.0.1", free_port()), StandInHandler)
    address = f"http://127.0.0.1:{server.server_address[1]}"
    settings = ProviderSettings(
        accounts=ACCOUNTS, clients=(BASIC,), scopes_claims=SCOPES_CLAIMS, issuer=address
    )
    proc, running = start_oidc_provider(tmp_path_factory.mktemp("oidc-standin"), settings)
    server.upstream = f"http://127.0.0.1:{running.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, running
    finally:
        server.shutdown()
        server.server_close()
        proc.stop()


def behind(server: StandIn, **changes: object) -> OIDCAuthenticator:
    """A GenericOAuthenticator config whose endpoints are on the stand-in."""
    base = f"http://127.0.0.1:{server.server_address[1]}"
    config = {
        "client_id": BASIC.client_id,
        "client_secret": BASIC.client_secret,
        "oauth_callback_url": CALLBACK,
        "authorize_url": f"{base}/auth",
        "token_url": f"{base}/token",
        "userdata_url": f"{base}/me",
        "username_claim": "preferred_username",
        **changes,
    }
    authenticator = OIDCAuthenticator(config=Config(section(config, "GenericOAuthenticator")))
    authenticator.check_allow_config()
    return authenticator


async def test_a_maintenance_page_is_no_answer_and_the_search_runs_again(
    stand_in: tuple[StandIn, OIDCProvider], caplog: pytest.LogCaptureFixture
) -> None:
    server, provider = stand_in
    authenticator = behind(server)
    server.mode = "html"
    try:
        for _ in range(2):
            with pytest.raises(DiscoveryError, match="not JSON") as failed:
                await authenticator.provider_metadata()
            # What the login and callback handlers show: try again later, no 500.
            assert provider_unusable(failed.value).status_code == 503
    finally:
        server.mode = "proxy"
    assert PLAIN not in caplog.text
    metadata = await authenticator.provider_metadata()
    assert metadata is not None
    assert authenticator.issuer == provider.issuer  # ID tokens verified from now on


async def test_plain_oauth2_after_404s_is_searched_again_later(
    stand_in: tuple[StandIn, OIDCProvider], caplog: pytest.LogCaptureFixture
) -> None:
    server, provider = stand_in
    authenticator = behind(server, discovery_cache_seconds=0)
    server.mode = "404"
    try:
        assert await authenticator.provider_metadata() is None  # plain OAuth 2, for now
        assert await authenticator.provider_metadata() is None
    finally:
        server.mode = "proxy"
    assert caplog.text.count(PLAIN) == 1
    assert await authenticator.provider_metadata() is not None
    assert authenticator.issuer == provider.issuer
