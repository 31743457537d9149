"""A real hub records who stopped each server: its user, an admin, the idle culler, shutdown.

The hubs run the drop-ins (00 serves the stop routes with eohub's handlers, 30 the
accounting service), QuotaLocalSpawner and configurable-http-proxy. The reason is read
back from the accounting service's API, or its database once the hub is gone. The
idle culler is the real jupyterhub-idle-culler, run as the Zero to JupyterHub chart
runs it: a hub service named ``jupyterhub-idle-culler`` with the chart's role.
JupyterHub's own answers on those routes are compared with a hub without eohub.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.accounting.service_support import Accounting
from tests.spawner.test_local_hub import hub_config
from tests.spawner.test_shutdown_order_hub import sessions, signal_and_wait
from tests.support.hub import Hub, start_hub

pytestmark = pytest.mark.hub

LAB = {"environment": "lab", "size": "small", "group": "climate"}
SERVICE_CONFIG = """
c.AccountingService.groups = {"climate": {"allocation": "month"}, "astro": {}, "broke": {}}
c.AccountingService.reconcile_interval = 0
"""
#: The chart's idle culler (jupyterhub/files/hub/jupyterhub_config.py, cull.enabled),
#: with a timeout of seconds instead of the chart's hour.
CULLER_CONFIG = f"""
c.JupyterHub.services.append({{
    "name": "jupyterhub-idle-culler",
    "command": [{sys.executable!r}, "-m", "jupyterhub_idle_culler",
                "--timeout=3", "--cull-every=1"],
}})
c.JupyterHub.load_roles.append({{
    "name": "jupyterhub-idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["jupyterhub-idle-culler"],
}})
"""
INSTALLED = "eohub records who stops each server"


def start_eohub_hub(workdir: Path, extra: str = "") -> Hub:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "eohub_accounting_config.py").write_text(SERVICE_CONFIG)
    hub = start_hub(workdir, hub_config(workdir) + extra)
    Accounting(hub).wait_ready(timeout=60)
    return hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_eohub_hub(tmp_path_factory.mktemp("hub"))
    for name in ("alice", "carol", "admin"):
        started.ensure_user(name)
    yield started
    started.process.stop(timeout=20)


def server_path(user: str, server: str) -> str:
    return f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"


def delete_as(hub: Hub, token: str | None, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.delete(f"{hub.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)


def session_ids(accounting: Accounting, admin_token: str, user: str) -> set[int]:
    response = accounting.call("GET", f"api/sessions?user={user}", admin_token)
    response.raise_for_status()
    return {s["id"] for s in response.json()["sessions"]}


def closed_session(
    accounting: Accounting, admin_token: str, user: str, known: set[int], timeout: float = 60
) -> dict[str, Any]:
    """The one session of ``user`` not in ``known``, once its stop has been recorded."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        response = accounting.call("GET", f"api/sessions?user={user}", admin_token)
        response.raise_for_status()
        found = [s for s in response.json()["sessions"] if s["id"] not in known]
        if len(found) == 1 and found[0]["stopped_at"]:
            return found[0]
        time.sleep(0.3)
    log = (accounting.hub.workdir / "jupyterhub.log").read_text()[-4000:]
    raise AssertionError(f"no closed new session of {user}: {found}\n{log}")


def wait_gone(hub: Hub, user: str, server: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while hub.server(user, server) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{user}/{server} still listed:\n{hub.process.log_tail()}")
        time.sleep(0.2)


# -- user and admin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stopper", "server", "reason"),
    [
        ("alice", "", "user"),
        ("alice", "lab2", "user"),
        ("admin", "", "admin"),
        ("admin", "lab2", "admin"),
    ],
)
def test_the_ledger_records_who_stopped_the_server(
    hub: Hub, stopper: str, server: str, reason: str
) -> None:
    accounting = Accounting(hub)
    admin_token = accounting.user_token("admin")
    token = admin_token if stopper == "admin" else accounting.user_token(stopper)
    known = session_ids(accounting, admin_token, "alice")
    hub.spawn("alice", server, options=LAB)
    response = delete_as(hub, token, server_path("alice", server))
    assert response.status_code in (202, 204), response.text
    wait_gone(hub, "alice", server)
    session = closed_session(accounting, admin_token, "alice", known)
    assert (session["server"], session["end_reason"]) == (server, reason)


def test_an_admin_deleting_a_user_with_a_running_server_is_an_admin_stop(hub: Hub) -> None:
    accounting = Accounting(hub)
    admin_token = accounting.user_token("admin")
    hub.ensure_user("dave")
    hub.api("POST", "/groups/climate/users", json={"users": ["dave"]}).raise_for_status()
    known = session_ids(accounting, admin_token, "dave")
    hub.spawn("dave", options=LAB)
    response = delete_as(hub, admin_token, "/users/dave")
    assert response.status_code == 204, response.text
    assert closed_session(accounting, admin_token, "dave", known)["end_reason"] == "admin"


def test_the_hub_says_at_start_up_that_it_records_who_stops(hub: Hub) -> None:
    log = (hub.workdir / "jupyterhub.log").read_text()
    assert log.count(INSTALLED) == 1
    assert "DELETE /hub/api/users/<name>, /hub/api/users/<name>/server," in log
    assert "/hub/api/users/<name>/servers/<server>" in log
    assert "Traceback" not in log


