"""Logging in to the accounting pages logs no scope warning, and admins keep their scopes.

The service's OAuth login asks for the scopes drop-in 30 allows it (admin, read); the
hub grants each user those they hold, and would warn at every login of a user who holds
neither. Drop-in 30 keeps that warning out of the hub's log
(``eohub.accounting.scopes.ServiceLoginScopes``); an admin's token still carries the
admin scope, so the admin pages still open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accounting.service_support import Accounting
from tests.support.hub import Hub, start_hub

pytestmark = [pytest.mark.browser, pytest.mark.hub]

SERVICE = "/services/eohub-accounting/"
PASSWORD = "scopes-pw"
CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"root"}}
c.JupyterHub.spawner_class = "simple"
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_hub(tmp_path_factory.mktemp("hub"), CONFIG)
    try:
        Accounting(started).wait_ready(timeout=60)
        yield started
    finally:
        started.process.stop(timeout=20)


def log_in(browser: Browser, hub: Hub, name: str, path: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{hub.url}/hub/login?next={quote(SERVICE + path)}")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(f"{hub.url}{SERVICE}{path}*")
    return page


def hub_log(hub: Hub) -> str:
    return (hub.workdir / "jupyterhub.log").read_text()


def test_a_users_login_to_the_usage_pages_logs_no_scope_warning(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    page = log_in(browser, hub, "alice", "usage")
    expect(page.locator("h1")).to_have_text("My usage")
    page.screenshot(path=str(artifacts / "alice-usage-after-login.png"), full_page=True)
    # A second login (a new browser) logs none either.
    log_in(browser, hub, "bob", "usage")
    log = hub_log(hub)
    assert "User logged in: alice" in log
    assert "requested scopes" not in log, log[-3000:]
    assert "granting only" not in log


def test_an_admin_keeps_the_admin_scope(hub: Hub, browser: Browser, artifacts: Path) -> None:
    page = log_in(browser, hub, "root", "all")
    expect(page.locator("h1")).to_have_text("All groups")
    page.screenshot(path=str(artifacts / "root-all-after-login.png"), full_page=True)
    assert "granting only" not in hub_log(hub)
