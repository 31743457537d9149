"""The security settings QuotaKubeSpawner gives every pod unless the admin says otherwise.

They make a pod meet the Kubernetes "restricted" Pod Security Standard: non-root, no
privilege escalation, all capabilities dropped, seccomp RuntimeDefault. The spawner's
trait defaults and the start-up checks (of the admin's config and of profile overrides)
read them from here, so that the checks judge the pod the spawner will really send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The notebook container's security context.
RESTRICTED_CONTAINER: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: The pod's security context.
RESTRICTED_POD: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: The other security traits: jovyan and the users group of the Jupyter images.
SECURE_TRAITS: Mapping[str, Any] = {
    "uid": 1000,
    "fs_gid": 100,
    "privileged": False,
    "allow_privilege_escalation": False,
}

__all__ = ["RESTRICTED_CONTAINER", "RESTRICTED_POD", "SECURE_TRAITS"]
