"""A PI's view of their members' running servers, and stopping one, in Chromium.

One real hub serves the module, with the drop-ins' managed accounting service and
real single-user servers. The hub's groups say who is in which group; the service's
``AccountingService.groups`` (as the demo's config has them) say which groups have
budgets and who leads them: carol is the PI of "climate". alice's server is charged
to climate, bob's to "researchers", which has no PI.

- A new user's usage page lists the budget of every group they may charge.
- carol sees alice's server with its idle time, stops it after a confirmation page,
  and the ledger records carol as who asked; the session stays open ("stopping, asked
  by carol") until the hub's own stop event closes it with the real stop time, and alice
  sees who stopped it on her usage page. carol's API token cannot stop it.
- alice (no PI) and carol (PI of another group) cannot stop bob's server, even with a
  valid XSRF token: a refusal that does not name bob's group, and it keeps running; nor
  can a token that reads every group's usage. A form without the XSRF token gets 403
  even from an admin; an admin with it may stop any group's server.
- No page of the service may be framed by another site.

Each person uses their own login (the OAuth cookie of the pages), the narrowest
credential they have. Screenshots go to the artifacts folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from eohub.accounting.scopes import ACCESS, ADMIN, READ
from eohub.domain.accounting.events import start_event_json, stop_event_json
from tests.support.hub import Hub, start_hub

# A later test uses bob's server, started by an earlier one: a failure must not stop it.
pytestmark = [pytest.mark.browser, pytest.mark.hub, pytest.mark.shared_servers]

SERVICE = "/services/eohub-accounting/"
PASSWORD = "pi-stop-pw"
# A server started moments ago: idle "under 1 min", or a few minutes on a slow machine.
IDLE = re.compile(r"^(under 1 min|\d+ min)$")
CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"root"}}
c.JupyterHub.spawner_class = "simple"
# The hub's groups, as eohub's authenticators would store them from the directory.
c.JupyterHub.load_groups = {{
    "climate": {{"users": ["alice", "bob", "carol", "dave"]}},
    "researchers": {{"users": ["alice", "bob", "dave"]}},
    "staff": {{"users": ["dave"]}},
}}
# The test driver reads the ledger (sessions) with the admin scope; rita reads all usage.
c.JupyterHub.load_roles.extend([
    {{"name": "pi-stop-test-accounting", "scopes": [{ADMIN!r}, {ACCESS!r}],
      "services": ["eohub-test"]}},
    {{"name": "pi-stop-test-readers", "scopes": [{READ!r}, {ACCESS!r}], "users": ["rita"]}},
])
"""
# The service's own config: the demo's groups (demo/eohub_accounting_config.py).
ACCOUNTING_CONFIG = """
c = get_config()  # noqa: F821
c.AccountingService.groups = {
    "climate": {
        "display_name": "Climate modelling",
        "allocation": "month",
        "pis": ["carol"],
        "quotas": {"": {"core_hours": 200, "max_servers": 6}, "*": {"max_servers": 2}},
    },
    "researchers": {
        "display_name": "All researchers",
        "allocation": "rolling:30",
        "quotas": {"*": {"core_hours": 50, "max_servers": 1}},
    },
}
"""


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
        for user in ("alice", "bob"):
            if hub.server(user) is not None:
                hub.stop(user)
        hub.process.stop(timeout=20)


def start_charged(hub: Hub, user: str, group: str) -> int:
    """Start ``user``'s server and record its start as the hub's client does; its session."""
    server = hub.spawn(user)
    started = datetime.fromisoformat(server["started"]).astimezone(UTC)
    event = start_event_json(
        user=user,
        server="",
        started_at=started,
        group=group,
        cpu=1,
        profile="python",
        profile_name="Python lab",
    )
    send_event(hub, event)
    (session,) = [s for s in sessions(hub, user) if s["stopped_at"] is None]
    return int(session["id"])


