"""The hub's home page in headless Chromium: each server, its clock, budget, and Usage.

Real parts: JupyterHub with configurable-http-proxy and the drop-ins, QuotaLocalSpawner
(servers run as the hub's user), the accounting service the drop-in manages (SQLite).
The hub's accounting client reaches the service through a :class:`FaultProxy`, so the
test can make the service hang (the proxy holds connections and never answers) or
vanish (the proxy stops: connections refused, as a stopped service's are), while the
service itself, which JupyterHub restarts when it exits, keeps running.

alice is in two hub groups: ``climate`` (100 core-hours; the hub group's display name
"Climate Researchers") and ``staff`` (4 core-hours; no display name). Sessions charged to
staff may run 15 minutes (``session_limits``): always within the warning period, so
their rows are highlighted.

The hub's accounting client reads sessions here (the role ``hub-client-reads-sessions``),
so that the page can say why a server stopped: drop-in 30's client role does not let it
yet (see eohub.hub.stops).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from eohub.domain.accounting.stop_reasons import stop_reason_text
from eohub.hub.home import BUDGET_WAIT
from eohub.spawner.ledger import LAST_OPTIONS_KEY
from tests.accounting.service_support import Accounting
from tests.support.browser import wait_for_hub_handler
from tests.support.faultproxy import FaultProxy
from tests.support.hub import Hub, start_hub
from tests.support.process import free_port

pytestmark = pytest.mark.hub

PASSWORD = "home-pw"
SIZES = {
    "small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"},
    "medium": {"display_name": "Medium", "cpu": 1, "memory": "2G"},
}
ENVIRONMENTS = {
    "lab": {"display_name": "JupyterLab", "sizes": ["small", "medium"], "default": True},
    "climate-lab": {
        "display_name": "Climate lab",
        "allowed_groups": ["climate"],
        "sizes": ["small", "medium"],
        "max_duration": 8 * 3600,
        "idle_timeout": "2h",
    },
}
SESSION_LIMITS = {"groups": {"staff": {"max_duration": "15m"}}}
ACCOUNTING_GROUPS = {
    "climate": {"allocation": "month", "quotas": {"": {"core_hours": 100}}},
    "staff": {"allocation": "month", "quotas": {"": {"core_hours": 4}}},
}


def hub_config(proxy_port: int | None = None) -> str:
    """The test hub's config; with ``proxy_port``, the hub asks accounting through it."""
    config = f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.launch_sizes = {SIZES!r}
