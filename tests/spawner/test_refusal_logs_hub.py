"""An operator reads one line, without a traceback, for each refused launch.

JupyterHub logs a failed spawn with its traceback in several places (applying the
options, the ``/hub/spawn?...`` handler, the form handler), whatever the cause. eohub's
refusals (a spent budget, a bad option, a denied repository) are expected, and
``eohub.logs.QuietRefusals`` keeps their lines but drops the traceback; an error eohub
did not expect still logs its traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.accounting.service_support import Accounting
from tests.spawner.test_local_hub import (
    ACCOUNTING_GROUPS,
    ENVIRONMENTS,
    hub_config,
    post_spawn,
)
from tests.support.hub import Hub, start_hub

pytestmark = pytest.mark.hub

WITH_REPOSITORIES = {
    **ENVIRONMENTS,
    "from-repo": {"display_name": "From a repository", "repository": True, "sizes": ["small"]},
}
# Set before hub_config's start-up check, which validates the repository settings.
REPO_SETTINGS = """
c.RepoLaunches.allow_http = True
c.RepoLaunches.allow_private_hosts = True
c.RepoLaunches.allowed_hosts = ["127.0.0.1"]
c.RepoLaunches.denied_repos = ["*/denied"]
"""
# A fault eohub does not expect: erin's spawns break in the hub's pre-spawn hook.
BROKEN_HOOK = """
def _break_erins_spawns(spawner):
    if spawner.user.name == "erin":
        raise RuntimeError("the storage backend is down")
c.Spawner.pre_spawn_hook = _break_erins_spawns
c.JupyterHub.load_groups["climate"]["users"].append("erin")
c.JupyterHub.allow_named_servers = True
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    started = start_hub(
        workdir, REPO_SETTINGS + hub_config(workdir, WITH_REPOSITORIES) + BROKEN_HOOK
    )
    Accounting(started).wait_ready(timeout=60)
    for name in ("alice", "dave", "erin"):
        started.ensure_user(name)
    yield started
    started.process.stop(timeout=20)


def log_since(hub: Hub, offset: int) -> str:
    """What the hub logged after ``offset``, once a moment has passed with nothing new."""
    path = hub.workdir / "jupyterhub.log"
    size = -1
    while size != path.stat().st_size:
        size = path.stat().st_size
        time.sleep(0.5)
    return path.read_text()[offset:]


def log_size(hub: Hub) -> int:
    return len((hub.workdir / "jupyterhub.log").read_text())


@pytest.mark.parametrize(
    ("user", "options", "status", "reason"),
    [
        ("dave", {"environment": "lab", "size": "small"}, 403, "budget of group broke is spent"),
        ("alice", {"environment": "nope"}, 400, "no environment 'nope'"),
        (
            "alice",
            {"environment": "from-repo", "size": "small", "repo": "http://127.0.0.1:9/x/denied"},
            400,
            "not allowed",
        ),
    ],
    ids=["quota", "bad-option", "denied-repository"],
)
def test_a_refused_rest_spawn_logs_its_reason_without_a_traceback(
    hub: Hub, user: str, options: dict[str, object], status: int, reason: str
) -> None:
    offset = log_size(hub)
    response = post_spawn(hub, user, options)
    assert response.status_code == status, response.text
    assert reason in response.json()["message"]
    logged = log_since(hub, offset)
    assert reason in logged
    assert "Traceback" not in logged, logged
    # A warning, not an error an operator is called out for; only JupyterHub's own
    # "Error starting server" of the spawn page, logged outside the refusal, stays one.
    assert "[E " not in logged, logged
    assert hub.server(user) is None


@pytest.mark.parametrize(
    ("user", "options", "status", "reason"),
    [
        ("dave", {"environment": "lab", "size": "small"}, 403, "budget of group broke is spent"),
        ("alice", {"environment": "nope"}, 400, "no environment 'nope'"),
    ],
    ids=["quota", "bad-option"],
)
def test_a_refused_named_server_is_one_line_in_the_log(
    hub: Hub, user: str, options: dict[str, object], status: int, reason: str
) -> None:
    # JupyterHub 6 logs "Exception applying user_options for <user>:<server>" besides
    # its "Error starting" line: for an expected refusal, the repeat goes.
    offset = log_size(hub)
    response = hub.api("POST", f"/users/{user}/servers/second", data=json.dumps(options))
    assert response.status_code == status, response.text
    assert reason in response.json()["message"]
    logged = log_since(hub, offset)
    # The lines about the server, besides those of the request (its URL, and tornado's
    # answer): JupyterHub's "Error starting <user>'s server: <reason>" only.
    names = (f"{user}:second", f"{user}'s server")
    about = [line for line in logged.splitlines() if any(n in line for n in names)]
    assert len(about) == 1, logged
    assert reason in about[0], logged
    assert "Traceback" not in logged, logged
    assert hub.server(user, "second") is None


def test_a_refused_query_string_spawn_logs_its_reason_without_a_traceback(hub: Hub) -> None:
    session = hub.login("dave", "any")
    offset = log_size(hub)
    page = session.get(f"{hub.url}/hub/spawn?environment=lab&size=small", timeout=30)
    assert page.status_code == 403
    assert "budget of group broke is spent" in page.text
    logged = log_since(hub, offset)
    assert "budget of group broke is spent" in logged
    assert "Traceback" not in logged, logged
    assert logged.count("[E ") <= 1, logged
    assert "NoneType: None" not in logged, logged


def test_an_unexpected_error_in_a_spawn_still_logs_its_traceback(hub: Hub) -> None:
    offset = log_size(hub)
    response = post_spawn(hub, "erin", {"environment": "lab", "size": "small"})
    assert response.status_code >= 400
    logged = log_since(hub, offset)
    assert "RuntimeError: the storage backend is down" in logged, logged
    # Once: JupyterHub logs it, and tornado again as it answers 500, without it.
    assert logged.count("Traceback") == 1, logged
    assert "Uncaught exception POST /hub/api/users/erin/server" in logged
