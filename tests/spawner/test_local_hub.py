"""QuotaLocalSpawner in a real JupyterHub: REST spawns, refusals, the ledger, bad config.

The hub runs the drop-ins, so the accounting service is the real managed service (on
SQLite here; the browser test runs it on PostgreSQL). Groups come from the hub's own
groups, as with any authenticator that manages them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.accounting.service_support import Accounting
from tests.support.hub import Hub, start_hub
from tests.support.process import ServiceStartError

pytestmark = pytest.mark.hub

SIZES = {
    "small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"},
    "medium": {"display_name": "Medium", "cpu": 2, "memory": "4G"},
    "gpu": {"display_name": "GPU", "cpu": 1, "memory": "2G", "gpus": 1},
}
ENVIRONMENTS = {
    "lab": {"display_name": "JupyterLab", "sizes": ["small", "medium"], "default": True},
    "astro-lab": {
        "display_name": "Astro",
        "allowed_groups": ["astro"],
        "sizes": ["small", "gpu"],
        "gpu": True,
        "max_duration": "8h",
        "group_limits": {"astro": {"idle_timeout": "3h"}},
    },
}
ACCOUNTING_GROUPS = {
    "climate": {"allocation": "month"},
    "astro": {"allocation": "month"},
    "broke": {"allocation": "month", "quotas": {"": {"core_hours": 0}}},
}


def hub_config(workdir: Path, environments: dict[str, Any] = ENVIRONMENTS) -> str:
    volumes = {
        "home": {
            "kind": "workspace",
            "mount_path": "/home/jovyan",
            "local_path": str(workdir / "home" / "{username}"),
            "display_name": "Home",
        },
        # Unchecked unless a launch asks for it.
        "common": {
            "kind": "host_path",
            "mount_path": "/data/common",
            "path": str(workdir / "common-data"),
            "read_only": True,
            "optional": True,
            "display_name": "Common data",
        },
    }
    return f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
# The hub polls servers every second, so it notices one that died at once.
c.Spawner.poll_interval = 1
c.Spawner.poll_jitter = 0
c.QuotaLocalSpawner.launch_sizes = {SIZES!r}
c.QuotaLocalSpawner.launch_environments = {environments!r}
c.QuotaLocalSpawner.launch_volumes = {volumes!r}
c.QuotaLocalSpawner.charge_groups = ["climate", "astro", "broke"]
c.QuotaLocalSpawner.session_limits = {{"idle_timeout": "2h", "max_duration": "1d"}}
c.JupyterHub.load_groups = {{
    "climate": {{"users": ["alice", "carol"]}},
    "astro": {{"users": ["carol"]}},
    "broke": {{"users": ["dave"]}},
}}
# Last, as the how-to says: a bad launch config stops the hub here.
from eohub.spawner import check_hub_config
check_hub_config(c)
"""


def start_launch_hub(workdir: Path, environments: dict[str, Any] = ENVIRONMENTS) -> Hub:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    return start_hub(workdir, hub_config(workdir, environments))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_launch_hub(tmp_path_factory.mktemp("hub"))
    Accounting(started).wait_ready(timeout=60)
    for name in ("alice", "carol", "dave", "erin"):
        started.ensure_user(name)
    yield started
    started.process.stop(timeout=20)


def post_spawn(hub: Hub, user: str, options: Any) -> Any:
    return hub.api("POST", f"/users/{user}/server", data=json.dumps(options))


@pytest.mark.parametrize(
    ("user", "options", "field"),
    [
        ("alice", {"environment": "nope"}, "environment"),
        ("alice", {"environment": "astro-lab"}, "environment"),  # hidden from alice
        ("alice", {"environment": "lab", "size": "gpu"}, "size"),
        ("alice", {"group": "astro"}, "group"),  # not her group
        ("carol", {"environment": "lab"}, "group"),  # two groups: she must choose
        ("alice", {"image": "evil/miner:latest"}, "image"),
        ("alice", {"environment": "lab", "size": "small", "cpu": 64}, "cpu"),
        ("alice", {"environment": ["lab"]}, "environment"),
        ("alice", {"urlpath": "//evil.example/x"}, "urlpath"),
        ("erin", {}, "group"),  # in no chargeable group
    ],
)
def test_forbidden_rest_options_get_400_and_start_nothing(
    hub: Hub, user: str, options: dict[str, Any], field: str
) -> None:
    response = post_spawn(hub, user, options)
    assert response.status_code == 400, response.text
    assert f"{field}:" in response.json()["message"]
    assert hub.server(user) is None


def test_a_spent_budget_gets_403_with_the_reason(hub: Hub) -> None:
    response = post_spawn(hub, "dave", {"environment": "lab", "size": "small"})
    assert response.status_code == 403, response.text
    assert "budget of group broke is spent" in response.json()["message"]
    assert hub.server("dave") is None