# -- JupyterHub's answers are kept ------------------------------------------------------

#: (method, path, caller, body, status): requests JupyterHub answers without a running
#: server, with the status it answers (None: it differs between JupyterHub 5 and 6).
REQUESTS: list[tuple[str, str, str | None, Any, int | None]] = [
    ("DELETE", "/users/erin/server", "erin", None, 204),  # not running: nothing to do
    ("DELETE", "/users/erin/server", "erin", {"remove": True}, 400),  # the default server
    ("DELETE", "/users/erin/servers/nope", "erin", None, 404),  # no such server
    ("DELETE", "/users/erin/servers/", "erin", None, 204),  # the default server, by name
    ("DELETE", "/users/frank/server", "erin", None, 404),  # someone else's
    ("DELETE", "/users/frank/servers/x", "erin", None, 404),
    ("DELETE", "/users/erin/server", None, None, 403),  # no credentials
    ("DELETE", "/users/erin/server", "erin-read-only", None, 403),  # no delete scope
    ("DELETE", "/users/ghost/server", "admin", None, 404),  # no such user
    ("DELETE", "/users/erin/servers/nope", "admin", None, 404),
    ("DELETE", "/users/frank", "erin", None, 403),  # not an admin
    ("DELETE", "/users/ghost", "admin", None, 404),
    ("DELETE", "/users/admin", "admin", None, 400),  # cannot delete yourself
    ("GET", "/users/erin/server", "erin", None, None),  # JupyterHub 6 only
    ("PATCH", "/users/erin/servers/nope", "erin", {"display_name": "x"}, None),
    ("POST", "/users/erin/servers/x", "erin-read-only", None, 403),
    ("GET", "/users/erin", "erin", None, 200),
]


def tokens(hub: Hub) -> dict[str, str]:
    def token(user: str, scopes: list[str] | None = None) -> str:
        body: dict[str, Any] = {"note": "compare"} | ({"scopes": scopes} if scopes else {})
        response = hub.api("POST", f"/users/{user}/tokens", json=body)
        response.raise_for_status()
        return str(response.json()["token"])

    for name in ("erin", "frank", "admin"):
        hub.ensure_user(name)
    return {
        "erin": token("erin"),
        "erin-read-only": token("erin", ["read:users:name!user=erin"]),
        "admin": token("admin"),
    }


def answers(hub: Hub) -> list[tuple[int, Any]]:
    held = tokens(hub)
    got = []
    for method, path, caller, body, _ in REQUESTS:
        headers = {"Authorization": f"token {held[caller]}"} if caller else {}
        response = requests.request(
            method, f"{hub.url}/hub/api{path}", headers=headers, json=body, timeout=30
        )
        text = response.json() if response.text.startswith("{") else response.text
        if isinstance(text, dict):
            text = {k: v for k, v in text.items() if k not in ("last_activity", "created")}
        got.append((response.status_code, text))
    return got


PLAIN_HUB = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
c.JupyterHub.allow_named_servers = True
"""


def test_the_stop_routes_answer_as_jupyterhubs_own(hub: Hub, tmp_path: Path) -> None:
    plain = start_hub(tmp_path / "plain", PLAIN_HUB, load_dropins=False)
    try:
        expected = answers(plain)
        plain_log = (tmp_path / "plain" / "jupyterhub.log").read_text()
    finally:
        plain.process.stop(timeout=20)
    assert INSTALLED not in plain_log  # JupyterHub's own handlers answered
    got = answers(hub)
    assert got == expected
    for (status, _), request in zip(got, REQUESTS, strict=True):
        assert request[-1] in (None, status), request


# -- the idle culler ----------------------------------------------------------------------


def test_a_jupyterhub_idle_culler_stop_is_recorded_idle(tmp_path: Path) -> None:
    hub = start_eohub_hub(tmp_path / "hub", CULLER_CONFIG)
    try:
        accounting = Accounting(hub)
        admin_token = accounting.user_token("admin")
        hub.ensure_user("alice")
        # Not hub.spawn: with a 3 s idle limit the culler may stop the server before a
        # loaded machine's poll sees it ready. The recorded stop is what counts.
        started = hub.api("POST", "/users/alice/server", json=LAB)
        assert started.status_code in (201, 202), started.text
        session = closed_session(accounting, admin_token, "alice", set(), timeout=120)
        log = (tmp_path / "hub" / "jupyterhub.log").read_text()
    finally:
        hub.process.stop(timeout=20)
    assert session["end_reason"] == "idle", log[-4000:]
    assert "Culling server alice" in log  # the culler's own line, in the hub's log


# -- shutdown -----------------------------------------------------------------------------


def test_servers_the_hub_stops_as_it_shuts_down_are_recorded_shutdown(tmp_path: Path) -> None:
    workdir = tmp_path / "hub"
    hub = start_eohub_hub(workdir)
    try:
        hub.ensure_user("alice")
        hub.spawn("alice", options=LAB)
        deadline = time.monotonic() + 30
        while not sessions(workdir) and time.monotonic() < deadline:
            time.sleep(0.3)  # the start reached the ledger
        signal_and_wait(hub, signal.SIGTERM)
    finally:
        hub.process.stop()
    log = (workdir / "jupyterhub.log").read_text()
    assert [(row.user, row.end_reason) for row in sessions(workdir)] == [("alice", "shutdown")], (
        log[-4000:]
    )
