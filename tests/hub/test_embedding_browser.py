"""A portal on another origin embeds the hub and alice's JupyterLab, in headless Chromium.

Real parts: JupyterHub with configurable-http-proxy and the drop-ins, drop-in 45 reading
``$EOHUB_EMBED_ORIGINS`` (as an admin sets it), QuotaLocalSpawner starting a real
``jupyterhub-singleuser`` with JupyterLab, and a small portal page served by Python's
``http.server``.

The hub runs on ``http://127.0.0.1:<hub>``. One portal server answers on two origins:

- ``http://localhost:<portal>``, the allowed one. It is another *site* than the hub
  (``localhost`` is not ``127.0.0.1``), so its frames get the hub's cookies only because
  they are ``SameSite=None; Secure`` (browsers keep Secure cookies from loopback http);
- ``http://127.0.0.1:<portal>``, not allowed: the same site, another origin. The browser
  gets the hub's answer and refuses to show it (``frame-ancestors``).

alice logs in top-level first, as the how-to says (an OIDC provider refuses frames).

Chromium runs with a regular profile whose cookie setting is Chrome's default (third-party
cookies allowed): Playwright's contexts are off-the-record profiles, where Chromium blocks
every third-party cookie, SameSite=None or not, as Incognito windows, Safari and Firefox
do. The how-to says what that means for a portal on another site.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Frame, Page, expect, sync_playwright

from tests.accounting.service_support import Accounting
from tests.support.browser import CHROMIUM_ARGS, patient
from tests.support.hub import Hub, start_hub
from tests.support.process import ServiceStartError, free_port
from tests.support.tools import chromium_path

pytestmark = pytest.mark.hub

PASSWORD = "embed-pw"
SIZES = {"small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"}}
ENVIRONMENTS = {"lab": {"display_name": "JupyterLab", "sizes": ["small"], "default": True}}
LAUNCH = {"environment": "lab", "size": "small", "group": "climate"}

PORTAL_PAGE = """<!doctype html>
<html><head><title>Portal</title></head>
<body>
<h1>Science portal</h1>
<p><a href="{hub}/hub/login" target="_top">Log in to the hub</a></p>
<iframe name="hub" src="{hub}/hub/home" width="560" height="600"></iframe>
<iframe name="lab" src="{hub}/user/alice/lab" width="560" height="600"></iframe>
</body></html>
"""


class Portal:
    """A page with two iframes (the hub's home, alice's JupyterLab) on a loopback port."""

    def __init__(self, hub_url: str) -> None:
        body = PORTAL_PAGE.format(hub=hub_url).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def allowed(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def refused(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Portal:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def hub_config() -> str:
    return f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.launch_sizes = {SIZES!r}
c.QuotaLocalSpawner.launch_environments = {ENVIRONMENTS!r}
c.QuotaLocalSpawner.charge_groups = ["climate"]
c.JupyterHub.load_groups = {{"climate": {{"users": ["alice"]}}}}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Portal]]:
    root, hub_port = tmp_path_factory.mktemp("embedding"), free_port()
    accounting = root / "eohub_accounting_config.py"
    accounting.write_text(
        'c.AccountingService.groups = {"climate": {"allocation": "month"}}\n'
        "c.AccountingService.reconcile_interval = 0\n"
    )
    with Portal(f"http://127.0.0.1:{hub_port}") as portal:
        started = start_hub(
            root / "hub",
            hub_config(),
            port=hub_port,
            env={
                # Drop-in 45 reads it; spaces, commas or both separate the origins.
                "EOHUB_EMBED_ORIGINS": f"{portal.allowed}, https://portal.example.org",
                "EOHUB_ACCOUNTING_CONFIG": str(accounting),
            },
        )
        try:
            Accounting(started).wait_ready(timeout=60)
            yield started, portal
        finally:
            started.process.stop(timeout=20)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A page in Chromium with a regular profile that allows third-party cookies."""
    profile = tmp_path / "chromium-profile"
    (profile / "Default").mkdir(parents=True)
    # Chrome's default for a regular profile: 0 = third-party cookies allowed.
    preferences = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium_path(),
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 800},
            timeout=30_000,
        )
        patient(context)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def log_in_top_level(page: Page, hub: Hub) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/(?!login).*"))


def frame(page: Page, name: str) -> Frame:
    found = page.frame(name=name)
    assert found is not None, [f.name for f in page.frames]
    return found


