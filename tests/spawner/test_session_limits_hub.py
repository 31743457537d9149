"""Session limits end to end, as a new hub admin sets them up and a user meets them.

One real JupyterHub with configurable-http-proxy serves the module, configured with the
drop-ins from ``jupyterhub_config.d/`` and only public settings:
``c.QuotaLocalSpawner.session_limits`` (a hub-wide idle limit), an environment's own
``idle_timeout`` / ``max_duration`` and its ``group_limits``, and the accounting
service's ``reconcile_interval`` and ``max_duration_warning`` in the service's config
file. The accounting service is the drop-in's managed service; its loop runs every
second, so its session-limits worker judges the servers quickly.

All servers start together (one wait for the slowest, not four):

- ida's default server (JupyterLab, the hub's 6-second idle limit) is left alone: the
  service stops it, and records ``idle``;
- bea's server has the same limit, but is kept active the way jupyterhub-singleuser does
  it, ``POST /hub/api/users/bea/activity`` with the server's own token: it runs well past
  the limit, and is stopped as idle only once the activity stops;
- ida's server ``long`` runs the "Batch" environment (no idle limit, at most 30 seconds):
  her usage page, her PI's page and the hub's home page warn of the stop, then it stops,
  recorded ``max_duration``;
- lou charges group astro, whose ``group_limits`` on "Batch" give an hour: his server is
  still running after ida's has stopped.

Then both reasons are on ida's usage page and the hub's home page (in Chromium), and in
the admin's CSV export with the limits' columns. Screenshots go to the artifacts folder.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.accounting.service.test_lifetimes_hub import post_activity, server_token
from tests.accounting.service_support import Accounting
from tests.support.hub import Hub, start_hub

# The module's tests share the servers `launched` starts once: a failure must not stop them.
pytestmark = [pytest.mark.hub, pytest.mark.browser, pytest.mark.shared_servers]

PASSWORD = "session-limits-pw"
SERVICE = "/services/eohub-accounting/"
#: The hub-wide idle limit, in seconds: longer than a loaded machine takes from a
#: server's first activity to bea's keeper posting.
IDLE = 12
#: The "Batch" environment's maximum duration, and the service's warning before it:
#: the four servers take 10-15 s to start together on two idle CPUs and twice that on
#: loaded ones, and the pages must show the warning before the stop; bea's server is
#: kept about as long meanwhile. Under a minute, so that the pages say "any moment now"
#: and the limit reads "59 seconds".
MAX = 59
WARNING = 54
#: Group astro's maximum duration on "Batch" (its group_limits entry).
ASTRO_MAX = 3600

SIZES = {"small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"}}
ENVIRONMENTS = {
    "lab": {"display_name": "JupyterLab", "default": True},
    "batch": {
        "display_name": "Batch",
        "description": "Runs unattended: no idle limit, but a maximum duration",
        "idle_timeout": 0,
        "max_duration": f"{MAX}s",
        "group_limits": {"astro": {"max_duration": "1h"}},
    },
}
ACCOUNTING_CONFIG = f"""
c = get_config()  # noqa: F821
c.AccountingService.groups = {{
    "climate": {{"display_name": "Climate modelling", "allocation": "month", "pis": ["carol"]}},
    "astro": {{"display_name": "Astronomy", "allocation": "month"}},
}}
# One loop, every second: reconcile, then the session limits.
c.AccountingService.reconcile_interval = 1
c.AccountingService.max_duration_warning = {WARNING}
"""


def hub_config(workdir: Path) -> str:
    volumes = {
        "home": {
            "kind": "workspace",
            "mount_path": "/home/jovyan",
            "local_path": str(workdir / "home" / "{username}"),
            "display_name": "Home",
        }
    }
    return f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.launch_sizes = {SIZES!r}
c.QuotaLocalSpawner.launch_environments = {ENVIRONMENTS!r}
c.QuotaLocalSpawner.launch_volumes = {volumes!r}
c.QuotaLocalSpawner.charge_groups = ["climate", "astro"]
c.QuotaLocalSpawner.session_limits = {{"idle_timeout": "{IDLE}s"}}
c.JupyterHub.load_groups = {{
    "climate": {{"users": ["ida", "bea", "carol"]}},
    "astro": {{"users": ["lou"]}},
}}
from eohub.spawner import check_hub_config
check_hub_config(c)
"""


