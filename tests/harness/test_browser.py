"""Headless Chromium renders the hub's login page and logs in."""

import sys
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.harness.test_hub import DUMMY_AUTH
from tests.support.browser import NAVIGATIONS, forget_navigations, wait_for_hub_handler
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


def test_the_harness_pages_record_their_navigations(page: Page) -> None:
    forget_navigations()
    page.goto("data:text/html,<p>first</p>")
    page.goto("data:text/html,<p>second</p>")
    assert [url for _, url in NAVIGATIONS] == [
        "data:text/html,<p>first</p>",
        "data:text/html,<p>second</p>",
    ]


def test_a_hub_handler_is_waited_for_until_jquery_binds_it(page: Page) -> None:
    # JupyterHub's own jQuery, bound late as its RequireJS callbacks do.
    jquery = Path(sys.prefix) / "share/jupyterhub/static/components/jquery/dist/jquery.min.js"
    page.set_content("<button id='stop'>Stop</button><p id='said'></p>")
    page.add_script_tag(path=str(jquery))
    page.evaluate(
        """() => setTimeout(() => jQuery('#stop').click(
             () => { document.getElementById('said').textContent = 'stopped'; }), 700)"""
    )
    wait_for_hub_handler(page, "#stop")
    page.click("#stop")  # a click before the binding would say nothing
    expect(page.locator("#said")).to_have_text("stopped")
