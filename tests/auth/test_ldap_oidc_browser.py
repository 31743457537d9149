"""The combined login page in Chromium: the LDAP form and the provider's button."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.auth.test_ldap_oidc_hub import combined_hub_config, provider_settings
from tests.support.hub import Hub
from tests.support.oidc import OIDCProvider
from tests.support.process import free_port
from tests.support.slapd import Directory


def test_one_page_signs_in_with_either_source(
    directory: Directory,
    oidc_provider_factory: Callable[..., OIDCProvider],
    hub_factory: Callable[..., Hub],
    page: Page,
    artifacts: Path,
) -> None:
    port = free_port()
    provider = oidc_provider_factory(provider_settings(port))
    hub = hub_factory(
        combined_hub_config(directory, provider, port)
        + "c.OIDCAuthenticator.login_service = 'EGI Check-in'\n"
        + "c.JupyterHub.default_url = '/hub/home'\n",
        port=port,
    )
    page.goto(f"{hub.url}/hub/login")
    expect(page.locator("#username_input")).to_be_visible()
    expect(page.locator("#eohub-oidc-login-button")).to_have_text("Sign in with EGI Check-in")
    page.screenshot(path=str(artifacts / "1-combined-login.png"))

    # A refused form login is shown in the form, as JupyterHub shows it.
    page.fill("#username_input", "bob")
    page.fill("#password_input", "wrong")
    page.click("#login_submit")
    expect(page.locator(".login_error")).to_have_text("Invalid username or password")
    expect(page.locator("#eohub-oidc-login-button")).to_be_visible()
    page.screenshot(path=str(artifacts / "2-form-refused.png"))

    page.fill("#username_input", "bob")
    page.fill("#password_input", "bob-pw")
    page.click("#login_submit")
    page.wait_for_url(f"{hub.url}/hub/home")
    expect(page.locator("body")).to_contain_text("bob")
    page.goto(f"{hub.url}/hub/logout")
    page.wait_for_url(f"{hub.url}/hub/login**")

    page.click("#eohub-oidc-login-button")
    page.wait_for_url(f"{provider.issuer}/**")
    page.fill("input[name=login]", "olga")
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    if page.locator("button[type=submit]").count():  # the consent page
        page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}/hub/**")
    page.goto(f"{hub.url}/hub/home")
    expect(page.locator("body")).to_contain_text("olga")
    page.screenshot(path=str(artifacts / "3-oidc-home.png"))
    groups = hub.api("GET", "/groups/researchers").json()["users"]
    assert {"bob", "olga"} <= set(groups)
