"""eohub beside the Zero to JupyterHub chart's idle culler: a culled pod is an ``idle`` stop.

The chart runs jupyterhub-idle-culler by default (``cull.enabled``, ``cull.timeout``
3600, ``cull.every`` 600) as the hub service ``jupyterhub-idle-culler``, with its own
role. Here it runs the same way, as a service of the kit's hub (``deploy/z2jh``, with
drop-in 00 and the kit's ``hub.extraConfig``), with a timeout of seconds; the hub spawns
with QuotaKubeSpawner against the Kubernetes API fake, and the accounting service runs
beside it as the kit's Deployment runs it. Run it with ``.tox/z2jh`` for the chart's
JupyterHub 5.5 and culler 1.4.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from eohub.spawner import QuotaKubeSpawner
from tests.spawner.test_z2jh_hub import VALUES, chart_values, dropin_files
from tests.support.fake_kube_server import KubeAPIThread
from tests.support.hub import Hub
from tests.support.kube_api import write_kubeconfig
from tests.support.process import free_port
from tests.support.z2jh import chart_secret, load_values, merge_values
from tests.support.z2jh_hub import ACCOUNTING, start_accounting, start_chart_hub

pytestmark = pytest.mark.hub

CULLER = "jupyterhub-idle-culler"
#: What the chart adds for ``cull.enabled`` (its jupyterhub_config.py), in the values'
#: own terms; the chart passes ``--url`` too, which a managed service is given anyway.
CULLER_VALUES = {
    "hub": {
        "services": {
            CULLER: {
                "command": [
                    *(sys.executable, "-m", "jupyterhub_idle_culler"),
                    *("--timeout=3", "--cull-every=1"),
                ]
            }
        },
        "loadRoles": {
            CULLER: {
                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                "services": [CULLER],
            }
        },
    }
}
ACCOUNTING_CONFIG = """
c.AccountingService.reconcile_interval = 0
c.AccountingService.groups = {"climate": {"allocation": "month"}}
"""


def test_the_kit_records_who_stops_servers_and_culler_stops_are_idle() -> None:
    extra = load_values(VALUES)["hub"]["extraConfig"]
    assert "use_stop_reasons(c)" in extra["eohub-stop-reasons"]
    assert CULLER in QuotaKubeSpawner.class_traits()["idle_culler_services"].default()


@pytest.fixture
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("z2jh-culler")
    port, accounting_url = free_port(), f"http://127.0.0.1:{free_port()}"
    with KubeAPIThread() as kube:
        values = merge_values(chart_values(kube.url, accounting_url), CULLER_VALUES)
        secret = chart_secret(values)
        accounting = start_accounting(
            workdir / "accounting",
            url=accounting_url,
            hub_url=f"http://127.0.0.1:{port}",
            token=secret[f"hub.services.{ACCOUNTING}.apiToken"],
            config=ACCOUNTING_CONFIG,
        )
        try:
            hub = start_chart_hub(
                workdir / "hub",
                values,
                secret,
                dropin_files(values),
                port=port,
                env={"KUBECONFIG": str(write_kubeconfig(workdir / "kubeconfig", kube.url))},
            )
            try:
                yield hub
            finally:
                hub.process.stop(timeout=20)
        finally:
            accounting.stop()


def closed_sessions(hub: Hub, user: str, timeout: float = 60) -> list[dict[str, Any]]:
    """``user``'s closed sessions, read from the accounting service as an admin."""
    token = hub.api("POST", "/users/admin/tokens", json={"note": "culler test"})
    token.raise_for_status()
    headers = {"Authorization": f"token {token.json()['token']}"}
    url = f"{hub.url}/services/{ACCOUNTING}/api/sessions?user={user}"
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(url, headers=headers, timeout=30)
        response.raise_for_status()
        closed = [s for s in response.json()["sessions"] if s["stopped_at"]]
        if closed or time.monotonic() > deadline:
            return closed
        time.sleep(0.5)


def test_the_charts_idle_culler_culls_a_pod_and_the_ledger_says_idle(kit: Hub) -> None:
    hub = kit
    for name in ("admin", "alice"):
        hub.ensure_user(name)
    # Not hub.spawn: with a 3 s idle limit the culler may stop the server before a
    # loaded machine's poll sees it ready. The recorded stop is what counts.
    started = hub.api("POST", "/users/alice/server", json={"profile": "pangeo"})
    assert started.status_code in (201, 202), started.text
    sessions = closed_sessions(hub, "alice", timeout=120)
    log = (hub.workdir / "jupyterhub.log").read_text()
    assert [(s["profile"], s["end_reason"]) for s in sessions] == [("pangeo", "idle")], log[-4000:]
    assert "Culling server alice" in log
    # Drop-in 00 and the kit's extraConfig both ask; the hub says once that it records.
    assert log.count("eohub records who stops each server") == 1
    assert "Traceback" not in log
