"""Headless Chromium renders the hub's login page and logs in."""

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.harness.test_hub import DUMMY_AUTH
from tests.support.hub import Hub


def test_login_page_screenshot(
    hub_factory: Callable[..., Hub], page: Page, artifacts: Path
) -> None:
    hub = hub_factory(DUMMY_AUTH)
    page.goto(f"{hub.url}/hub/login")
    expect(page.locator("input[name=username]")).to_be_visible()
    shot = artifacts / "login.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 5_000  # a rendered page, not a blank one

    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "harness-pw")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url("**/hub/**")
    assert "/hub/login" not in page.url
