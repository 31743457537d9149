"""What KubeSpawner's own storage and init-container settings mean for eohub's pods.

The Zero to JupyterHub chart configures KubeSpawner before eohub sees it: a home claim
per user (``singleuser.storage``) and, by default, a privileged init container that
blocks the cloud metadata server (``singleuser.cloudMetadata.blockWithIptables``).
These functions read those settings as plain data, so that the hub can explain at
start-up what would otherwise fail at the first spawn:

* :func:`home_storage` finds the chart's home claim and its mount, so that eohub's
  workspace can be that claim instead of a second one at the same path;
* :func:`mount_conflicts` names both sources of a mount path used twice, which the API
  server would reject;
* :func:`privileged_init_containers` says which init containers break the "restricted"
  Pod Security Standard, and for the chart's ``block-cloud-metadata`` the chart value
  that removes it.

Inputs are KubeSpawner trait values with camelCase Kubernetes keys, as lists or as dicts
of named entries (KubeSpawner accepts both and sorts a dict by key), and may hold
KubeSpawner's ``{...}`` templates. Pure: standard library only. Odd shapes count as
absent; the API server's schema validation is what rejects malformed objects.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from eohub.domain.launch.pod_defaults import RESTRICTED_POD
from eohub.domain.launch.pod_security import restricted_violations

#: The claim name KubeSpawner fills with the claim it creates (``storage_pvc_ensure``).
PVC_NAME = "{pvc_name}"
#: The chart's init container that runs iptables as root with NET_ADMIN.
CLOUD_METADATA_CONTAINER = "block-cloud-metadata"
CLOUD_METADATA_FIX = (
    "init container 'block-cloud-metadata' of the Zero to JupyterHub chart runs iptables "
    "as root, privileged, with NET_ADMIN, which the restricted Pod Security Standard "
    "refuses, so every spawn would fail. Set singleuser.cloudMetadata.blockWithIptables: "
    "false in the chart values: the chart's singleuser network policy "
    "(singleuser.networkPolicy, enabled by default) already blocks the cloud metadata "
    "server (169.254.169.254) unless egressAllowRules.cloudMetadataServer is true. "
    "Alternatively set QuotaKubeSpawner.allow_unrestricted_pods = True, in a namespace "
    "whose policy admits privileged pods"
)


@dataclass(frozen=True)
class HomeStorage:
    """The chart's home storage: the claim KubeSpawner creates, and where it is mounted.

    Attributes
    ----------
    volume_name
        The volume's name, a KubeSpawner template (``volume-{user_server}``).
    mount_path
        Where the claim is mounted, normalised (``/home/jovyan``).
    sub_path
        The part of the claim mounted there (a template), or "" for all of it.
    """

    volume_name: str
    mount_path: str
    sub_path: str = ""


def entries(value: object) -> list[tuple[str, Mapping[str, Any]]]:
    """The mappings of a KubeSpawner list or dict trait, each with its index or key.

    A dict is read in KubeSpawner's order (sorted by key); entries that are not
    mappings are skipped.
    """
    if isinstance(value, Mapping):
        items = [(f"[{key!r}]", value[key]) for key in sorted(value, key=str)]
    elif isinstance(value, list | tuple):
        items = [(f"[{i}]", item) for i, item in enumerate(value)]
    else:
        return []
    return [(where, item) for where, item in items if isinstance(item, Mapping)]


def normal_path(path: str) -> str:
    """``path`` as the kubelet compares it: no trailing or doubled slashes."""
    # normpath keeps a leading "//" (POSIX leaves its meaning open); the kubelet does not.
    return posixpath.normpath(re.sub("/{2,}", "/", path)) if path else path


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def home_storage(
    volumes: object, volume_mounts: object, pvc_name_template: str = ""
) -> HomeStorage | None:
    """The chart's home storage in these trait values, or None when there is none.

    It is the first volume whose ``persistentVolumeClaim.claimName`` is
    :data:`PVC_NAME` (chart 3 and later) or the spawner's ``pvc_name_template`` itself
    (older charts), together with the first mount of that volume.
    """
    claims = {PVC_NAME, pvc_name_template} - {""}
    for _, volume in entries(volumes):
        claim = volume.get("persistentVolumeClaim")
        name = _text(volume.get("name"))
        if not name or not isinstance(claim, Mapping) or claim.get("claimName") not in claims:
            continue
        for _, mount in entries(volume_mounts):
            path = _text(mount.get("mountPath"))
            if mount.get("name") == name and path:
                return HomeStorage(name, normal_path(path), _text(mount.get("subPath")))
    return None


def mount_conflicts(sources: Iterable[tuple[str, str]]) -> list[str]:
    """One message per mount path that more than one source uses.

    ``sources`` are (description, mountPath) pairs, such as
    ``("KubeSpawner.volume_mounts[0] (volume-{user_server})", "/home/jovyan/")``;
    paths are compared normalised. The API server refuses a pod with such a path.
    """
    by_path: dict[str, list[str]] = {}
    for description, path in sources:
        by_path.setdefault(normal_path(path), []).append(description)
    messages = []
    for path, users in by_path.items():
        if len(users) < 2:
            continue
        times = "twice" if len(users) == 2 else f"{len(users)} times"
        named = ", ".join(users[:-1]) + " and " + users[-1]
        messages.append(f"mount path {path} is used {times}: {named}")
    return messages


def privileged_init_containers(
    init_containers: object, pod_security_context: Mapping[str, Any] | None = None
) -> list[str]:
    """Why these init containers break the "restricted" Pod Security Standard.

    Each is checked as part of a pod with ``pod_security_context`` (by default
    QuotaKubeSpawner's, :data:`~eohub.domain.launch.pod_defaults.RESTRICTED_POD`), because
    KubeSpawner sends init containers as written, without its container security
    context. The chart's
    ``block-cloud-metadata`` gets one message with the chart value that removes it;
    any other gets the reasons, each naming the container and what it sets.
    """
    context = RESTRICTED_POD if pod_security_context is None else pod_security_context
    messages = []
    for _, container in entries(init_containers):
        pod = {"spec": {"securityContext": context, "initContainers": [container]}}
        # The pod's own problems belong to the spawner's check, not to this container.
        problems = [p for p in restricted_violations(pod) if p.startswith("init container ")]
        if not problems:
            continue
        if container.get("name") == CLOUD_METADATA_CONTAINER:
            messages.append(CLOUD_METADATA_FIX)
        else:
            messages.extend(problems)
    return messages


__all__ = [
    "CLOUD_METADATA_CONTAINER",
    "CLOUD_METADATA_FIX",
    "PVC_NAME",
    "HomeStorage",
    "entries",
    "home_storage",
    "mount_conflicts",
    "normal_path",
    "privileged_init_containers",
]
