"""Drop-in 35 registers the storage sampler as a managed service, only when asked.

The table runs the real drop-ins as the Zero to JupyterHub chart does (``exec`` with one
``c``); the last test starts a real hub with them and ``EOHUB_STORAGE_SAMPLER=local``,
and waits for the sampler it starts to put the workspaces' sizes in the ledger.
"""

from __future__ import annotations

import sqlite3
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from eohub.accounting.scopes import ACCESS, INGEST
from eohub.storage.app import StorageSamplerApp
from tests.accounting.service_support import ACCOUNTING_CONFIG, Accounting
from tests.storage.test_walk import du, write
from tests.support.hub import Hub
from tests.support.tools import DROPIN_DIR

NAME = "eohub-storage-sampler"
VOLUMES = """
c.QuotaLocalSpawner.launch_volumes = {
    "home": {
        "kind": "workspace",
        "display_name": "Workspace",
        "mount_path": "/home/jovyan",
        "local_path": "/srv/ws/{username}",
    },
}
c.QuotaLocalSpawner.launch_config_file = "/etc/eohub/launch.yaml"
"""


def load_dropins(before: str = "") -> Config:
    config = Config()
    namespace: dict[str, Any] = {"c": config, "get_config": lambda: config}
    exec(compile(textwrap.dedent(before), "before.py", "exec"), namespace)  # noqa: S102
    for path in sorted(DROPIN_DIR.glob("*.py")):
        exec(compile(path.read_text(), path.name, "exec"), namespace)  # noqa: S102
    return config


def entries(config: Config, key: str) -> list[dict[str, Any]]:
    value = config.JupyterHub.get(key, [])
    items = value.get_value([]) if hasattr(value, "get_value") else value
    return [item for item in items if item.get("name") == NAME]


@pytest.fixture(autouse=True)
def hub_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # drop-in 30 writes its token file here unless given one
    monkeypatch.setenv("EOHUB_ACCOUNTING_HUB_TOKEN", "dropin-test-token")
    for name in (
        "EOHUB_STORAGE_SAMPLER",
        "EOHUB_STORAGE_HUB_GROUPS",
        "EOHUB_STORAGE_CONFIG",
        "EOHUB_STORAGE_FOLDER_NAMES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EOHUB_ACCOUNTING_URL", "http://127.0.0.1:10101")
    return tmp_path


def test_without_the_variable_nothing_is_registered() -> None:
    config = load_dropins(VOLUMES)
    assert entries(config, "services") == []
    assert entries(config, "load_roles") == []


def test_local_samples_the_spawners_workspaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOHUB_STORAGE_SAMPLER", "local")
    monkeypatch.setenv("EOHUB_STORAGE_CONFIG", "/etc/eohub/storage.py")
    config = load_dropins(VOLUMES)
    (service,) = entries(config, "services")
    assert service["command"] == [
        sys.executable,
        "-m",
        "eohub.storage",
        "--sampler=local",
        "--LocalWorkspaceSampler.workspace_paths=/srv/ws/{username}",
        "--LocalWorkspaceSampler.launch_config_file=/etc/eohub/launch.yaml",
    ]
    assert service["environment"] == {
        "EOHUB_ACCOUNTING_URL": "http://127.0.0.1:10101",
        "EOHUB_STORAGE_CONFIG": "/etc/eohub/storage.py",
    }
    (role,) = entries(config, "load_roles")
    assert role["scopes"] == [INGEST, ACCESS]
    assert role["services"] == [NAME]
    # The command line is one the program takes.
    monkeypatch.delenv("EOHUB_STORAGE_CONFIG")
    app = StorageSamplerApp()
    app.initialize(service["command"][3:])
    sampler = app.make_sampler()
    assert sampler.workspace_paths == ["/srv/ws/{username}"]  # type: ignore[attr-defined]
    assert sampler.launch_config_file == "/etc/eohub/launch.yaml"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "before", "args"),
    [
        ("kubernetes", VOLUMES, ["--sampler=kubernetes"]),
        ("Filesystem", "", ["--sampler=filesystem"]),
        ("local", "", ["--sampler=local"]),  # the launch config comes later: the config file
        (
            "local",
            "c.QuotaLocalSpawner.launch_volumes.update({})",  # not readable yet: left out
            ["--sampler=local"],
        ),
    ],
)
def test_other_samplers_and_late_launch_configs(
    monkeypatch: pytest.MonkeyPatch, kind: str, before: str, args: list[str]
) -> None:
    monkeypatch.setenv("EOHUB_STORAGE_SAMPLER", kind)
    (service,) = entries(load_dropins(before), "services")
    assert service["command"][3:] == args


