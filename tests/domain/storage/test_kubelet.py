"""The kubelet's stats summary as claim usage: tables of summaries shaped like the
kubelet's ``Summary`` (k8s.io/kubelet/pkg/apis/stats/v1alpha1)."""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.storage.kubelet import (
    MAX_COUNT,
    NodeUsage,
    VolumeUsage,
    combine,
    nodes_to_ask,
    parse_summary,
)

NS = "hub"
STAMP = "2026-12-06T10:00:00Z"


def fs(used: int | None, inodes: int | None = 10) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "time": STAMP,
        "availableBytes": 9_000_000,
        "capacityBytes": 10_737_418_240,
        "inodesFree": 655_000,
        "inodes": 655_360,
    }
    if used is not None:
        stats["usedBytes"] = used
    if inodes is not None:
        stats["inodesUsed"] = inodes
    return stats


def claim_volume(
    claim: str, used: int | None, inodes: int | None = 10, namespace: str = NS
) -> dict[str, Any]:
    return {
        **fs(used, inodes),
        "name": "volume-" + claim,
        "pvcRef": {"name": claim, "namespace": namespace},
    }


TOKEN = {**fs(12_288, 9), "name": "kube-api-access-7xk2p"}


def pod(name: str, *volumes: Any, namespace: str = NS) -> dict[str, Any]:
    return {
        "podRef": {"name": name, "namespace": namespace, "uid": "0d6c3a9e-" + name},
        "startTime": STAMP,
        "containers": [{"name": "notebook", "startTime": STAMP}],
        "volume": list(volumes),
        "ephemeral-storage": fs(86_016, 31),
    }


def summary(*pods: Any) -> dict[str, Any]:
    return {"node": {"nodeName": "node-a", "startTime": STAMP, "fs": fs(1, 1)}, "pods": list(pods)}


CASES: list[tuple[str, Any, dict[str, VolumeUsage], list[str]]] = [
    (
        "one user's claim, beside the token volume",
        summary(pod("jupyter-alice", TOKEN, claim_volume("claim-alice", 1_200, 34))),
        {"claim-alice": VolumeUsage("claim-alice", 1_200, 34)},
        [],
    ),
    (
        "a claim mounted by two pods counts once, with the larger figure",
        summary(
            pod("jupyter-alice", claim_volume("group-climate", 5_000, 7)),
            pod("jupyter-bob", claim_volume("group-climate", 5_004, 6)),
        ),
        {"group-climate": VolumeUsage("group-climate", 5_004, 7)},
        [],
    ),
    (
        "claims of other namespaces are not ours",
        summary(
            pod(
                "prometheus-0",
                claim_volume("prometheus-db", 9, 1, "monitoring"),
                namespace="monitoring",
            )
        ),
        {},
        [],
    ),
    ("a node without pods leaves the list out", {"node": {"nodeName": "node-a"}}, {}, []),
    ("a pod without volumes", summary({"podRef": {"name": "x", "namespace": NS}}), {}, []),
    (
        "no inodes reported: no files counted, not a problem",
        summary(pod("jupyter-alice", claim_volume("claim-alice", 4_096, None))),
        {"claim-alice": VolumeUsage("claim-alice", 4_096, 0)},
        [],
    ),
    (
        "a volume not measured yet has no usedBytes",
        summary(pod("jupyter-alice", claim_volume("claim-alice", None))),
        {},
        ["pods[0].volume[0] (claim claim-alice) has no usedBytes a whole number >= 0"],
    ),
    (
        "negative, fractional, boolean and too large counts are skipped",
        summary(
            pod(
                "p",
                claim_volume("a", -1),
                claim_volume("b", 1.5),  # type: ignore[arg-type]
                claim_volume("c", True),
                claim_volume("d", MAX_COUNT + 1),
            )
        ),
        {},
        [
            f"pods[0].volume[{i}] (claim {c}) has no usedBytes a whole number >= 0"
            for i, c in enumerate("abcd")
        ],
    ),
    (
        "the largest count the accounting service stores",
        summary(pod("p", claim_volume("a", MAX_COUNT, MAX_COUNT))),
        {"a": VolumeUsage("a", MAX_COUNT, MAX_COUNT)},
        [],
    ),
    (
        "malformed parts are skipped, the good ones kept",
        summary(
            "not a pod",
            {"podRef": {}, "volume": "nope"},
            pod(
                "p",
                7,
                {"name": "v", "pvcRef": "claim-x", "usedBytes": 1},
                {"name": "w", "pvcRef": {"namespace": NS}, "usedBytes": 1},
                claim_volume("good", 42, 1),
            ),
        ),
        {"good": VolumeUsage("good", 42, 1)},
        [
            "pods[0] is not an object",
            "pods[1].volume is not a list",
            "pods[2].volume[0] is not an object",
            "pods[2].volume[1].pvcRef is not an object",
            "pods[2].volume[2].pvcRef has no name and namespace",
        ],
    ),
    ("not an object", ["pods"], {}, ["the summary is not a JSON object"]),
    ("pods not a list", {"pods": {"a": 1}}, {}, ["the summary's pods is not a list"]),
]