c.QuotaLocalSpawner.launch_environments = {ENVIRONMENTS!r}
c.QuotaLocalSpawner.charge_groups = ["climate", "staff"]
c.QuotaLocalSpawner.session_limits = {SESSION_LIMITS!r}
"""
    if proxy_port is not None:
        config += f'c.AccountingClient.url = "http://127.0.0.1:{proxy_port}/services/eohub-accounting/"\n'
    return config


def accounting_config(root: Path) -> Path:
    path = root / "eohub_accounting_config.py"
    path.write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    return path


def add_groups(hub: Hub) -> None:
    """alice in climate (with a display name) and staff (without)."""
    hub.ensure_user("alice")
    for group, properties in (("climate", {"display_name": "Climate Researchers"}), ("staff", {})):
        assert hub.api("POST", f"/groups/{group}", json={"users": ["alice"]}).ok
        if properties:
            assert hub.api("PUT", f"/groups/{group}/properties", json=properties).ok


@pytest.fixture(scope="module")
def service_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def proxy(service_port: int) -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", service_port) as started:
        yield started


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, proxy: FaultProxy, service_port: int
) -> Iterator[Hub]:
    root = tmp_path_factory.mktemp("home")
    started = start_hub(
        root / "hub",
        hub_config(proxy.port),
        env={
            "EOHUB_ACCOUNTING_URL": f"http://127.0.0.1:{service_port}",
            "EOHUB_ACCOUNTING_CONFIG": str(accounting_config(root)),
        },
    )
    Accounting(started).wait_ready(timeout=60)
    add_groups(started)
    yield started
    started.process.stop(timeout=20)


def log_in(page: Page, hub: Hub, username: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/(?!login).*"))


def launch_from_the_form(
    page: Page, hub: Hub, server: str, *, environment: str, size: str, group: str
) -> None:
    """Fill the launch form of ``server`` ("" for the default) and wait until it runs."""
    page.goto(f"{hub.url}/hub/spawn/alice/{server}" if server else f"{hub.url}/hub/spawn")
    page.check(f"input[name=environment][value={environment}]")
    page.check(f"input[name=group][value={group}]")
    page.check(f"input[name=size][value={size}]")
    page.click("#spawn_form button[type=submit]")
    # The pending page moves on to the server by itself once it runs: wait for that,
    # or it would interrupt the test's next page.
    prefix = f"/user/alice/{server}/" if server else "/user/alice/"
    page.wait_for_url(re.compile(f".*{prefix}.*"), timeout=90_000, wait_until="commit")
    deadline = time.monotonic() + 90
    while not (found := hub.server("alice", server)) or not found["ready"]:
        assert time.monotonic() < deadline, hub.process.log_tail()
        time.sleep(0.3)


def row(page: Page, server: str) -> Locator:
    return page.locator(f"tr.eohub-server-row[data-server-name='{server}']")


def open_home(page: Page, hub: Hub) -> float:
    """Open the home page; the seconds the hub took to answer.

    Timed to the response, not to the page's load: what the hub waits for the budgets
    is the point, not how fast a loaded browser fetches the static files after it."""
    began = time.monotonic()
    response = page.goto(f"{hub.url}/hub/home", wait_until="commit")
    took = time.monotonic() - began
    assert response is not None
    assert response.status == 200
    page.wait_for_load_state()
    return took


def stopped_row(page: Page, server: str) -> Locator:
    return page.locator(f"tr.eohub-stopped-row[data-server-name='{server}']")


def check_the_rows(page: Page) -> None:
    default, second = row(page, ""), row(page, "second")
    expect(default.locator(".eohub-server")).to_have_text("My Server")
    expect(default.locator(".eohub-environment")).to_have_text("Climate lab")
    expect(default.locator(".eohub-size")).to_have_text("Medium")
    expect(default.locator(".eohub-group")).to_have_text("Climate Researchers")
    expect(default.locator(".eohub-running")).to_have_text(re.compile(r"under 1 min|[1-5] min"))
    # climate's 100 core-hours run 1 CPU for about 100 h, which reads as days.
    expect(default.locator(".eohub-budget")).to_contain_text(
        re.compile(r"(100|99\.9) core-hours left")
    )
    expect(default.locator(".eohub-budget")).to_contain_text("enough for about 4 d more")
    # The session's limits: the time left before its maximum, and its idle time.
    expect(default.locator(".eohub-ends-in")).to_have_text(re.compile(r"ends in 7 h 5\d min"))
    expect(default.locator(".eohub-maximum")).to_have_text("at most 8 hours")
    expect(default.locator(".eohub-idle-for")).to_have_text(re.compile(r"under 1 min|\d min"))
    expect(default.locator(".eohub-idle-limit")).to_have_text("stops after 2 hours idle")
    expect(default).not_to_have_class(re.compile("eohub-ends-soon"))
    expect(second.locator(".eohub-server")).to_have_text("second")
    expect(second.locator(".eohub-environment")).to_have_text("JupyterLab")
    expect(second.locator(".eohub-size")).to_have_text("Small")
    expect(second.locator(".eohub-group")).to_have_text("staff")  # no display name: its id
    expect(second.locator(".eohub-budget")).to_contain_text(re.compile(r"4 core-hours left"))
    expect(second.locator(".eohub-budget")).to_contain_text("enough for about 8 h more")
    # staff's 15 minutes: highlighted from the start.
    expect(second.locator(".eohub-ends-in")).to_have_text(re.compile(r"ends in 1[0-4] min"))
    expect(second.locator(".eohub-ends-in")).to_have_class(re.compile("text-danger"))
    expect(second.locator(".eohub-maximum")).to_have_text("at most 15 minutes")
    expect(second.locator(".eohub-idle-limit")).to_have_text("no idle limit")
    expect(second).to_have_class(re.compile("eohub-ends-soon"))


def check_budget_unknown(page: Page, hub: Hub, artifacts: Path, shot: str) -> None:
    took = open_home(page, hub)
    expect(row(page, "").locator(".eohub-budget")).to_have_text("budget unknown")
    expect(stopped_row(page, "second").locator(".eohub-reason")).to_have_text("unknown")
    # Everything else is still there.
    expect(row(page, "").locator(".eohub-environment")).to_have_text("Climate lab")
    expect(row(page, "").locator(".eohub-group")).to_have_text("Climate Researchers")
    expect(row(page, "").locator(".eohub-maximum")).to_have_text("at most 8 hours")
    expect(page.locator("#eohub-usage")).to_be_visible()
    page.screenshot(path=str(artifacts / shot), full_page=True)
    assert took < BUDGET_WAIT + 5, f"the home page took {took:.1f} s"


def test_the_home_page_shows_each_server_its_budget_and_usage(
    hub: Hub, proxy: FaultProxy, page: Page, artifacts: Path
) -> None:
    log_in(page, hub, "alice")
    open_home(page, hub)
    expect(page.locator(".eohub-no-servers")).to_have_text("No server is running.")
    try:
        launch_from_the_form(
            page, hub, "", environment="climate-lab", size="medium", group="climate"
        )
        launch_from_the_form(page, hub, "second", environment="lab", size="small", group="staff")

        open_home(page, hub)
        check_the_rows(page)
        usage = page.locator("#eohub-usage")
        expect(usage).to_have_text("Usage")
        assert usage.get_attribute("href") == "/services/eohub-accounting/"
        page.screenshot(path=str(artifacts / "1-home-two-servers.png"), full_page=True)
        check_the_limits_on_the_form(page, hub, artifacts)

        # alice stops "second" on JupyterHub's page: then the page says why it stopped.
        stop_on_the_home_page(page, hub, "second")
        page.screenshot(path=str(artifacts / "1b-home-stopped-server.png"), full_page=True)

        # A hung service: the page waits for its budget no longer than BUDGET_WAIT.
        proxy.blackhole = True
        check_budget_unknown(page, hub, artifacts, "2-home-service-hangs.png")
        # A stopped service refuses connections: the page says so at once.
        proxy.stop()
        check_budget_unknown(page, hub, artifacts, "3-home-service-stopped.png")

        # Usage leads to the accounting service's pages (reached through the hub's proxy).
        open_home(page, hub)
        page.click("#eohub-usage")
        page.wait_for_url(re.compile(r".*/services/eohub-accounting/.*"))
        expect(page.locator("body")).to_contain_text("alice")
        page.screenshot(path=str(artifacts / "4-usage.png"), full_page=True)
    finally:
        for server in ("", "second"):
            if hub.server("alice", server) is not None:
                hub.stop("alice", server)
    log = hub.process.log_tail()
    assert "Traceback" not in log, log
    assert " 500 " not in log, log


def check_the_limits_on_the_form(page: Page, hub: Hub, artifacts: Path) -> None:
    """The form of a new server: each environment's limits for the group chosen."""
    page.goto(f"{hub.url}/hub/spawn/alice/third")
    lab = page.locator("label[for=eohub-environment-lab] .eohub-limits:visible")
    page.check("input[name=group][value=staff]")
    expect(lab).to_have_text("Runs at most 15 minutes.")
    page.screenshot(path=str(artifacts / "1a-form-limits.png"), full_page=True)
    page.check("input[name=group][value=climate]")
    expect(lab).to_have_text("No time limit.")
    climate_lab = page.locator("label[for=eohub-environment-climate-lab] .eohub-limits:visible")
    expect(climate_lab).to_have_text("Stops after 2 hours idle, at most 8 hours.")


