"""Launch links that must not do what they ask, in headless Chromium on a real hub.

The same real parts as ``test_refused_launch_browser.py`` (JupyterHub with its proxy and
the accounting service, QuotaLocalSpawner, named servers, git's http-backend, eohub's
launch-link handlers). Covered, on JupyterHub 6 and on 5.5 (the z2jh env):

- a script in ``?server=`` never runs: the name is refused with a quiet 400 page (one
  INFO line, no ERROR) and never reaches a page unescaped, nor creates a server;
- a login with read scopes only can neither stop its server through a link's "Stop
  the running server and launch" (``delete:servers``) nor create a named server by
  opening a link (``servers``), the scopes of JupyterHub's own routes;
- a link the policy refuses offers no "Stop the running server and launch": stopping
  would not help, and the server keeps running.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, expect

from tests.spawner.test_refused_launch_browser import (
    ACCOUNTING_GROUPS,
    ENVIRONMENTS,
    GROUPS,
    REPO_SETTINGS,
    SIZES,
    hub_log,
    launch_link,
    log_in,
    new_lines,
    stop_all,
    submit_form,
)
from tests.support.git_server import Repo
from tests.support.hub import Hub
from tests.support.repo_services import local_repo_hub_config, start_repo_hub

pytestmark = [pytest.mark.browser, pytest.mark.hub]

#: The reviewer's payload: on JupyterHub 5.5 it broke out of the spawn form's action.
PAYLOAD = 'x" autofocus onfocus="alert(document.domain)'
PAYLOAD_QUERY = "server=" + quote(PAYLOAD, safe="()")
INJECTED = 'onfocus="alert'
LAB = {"environment": "lab", "size": "small", "group": "climate"}
#: erin may read her servers but neither start nor stop them: JupyterHub's ``user`` role
#: (every user's) is narrowed to read scopes, and the others get ``self`` back. Hub
#: pages take no API tokens, so a login whose roles are narrow is how a page request
#: comes with read scopes only. JupyterHub 5 holds drop-in 30's ``user`` entry in a
#: lazy value, where it is narrowed in place (see tests.support.hub.add_user_scopes).
READ_ONLY_ROLES = """
import jupyterhub as _jupyterhub
from traitlets.config import LazyConfigValue as _Lazy
_READ_ONLY = ["read:users!user", "read:servers!user", "access:servers!user"]
_roles = c.JupyterHub.load_roles
_roles = _roles.to_dict().get("extend", []) if isinstance(_roles, _Lazy) else _roles
_user = [r for r in _roles if r["name"] == "user"]
if _user:
    _user[0]["scopes"] = [*_READ_ONLY, *(s for s in _user[0]["scopes"] if s != "self")]
else:
    c.JupyterHub.load_roles.append({"name": "user", "scopes": _READ_ONLY})
c.JupyterHub.load_roles.append(
    {"name": "launchers", "scopes": ["self"], "users": ["alice", "bob", "carol", "dave"]}
)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    groups = {**GROUPS, "climate": [*GROUPS["climate"], "erin"]}
    config = local_repo_hub_config(
        workdir,
        environments=ENVIRONMENTS,
        sizes=SIZES,
        groups=groups,
        repo_settings=REPO_SETTINGS + READ_ONLY_ROLES,
    )
    started = start_repo_hub(workdir, config, ACCOUNTING_GROUPS)
    yield started
    started.process.stop(timeout=20)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context
    context.close()


def server_names(hub: Hub, username: str) -> set[str]:
    """Every server of ``username`` the hub has a row for, stopped ones too."""
    response = hub.api("GET", f"/users/{username}?include_stopped_servers=1")
    response.raise_for_status()
    servers: dict[str, Any] = response.json().get("servers", {})
    return set(servers)


