"""The spawn page's progress bar moves through a launch's steps, in headless Chromium.

Real parts only: JupyterHub with configurable-http-proxy and the accounting service
(from the drop-ins), the DummyAuthenticator's login page, QuotaLocalSpawner (servers
run as the hub's user), git's http-backend serving the repository on loopback, and
JupyterLab. The environment's command sleeps before it starts the server, so the page
is seen while the hub waits for the server to answer.

The bar must rise through eohub's steps (request 5, quota 10, resolve 20, clone 30 to
70, start 75), replayed when the page connects, then a little at each second until the
server answers, never going backwards and never sticking at JupyterHub's 50.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.spawner.test_local_hub import ACCOUNTING_GROUPS, SIZES
from tests.support.git_server import Repo
from tests.support.hub import Hub
from tests.support.repo_services import local_repo_hub_config, start_repo_hub

pytestmark = [pytest.mark.browser, pytest.mark.hub]

SLEEP_SECONDS = 7
# The server starts only after a pause, as a slow machine or a big image would: at
# least SLEEP_SECONDS, and not before the test has looked at the page mid-way and made
# the gate file (at most two minutes), however slow the machine is.
GATE = Path(tempfile.gettempdir()) / f"eohub-progress-gate-{os.getpid()}"
SLOW_COMMAND = [
    "bash",
    "-c",
    f"sleep {SLEEP_SECONDS}; "
    f"for _ in $(seq 600); do [ -e {GATE} ] && break; sleep 0.2; done; "
    'exec "$0" "$@"',
    "jupyterhub-singleuser",
]
ENVIRONMENTS = {
    "lab": {"display_name": "JupyterLab", "sizes": ["small"], "default": True},
    "from-repo": {
        "display_name": "Build from a repository",
        "repository": True,
        "sizes": ["small"],
        "command": SLOW_COMMAND,
    },
}
# The spawn-pending page replaces itself with the server once it is ready; this keeps
# every width the bar took, and the log's lines, for the test to read afterwards.
RECORD_BAR = """
if (location.pathname.includes("/hub/spawn-pending/")) {
  new MutationObserver(function () {
    var bar = document.getElementById("progress-bar");
    if (!bar) { return; }
    var widths = JSON.parse(sessionStorage.getItem("eohub-bar") || "[]");
    var width = bar.style.width;
    if (width && widths[widths.length - 1] !== width) { widths.push(width); }
    sessionStorage.setItem("eohub-bar", JSON.stringify(widths));
    var log = Array.prototype.map.call(
      document.querySelectorAll("#progress-log .progress-log-event"),
      function (e) { return e.textContent; });
    sessionStorage.setItem("eohub-log", JSON.stringify(log));
  }).observe(document, {attributes: true, childList: true, subtree: true});
}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    config = local_repo_hub_config(
        workdir,
        environments=ENVIRONMENTS,
        sizes=SIZES,
        groups={"climate": ["alice"]},
    )
    started = start_repo_hub(workdir, config, ACCOUNTING_GROUPS)
    yield started
    started.process.stop(timeout=20)
    GATE.unlink(missing_ok=True)


def log_in(page: Page, hub: Hub, username: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "any password")  # the DummyAuthenticator's
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/(?!login).*"))


def bar_value(page: Page) -> int:
    return int(page.locator("#progress-bar").get_attribute("aria-valuenow") or 0)


def test_the_bar_rises_through_the_launch_steps_until_the_server_answers(
    hub: Hub, served: tuple[str, Repo], browser: Browser, artifacts: Path
) -> None:
    url, _ = served
    GATE.unlink(missing_ok=True)
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.add_init_script(RECORD_BAR)
    try:
        log_in(page, hub, "alice")
        page.goto(f"{hub.url}/hub/spawn")
        page.check("#eohub-environment-from-repo")
        page.fill("#eohub-repo-url", url)
        page.click("#spawn_form button[type=submit]")

        # Mid-way: eohub's steps are done, the server is not answering yet.
        page.wait_for_url(re.compile(r".*/hub/spawn-pending/alice.*"))
        expect(page.locator("#progress-message")).to_contain_text(
            "Waiting for your server to answer", timeout=30_000
        )
        page.wait_for_function(
            "Number(document.getElementById('progress-bar').getAttribute('aria-valuenow')) >= 82",
            timeout=30_000,
        )
        assert 82 <= bar_value(page) < 100
        page.click("#progress-details summary")  # open the event log
        page.screenshot(path=str(artifacts / "1-progress-mid-way.png"), full_page=True)
        GATE.touch()  # the server may start

        page.wait_for_url(re.compile(r".*/user/alice/lab.*"))
        widths = json.loads(page.evaluate("sessionStorage.getItem('eohub-bar')"))
        shown = json.loads(page.evaluate("sessionStorage.getItem('eohub-log')"))
    finally:
        GATE.touch()
        context.close()
        if hub.server("alice") is not None:
            hub.stop("alice")

    values = [int(w.removesuffix("%")) for w in widths]
    # Rising, never backwards, through eohub's steps and then the wait for the server.
    assert values == sorted(values), values
    for step in (5, 10, 20, 30, 70, 75):
        assert step in values, values
    waiting = [v for v in values if 75 < v < 100]
    assert len(waiting) >= 3, values
    assert 50 not in values, values  # JupyterHub's stuck-at-50 never shows
    for said in (
        "Quota check passed",
        "Cloning",
        "Starting your server.",
        "Waiting for your server",
    ):
        assert any(said in line for line in shown), shown
