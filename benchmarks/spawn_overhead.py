"""The per-spawn cost of eohub's launch path, against KubeSpawner's pod manifest alone.

eohub's path is everything QuotaKubeSpawner adds to a spawn, measured together:

- parse the request's ``user_options`` with the one options schema;
- resolve it with the launch policy (visibility, size, group, volumes), twice, as a
  spawn does (before and after the quota answer);
- decide the quota with the pure decision function (no network: the accounting
  service's answer time is measured by ``benchmarks/accounting.py``);
- apply the launch to the spawner's traits and build the pod manifest, including the
  "restricted" Pod Security Standard check.

The peer is a plain KubeSpawner with the same image, resources, volumes and labels
already set, building its pod manifest with ``get_pod_manifest()``: the part of a spawn
both spawners do. Both run in the same process, interleaved, on the same config.

Usage, from the repository root::

    .tox/bench/bin/python benchmarks/spawn_overhead.py            # 5,000 spawns
    .tox/bench/bin/python benchmarks/spawn_overhead.py --quick    # 500 spawns

The last line of output is JSON:
``{"eohub_p99_ms", "kubespawner_manifest_p99_ms", "ratio"}`` (ratio = eohub's p99 over
KubeSpawner's). The target, eohub's whole path p99 <= 5 ms, is reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.quota import Limits, Running, Standing, decide
from eohub.domain.identity.profile import UserProfile
from eohub.spawner.kube import QuotaKubeSpawner

TARGET_P99_MS = 5.0
GIB = 1024**3

SIZES = {
    "small": {"display_name": "Small", "cpu": 1, "memory": "4G", "memory_limit": "6G"},
    "medium": {"display_name": "Medium", "cpu": 2, "memory": "8G", "cpu_limit": 4},
    "large": {"display_name": "Large", "cpu": 8, "memory": "32G"},
    "gpu": {"display_name": "GPU", "cpu": 4, "memory": "16G", "gpus": 1},
}
ENVIRONMENTS = {
    f"env{i}": {
        "display_name": f"Environment {i}",
        "image": f"quay.io/eohub/notebook-{i}:2026.11",
        "allowed_groups": [f"group{i % 10}"] if i % 3 else [],
        "gpu": i % 4 == 0,
        "node_selector": {"eohub.io/pool": "users"},
        "default": i == 0,
    }
    for i in range(24)
}
VOLUMES = {
    "home": {
        "kind": "workspace",
        "mount_path": "/home/jovyan",
        "storage": "10Gi",
        "display_name": "Home",
    },
    "common_data": {
        "kind": "pvc",
        "claim_name": "common-data",
        "mount_path": "/data/common",
        "read_only": True,
        "display_name": "Common data",
    },
    "scratch": {
        "kind": "pvc",
        "claim_name": "scratch",
        "mount_path": "/scratch",
        "optional": True,
        "allowed_groups": ["group1", "group2"],
        "display_name": "Scratch",
    },
}
GROUPS = frozenset({"group0", "group1", "group2"})


class LocalQuota:
    """An accounting client that decides with the pure function: no network."""

    def __init__(self) -> None:
        self.standing = Standing(
            "group group1",
            Limits(core_hours=None, max_servers=100),
            running=Running(servers=3, millicores=4000),
        )

    async def check_quota(
        self, *, user: str, group: str, cpu: float, memory_bytes: int = 0, gpus: int = 0
    ) -> QuotaAnswer:
        decision = decide(Resources.from_cpu(cpu, memory_bytes, gpus), [self.standing])
        return QuotaAnswer(decision.allowed, decision.reason, decision.budget_left)


def eohub_spawner() -> QuotaKubeSpawner:
    spawner = QuotaKubeSpawner(
        _mock=True,
        launch_environments=ENVIRONMENTS,
        launch_sizes=SIZES,
        launch_volumes=VOLUMES,
        accounting=LocalQuota(),
    )
    spawner.profile = UserProfile(
        username=spawner.user.name, source="ldap", display_name="Alice", groups=GROUPS
    )
    return spawner


def peer_spawner() -> KubeSpawner:
    """KubeSpawner with what eohub's launch would set, set up front."""
    return KubeSpawner(
        _mock=True,
        image="quay.io/eohub/notebook-1:2026.11",
        cpu_guarantee=2,
        cpu_limit=4,
        mem_guarantee=8 * GIB,
        node_selector={"eohub.io/pool": "users"},
        volumes=[
            {"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}},
            {"name": "common", "persistentVolumeClaim": {"claimName": "common-data"}},
        ],
        volume_mounts=[
            {"name": "home", "mountPath": "/home/jovyan"},
            {"name": "common", "mountPath": "/data/common", "readOnly": True},
        ],
        extra_labels={"eohub.io/group": "group1"},
        environment={"EOHUB_GROUP": "group1"},
    )


def requests(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload
    visible = [
        n
        for n, e in ENVIRONMENTS.items()
        if not e["allowed_groups"] or set(e["allowed_groups"]) & GROUPS
    ]
    out = []
    for _ in range(count):
        env = rng.choice(visible)
        sizes = [s for s, v in SIZES.items() if ENVIRONMENTS[env]["gpu"] or not v.get("gpus")]
        options: dict[str, Any] = {
            "environment": env,
            "size": rng.choice(sizes),
            "group": "group1",
        }
        if rng.random() < 0.5:
            options["volumes"] = ["scratch"]
        if rng.random() < 0.3:
            options["urlpath"] = "/lab/tree/work"
        out.append(options)
    return out


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def measure(count: int, seed: int) -> dict[str, Any]:
    ours: list[float] = []
    theirs: list[float] = []
    peer = peer_spawner()
    for options in requests(count, seed):
        spawner = eohub_spawner()  # a fresh spawner per spawn, as the hub builds them
        t0 = time.perf_counter()
        await spawner.authorize_launch(options)
        await spawner.get_pod_manifest()
        ours.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        await peer.get_pod_manifest()
        theirs.append((time.perf_counter() - t0) * 1000)
    return {"eohub": ours, "kubespawner": theirs}


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(percentile(samples, 0.99), 3),
        "max_ms": round(max(samples), 3),
    }


def offline_kubeconfig(folder: Path) -> None:
    """KubeSpawner loads a kubeconfig when it is built; this one points nowhere.

    Building a pod manifest never calls the API, so nothing is ever sent to it.
    """
    path = folder / "kubeconfig"
    cluster = {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": cluster}],
                "users": [{"name": "none", "user": {"token": "none"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "none",
            }
        )
    )
    # The client reads KUBECONFIG once, at import; point its default at this file.
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(path)


def main(argv: list[str] | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="eohub-bench-spawn-") as folder:
        offline_kubeconfig(Path(folder))
        run(argv)


def run(argv: list[str] | None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 spawns instead of 5,000")
    parser.add_argument("--spawns", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians (1)")
    args = parser.parse_args(argv)
    count = args.spawns or (500 if args.quick else 5000)
    warm = asyncio.run(measure(50, args.seed + 1))  # imports, caches, compiled templates
    del warm
    gc.collect()
    gc.freeze()
    rounds = []
    for r in range(args.repeat):
        samples = asyncio.run(measure(count, args.seed + r))
        rounds.append((summary(samples["eohub"]), summary(samples["kubespawner"])))
        print(
            f"  [{r + 1}/{args.repeat}] eohub {rounds[-1][0]}, KubeSpawner {rounds[-1][1]}",
            file=sys.stderr,
        )
    ours = {k: statistics.median(o[k] for o, _ in rounds) for k in rounds[0][0]}
    theirs = {k: statistics.median(t[k] for _, t in rounds) for k in rounds[0][1]}
    detail = {
        "spawns": count,
        "rounds": args.repeat,
        "eohub": ours,
        "kubespawner_manifest": theirs,
        "target_p99_ms": TARGET_P99_MS,
        "met": ours["p99_ms"] <= TARGET_P99_MS,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            **{
                d: importlib.metadata.version(d)
                for d in ("eohub", "jupyterhub", "jupyterhub-kubespawner")
            },
        },
    }
    print(json.dumps(detail, indent=2), file=sys.stderr)
    print(
        json.dumps(
            {
                "eohub_p99_ms": ours["p99_ms"],
                "kubespawner_manifest_p99_ms": theirs["p99_ms"],
                "ratio": round(ours["p99_ms"] / theirs["p99_ms"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