def send_event(hub: Hub, event: dict[str, Any]) -> None:
    """Deliver an event as the hub's accounting client does (this hub's spawner does not)."""
    token = (hub.workdir / "eohub-accounting-hub.token").read_text().strip()
    r = requests.post(
        f"{hub.url}{SERVICE}api/events",
        json={"events": [event]},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text


def hubs_stop_arrives(hub: Hub, user: str, sid: int) -> datetime:
    """The hub's own stop event, delivered after the page's stop (as the outbox does)."""
    stopped = datetime.now(UTC)
    started = datetime.fromisoformat(session(hub, user, sid)["started_at"])
    send_event(hub, stop_event_json(user=user, server="", started_at=started, stopped_at=stopped))
    return stopped


def sessions(hub: Hub, user: str) -> list[dict[str, Any]]:
    r = requests.get(
        f"{hub.url}{SERVICE}api/sessions?user={quote(user)}",
        headers={"Authorization": f"token {hub.token}"},
        timeout=30,
    )
    r.raise_for_status()
    found: list[dict[str, Any]] = r.json()["sessions"]
    return found


def session(hub: Hub, user: str, sid: int) -> dict[str, Any]:
    (found,) = [s for s in sessions(hub, user) if s["id"] == sid]
    return found


def log_in(browser: Browser, hub: Hub, name: str, path: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login?next={quote(SERVICE + path)}")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(f"{hub.url}{SERVICE}{path.split('?')[0]}*")
    return page


def shoot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


# A form post from a page of the service, as its own forms send it.
POST_STOP = """async ([url, sid, xsrf]) => {
    const body = new URLSearchParams({session: String(sid)});
    if (xsrf) body.set("_xsrf", xsrf);
    const r = await fetch(url, {method: "POST", body, redirect: "manual"});
    return [r.status, r.type === "opaqueredirect" ? "" : await r.text()];
}"""


def post_stop(page: Page, hub: Hub, sid: int, *, with_xsrf: bool = True) -> tuple[int, str]:
    xsrf = page.locator("meta[name=eohub-xsrf]").get_attribute("content") if with_xsrf else ""
    status, text = page.evaluate(POST_STOP, [f"{hub.url}{SERVICE}groups/stop", sid, xsrf])
    return int(status), str(text)


def test_a_new_user_sees_every_chargeable_groups_budget(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    page = log_in(browser, hub, "dave", "usage")
    budgets = page.locator(".budget")
    # Both groups with a budget, by display name; "staff" has none in accounting.
    expect(budgets.locator(".group-label")).to_have_text(["All researchers", "Climate modelling"])
    researchers = page.locator(".budget[data-group='researchers']")
    expect(researchers).to_contain_text("Your share of All researchers' budget")
    expect(researchers.locator(".budget-left")).to_have_text("50 core-hours")
    climate = page.locator(".budget[data-group='climate']")
    expect(climate).to_contain_text("Climate modelling's budget")
    expect(climate).to_contain_text("0 of 200 core-hours")
    expect(page.locator("main")).not_to_contain_text("staff")
    expect(page.locator("#sessions-heading + p")).to_have_text("No sessions.")
    shoot(page, artifacts, "dave-budgets")


def test_a_pi_sees_idle_time_and_stops_a_members_server(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    alice_sid = start_charged(hub, "alice", "climate")
    bob_sid = start_charged(hub, "bob", "researchers")

    page = log_in(browser, hub, "carol", "groups")
    report = page.locator("section.group-report[data-group='climate']")
    expect(report.locator("h2")).to_contain_text("Climate modelling")
    row = report.locator(f"table.running tr[data-session='{alice_sid}']")
    expect(row.locator("td.member")).to_have_text("alice")
    expect(row.locator("td.idle")).to_have_text(IDLE)
    expect(row.locator("td.environment")).to_have_text("Python lab")
    # bob's server is charged to a group carol does not lead: not on her page.
    expect(page.locator(f"tr[data-session='{bob_sid}']")).to_have_count(0)
    shoot(page, artifacts, "carol-running")

    # carol's own API token: stopping is done on the confirmation page, not by scripts.
    r = hub.api("POST", "/users/carol/tokens", json={"scopes": [ACCESS]})
    r.raise_for_status()
    r = requests.post(
        f"{hub.url}{SERVICE}groups/stop",
        data={"session": alice_sid},
        headers={"Authorization": f"token {r.json()['token']}"},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403, r.text[:300]
    assert "an API token cannot stop them" in r.text
    assert hub.server("alice") is not None

    with page.expect_response(re.compile(r".*/groups/stop\?session=\d+$")) as confirm:
        row.locator("a.stop").click()
    # No other site may frame the confirmation (clickjacking its button).
    headers = confirm.value.headers
    assert headers["content-security-policy"] == "frame-ancestors 'self'"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    expect(page.locator("h1")).to_have_text("Stop alice's default server?")
    shoot(page, artifacts, "carol-confirm")
    expect(page.locator("#stop-server")).to_contain_text("Climate modelling")
    expect(page.locator("#stop-server .idle")).to_have_text(IDLE)
    assert hub.server("alice") is not None  # asking to confirm stops nothing

    page.get_by_role("button", name="Stop the server").click()
    page.wait_for_url(re.compile(r".*/groups\?group=climate&stopped=\d+"))
    expect(page.locator("main .alert-info").first).to_have_text(
        "Stopped alice's default server. The ledger records carol as who stopped it."
    )
    # The hub stopped it; its own stop event has not come yet: the session is open,
    # and shows as stopping rather than as stopped by carol.
    assert hub.server("alice") is None
    recorded = session(hub, "alice", alice_sid)
    assert (recorded["stopped_by"], recorded["stopped_at"]) == ("carol", None)
    stopping = report.locator(f"table.running tr[data-session='{alice_sid}']")
    expect(stopping.locator(".stopping")).to_have_text("stopping, asked by carol")
    expect(page.locator(f"table.stopped tr[data-session='{alice_sid}']")).to_have_count(0)
    shoot(page, artifacts, "carol-stopping")

    # The hub's stop event closes the session with the hub's time, and carol's name stays.
    real_stop = hubs_stop_arrives(hub, "alice", alice_sid)
    page.reload()
    stopped = page.locator(f"table.stopped tr[data-session='{alice_sid}']")
    expect(stopped.locator("td.reason")).to_have_text("Stopped by carol")
    expect(report.locator(f"table.running tr[data-session='{alice_sid}']")).to_have_count(0)
    shoot(page, artifacts, "carol-stopped")
    recorded = session(hub, "alice", alice_sid)
    assert recorded["stopped_by"] == "carol"
    gap = datetime.fromisoformat(recorded["stopped_at"]) - real_stop
    assert abs(gap.total_seconds()) < 0.01  # not the time carol asked at

    # carol, a PI of another group, may not stop bob's, even with her page's XSRF token;
    # the refusal is the one for a session that does not exist, and names no group.
    status, text = post_stop(page, hub, bob_sid)
    assert status == 404, text
    assert "no running server you may stop" in text
    assert "researchers" not in text
    assert post_stop(page, hub, 999999)[0] == 404
    assert hub.server("bob") is not None

    # alice sees who stopped her server.
    alice = log_in(browser, hub, "alice", "usage")
    mine = alice.locator("#sessions tbody tr").first
    expect(mine.locator(".stopped-by")).to_have_text("Stopped by carol")
    shoot(alice, artifacts, "alice-stopped-by-carol")

    # alice leads no group: she may not stop bob's server, nor see the page to confirm.
    response = alice.goto(f"{hub.url}{SERVICE}groups/stop?session={bob_sid}")
    assert response is not None
    assert response.status == 403
    assert response.headers["content-security-policy"] == "frame-ancestors 'self'"
    expect(alice.locator("main")).to_contain_text(
        "Only the PIs of a group and accounting admins may stop servers. Nothing was stopped."
    )
    shoot(alice, artifacts, "alice-403")
    status, text = post_stop(alice, hub, bob_sid)
    assert status == 403, text
    assert hub.server("bob") is not None
    assert session(hub, "bob", bob_sid)["stopped_by"] is None


def test_a_form_without_xsrf_stops_nothing_and_an_admin_stops_any(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    bob = next(s for s in sessions(hub, "bob") if s["stopped_at"] is None)
    sid = int(bob["id"])
    # A token that may read every group's usage, and nothing more: reading is not stopping.
    hub.ensure_user("rita")
    r = hub.api("POST", "/users/rita/tokens", json={"scopes": [READ, ACCESS]})
    r.raise_for_status()
    reader = {"Authorization": f"token {r.json()['token']}"}
    for method in ("GET", "POST"):
        r = requests.request(
            method,
            f"{hub.url}{SERVICE}groups/stop",
            params={"session": sid},
            headers=reader,
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 403, (method, r.status_code, r.text[:200])
    assert hub.server("bob") is not None
    page = log_in(browser, hub, "root", f"groups/stop?session={sid}")
    expect(page.locator("h1")).to_have_text("Stop bob's default server?")
    # A forged or stale form: no XSRF token, or a wrong one.
    status, text = post_stop(page, hub, sid, with_xsrf=False)
    assert status == 403, text
    assert "XSRF" in text
    status, _ = page.evaluate(POST_STOP, [f"{hub.url}{SERVICE}groups/stop", sid, "forged"])
    assert status == 403
    assert hub.server("bob") is not None

    page.get_by_role("button", name="Stop the server").click()
    page.wait_for_url(re.compile(r".*/groups\?group=researchers&stopped=\d+"))
    expect(page.locator("main .alert-info").first).to_contain_text(
        "The ledger records root as who stopped it."
    )
    shoot(page, artifacts, "root-stopped-bob")
    assert hub.server("bob") is None
    assert session(hub, "bob", sid)["stopped_by"] == "root"
    hubs_stop_arrives(hub, "bob", sid)

    # A second stop of the same session finds it closed: nothing more happens.
    response = page.goto(f"{hub.url}{SERVICE}groups/stop?session={sid}")
    assert response is not None
    assert response.status == 200
    expect(page.locator("main")).to_contain_text("already stopped (stopped by root)")
