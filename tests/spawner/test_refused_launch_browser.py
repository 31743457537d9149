"""Refused launches and launch-link error pages, in headless Chromium on a real hub.

Real parts only: JupyterHub with configurable-http-proxy and the accounting service
(from the drop-ins), the DummyAuthenticator's login page, QuotaLocalSpawner, named
servers, git's http-backend serving a repository on loopback, and eohub's launch-link
handlers (which install eohub's spawn route).

Covered: a refused named-server launch (a denied repository, a spent budget) comes back
with the user's choices and the server name, and the hub logs one line for it, without
a traceback; a plain ``/hub/spawn`` afterwards does not prefill the refused repository;
a launch link whose server runs shows a hub page with the reason and the actions
"Stop the running server and launch" and "Launch in a new named server", which work; a
refused link leads "Back to the launch form"; no input gives an HTTP 500; an
unexpected error keeps the choices too and logs one traceback.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect

from eohub.domain.accounting.events import start_event_json, stop_event_json
from tests.accounting.service_support import Accounting
from tests.spawner.form.forms import Page as FormPage
from tests.support.git_server import Repo
from tests.support.hub import Hub
from tests.support.repo_services import local_repo_hub_config, start_repo_hub

pytestmark = [pytest.mark.browser, pytest.mark.hub]

SIZES = {
    "small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"},
    "medium": {"display_name": "Medium", "cpu": 1, "memory": "2G"},
}
ENVIRONMENTS = {
    "lab": {"display_name": "JupyterLab", "sizes": ["small", "medium"], "default": True},
    "from-repo": {
        "display_name": "Build from a repository",
        "repository": True,
        "sizes": ["small"],
        "allowed_groups": ["climate"],
    },
}
GROUPS = {
    "climate": ["alice", "carol", "erin"],
    "broke": ["alice", "dave"],
    "astro": ["bob"],
    "fieldwork": ["erin"],
}
ACCOUNTING_GROUPS = {
    "climate": {"allocation": "month"},
    "astro": {"allocation": "month"},
    "broke": {"allocation": "month", "quotas": {"": {"core_hours": 0}}},
    # Enough for a Small server when erin's form is drawn; spent before she clicks Start.
    "fieldwork": {"allocation": "month", "quotas": {"": {"core_hours": 2}}},
}
REPO_SETTINGS = """
c.RepoLaunches.trusted_repos = ["127.0.0.1*/demo*"]
c.RepoLaunches.denied_repos = ["127.0.0.1*/denied*"]
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 3
"""
DENIED_WORDS = "denied"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    config = local_repo_hub_config(
        workdir,
        environments=ENVIRONMENTS,
        sizes=SIZES,
        groups=GROUPS,
        repo_settings=REPO_SETTINGS,
    )
    started = start_repo_hub(workdir, config, ACCOUNTING_GROUPS)
    yield started
    started.process.stop(timeout=20)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context
    context.close()


def log_in(page: Page, hub: Hub, username: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "any password")  # the DummyAuthenticator's
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/(?!login).*"))


def hub_log(hub: Hub) -> str:
    return hub.process.log_path.read_text(errors="replace")


def new_lines(hub: Hub, before: str) -> str:
    return hub_log(hub)[len(before) :]


def launch_link(hub: Hub, url: str, query: str = "") -> str:
    link = f"{hub.url}/hub/eohub/launch/git/{quote(url, safe='')}/main"
    return f"{link}?{query}" if query else link


def wait_ready(hub: Hub, username: str, server_name: str, timeout: float = 120) -> dict[str, Any]:
    """The server once the hub says it is ready (a busy machine starts JupyterLab slowly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = hub.server(username, server_name)
        assert server is not None, hub.process.log_tail()
        if server["ready"]:
            return server
        time.sleep(0.3)
    raise AssertionError(f"{username}:{server_name} not ready in {timeout}s")


def stop_all(hub: Hub, username: str) -> None:
    response = hub.api("GET", f"/users/{username}")
    for name in response.json().get("servers", {}):
        hub.stop(username, name)


def test_a_refused_named_server_launch_keeps_its_choices(
    hub: Hub, served: tuple[str, Repo], context: BrowserContext, artifacts: Path
) -> None:
    url, _ = served
    denied = url.replace("/demo.git", "/denied-project.git")
    page = context.new_page()
    log_in(page, hub, "alice")
    page.goto(f"{hub.url}/hub/spawn/alice/second")
    expect(page.locator("#eohub-launch")).to_contain_text("Server name: second")
    page.check("#eohub-environment-from-repo")
    page.fill("#eohub-repo-url", denied)
    page.fill("#eohub-ref", "main")
    page.fill("#eohub-filepath", "README.md")
    before = hub_log(hub)
    page.click("#spawn_form button[type=submit]")

    # The form of *that* server, with the submitted choices and the reason.
    page.wait_for_url(re.compile(r".*/hub/eohub/spawn/alice/second.*"))
    expect(page.locator(".spawn-error-msg")).to_contain_text(DENIED_WORDS)
    expect(page.locator("#eohub-launch")).to_contain_text("Server name: second")
    expect(page.locator("#eohub-environment-from-repo")).to_be_checked()
    expect(page.locator("#eohub-repo-url")).to_have_value(denied)
    expect(page.locator("#eohub-ref")).to_have_value("main")
    expect(page.locator("#eohub-filepath")).to_have_value("README.md")
    expect(page.locator(".eohub-untrusted")).to_be_visible()
    page.screenshot(path=str(artifacts / "1-refused-named-launch.png"), full_page=True)
    assert hub.server("alice", "second") is None

    # One line in the hub's log for the refusal, and no traceback.
    logged = new_lines(hub, before)
    assert len([line for line in logged.splitlines() if "denied-project" in line]) == 1, logged
    assert "Traceback" not in logged

    # A plain /hub/spawn of that server: the environment's defaults, no repository.
    page.goto(f"{hub.url}/hub/spawn/alice/second")
    expect(page.locator("#eohub-environment-lab")).to_be_checked()
    expect(page.locator("#eohub-repo-url")).to_have_value("")
    assert "denied-project" not in page.content()
    page.screenshot(path=str(artifacts / "2-plain-spawn-after-refusal.png"), full_page=True)

    # The form of that server, sent with a size of one's own, starts it.
    page.check("#eohub-size-medium")
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(r".*/(spawn-pending|user)/alice/second.*"))
    server = wait_ready(hub, "alice", "second")
    assert server["user_options"]["size"] == "medium"
    # The spawn-pending page moves to the server by itself once it is ready; leaving
    # before it has would race that navigation.
    page.wait_for_url(re.compile(r".*/user/alice/second/.*"))
    page.goto(f"{hub.url}/hub/home")  # not JupyterLab, which polls its stopped server
    hub.stop("alice", "second")

    # Refused again: the plain form shows the last launch that started, not the refusal.
    page.goto(f"{hub.url}/hub/spawn/alice/second")
    page.check("#eohub-environment-from-repo")
    page.fill("#eohub-repo-url", denied)
    page.click("#spawn_form button[type=submit]")
    expect(page.locator(".spawn-error-msg")).to_contain_text(DENIED_WORDS)
    page.goto(f"{hub.url}/hub/spawn/alice/second")
    expect(page.locator("#eohub-environment-lab")).to_be_checked()
    expect(page.locator("#eohub-size-medium")).to_be_checked()
    expect(page.locator("#eohub-repo-url")).to_have_value("")
    stop_all(hub, "alice")