def test_a_script_in_the_server_name_never_runs(
    hub: Hub, served: tuple[str, Repo], context: BrowserContext, artifacts: Path
) -> None:
    url, _ = served
    page = context.new_page()
    dialogs: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    log_in(page, hub, "alice")
    before = hub_log(hub)
    response = page.goto(launch_link(hub, url, PAYLOAD_QUERY))
    assert response is not None
    assert response.status == 400
    expect(page.locator("h1")).to_have_text("This launch link cannot be read")
    expect(page.locator(".eohub-link-error-reason")).to_contain_text("A server name has at most")
    expect(page.locator("#eohub-back-to-form")).to_be_visible()
    page.keyboard.press("Tab")  # autofocus or not, nothing focusable runs a script
    page.wait_for_timeout(500)
    assert dialogs == []
    assert INJECTED not in page.content()
    page.screenshot(path=str(artifacts / "1-script-in-server-name.png"), full_page=True)

    # One INFO line for the refusal; no ERROR (JupyterHub 6 logs its own refusal so).
    logged = new_lines(hub, before)
    refused = [line for line in logged.splitlines() if "Launch link of alice refused" in line]
    assert len(refused) == 1, logged
    assert refused[0].startswith("[I "), logged
    assert "[E " not in logged, logged
    assert "Traceback" not in logged, logged
    assert server_names(hub, "alice") <= {""}

    # No other way in shows it either: the link's stop, and eohub's spawn route.
    session = hub.login("alice", "any password")
    xsrf = session.cookies.get("_xsrf") or ""
    answers = [
        session.get(launch_link(hub, url, PAYLOAD_QUERY), timeout=30),
        session.post(
            launch_link(hub, url, PAYLOAD_QUERY),
            data={"action": "stop", "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        ),
        submit_form(hub, session, "/hub/eohub/spawn/alice/" + quote(PAYLOAD, safe=""), LAB),
    ]
    for answer in answers:
        assert answer.status_code == 400, (answer.url, answer.status_code, answer.text[-1500:])
        assert INJECTED not in answer.text
        assert PAYLOAD not in answer.text
    assert server_names(hub, "alice") <= {""}


def test_read_scopes_neither_stop_nor_create_a_server(hub: Hub, served: tuple[str, Repo]) -> None:
    url, _ = served
    reader = hub.login("erin", "any password")
    hub.spawn("erin", options=LAB)  # by the test's admin service: erin may not
    try:
        xsrf = reader.cookies.get("_xsrf") or ""
        # "Stop the running server and launch" needs delete:servers, as the hub's API.
        stop = reader.post(
            launch_link(hub, url),
            data={"action": "stop", "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        assert stop.status_code == 403, stop.text[-1500:]
        assert (hub.server("erin") or {}).get("ready") is True
        # Opening a link's form makes its server: that needs servers, as /hub/spawn.
        opened = reader.get(launch_link(hub, url, "server=fresh"), timeout=30)
        assert opened.status_code == 403, opened.text[-1500:]
        assert "fresh" not in server_names(hub, "erin")
    finally:
        stop_all(hub, "erin")
    # Stopped, the default server's link is refused the same.
    assert reader.get(launch_link(hub, url), timeout=30).status_code == 403
    assert server_names(hub, "erin") <= {""}


def test_a_running_server_is_stopped_only_when_that_helps(
    hub: Hub, served: tuple[str, Repo], context: BrowserContext, artifacts: Path
) -> None:
    url, _ = served
    denied = url.replace("/demo.git", "/denied-project.git")
    page = context.new_page()
    log_in(page, hub, "carol")  # first: with a server running, the login opens it
    hub.spawn("carol", options=LAB)
    try:
        # A link the policy refuses: its reason, and no stop that could not help.
        before = hub_log(hub)
        response = page.goto(launch_link(hub, denied, "filepath=README.md"))
        assert response is not None
        assert response.status == 403
        expect(page.locator("h1")).to_have_text("This launch is not allowed")
        expect(page.locator(".eohub-link-error-reason")).to_contain_text("cannot be launched")
        expect(page.locator("#eohub-stop-and-launch")).to_have_count(0)
        expect(page.locator("#eohub-launch-new-server")).to_have_count(0)
        expect(page.locator("#logout")).to_be_visible()
        page.screenshot(path=str(artifacts / "1-denied-link-server-running.png"), full_page=True)
        logged = new_lines(hub, before)
        assert len([line for line in logged.splitlines() if "refused" in line]) == 1, logged
        assert (hub.server("carol") or {}).get("ready") is True

        # The link of a repository carol may launch does offer the stop, which works.
        page.goto(launch_link(hub, url))
        page.click("#eohub-stop-and-launch")
        page.wait_for_url(re.compile(r".*/hub/eohub/launch/.*"))
        expect(page.locator("#eohub-repo-url")).to_have_value(url, timeout=60_000)
        assert hub.server("carol") is None
    finally:
        page.close()
        stop_all(hub, "carol")