def stop_on_the_home_page(page: Page, hub: Hub, server: str) -> None:
    """Click JupyterHub's stop button of ``server``, then reload until accounting has the
    stop (the hub's outbox sends it within a moment)."""
    open_home(page, hub)
    wait_for_hub_handler(page, f"#stop-{server}")
    page.click(f"#stop-{server}")
    deadline = time.monotonic() + 60
    while (found := hub.server("alice", server)) is not None and found.get("ready"):
        assert time.monotonic() < deadline, hub.process.log_tail()
        time.sleep(0.3)
    reason = stopped_row(page, server).locator(".eohub-reason")
    while True:
        open_home(page, hub)
        text = reason.inner_text().strip() if reason.count() else ""
        if text not in ("", "not recorded yet", "unknown"):
            break
        assert time.monotonic() < deadline, f"no stop reason: {text!r}"
        time.sleep(0.5)
    # Who stopped it: the user, where the hub notes the caller (drop-in 00's route).
    code = stopped_row(page, server).get_attribute("data-reason")
    assert code == "user", code
    expect(reason).to_have_text(stop_reason_text(code).capitalize())
    expect(stopped_row(page, server).locator(".eohub-stopped")).to_have_text(
        re.compile(r"(under 1 min|\d min) ago")
    )
    expect(row(page, server)).to_have_count(0)


def test_the_launch_form_lists_the_running_servers_with_their_time_left(
    hub: Hub, page: Page, artifacts: Path
) -> None:
    log_in(page, hub, "alice")
    climate = {"environment": "climate-lab", "size": "small", "group": "climate"}
    try:
        hub.spawn("alice", options=climate)
        hub.spawn(
            "alice", "second", options={"environment": "lab", "size": "small", "group": "staff"}
        )
        page.goto(f"{hub.url}/hub/spawn/alice/third")
        default = page.locator("#eohub-running-default")
        second = page.locator("#eohub-running-second")
        expect(default).to_contain_text("My Server (Climate lab):")
        expect(default.locator(".eohub-clock")).to_have_text(
            re.compile(
                r"ends in 7 h 5\d min \(at most 8 hours\); "
                r"idle (under 1 min|\d min) \(stops after 2 hours idle\)"
            )
        )
        expect(second).to_contain_text("second (JupyterLab):")
        expect(second.locator(".eohub-clock")).to_have_text(
            re.compile(r"ends in 1[0-4] min \(at most 15 minutes\); idle (under 1 min|\d min)")
        )
        expect(second.locator(".eohub-clock")).to_have_class(re.compile("text-danger"))
        page.screenshot(path=str(artifacts / "form-running-servers.png"), full_page=True)
    finally:
        for server in ("", "second"):
            if hub.server("alice", server) is not None:
                hub.stop("alice", server)