def submit_form(
    hub: Hub, session: requests.Session, path: str, data: dict[str, str]
) -> requests.Response:
    xsrf = session.cookies.get("_xsrf") or ""
    return session.post(
        f"{hub.url}{path}?_xsrf={quote(xsrf)}",
        data={**data, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=60,
    )


def test_a_spent_budget_comes_back_on_the_servers_form_with_one_log_line(hub: Hub) -> None:
    session = hub.login("alice", "any password")
    session.get(f"{hub.url}/hub/spawn/alice/third", timeout=30).raise_for_status()
    before = hub_log(hub)
    form = {"environment": "lab", "size": "medium", "group": "broke"}
    response = submit_form(hub, session, "/hub/eohub/spawn/alice/third", form)
    assert response.status_code == 403, response.text[-2000:]
    assert "Server name: <strong>third</strong>" in response.text
    shown = FormPage.of(response.text)
    assert shown.checked("environment") == ["lab"]
    assert shown.checked("size") == ["medium"]
    # broke cannot pay: the form preselects the group that can, and says why; the
    # submitted group stays on offer.
    assert shown.checked("group") == ["climate"]
    assert "broke" in shown.visible("group", "radio")
    assert "budget of group broke is spent" in response.text.replace("\n", " ")
    logged = new_lines(hub, before)
    assert len([line for line in logged.splitlines() if "is spent" in line]) == 1, logged
    assert "Traceback" not in logged
    assert hub.server("alice", "third") is None

    # A bad option, refused before the spawn: the form again, one line.
    before = hub_log(hub)
    response = submit_form(hub, session, "/hub/eohub/spawn/alice/third", {"size": "no such"})
    assert response.status_code == 400
    assert "Server name: <strong>third</strong>" in response.text
    logged = new_lines(hub, before)
    assert "Traceback" not in logged
    assert len([line for line in logged.splitlines() if "refused" in line]) == 1, logged

    # Someone else's server: the same scope check as JupyterHub's own route.
    response = submit_form(hub, session, "/hub/eohub/spawn/dave/x", form)
    assert response.status_code in (403, 404)


def spend_the_budget(hub: Hub, user: str, group: str) -> None:
    """Record, as the hub records a server's start and stop, 4 core-hours of ``group``."""
    stopped = datetime.now(UTC).replace(microsecond=0)
    started = stopped - timedelta(hours=2)
    events = [
        start_event_json(user=user, server="other", started_at=started, group=group, cpu=2),
        stop_event_json(user=user, server="other", started_at=started, stopped_at=stopped),
    ]
    accounting = Accounting(hub)
    response = accounting.call("POST", "api/events", accounting.hub_token, json={"events": events})
    assert response.status_code == 200, response.text


def test_a_budget_spent_after_the_form_was_drawn_comes_back_on_the_form(
    hub: Hub, context: BrowserContext, artifacts: Path
) -> None:
    page = context.new_page()
    log_in(page, hub, "erin")
    page.goto(f"{hub.url}/hub/spawn")
    page.check("input[name=group][value=fieldwork]")
    page.check("#eohub-size-small")
    start = page.locator("#spawn_form button[type=submit]")
    expect(start).to_be_enabled()  # the form knows fieldwork's budget buys Small
    page.screenshot(path=str(artifacts / "1-form-before-the-budget-ran-out.png"), full_page=True)

    spend_the_budget(hub, "erin", "fieldwork")  # meanwhile, elsewhere
    before = hub_log(hub)
    start.click()

    # The hub's check refuses; the form comes back with erin's choices and the reason.
    page.wait_for_url(re.compile(r".*/hub/eohub/spawn/erin.*"))
    expect(page.locator(".spawn-error-msg")).to_contain_text("budget of group fieldwork is spent")
    expect(page.locator("#eohub-environment-lab")).to_be_checked()
    expect(page.locator("#eohub-size-small")).to_be_checked()
    # The preselection moves to the group that can pay; fieldwork stays on offer.
    expect(page.locator("input[name=group][value=climate]")).to_be_checked()
    expect(page.locator("input[name=group][value=fieldwork]")).to_be_visible()
    page.screenshot(path=str(artifacts / "2-refused-budget-spent-meanwhile.png"), full_page=True)
    assert hub.server("erin") is None
    logged = new_lines(hub, before)
    assert len([line for line in logged.splitlines() if "is spent" in line]) == 1, logged
    assert "Traceback" not in logged


def test_a_launch_link_of_a_running_server_offers_what_can_help(
    hub: Hub, served: tuple[str, Repo], context: BrowserContext, artifacts: Path
) -> None:
    url, _ = served
    page = context.new_page()
    log_in(page, hub, "carol")  # first: with a server running, the login opens it
    hub.spawn("carol", options={"environment": "lab", "size": "small", "group": "climate"})
    try:
        link = launch_link(hub, url, "filepath=README.md")
        response = page.goto(link)
        assert response is not None
        assert response.status == 409
        expect(page.locator("h1")).to_have_text("Your server is already running")
        expect(page.locator(".eohub-link-error-reason")).to_contain_text("is running")
        stop = page.locator("#eohub-stop-and-launch")
        expect(stop).to_be_visible()
        expect(page.locator("#eohub-launch-new-server")).to_be_visible()
        expect(page.locator("#eohub-new-server-name")).to_have_value("demo")
        expect(page.locator("#eohub-back-to-form")).to_have_count(0)
        # The hub's own page: its navigation bar and user menu (the logout button).
        expect(page.locator("#logout")).to_be_visible()
        page.screenshot(path=str(artifacts / "1-link-server-running.png"), full_page=True)

        # "Launch in a new named server": the link's form for a new server.
        page.click("#eohub-launch-new-server")
        page.wait_for_url(re.compile(r".*server=demo.*"))
        expect(page.locator("#eohub-launch")).to_contain_text("Server name: demo")
        expect(page.locator("#eohub-repo-url")).to_have_value(url)
        expect(page.locator("#eohub-filepath")).to_have_value("README.md")
        assert hub.server("carol", "demo") is None

        # "Stop the running server and launch": stops it and opens the link's form.
        page.goto(link)
        page.click("#eohub-stop-and-launch")
        page.wait_for_url(link)
        expect(page.locator("#eohub-repo-url")).to_have_value(url, timeout=60_000)
        assert hub.server("carol") is None
        page.screenshot(path=str(artifacts / "2-link-after-stop.png"), full_page=True)
    finally:
        page.close()
        stop_all(hub, "carol")


def test_a_refused_link_leads_back_to_the_launch_form(
    hub: Hub, served: tuple[str, Repo], context: BrowserContext, artifacts: Path
) -> None:
    url, _ = served
    page = context.new_page()
    log_in(page, hub, "bob")  # not in climate: no repository environment for him
    before = hub_log(hub)
    response = page.goto(launch_link(hub, url))
    assert response is not None
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("This launch is not allowed")
    expect(page.locator(".eohub-link-error-reason")).to_have_text(
        "You may not launch repositories on this hub."
    )
    expect(page.locator("#eohub-stop-and-launch")).to_have_count(0)
    page.screenshot(path=str(artifacts / "1-link-refused.png"), full_page=True)
    logged = new_lines(hub, before)
    refused = [line for line in logged.splitlines() if "may not launch repositories" in line]
    assert len(refused) == 1, logged
    assert "Traceback" not in logged
    page.click("#eohub-back-to-form")
    page.wait_for_url(re.compile(r".*/hub/spawn/bob$"))
    expect(page.locator("#eohub-launch")).to_be_visible()


@pytest.mark.parametrize(
    "query",
    [
        "server=Bad_Name",
        "server=" + "x" * 300,
        "server=%2F",
        "server=a&server=b",
        "zzz=1",
        "size=a%20b",
        "group=nobody",
        "environment=lab",
        "profile=nope",
        "filepath=..%2F..%2Fetc",
    ],
)
def test_no_link_gives_a_500(hub: Hub, served: tuple[str, Repo], query: str) -> None:
    url, _ = served
    session = hub.login("alice", "any password")
    for link in (
        launch_link(hub, url, query),
        f"{hub.url}/hub/eohub/launch/nope/x?{query}",
        f"{hub.url}/hub/eohub/launch/gh/?{query}",
    ):
        response = session.get(link, timeout=30)
        assert response.status_code < 500, (link, response.status_code, response.text[-1500:])
        assert urlsplit(response.url).path.startswith("/hub/eohub/launch/")
    assert hub.server("alice") is None


BROKEN_READER = """
def _broken_reader(formdata):
    raise RuntimeError("the form reader broke")
c.QuotaLocalSpawner.options_from_form = _broken_reader
"""


def test_an_unexpected_error_logs_one_traceback(tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("broken-hub")
    config = local_repo_hub_config(
        workdir, environments=ENVIRONMENTS, sizes=SIZES, groups=GROUPS, repo_settings=BROKEN_READER
    )
    broken = start_repo_hub(workdir, config, ACCOUNTING_GROUPS)
    try:
        session = broken.login("alice", "any password")
        session.get(f"{broken.url}/hub/spawn", timeout=30).raise_for_status()
        before = hub_log(broken)
        form = {"environment": "lab", "size": "medium", "group": "climate"}
        response = submit_form(broken, session, "/hub/eohub/spawn/alice", form)
        assert response.status_code == 500
        assert "unexpected error; tell an admin" in response.text
        assert FormPage.of(response.text).checked("size") == ["medium"]  # still kept
        logged = new_lines(broken, before)
        assert logged.count("Traceback") == 1, logged
        assert logged.count("RuntimeError: the form reader broke") == 1, logged
        assert broken.server("alice") is None
    finally:
        broken.process.stop(timeout=20)
