"""Why servers stopped, in Chromium: every reason, in the words users and PIs read.

One real hub serves the module, with the drop-ins' managed accounting service.

- grace's usage page says why each of her servers stopped, with the limit it reached
  ("Stopped after being idle for its limit (2 hours)", "Reached its maximum duration
  (24 hours)"), and the time her running server has left; carol, PI of her group, sees
  the same reasons under "Recently stopped". The sessions are recorded through the
  service's events API, as the hub's client sends them (an idle culler's stop comes as
  ``idle``; a Kubernetes deadline kill as ``max_duration``).

The warning before a real server's max-duration stop, on the user's and the PI's pages,
and the stop after it, are tested end to end in tests/spawner/test_session_limits_hub.py.

Screenshots go to the artifacts folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from eohub.accounting.scopes import ACCESS, ADMIN
from eohub.domain.accounting.events import start_event_json, stop_event_json
from tests.support.hub import Hub, start_hub

pytestmark = [pytest.mark.browser, pytest.mark.hub]

SERVICE = "/services/eohub-accounting/"
PASSWORD = "stop-reasons-pw"
CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"root"}}
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.load_groups = {{"climate": {{"users": ["grace", "carol"]}}}}
c.JupyterHub.load_roles.append(
    {{"name": "stop-reasons-test-accounting", "scopes": [{ADMIN!r}, {ACCESS!r}],
      "services": ["eohub-test"]}}
)
"""
ACCOUNTING_CONFIG = """
c = get_config()  # noqa: F821
c.AccountingService.reconcile_interval = 2
c.AccountingService.groups = {
    "climate": {"display_name": "Climate modelling", "allocation": "month", "pis": ["carol"]},
}
"""
HOUR, DAY = 3600, 86400
# grace's servers: (name, hours ago it started, hours it ran, limits, reason sent)
GRACE = [
    ("idle-lab", 30, 3, {"idle_timeout": 2 * HOUR}, "idle"),
    ("long-run", 28, 24, {"idle_timeout": 2 * HOUR, "max_duration": DAY}, "max_duration"),
    ("mine", 3, 1, {"max_duration": DAY}, "user"),
    ("crashed", 2, 0.5, {}, "failed"),
]
GRACE_WORDS = {
    "idle-lab": "Stopped after being idle for its limit (2 hours)",
    "long-run": "Reached its maximum duration (24 hours)",
    "mine": "Stopped by its user",
    "crashed": "The server failed or could not start",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    config = tmp_path_factory.mktemp("accounting") / "eohub_accounting_config.py"
    config.write_text(ACCOUNTING_CONFIG)
    hub = start_hub(
        tmp_path_factory.mktemp("hub"), CONFIG, env={"EOHUB_ACCOUNTING_CONFIG": str(config)}
    )

    def service_answers() -> bool:
        try:
            r = requests.get(
                f"{hub.url}{SERVICE}api/me",
                headers={"Authorization": f"token {hub.token}"},
                timeout=2,
            )
        except requests.RequestException:
            return False
        return r.status_code == 200

    try:
        hub.process.wait_until(service_answers, timeout=60, what="starting eohub-accounting")
        yield hub
    finally:
        hub.process.stop(timeout=20)


def send_events(hub: Hub, events: list[dict[str, Any]]) -> None:
    """Deliver events as the hub's accounting client does (this hub's spawner does not)."""
    token = (hub.workdir / "eohub-accounting-hub.token").read_text().strip()
    r = requests.post(
        f"{hub.url}{SERVICE}api/events",
        json={"events": events},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(events), r.text


def sessions(hub: Hub, user: str) -> list[dict[str, Any]]:
    r = requests.get(
        f"{hub.url}{SERVICE}api/sessions?user={quote(user)}",
        headers={"Authorization": f"token {hub.token}"},
        timeout=30,
    )
    r.raise_for_status()
    found: list[dict[str, Any]] = r.json()["sessions"]
    return found


def log_in(browser: Browser, hub: Hub, name: str, path: str) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login?next={quote(SERVICE + path)}")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(f"{hub.url}{SERVICE}{path}*")
    return page


def shoot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def row(page: Page, session: int) -> Any:
    return page.locator(f"tr[data-session='{session}']")


def test_a_user_and_their_pi_see_why_each_server_stopped(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    now = datetime.now(UTC)
    events = []
    for name, ago, ran, limits, reason in GRACE:
        started = now - timedelta(hours=ago)
        events.append(
            start_event_json(
                user="grace", server=name, started_at=started, group="climate", cpu=1, **limits
            )
        )
        events.append(
            stop_event_json(
                user="grace",
                server=name,
                started_at=started,
                stopped_at=started + timedelta(hours=ran),
                reason=reason,
            )
        )
    running_start = now - timedelta(hours=2, minutes=5)
    events.append(
        start_event_json(
            user="grace",
            server="running",
            started_at=running_start,
            group="climate",
            cpu=1,
            idle_timeout=2 * HOUR,
            max_duration=8 * HOUR,
        )
    )
    send_events(hub, events)
    ids = {s["server"]: s["id"] for s in sessions(hub, "grace")}

    page = log_in(browser, hub, "grace", "usage")
    expect(page.locator("#sessions thead")).to_contain_text("Why it stopped, or time left")
    for name, words in GRACE_WORDS.items():
        expect(row(page, ids[name]).locator("td.reason")).to_have_text(words)
    running = row(page, ids["running"])
    expect(running.locator(".time-left")).to_have_text(
        re.compile(r"^Ends in 5 h [45]\d min \(at most 8 hours\)$")
    )
    expect(running.locator(".idle-limit")).to_have_text("Stops after 2 hours idle")
    shoot(page, artifacts, "grace-stop-reasons")

    pi = log_in(browser, hub, "carol", "groups")
    stopped = pi.locator("table.stopped")
    for name, words in GRACE_WORDS.items():
        expect(stopped.locator(f"tr[data-session='{ids[name]}'] td.reason")).to_have_text(words)
    pi_running = pi.locator(f"table.running tr[data-session='{ids['running']}']")
    expect(pi_running.locator("td.time-left")).to_contain_text("(at most 8 hours)")
    shoot(pi, artifacts, "carol-stop-reasons")