#: (user, server name, launch options) of the servers the module starts together.
LAUNCHES = (
    ("ida", "", {"environment": "lab", "size": "small"}),
    ("ida", "long", {"environment": "batch", "size": "small"}),
    ("bea", "", {"environment": "lab", "size": "small"}),
    ("lou", "", {"environment": "batch", "size": "small"}),
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    # The managed service reads eohub_accounting_config.py in the hub's directory.
    (workdir / "eohub_accounting_config.py").write_text(ACCOUNTING_CONFIG)
    started = start_hub(workdir, hub_config(workdir))
    try:
        Accounting(started).wait_ready(timeout=60)
        for name in ("ida", "bea", "lou", "carol", "admin"):
            started.ensure_user(name)
        yield started
    finally:
        started.process.stop(timeout=20)


@dataclass
class Keeper:
    """Posts bea's server's activity every second, as jupyterhub-singleuser does while
    someone works in JupyterLab, from the moment the server is ready until stopped."""

    hub: Hub
    user: str
    stopped: threading.Event = field(default_factory=threading.Event)
    since: datetime | None = None
    error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                server = self.hub.server(self.user)
                if server is not None and server["ready"]:
                    break
                time.sleep(0.2)
            token = server_token(self.hub, self.user)
            while not self.stopped.is_set():
                post_activity(self.hub, self.user, "", token)
                self.since = self.since or datetime.now(UTC)
                self.stopped.wait(1)
        except BaseException as e:  # reported by the test that relies on it
            self.error = e


@dataclass
class Launched:
    """The module's servers, started together, and bea's activity keeper."""

    servers: dict[tuple[str, str], dict[str, Any]]
    keeper: Keeper

    def started(self, user: str, name: str = "") -> datetime:
        return datetime.fromisoformat(self.servers[(user, name)]["started"]).astimezone(UTC)


@pytest.fixture(scope="module")
def launched(hub: Hub) -> Iterator[Launched]:
    keeper = Keeper(hub, "bea")
    thread = threading.Thread(target=keeper.run, name="bea-activity", daemon=True)
    thread.start()

    def post(launch: tuple[str, str, dict[str, Any]]) -> requests.Response:
        user, name, options = launch
        path = f"/users/{user}/servers/{name}" if name else f"/users/{user}/server"
        return hub.api("POST", path, data=json.dumps(options))

    # The hub answers a spawn request once the server is up (or after its
    # slow_spawn_timeout): the requests go out together.
    with ThreadPoolExecutor(len(LAUNCHES)) as pool:
        responses = list(pool.map(post, LAUNCHES))
    try:
        for response in responses:
            assert response.status_code in (201, 202), response.text
        servers: dict[tuple[str, str], dict[str, Any]] = {}
        for user, name, _ in LAUNCHES:  # ida's idle server first
            # It may be stopped for idleness before a poll sees it ready: its record as
            # listed now is enough (its start time).
            idle = (user, name) == ("ida", "")
            servers[(user, name)] = listed(hub, user) if idle else wait_ready(hub, user, name)
        yield Launched(servers, keeper)
    finally:
        keeper.stopped.set()
        thread.join(timeout=10)
        for user, name, _ in LAUNCHES:
            if hub.server(user, name) is not None:
                hub.stop(user, name)


def listed(hub: Hub, user: str) -> dict[str, Any]:
    server = hub.server(user)
    assert server is not None, f"{user}'s server is gone:\n{hub.process.log_tail()}"
    return server


def wait_ready(hub: Hub, user: str, name: str = "", timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = hub.server(user, name)
        assert server is not None, f"{user}/{name} failed:\n{hub.process.log_tail()}"
        if server["ready"]:
            return server
        time.sleep(0.2)
    raise AssertionError(f"{user}/{name} not ready in {timeout} s:\n{hub.process.log_tail()}")


_ADMIN_TOKENS: dict[str, str] = {}


def admin_token(hub: Hub) -> str:
    """An API token of the hub admin, an accounting admin through drop-in 30's role."""
    if hub.url not in _ADMIN_TOKENS:
        _ADMIN_TOKENS[hub.url] = Accounting(hub).user_token("admin")
    return _ADMIN_TOKENS[hub.url]


def sessions(hub: Hub, user: str) -> dict[str, dict[str, Any]]:
    """``user``'s newest session of each server, from the service's API."""
    found = Accounting(hub).call("GET", f"api/sessions?user={user}", admin_token(hub))
    found.raise_for_status()
    newest: dict[str, dict[str, Any]] = {}
    for session in sorted(found.json()["sessions"], key=lambda s: s["started_at"]):
        newest[session["server"]] = session
    return newest


def wait_closed(hub: Hub, user: str, name: str = "", timeout: float = 60) -> dict[str, Any]:
    """``user``'s session of server ``name`` once the hub no longer runs it and the
    service has closed it."""
    deadline = time.monotonic() + timeout
    while True:
        session = sessions(hub, user).get(name)
        if hub.server(user, name) is None and session and session["stopped_at"]:
            return session
        assert time.monotonic() < deadline, (
            f"{user}/{name} not stopped in {timeout} s: {session}\n{hub.process.log_tail(40)}"
        )
        time.sleep(0.5)


def log_in(context: BrowserContext, hub: Hub, name: str, path: str) -> Page:
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login?next={quote(path)}")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(f"{hub.url}{path}*")
    return page


def new_context(browser: Browser) -> BrowserContext:
    return browser.new_context(viewport={"width": 1400, "height": 900})


def reload_until(page: Page, shown: Callable[[], bool], timeout: float, what: str) -> None:
    """Reload ``page`` until ``shown()``: the service's loop acts between reloads."""
    deadline = time.monotonic() + timeout
    while not shown():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not shown within {timeout} s")
        time.sleep(0.5)
        page.reload()


def shoot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def see_the_pi_warned(carol: Page, session: int, stop_at: datetime, artifacts: Path) -> None:
    """carol, PI of the group charged, is warned of her member's stop on her page."""
    carol.reload()
    expect(carol.locator(".alert-warning", has_text="will be stopped")).to_have_text(
        re.compile(
            rf"^ida's server long will be stopped at its maximum duration at "
            rf"{stop_at:%H:%M} UTC \(any moment now\)\.$"
        )
    )
    pi_row = carol.locator(f"table.running tr[data-session='{session}']")
    expect(pi_row.locator(".lifetime-warning")).to_have_text(f"stops at {stop_at:%H:%M}")
    expect(pi_row.locator("td.time-left")).to_contain_text(f"(at most {MAX} seconds)")
    shoot(carol, artifacts, "carol-max-duration-warning")


def see_the_home_page_say_it_ends(home: Page, hub: Hub, artifacts: Path) -> None:
    """The hub's home page says how little time ida's server has left."""
    home.goto(f"{hub.url}/hub/home")
    long_row = home.locator("tr.eohub-server-row[data-server-name='long']")
    expect(long_row).to_have_class(re.compile(r"\beohub-ends-soon\b"))
    expect(long_row.locator(".eohub-ends-in")).to_have_text("ends any moment")
    expect(long_row.locator(".eohub-maximum")).to_have_text(f"at most {MAX} seconds")
    shoot(home, artifacts, "ida-home-ends-soon")


def test_a_server_at_its_maximum_duration_is_warned_of_then_stopped(
    hub: Hub, browser: Browser, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    # The pages are open before the servers start, so the warning's few seconds are
    # spent watching, not logging in.
    ida = log_in(new_context(browser), hub, "ida", f"{SERVICE}usage")
    carol = log_in(new_context(browser), hub, "carol", f"{SERVICE}groups")
    run: Launched = request.getfixturevalue("launched")
    started = run.started("ida", "long")
    stop_at = started + timedelta(seconds=MAX)
    assert datetime.now(UTC) < stop_at, "the servers took the whole maximum to start"

    warning = ida.locator(".alert-warning", has_text="will be stopped")
    reload_until(ida, lambda: warning.count() > 0, MAX, "ida's warning")
    expect(warning).to_have_text(
        re.compile(
            rf"^Your server long will be stopped at its maximum duration at "
            rf"{stop_at:%H:%M} UTC \(any moment now\)\. Save your work before then\.$"
        )
    )
    long_id = sessions(hub, "ida")["long"]["id"]
    row = ida.locator(f"#sessions tr[data-session='{long_id}']")
    expect(row.locator(".lifetime-warning")).to_have_text(f"stops at {stop_at:%H:%M}")
    expect(row.locator(".time-left")).to_contain_text(f"(at most {MAX} seconds)")
    shoot(ida, artifacts, "ida-max-duration-warning")

    see_the_pi_warned(carol, long_id, stop_at, artifacts)
    see_the_home_page_say_it_ends(ida.context.new_page(), hub, artifacts)

    reason = row.locator("td.reason")
    reload_until(
        ida,
        lambda: (reason.text_content() or "").strip().startswith("Reached"),
        MAX + 30,
        "the stop of ida's server long",
    )
    assert datetime.now(UTC) >= stop_at
    expect(reason).to_have_text(f"Reached its maximum duration ({MAX} seconds)")
    expect(ida.locator(".alert-warning", has_text="will be stopped")).to_have_count(0)
    assert hub.server("ida", "long") is None
    shoot(ida, artifacts, "ida-max-duration-stopped")
    session = wait_closed(hub, "ida", "long")
    assert (session["end_reason"], session["idle_timeout"], session["max_duration"]) == (
        "max_duration",
        None,
        MAX,
    )


def test_an_idle_server_is_stopped_and_recorded_idle(hub: Hub, launched: Launched) -> None:
    session = wait_closed(hub, "ida", timeout=IDLE + 60)
    assert (session["end_reason"], session["idle_timeout"], session["max_duration"]) == (
        "idle",
        IDLE,
        None,
    )
    stopped = datetime.fromisoformat(session["stopped_at"])
    assert stopped >= launched.started("ida") + timedelta(seconds=IDLE)


def test_a_server_in_use_is_kept_past_the_idle_limit(hub: Hub, launched: Launched) -> None:
    keeper = launched.keeper
    deadline = time.monotonic() + 60
    while keeper.since is None:  # the server is ready and the keeper posts
        assert keeper.error is None, keeper.error
        assert time.monotonic() < deadline, "bea's activity was never posted"
        time.sleep(0.2)
    # Kept for three idle limits, while the service stopped ida's idle server.
    kept_until = keeper.since + timedelta(seconds=3 * IDLE)
    while datetime.now(UTC) < kept_until:
        time.sleep(0.5)
    assert keeper.error is None, keeper.error
    assert hub.server("bea") is not None, hub.process.log_tail(40)
    assert sessions(hub, "ida")[""]["end_reason"] == "idle"
    session = sessions(hub, "bea")[""]
    assert (session["stopped_at"], session["idle_timeout"]) == (None, IDLE)

    # Once nobody works in it, the idle limit applies.
    keeper.stopped.set()
    left = datetime.now(UTC)
    session = wait_closed(hub, "bea", timeout=IDLE + 60)
    assert session["end_reason"] == "idle"
    assert datetime.fromisoformat(session["stopped_at"]) >= left + timedelta(seconds=IDLE - 2)


def test_a_group_given_a_longer_maximum_keeps_its_server(hub: Hub, launched: Launched) -> None:
    wait_closed(hub, "ida", "long", timeout=MAX + 60)
    # ida's server of the same environment has reached its maximum; lou's group has more.
    assert hub.server("lou") is not None
    session = sessions(hub, "lou")[""]
    assert (session["group"], session["stopped_at"]) == ("astro", None)
    assert (session["idle_timeout"], session["max_duration"]) == (None, ASTRO_MAX)


def test_both_reasons_on_the_usage_and_home_pages_and_in_the_csv(
    hub: Hub, launched: Launched, browser: Browser, artifacts: Path
) -> None:
    wait_closed(hub, "ida", timeout=IDLE + 60)
    wait_closed(hub, "ida", "long", timeout=MAX + 60)
    ids = {name: s["id"] for name, s in sessions(hub, "ida").items()}

    page = log_in(new_context(browser), hub, "ida", f"{SERVICE}usage")
    expected = {
        "": ("idle", f"Stopped after being idle for its limit ({IDLE} seconds)"),
        "long": ("max_duration", f"Reached its maximum duration ({MAX} seconds)"),
    }
    for name, (code, words) in expected.items():
        row = page.locator(f"#sessions tr[data-session='{ids[name]}']")
        expect(row).to_have_attribute("data-reason", code)
        expect(row.locator("td.reason")).to_have_text(words)
    shoot(page, artifacts, "ida-usage-both-reasons")

    page.goto(f"{hub.url}/hub/home")
    # The home page words each stop as the usage page does.
    for name, (code, words) in expected.items():
        row = page.locator(f"tr.eohub-stopped-row[data-server-name='{name}']")
        expect(row).to_have_attribute("data-reason", code)
        expect(row.locator(".eohub-reason")).to_have_text(words)
    shoot(page, artifacts, "ida-home-stopped-reasons")

    export = Accounting(hub).call("GET", "api/export/sessions.csv", admin_token(hub))
    assert export.status_code == 200, export.text
    header = next(csv.reader(io.StringIO(export.text)))
    assert header[-2:] == ["idle_timeout", "max_duration"]
    rows = {
        (r["user"], r["server"]): r
        for r in csv.DictReader(io.StringIO(export.text))
        if r["user"] in ("ida", "lou")
    }
    cells = {k: (r["end_reason"], r["idle_timeout"], r["max_duration"]) for k, r in rows.items()}
    assert cells == {
        ("ida", ""): ("idle", str(IDLE), ""),
        ("ida", "long"): ("max_duration", "", str(MAX)),
        ("lou", ""): ("", "", str(ASTRO_MAX)),  # still running
    }
