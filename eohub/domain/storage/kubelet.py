"""The kubelet's stats summary: how full each persistent volume claim of a namespace is.

``GET /api/v1/nodes/{node}/proxy/stats/summary`` answers with the kubelet's ``Summary``
(``k8s.io/kubelet/pkg/apis/stats/v1alpha1``)::

    {"node": {"nodeName": "node-1", ...},
     "pods": [{"podRef": {"name": "jupyter-alice", "namespace": "hub", "uid": "..."},
               "volume": [{"name": "volume-alice", "pvcRef": {"name": "claim-alice",
                                                               "namespace": "hub"},
                           "time": "...", "usedBytes": 1234, "inodesUsed": 56,
                           "capacityBytes": ..., "availableBytes": ..., ...}]}]}

Only volumes with a ``pvcRef`` in the sampler's namespace count. The kubelet reports a
claim once per pod that mounts it, and each node that mounts a shared claim reports it
too: all of them measure the same file system, so a claim counts once, with the largest
figure seen. A part that does not have this shape is skipped with a reason; nothing here
raises on what a kubelet sends.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: uint64 in the kubelet; the accounting service stores signed 64-bit integers.
MAX_COUNT = 2**63 - 1


@dataclass(frozen=True)
class VolumeUsage:
    """One claim's usage: bytes used on its file system, and inodes (files) used."""

    claim: str
    used_bytes: int
    inodes_used: int = 0


@dataclass(frozen=True)
class NodeUsage:
    """What one node's summary says about the namespace's claims, and what was skipped."""

    usage: dict[str, VolumeUsage]
    problems: tuple[str, ...] = ()


def _count(value: object) -> int | None:
    """A whole number of bytes or inodes, or None: JSON numbers only, never a bool."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_COUNT else None


def larger(a: VolumeUsage | None, b: VolumeUsage) -> VolumeUsage:
    """The claim's usage from two reports of the same file system: the larger figures."""
    if a is None:
        return b
    return VolumeUsage(b.claim, max(a.used_bytes, b.used_bytes), max(a.inodes_used, b.inodes_used))


def _volume(volume: object, namespace: str, where: str) -> VolumeUsage | str | None:
    """The volume's claim usage; a problem text; None for a volume that is no claim of ours."""
    if not isinstance(volume, Mapping):
        return f"{where} is not an object"
    ref = volume.get("pvcRef")
    if ref is None:
        return None  # an emptyDir, a config map, a projected token: no claim
    if not isinstance(ref, Mapping):
        return f"{where}.pvcRef is not an object"
    claim, claim_namespace = ref.get("name"), ref.get("namespace")
    if not isinstance(claim, str) or not claim or not isinstance(claim_namespace, str):
        return f"{where}.pvcRef has no name and namespace"
    if claim_namespace != namespace:
        return None
    used = _count(volume.get("usedBytes"))
    if used is None:
        # A volume the kubelet has not measured yet has no usedBytes.
        return f"{where} (claim {claim}) has no usedBytes a whole number >= 0"
    # Some volume plugins report no inodes: files uncounted, not a problem.
    inodes = _count(volume.get("inodesUsed"))
    return VolumeUsage(claim, used, 0 if inodes is None else inodes)


def parse_summary(summary: object, namespace: str) -> NodeUsage:
    """The usage of ``namespace``'s claims in one node's stats summary (decoded JSON)."""
    if not isinstance(summary, Mapping):
        return NodeUsage({}, ("the summary is not a JSON object",))
    pods = summary.get("pods")
    if pods is None:
        return NodeUsage({})  # a node without pods: the kubelet leaves the list out
    if not isinstance(pods, list):
        return NodeUsage({}, ("the summary's pods is not a list",))
    usage: dict[str, VolumeUsage] = {}
    problems: list[str] = []
    for i, pod in enumerate(pods):
        if not isinstance(pod, Mapping):
            problems.append(f"pods[{i}] is not an object")
            continue
        volumes = pod.get("volume") or []
        if not isinstance(volumes, list):
            problems.append(f"pods[{i}].volume is not a list")
            continue
        for j, volume in enumerate(volumes):
            found = _volume(volume, namespace, f"pods[{i}].volume[{j}]")
            if isinstance(found, str):
                problems.append(found)
            elif found is not None:
                usage[found.claim] = larger(usage.get(found.claim), found)
    return NodeUsage(usage, tuple(problems))


def combine(parts: Iterable[Mapping[str, VolumeUsage]]) -> dict[str, VolumeUsage]:
    """Several nodes' usage as one: a claim mounted on two nodes counts once."""
    usage: dict[str, VolumeUsage] = {}
    for part in parts:
        for claim, found in part.items():
            usage[claim] = larger(usage.get(claim), found)
    return usage


def _claims_mounted(spec: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for volume in spec.get("volumes") or []:
        source = volume.get("persistentVolumeClaim") if isinstance(volume, Mapping) else None
        name = source.get("claimName") if isinstance(source, Mapping) else None
        if isinstance(name, str) and name:
            names.add(name)
    return names


def nodes_to_ask(pods: Iterable[object], claims: Collection[str]) -> dict[str, set[str]]:
    """Node name -> the ``claims`` that running ``pods`` (Pod objects) mount there.

    Only a node where a pod mounts a claim measures it: a claim no running pod mounts
    has no stats anywhere, and a node that mounts none of ``claims`` is not asked.
    """
    nodes: dict[str, set[str]] = {}
    for pod in pods:
        if not isinstance(pod, Mapping):
            continue
        spec, status = pod.get("spec"), pod.get("status")
        if not isinstance(spec, Mapping) or not isinstance(status, Mapping):
            continue
        node = spec.get("nodeName")
        if status.get("phase") != "Running" or not isinstance(node, str) or not node:
            continue
        mounted = _claims_mounted(spec) & set(claims)
        if mounted:
            nodes.setdefault(node, set()).update(mounted)
    return nodes


__all__ = [
    "MAX_COUNT",
    "NodeUsage",
    "VolumeUsage",
    "combine",
    "larger",
    "nodes_to_ask",
    "parse_summary",
]