def spoil_state(hub: Hub, username: str, server: str) -> None:
    """Put garbage in the stored state of ``username``'s ``server`` (the hub is stopped):
    its last options charge infinitely many GPUs, which no row can be built from."""
    database = sqlite3.connect(hub.workdir / "jupyterhub.sqlite")
    try:
        query = (
            "SELECT spawners.id, spawners.state FROM spawners JOIN users"
            " ON users.id = spawners.user_id WHERE users.name = ? AND spawners.name = ?"
        )
        spawner_id, text = database.execute(query, (username, server)).fetchone()
        state = json.loads(text)
        state[LAST_OPTIONS_KEY] = {**state[LAST_OPTIONS_KEY], "gpus": math.inf}
        database.execute(
            "UPDATE spawners SET state = ? WHERE id = ?", (json.dumps(state), spawner_id)
        )
        database.commit()
    finally:
        database.close()


def test_after_a_hub_restart_the_row_is_rebuilt_from_the_spawners_state(
    tmp_path: Path, page: Page, artifacts: Path
) -> None:
    """A restarted hub has no approved launch in memory: the row comes from the state
    the spawner keeps (the open session's group, the options that started it). A server
    whose state is garbage gets JupyterHub's part of its row only; the page still works."""
    port = free_port()
    env = {
        "EOHUB_ACCOUNTING_URL": f"http://127.0.0.1:{free_port()}",
        "EOHUB_ACCOUNTING_CONFIG": str(accounting_config(tmp_path)),
    }
    # The servers outlive the hub (they run in sessions of their own), and reach the
    # restarted hub where they reached the first: its API keeps its port.
    config = (
        hub_config()
        + "c.JupyterHub.cleanup_servers = False\n"
        + f"c.JupyterHub.hub_port = {free_port()}\n"
    )
    hub = start_hub(tmp_path / "hub", config, port=port, env=env)
    try:
        Accounting(hub).wait_ready(timeout=60)
        add_groups(hub)
        log_in(page, hub, "alice")
        # Started through REST: no JupyterLab page stays open across the restart.
        options = {"environment": "climate-lab", "size": "medium", "group": "climate"}
        hub.spawn("alice", options=options)
        hub.spawn("alice", "spoilt", options={**options, "size": "small"})
        hub.process.stop(timeout=20)
        spoil_state(hub, "alice", "spoilt")
        # The same hub again: its database, cookie secret and public port.
        hub = start_hub(tmp_path / "hub", config, port=port, env=env)
        Accounting(hub).wait_ready(timeout=60)
        for server in ("", "spoilt"):
            found = hub.server("alice", server)
            assert found is not None, hub.process.log_tail()
            assert found["ready"]

        open_home(page, hub)  # the login cookie of the first run still holds
        default = row(page, "")
        expect(default.locator(".eohub-environment")).to_have_text("Climate lab")
        expect(default.locator(".eohub-size")).to_have_text("Medium")
        expect(default.locator(".eohub-group")).to_have_text("Climate Researchers")
        expect(default.locator(".eohub-budget")).to_contain_text(
            re.compile(r"(100|99\.9) core-hours left")
        )
        # The limits the session started with, kept in the spawner's state.
        expect(default.locator(".eohub-ends-in")).to_have_text(re.compile(r"ends in 7 h 5\d min"))
        expect(default.locator(".eohub-idle-limit")).to_have_text("stops after 2 hours idle")
        # JupyterHub's part of the spoilt server's row: its link and time running.
        spoilt = row(page, "spoilt")
        expect(spoilt.locator(".eohub-server")).to_have_text("spoilt")
        expect(spoilt.locator(".eohub-running")).to_have_text(re.compile(r"under 1 min|\d+ min"))
        expect(spoilt.locator(".eohub-environment")).to_have_text("unknown")
        for cell in (".eohub-size", ".eohub-group", ".eohub-budget", ".eohub-ends", ".eohub-idle"):
            expect(spoilt.locator(cell)).to_have_text("\u2014")
        page.screenshot(path=str(artifacts / "home-after-restart.png"), full_page=True)
        log = hub.process.log_tail(400)
        assert "cannot read the launch of alice:spoilt" in log, log
        assert "Traceback" not in log, log
    finally:
        for server in ("", "spoilt"):
            if hub.process.running() and hub.server("alice", server) is not None:
                hub.stop("alice", server)
        hub.process.stop(timeout=20)
