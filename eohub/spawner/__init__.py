"""Quota-aware spawners (Kubernetes and local process) and the group-aware launch form.

``QuotaKubeSpawner`` and ``QuotaLocalSpawner`` are imported on first use, so a
single-machine hub never imports the Kubernetes client.
"""

from __future__ import annotations

from typing import Any

__all__ = ["QuotaKubeSpawner", "QuotaLocalSpawner", "QuotaSpawnerMixin"]


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
    raise AttributeError(name)