OPTION_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["lab", "astro-lab", "small", "gpu", "climate", "astro", "home", "/lab"]),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
OPTIONS = st.one_of(
    st.dictionaries(
        st.sampled_from(["environment", "size", "group", "volumes", "urlpath", "image", "cpu"]),
        OPTION_VALUES,
        max_size=5,
    ),
    st.lists(st.integers(), max_size=2),
    st.text(max_size=10),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(options=OPTIONS)
def test_random_rest_options_never_fail_the_hub(hub: Hub, options: Any) -> None:
    response = post_spawn(hub, "carol", options)
    assert response.status_code in (201, 202, 400, 403), response.text
    if response.status_code in (201, 202):
        # A valid launch (carol may charge climate or astro): stop it again.
        server = wait_ready(hub, "carol")
        assert server["user_options"]["group"] in ("climate", "astro")
        hub.stop("carol")
    else:
        assert hub.server("carol") is None


def wait_ready(hub: Hub, user: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = hub.server(user)
        assert server is not None, hub.process.log_tail()
        if server["ready"]:
            return server
        time.sleep(0.2)
    raise AssertionError(f"{user}'s server not ready:\n{hub.process.log_tail()}")


def test_a_spawn_is_charged_to_its_group_with_its_size(hub: Hub) -> None:
    accounting = Accounting(hub)
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = post_spawn(
        hub, "carol", {"environment": "astro-lab", "size": "gpu", "group": "astro"}
    )
    assert response.status_code in (201, 202), response.text
    server = wait_ready(hub, "carol")
    stored = server["user_options"]
    assert {k: stored[k] for k in ("environment", "size", "group")} == {
        "environment": "astro-lab",
        "size": "gpu",
        "group": "astro",
    }
    assert (stored["cpu"], stored["gpus"]) == (1, 1)
    assert (hub.workdir / "home" / "carol").is_dir()  # the workspace is the working dir
    hub.stop("carol")
    # The fuzz test may have launched carol before; this spawn is the one after `before`.
    token = accounting.user_token("admin")
    mine = closed_sessions(accounting, token, "user=carol&group=astro", since=before)
    assert len(mine) == 1, mine
    session = mine[0]
    assert (session["group"], session["cpu"], session["gpus"]) == ("astro", 1, 1)
    assert session["memory_bytes"] == 2 * 1024**3
    assert session["profile"] == "astro-lab"
    # The limits it ran under reached accounting, which enforces them on this backend.
    assert (session["idle_timeout"], session["max_duration"]) == (3 * 3600, 8 * 3600)


def server_pids(user: str) -> list[int]:
    """Processes whose environment says they are ``user``'s single-user server."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"JUPYTERHUB_USER={user}".encode() in environ:
            pids.append(int(entry.name))
    return pids


def closed_sessions(
    accounting: Accounting, token: str, query: str, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The stopped sessions matching ``query`` (started at ``since`` or later), once the
    hub's outbox has sent them."""
    deadline = time.monotonic() + 30
    while True:
        found = accounting.call("GET", f"api/sessions?{query}", token).json()
        closed = [
            s
            for s in found["sessions"]
            if s["stopped_at"]
            and (since is None or datetime.fromisoformat(s["started_at"]) >= since)
        ]
        if closed or time.monotonic() > deadline:
            return closed
        time.sleep(0.5)


def test_a_restart_without_options_reuses_the_last_launch(hub: Hub) -> None:
    first = post_spawn(hub, "alice", {"environment": "lab", "size": "medium"})
    assert first.status_code in (201, 202), first.text
    stored = wait_ready(hub, "alice")["user_options"]
    hub.stop("alice")
    # An empty body (the admin page's start button) re-applies the stored options,
    # including the keys accounting reads; they are checked, not refused.
    again = hub.api("POST", "/users/alice/server")
    assert again.status_code in (201, 202), again.text
    assert wait_ready(hub, "alice")["user_options"] == stored
    hub.stop("alice")


def test_a_server_that_dies_is_recorded_stopped_when_the_hub_polls(hub: Hub) -> None:
    accounting = Accounting(hub)
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = post_spawn(hub, "alice", {"environment": "lab", "size": "small"})
    assert response.status_code in (201, 202), response.text
    wait_ready(hub, "alice")
    pids = server_pids("alice")
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while hub.server("alice") is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert hub.server("alice") is None, "the hub did not notice the dead server"
    token = accounting.user_token("admin")
    closed = closed_sessions(accounting, token, "user=alice", since=before)
    assert [s["end_reason"] for s in closed] == ["failed"]
    assert closed[0]["group"] == "climate"


def test_a_bad_launch_config_stops_the_hub_naming_the_key(tmp_path: Path) -> None:
    broken = {"lab": {"display_name": "Lab", "sizes": ["huge"]}}
    try:
        started = start_launch_hub(tmp_path / "hub", broken)
    except ServiceStartError as e:
        failed = e
    else:
        started.process.stop(timeout=20)  # do not leave it running
        pytest.fail("the hub started despite a bad launch config")
    log = (tmp_path / "hub" / "jupyterhub.log").read_text()
    assert "environments.lab.sizes[0]: unknown size 'huge'" in log, str(failed)


def test_an_optional_volume_left_unchecked_is_no_longer_linked(hub: Hub) -> None:
    workspace = hub.workdir / "home" / "alice"
    link = workspace / "common"
    data = str(hub.workdir / "common-data")
    plain = {"environment": "lab", "size": "small"}
    response = post_spawn(hub, "alice", {**plain, "volumes": ["common"]})
    assert response.status_code in (201, 202), response.text
    assert wait_ready(hub, "alice")["user_options"]["volumes"] == ["common"]
    assert os.readlink(link) == data
    (workspace / "notes.txt").write_text("mine\n")
    (workspace / "mine").symlink_to(data)  # a link of the user's own
    # The hub keeps the links it made in the server's state, so a restart knows them.
    state = hub.server("alice")["state"]  # type: ignore[index]
    assert state["eohub_links"] == {str(link): data}
    hub.stop("alice")

    response = post_spawn(hub, "alice", plain)
    assert response.status_code in (201, 202), response.text
    assert wait_ready(hub, "alice")["user_options"]["volumes"] == []
    assert not link.is_symlink()
    assert not link.exists()
    # Only eohub's own link went: the user's files and links stay.
    assert (workspace / "notes.txt").read_text() == "mine\n"
    assert os.readlink(workspace / "mine") == data
    hub.stop("alice")