@pytest.mark.parametrize(
    ("body", "usage", "problems"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_summary_to_claim_usage(
    body: Any, usage: dict[str, VolumeUsage], problems: list[str]
) -> None:
    assert parse_summary(body, NS) == NodeUsage(usage, tuple(problems))


def test_a_claim_on_two_nodes_counts_once() -> None:
    a = {"shared": VolumeUsage("shared", 10, 3), "alice": VolumeUsage("alice", 1, 1)}
    b = {"shared": VolumeUsage("shared", 12, 2), "bob": VolumeUsage("bob", 2, 2)}
    assert combine([a, b, {}]) == {
        "shared": VolumeUsage("shared", 12, 3),
        "alice": VolumeUsage("alice", 1, 1),
        "bob": VolumeUsage("bob", 2, 2),
    }


def k8s_pod(name: str, node: str | None, phase: str, *claims: str) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "token", "projected": {"sources": []}}]
    volumes += [
        {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)
    ]
    spec: dict[str, Any] = {"containers": [{"name": "c"}], "volumes": volumes}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": NS}, "spec": spec, "status": {"phase": phase}}


NODE_CASES: list[tuple[str, list[Any], set[str], dict[str, set[str]]]] = [
    (
        "running pods, grouped by node",
        [
            k8s_pod("jupyter-alice", "node-a", "Running", "claim-alice", "group-climate"),
            k8s_pod("jupyter-bob", "node-b", "Running", "claim-bob", "group-climate"),
            k8s_pod("jupyter-carol", "node-a", "Running", "claim-carol"),
        ],
        {"claim-alice", "claim-bob", "claim-carol", "group-climate"},
        {
            "node-a": {"claim-alice", "claim-carol", "group-climate"},
            "node-b": {"claim-bob", "group-climate"},
        },
    ),
    (
        "pending, finished and unscheduled pods measure nothing",
        [
            k8s_pod("a", None, "Pending", "claim-a"),
            k8s_pod("b", "node-a", "Pending", "claim-b"),
            k8s_pod("c", "node-a", "Succeeded", "claim-c"),
            k8s_pod("d", "node-a", "Failed", "claim-d"),
        ],
        {"claim-a", "claim-b", "claim-c", "claim-d"},
        {},
    ),
    (
        "a node that mounts none of the claims is not asked",
        [k8s_pod("hub-5d9", "node-c", "Running", "hub-db-dir"), k8s_pod("x", "node-a", "Running")],
        {"claim-alice"},
        {},
    ),
    (
        "malformed pods are passed over",
        [
            "pod",
            {"spec": []},
            {
                "spec": {"nodeName": "n", "volumes": ["v", {"persistentVolumeClaim": 1}]},
                "status": {"phase": "Running"},
            },
        ],
        {"claim-alice"},
        {},
    ),
]


@pytest.mark.parametrize(
    ("pods", "claims", "nodes"), [c[1:] for c in NODE_CASES], ids=[c[0] for c in NODE_CASES]
)
def test_the_nodes_to_ask(pods: list[Any], claims: set[str], nodes: dict[str, set[str]]) -> None:
    assert nodes_to_ask(pods, claims) == nodes