def test_the_hub_and_servers_send_the_portal_in_frame_ancestors(
    hub: tuple[Hub, Portal],
) -> None:
    started, portal = hub
    expected = f"frame-ancestors {portal.allowed} https://portal.example.org"
    # No public_url: one warning asks for it (the loopback bind_url was checked).
    log = (started.workdir / "jupyterhub.log").read_text()
    assert log.count("c.JupyterHub.public_url is not set") == 1, log
    login = requests.get(f"{started.url}/hub/login", timeout=10)
    assert login.headers["Content-Security-Policy"] == (
        f"{expected}; report-uri /hub/security/csp-report"
    )
    assert "SameSite=None; Secure" in login.headers["Set-Cookie"]  # the _xsrf cookie
    started.spawn("alice", options=LAUNCH)
    try:
        # The server itself answers (it sends a stranger to the hub's OAuth), with the
        # policy that the spawner's argument gave it.
        server = started.server("alice") or {}
        lab = requests.get(f"{started.url}{server['url']}lab", allow_redirects=False, timeout=30)
        assert lab.status_code == 302
        assert "/hub/api/oauth2/authorize" in lab.headers["Location"]
        assert lab.headers["Content-Security-Policy"] == expected
    finally:
        started.stop("alice")


def test_the_allowed_portal_shows_the_hub_and_jupyterlab_the_other_is_blocked(
    hub: tuple[Hub, Portal], page: Page, artifacts: Path
) -> None:
    started, portal = hub
    console: list[str] = []
    page.on("console", lambda message: console.append(describe(message)))
    log_in_top_level(page, started)
    started.spawn("alice", options=LAUNCH)
    try:
        page.goto(portal.allowed)
        home, lab = frame(page, "hub"), frame(page, "lab")
        expect(home.locator("#start")).to_be_visible(timeout=30_000)
        expect(lab.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
        # Loaded and working: the splash is gone, the file browser listed the home
        # folder and the launcher read the kernel specs (API calls from the frame, with
        # its cookies).
        expect(lab.locator("#jupyterlab-splash")).to_have_count(0, timeout=60_000)
        expect(lab.locator(".jp-DirListing-content")).to_be_visible(timeout=60_000)
        expect(lab.locator(".jp-LauncherCard").first).to_be_visible(timeout=60_000)
        assert lab.url.startswith(f"{started.url}/user/alice/lab")
        # A POST from the frame (a new notebook) passes the server's XSRF check: its
        # _xsrf cookie is SameSite=None too.
        lab.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
        expect(lab.locator(".jp-DirListing-itemText", has_text="Untitled")).to_be_visible(
            timeout=60_000
        )
        expect(lab.locator(".jp-NotebookPanel").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(artifacts / "1-allowed-portal.png"), full_page=True)

        console.clear()
        refused: list[str] = []
        page.on(
            "response",
            lambda r: refused.append(r.url) if r.url.startswith(started.url) else None,
        )
        page.goto(portal.refused)
        page.wait_for_load_state("load")
        page.screenshot(path=str(artifacts / "2-refused-portal.png"), full_page=True)
        for name in ("hub", "lab"):
            blocked = frame(page, name)
            expect(blocked.locator("#start, #jp-main-dock-panel")).to_have_count(0)
        violations = [m for m in console if "frame-ancestors" in m]
        assert len(violations) >= 2, console
        assert all(portal.allowed in m for m in violations), violations
        # The hub answered; the browser refused to show its answer.
        assert any("/hub/home" in url for url in refused), refused
    finally:
        started.stop("alice")


@pytest.mark.parametrize("public_url", [False, True], ids=["bind_url", "public_url"])
def test_the_hub_stops_when_an_origin_turns_out_to_be_its_own(
    tmp_path: Path, public_url: bool
) -> None:
    # The drop-in runs before the config that sets the hub's address, as in Zero to
    # JupyterHub (which sets neither): only the starting hub can compare them.
    port = free_port()
    own = f"http://127.0.0.1:{port}" if not public_url else "https://hub.example.test"
    config = f"c.JupyterHub.public_url = {own + '/'!r}\n" if public_url else ""
    with pytest.raises(ServiceStartError) as stopped:
        start_hub(tmp_path / "hub", config, port=port, env={"EOHUB_EMBED_ORIGINS": own})
    assert f"is the hub's own origin ({own})" in str(stopped.value)
    assert "share one origin" in str(stopped.value)


def describe(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"
