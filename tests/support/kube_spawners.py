"""QuotaKubeSpawners for tests: the test launch config, a fake accounting client, and
:func:`make_spawner`, which builds a spawner as the hub does.

Spawners point at :data:`NO_API` unless given the URL of a
:class:`tests.support.kube_api.FakeKubeAPI`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.identity.profile import UserProfile

NAMESPACE = "eohub-test"
#: Where spawners of tests that talk to no API point (nothing listens there).
NO_API = "http://127.0.0.1:9"
STARTED = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)

ENVIRONMENTS: dict[str, Any] = {
    "pangeo": {
        "display_name": "Pangeo",
        "image": "quay.io/eohub/pangeo-notebook:2026.11.1",
        "sizes": ["small", "medium"],
        "default_size": "small",
        "node_selector": {"eohub.io/pool": "users"},
        "env": {"STAC_API_URL": "https://stac.example.org/v1"},
        "max_duration": 8 * 3600,
        "default": True,
    },
    "gpu-ml": {
        "display_name": "Machine learning (GPU)",
        "image": "quay.io/eohub/ml-gpu:2026.11",
        "gpu": True,
        "sizes": ["small", "gpu"],
        "allowed_groups": ["eo-ml"],
        "node_selector": {"eohub.io/pool": "gpu", "nvidia.com/gpu.present": "true"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "pass_access_token": True,
    },
    "rstudio": {
        "display_name": "RStudio",
        "image": "docker.io/rocker/geospatial:4.4",
        "default_urlpath": "/rstudio",
        "sizes": ["small"],
        "allowed_groups": ["climate"],
    },
    "staff-tools": {
        "display_name": "Staff tools",
        "image": "registry.example.org/internal/staff-tools:3",
        "allowed_users": ["operator"],
        "sizes": ["medium"],
    },
}
SIZES: dict[str, Any] = {
    "small": {"cpu": 1, "memory": "2G", "cpu_limit": 2, "memory_limit": "4G"},
    "medium": {"cpu": 4, "memory": "16G", "cpu_limit": 4, "memory_limit": "16G"},
    "gpu": {"cpu": 8, "memory": "32G", "gpus": 1},
}
VOLUMES: dict[str, Any] = {
    "workspace": {
        "kind": "workspace",
        "claim_name": "workspace-{username}",
        "storage": "10Gi",
        "mount_path": "/home/jovyan",
    },
    "common_data": {
        "kind": "pvc",
        "claim_name": "common-data",
        "mount_path": "/data/common",
        "read_only": True,
    },
    "scratch": {
        "kind": "pvc",
        "claim_name": "eo-scratch",
        "mount_path": "/scratch",
        "sub_path": "{group}/{username}",
        "optional": True,
        "allowed_groups": ["eo-sci"],
    },
    "ml_models": {
        "kind": "pvc",
        "claim_name": "ml-models",
        "mount_path": "/data/models",
        "read_only": True,
        "optional": True,
        "allowed_groups": ["eo-ml"],
    },
}
CHARGE_GROUPS = ["climate", "eo-ml", "eo-sci"]
GROUPS_OF = {
    "alice": {"eo-sci"},
    "bob": {"eo-sci", "eo-ml"},
    "carol": {"climate", "reading-club"},
    "dave": {"reading-club"},
}


class FakeAccounting:
    """The accounting client as the spawner uses it, recording every call."""

    def __init__(self, answer: QuotaAnswer | None = None) -> None:
        self.answer = answer or QuotaAnswer(True, "Within budget.", {"core_hours": 120.0})
        self.quota_checks: list[dict[str, Any]] = []
        self.starts: list[dict[str, Any]] = []
        self.stops: list[dict[str, Any]] = []

    async def check_quota(
        self,
        *,
        user: str,
        group: str,
        cpu: float,
        memory_bytes: int = 0,
        gpus: int = 0,
        **_: Any,
    ) -> QuotaAnswer:
        self.quota_checks.append(
            {"user": user, "group": group, "cpu": cpu, "memory_bytes": memory_bytes, "gpus": gpus}
        )
        return self.answer

    async def record_start(self, **event: Any) -> None:
        self.starts.append(event)

    async def record_stop(self, **event: Any) -> None:
        self.stops.append(event)


def fake_user(name: str, groups: Iterable[str]) -> SimpleNamespace:
    """What a Spawner reads of JupyterHub's User."""
    return SimpleNamespace(
        name=name,
        id=sum(map(ord, name)),
        url=f"/user/{name}/",
        escaped_name=name,
        groups=[SimpleNamespace(name=g) for g in sorted(groups)],
        progress_url=f"/hub/api/users/{name}/server/progress",
        server=None,
    )


FAKE_HUB = SimpleNamespace(
    public_host="",
    url="http://hub:8081/hub/",
    base_url="/hub/",
    api_url="http://hub:8081/hub/api",
)


def fake_orm_spawner(server_name: str = "") -> SimpleNamespace:
    """What a Spawner reads of its database row."""
    return SimpleNamespace(
        name=server_name,
        display_name=server_name,
        server=None,
        started=STARTED.replace(tzinfo=None),  # the hub stores naive UTC
        last_activity=None,
        user_options=None,
        state=None,
    )


async def make_spawner(
    username: str = "alice",
    groups: Iterable[str] | None = None,
    *,
    accounting: FakeAccounting | None = None,
    api_url: str = NO_API,
    access_token: str = "",
    display_name: str = "",
    **traits: Any,
) -> Any:
    """A QuotaKubeSpawner with the test launch config, as the hub builds one.

    Must run inside the test's event loop: KubeSpawner makes its API client there.
    ``traits`` override the config (``launch_environments=...``, ``privileged=True``).
    """
    from kubespawner.clients import load_config

    from eohub.spawner.kube import QuotaKubeSpawner

    # KubeSpawner caches load_config() by host and points the client's global default
    # at that host only on a cache miss: a fake API on a port the OS hands out again
    # would leave the client talking to the previous fake, long gone.
    load_config.cache_clear()
    groups = GROUPS_OF.get(username, set()) if groups is None else set(groups)
    settings: dict[str, Any] = {
        "launch_environments": ENVIRONMENTS,
        "launch_sizes": SIZES,
        "launch_volumes": VOLUMES,
        "charge_groups": CHARGE_GROUPS,
        "namespace": NAMESPACE,
        "k8s_api_host": api_url,
        "start_timeout": 10,
        "k8s_api_request_retry_timeout": 10,
        **traits,
    }
    spawner = QuotaKubeSpawner(
        user=fake_user(username, groups),
        hub=FAKE_HUB,
        orm_spawner=fake_orm_spawner(),
        accounting=accounting or FakeAccounting(),
        api_token="hub-token-for-" + username,
        oauth_client_id=f"jupyterhub-user-{username}",
        **settings,
    )
    profile = UserProfile(
        username=username,
        source="ldap",
        display_name=display_name or username.title() + " Example",
        email=f"{username}@example.org",
        groups=frozenset(groups),
    )
    await spawner.run_auth_state_hook(
        {"eohub": profile.to_auth_state(), "access_token": access_token}
    )
    return spawner


def serialise(spawner: Any, obj: Any) -> dict[str, Any]:
    """A kubernetes_asyncio model as the API receives it (camelCase JSON)."""
    data: dict[str, Any] = spawner.api.api_client.sanitize_for_serialization(obj)
    return data
