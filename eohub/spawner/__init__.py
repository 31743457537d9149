"""Quota-aware spawners (Kubernetes and local process) and the group-aware launch form.

``QuotaKubeSpawner`` and ``QuotaLocalSpawner`` are imported on first use, so a
single-machine hub never imports the Kubernetes client. ``check_hub_config(c)``, the last
line of a ``jupyterhub_config.py``, checks the launch config before the hub starts.
"""

from __future__ import annotations

from typing import Any

__all__ = ["QuotaKubeSpawner", "QuotaLocalSpawner", "QuotaSpawnerMixin", "check_hub_config"]


def __getattr__(name: str) -> Any:
    if name == "QuotaKubeSpawner":
        from eohub.spawner.kube import QuotaKubeSpawner

        return QuotaKubeSpawner
    if name == "QuotaLocalSpawner":
        from eohub.spawner.local import QuotaLocalSpawner

        return QuotaLocalSpawner
    if name == "QuotaSpawnerMixin":
        from eohub.spawner.mixin import QuotaSpawnerMixin

        return QuotaSpawnerMixin
    if name == "check_hub_config":
        from eohub.spawner.settings import check_hub_config

        return check_hub_config
    raise AttributeError(name)