def test_hub_groups_add_the_scope_and_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOHUB_STORAGE_SAMPLER", "filesystem")
    monkeypatch.setenv("EOHUB_STORAGE_HUB_GROUPS", "1")
    config = load_dropins()
    (service,) = entries(config, "services")
    assert "--Sampler.hub_groups=True" in service["command"]
    (role,) = entries(config, "load_roles")
    assert role["scopes"] == [INGEST, ACCESS, "read:users:groups"]


def test_slug_folders_add_the_scopes_and_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOHUB_STORAGE_SAMPLER", "filesystem")
    monkeypatch.setenv("EOHUB_STORAGE_FOLDER_NAMES", "KubeSpawner-Slug")
    config = load_dropins()
    (service,) = entries(config, "services")
    (role,) = entries(config, "load_roles")
    assert role["scopes"] == [INGEST, ACCESS, "list:users", "read:users:name"]
    app = StorageSamplerApp()
    app.initialize(service["command"][3:])
    assert app.make_sampler().folder_names == "kubespawner-slug"  # type: ignore[attr-defined]

    monkeypatch.setenv("EOHUB_STORAGE_FOLDER_NAMES", "slugs")
    with pytest.raises(ValueError, match="use user or kubespawner-slug"):
        load_dropins()


def test_an_unknown_sampler_stops_the_hub_saying_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOHUB_STORAGE_SAMPLER", "nfs")
    with pytest.raises(ValueError, match="use one of filesystem, local, kubernetes"):
        load_dropins()


def test_a_real_hub_runs_the_sampler(
    hub_factory: Callable[..., Hub], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EOHUB_ACCOUNTING_HUB_TOKEN")  # the hub makes its own, as it would
    workspaces = tmp_path / "workspaces"
    write(workspaces / "alice" / "model.nc", 250_000)
    write(workspaces / "bob" / "notes.md", 3_000)
    config = tmp_path / "storage_config.py"
    config.write_text(
        f"c.LocalWorkspaceSampler.workspace_paths = [{str(workspaces / '{username}')!r}]\n"
        "c.Sampler.group_priority = ['climate']\n"
    )
    hub = hub_factory(
        ACCOUNTING_CONFIG + 'c.JupyterHub.load_groups = {"climate": {"users": ["alice"]}, '
        '"astro": {"users": ["bob"]}, "staff": {"users": ["alice"]}}\n',
        env={
            "EOHUB_STORAGE_SAMPLER": "local",
            "EOHUB_STORAGE_CONFIG": str(config),
            "EOHUB_STORAGE_HUB_GROUPS": "1",
        },
    )
    Accounting(hub).wait_ready(timeout=60)
    expected = [
        ("alice", "climate", du(workspaces / "alice"), du(workspaces / "alice", inodes=True)),
        ("bob", "astro", du(workspaces / "bob"), du(workspaces / "bob", inodes=True)),
    ]
    found: list[tuple[str, str, int, int]] = []
    deadline = time.monotonic() + 60
    while found != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        found = ledger(hub)
    log = (hub.workdir / "jupyterhub.log").read_text()
    assert found == expected, log[-4000:]
    assert "Storage round: 2 samples" in log


def ledger(hub: Hub) -> list[tuple[str, str, int, int]]:
    with sqlite3.connect(hub.workdir / "eohub-accounting.sqlite") as db:
        rows = db.execute(
            'SELECT user, "group", bytes, file_count FROM storage_samples ORDER BY user'
        ).fetchall()
    return [tuple(row) for row in rows]
