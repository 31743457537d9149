"""A real hub's progress stream shows the new launch's steps while accounting is slow.

JupyterHub serves a spawn's progress as soon as the spawn is pending, before eohub has
checked the options or asked accounting for the quota. Real parts: JupyterHub with
configurable-http-proxy and the drop-ins, QuotaLocalSpawner (servers run as the hub's
user) and the accounting service; the hub reaches the service through a
:class:`FaultProxy` that makes its answers slow when the test says so.

alice launches once (size Medium) and stops; her second launch (size Small) is followed
from the moment it is pending, while the quota answer is slow: the stream waits for the
new launch's steps and never replays the first launch's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.accounting.service_support import Accounting
from tests.support.faultproxy import FaultProxy
from tests.support.hub import Hub, start_hub
from tests.support.process import free_port

pytestmark = pytest.mark.hub

SIZES = {
    "small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"},
    "medium": {"display_name": "Medium", "cpu": 1, "memory": "2G"},
}
ENVIRONMENTS = {"lab": {"display_name": "JupyterLab", "sizes": ["small", "medium"]}}
#: Seconds the proxy holds each chunk, both ways: a quota check takes a few seconds.
LATENCY = 1.5


def hub_config(proxy_port: int) -> str:
    return f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.launch_sizes = {SIZES!r}
c.QuotaLocalSpawner.launch_environments = {ENVIRONMENTS!r}
c.QuotaLocalSpawner.charge_groups = ["climate"]
c.JupyterHub.load_groups = {{"climate": {{"users": ["alice"]}}}}
c.AccountingClient.url = "http://127.0.0.1:{proxy_port}/services/eohub-accounting/"
# A slow answer is still an answer, not the failure policy's.
c.AccountingClient.quota_timeout = 30
# The REST spawn answers 202 at once, so the test follows the spawn from its start.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
"""


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
    root = tmp_path_factory.mktemp("progress")
    accounting = root / "eohub_accounting_config.py"
    accounting.write_text(
        'c.AccountingService.groups = {"climate": {"allocation": "month"}}\n'
        "c.AccountingService.reconcile_interval = 0\n"
    )
    started = start_hub(
        root / "hub",
        hub_config(proxy.port),
        env={
            "EOHUB_ACCOUNTING_URL": f"http://127.0.0.1:{service_port}",
            "EOHUB_ACCOUNTING_CONFIG": str(accounting),
        },
    )
    Accounting(started).wait_ready(timeout=60)
    started.ensure_user("alice")
    yield started
    started.process.stop(timeout=20)


def follow_progress(hub: Hub, user: str) -> list[tuple[float, dict[str, object]]]:
    """The spawn's progress events, each with the seconds since the stream opened."""
    opened = time.monotonic()
    events: list[tuple[float, dict[str, object]]] = []
    with requests.get(
        f"{hub.url}/hub/api/users/{user}/server/progress",
        headers={"Authorization": f"token {hub.token}"},
        stream=True,
        timeout=90,
    ) as response:
        assert response.status_code == 200, response.text
        for line in response.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            event = json.loads(line.removeprefix("data:"))
            events.append((time.monotonic() - opened, event))
            if event.get("ready") or event.get("failed"):
                break
    return events


def test_an_early_follower_sees_the_new_launch_never_the_previous_one(
    hub: Hub, proxy: FaultProxy, artifacts: Path
) -> None:
    hub.spawn("alice", options={"environment": "lab", "size": "medium", "group": "climate"})
    hub.stop("alice")

    proxy.latency = LATENCY
    try:
        response = hub.api(
            "POST",
            "/users/alice/server",
            data=json.dumps({"environment": "lab", "size": "small", "group": "climate"}),
        )
        assert response.status_code == 202, response.text
        events = follow_progress(hub, "alice")
    finally:
        proxy.latency = 0
    (artifacts / "progress-events.json").write_text(json.dumps(events, indent=1))
    try:
        messages = [str(e.get("message", "")) for _, e in events]
        assert events[-1][1].get("ready"), (messages, hub.process.log_tail())
        assert not any("Medium" in m for m in messages), messages
        launching = [
            (at, m)
            for at, m in zip((at for at, _ in events), messages, strict=True)
            if m.startswith("Launching")
        ]
        assert [m for _, m in launching] == [
            "Launching JupyterLab, size Small, charged to climate."
        ]
        # The stream was open well before the slow quota answer approved the launch.
        assert launching[0][0] >= LATENCY, events
        for said in ("Quota check passed", "Starting your server.", "Waiting for your server"):
            assert any(said in m for m in messages), messages
        values = [int(e["progress"]) for _, e in events if "progress" in e]  # type: ignore[call-overload]
        assert values == sorted(values), values
    finally:
        hub.stop("alice")
