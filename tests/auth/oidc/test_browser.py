"""A person logs in with OpenID Connect in Chromium: hub, provider pages, back to the hub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.auth.oidc_support import ACCOUNTS, hub_client, oidc_hub_config
from tests.support.hub import Hub
from tests.support.oidc import OIDCProvider, ProviderSettings
from tests.support.process import free_port


def test_browser_login_through_the_provider(
    oidc_provider_factory: Callable[..., OIDCProvider],
    hub_factory: Callable[..., Hub],
    page: Page,
    artifacts: Path,
) -> None:
    port = free_port()
    provider = oidc_provider_factory(
        ProviderSettings(accounts=ACCOUNTS, clients=(hub_client(port),))
    )
    hub = hub_factory(
        oidc_hub_config(provider, port) + "c.JupyterHub.default_url = '/hub/home'\n", port=port
    )
    page.goto(f"{hub.url}/hub/login")
    page.screenshot(path=str(artifacts / "1-hub-login.png"))
    page.click("a#login-main, a.btn-jupyter, a[href*='oauth_login']")
    # The provider's own sign-in page (oidc-provider's development interactions).
    page.wait_for_url(f"{provider.issuer}/**")
    page.fill("input[name=login]", "bob")
    page.fill("input[name=password]", "any")
    page.screenshot(path=str(artifacts / "2-provider-login.png"))
    page.click("button[type=submit]")
    if page.locator("button[type=submit]").count():  # the consent page
        page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/hub/**")
    page.goto(f"{hub.url}/hub/home")
    expect(page.locator("body")).to_contain_text("bob")
    page.screenshot(path=str(artifacts / "3-hub-home.png"))
    assert hub.api("GET", "/users/bob").json()["groups"] == ["researchers"]
