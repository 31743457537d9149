"""Named servers share the workspace: a launch never pulls another running server's links.

QuotaLocalSpawner in a real JupyterHub (with configurable-http-proxy and the accounting
service from the drop-ins), with named servers. A user's servers share one workspace,
where ``host_path`` volumes appear as links: an optional ``scratch``, and ``group``,
the folder of the group charged (``/shares/{group}``).

carol (in climate and staff) runs server ``a`` with both links; server ``b``, launched
without ``scratch`` and charged to staff, must neither remove ``scratch`` nor point
``group`` at staff's folder under ``a``. Once ``a`` is stopped, ``b``'s next launch
shows exactly its own volumes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounting.service_support import Accounting
from tests.spawner.test_local_hub import SIZES
from tests.support.hub import Hub, start_hub

pytestmark = pytest.mark.hub

ENVIRONMENTS = {"lab": {"display_name": "JupyterLab", "sizes": ["small"], "default": True}}
ACCOUNTING_GROUPS = {"climate": {"allocation": "month"}, "staff": {"allocation": "month"}}


def hub_config(workdir: Path) -> str:
    volumes = {
        "home": {
            "kind": "workspace",
            "mount_path": "/home/jovyan",
            "local_path": str(workdir / "home" / "{username}"),
        },
        "scratch": {
            "kind": "host_path",
            "mount_path": "/scratch",
            "path": str(workdir / "scratch"),
            "optional": True,
        },
        "group": {
            "kind": "host_path",
            "mount_path": "/data/group",
            "path": str(workdir / "shares" / "{group}"),
        },
    }
    return f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.launch_sizes = {SIZES!r}
c.QuotaLocalSpawner.launch_environments = {ENVIRONMENTS!r}
c.QuotaLocalSpawner.launch_volumes = {volumes!r}
c.QuotaLocalSpawner.charge_groups = ["climate", "staff"]
c.JupyterHub.load_groups = {{"climate": {{"users": ["carol"]}}, "staff": {{"users": ["carol"]}}}}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("links")
    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    started = start_hub(workdir, hub_config(workdir))
    Accounting(started).wait_ready(timeout=60)
    started.ensure_user("carol")
    yield started
    started.process.stop(timeout=20)


def launch(hub: Hub, server: str, group: str, volumes: list[str]) -> dict[str, Any]:
    options = {"environment": "lab", "size": "small", "group": group, "volumes": volumes}
    return hub.spawn("carol", server, options=options)


def links(hub: Hub) -> dict[str, str]:
    home = hub.workdir / "home" / "carol"
    return {p.name: os.readlink(p) for p in home.iterdir() if p.is_symlink()}


def test_a_launch_leaves_the_links_of_a_running_server_alone(hub: Hub) -> None:
    scratch = str(hub.workdir / "scratch")
    shares = hub.workdir / "shares"
    climate, staff = str(shares / "climate"), str(shares / "staff")
    # b made both links once; a now runs with the same ones.
    launch(hub, "b", "climate", ["scratch"])
    hub.stop("carol", "b")
    a = launch(hub, "a", "climate", ["scratch"])
    assert links(hub) == {"scratch": scratch, "group": climate}
    home = str(hub.workdir / "home" / "carol")
    assert a["state"]["eohub_links"] == {f"{home}/scratch": scratch, f"{home}/group": climate}
    try:
        # b without scratch, charged to staff, while a runs: a keeps its links.
        b = launch(hub, "b", "staff", [])
        assert links(hub) == {"scratch": scratch, "group": climate}
        assert b["state"]["eohub_links"] == {}  # b shows neither: they are a's
        log = (hub.workdir / "jupyterhub.log").read_text()
        assert "another running server of the user links it to" in log
    finally:
        hub.stop("carol", "a")
        hub.stop("carol", "b")

    # With a stopped, b's next launch shows exactly its own volumes.
    b = launch(hub, "b", "staff", [])
    try:
        assert links(hub) == {"group": staff}
        assert b["state"]["eohub_links"] == {f"{home}/group": staff}
        assert json.loads(json.dumps(b["user_options"]))["volumes"] == []
    finally:
        hub.stop("carol", "b")
