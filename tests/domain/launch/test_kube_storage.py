"""KubeSpawner's storage and init-container settings as the Zero to JupyterHub chart sets them.

The chart's defaults below are those of chart 4.4.0: jupyterhub/files/hub/jupyterhub_config.py
(``singleuser.storage.type: dynamic`` and ``singleuser.cloudMetadata.blockWithIptables``)
with jupyterhub/values.yaml (``volumeNameTemplate: volume-{user_server}``,
``pvcNameTemplate`` unset so KubeSpawner's ``claim-{user_server}`` applies,
``homeMountPath: /home/jovyan``, ``dynamic.subPath`` unset) in
github.com/jupyterhub/zero-to-jupyterhub-k8s. Charts before 4 used
``volume-{username}{servername}`` and ``claim-{username}{servername}``.
"""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.launch.kube_storage import (
    CLOUD_METADATA_FIX,
    HomeStorage,
    entries,
    home_storage,
    mount_conflicts,
    privileged_init_containers,
)

# c.KubeSpawner.volumes / volume_mounts as chart 4.4.0's jupyterhub_config.py sets them.
CHART_VOLUMES = [
    {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
]
CHART_MOUNTS = [{"mountPath": "/home/jovyan", "name": "volume-{user_server}", "subPath": None}]
# The chart's init container, as ApiClient serialises its V1Container (chart 4.4.0).
CHART_INIT_CONTAINER = {
    "name": "block-cloud-metadata",
    "image": "quay.io/jupyterhub/k8s-network-tools:4.4.0",
    "command": [
        "iptables",
        "--append",
        "OUTPUT",
        "--protocol",
        "tcp",
        "--destination",
        "169.254.169.254",
        "--destination-port",
        "80",
        "--jump",
        "DROP",
    ],
    "securityContext": {
        "privileged": True,
        "runAsUser": 0,
        "capabilities": {"add": ["NET_ADMIN"]},
    },
    "resources": {},
}
RESTRICTED_INIT = {
    "name": "fetch-data",
    "image": "busybox",
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}
HOME = HomeStorage("volume-{user_server}", "/home/jovyan")


@pytest.mark.parametrize(
    ("volumes", "mounts", "template", "expected"),
    [
        pytest.param(CHART_VOLUMES, CHART_MOUNTS, "", HOME, id="chart 4.4.0 defaults"),
        pytest.param(
            [
                {
                    "name": "volume-{username}{servername}",
                    "persistentVolumeClaim": {"claimName": "{pvc_name}"},
                }
            ],
            [{"mountPath": "/home/jovyan/", "name": "volume-{username}{servername}"}],
            "",
            HomeStorage("volume-{username}{servername}", "/home/jovyan"),
            id="chart 3 names, trailing slash",
        ),
        pytest.param(
            [
                {
                    "name": "home",
                    "persistentVolumeClaim": {"claimName": "claim-{username}{servername}"},
                }
            ],
            [{"mountPath": "/home/jovyan", "name": "home"}],
            "claim-{username}{servername}",
            HomeStorage("home", "/home/jovyan"),
            id="older charts: the claim is the pvc_name_template",
        ),
        pytest.param(
            {"home": CHART_VOLUMES[0], "data": {"name": "data", "emptyDir": {}}},
            {
                "b": {"mountPath": "/data", "name": "data"},
                "a": {**CHART_MOUNTS[0], "subPath": "home"},
            },
            "",
            HomeStorage("volume-{user_server}", "/home/jovyan", "home"),
            id="dicts of named entries, with a sub-path",
        ),
        pytest.param(
            [{"name": "home", "persistentVolumeClaim": {"claimName": "shared-home"}}],
            [{"mountPath": "/home/jovyan", "name": "home", "subPath": "{username}"}],
            "",
            None,
            id="static storage: a shared claim is not the spawner's",
        ),
        pytest.param(CHART_VOLUMES, [], "", None, id="claim never mounted"),
        pytest.param([], [], "", None, id="storage type none"),
        pytest.param(None, None, "", None, id="unset"),
        pytest.param(["odd", {"name": 3}], [{"mountPath": 5}], "", None, id="odd shapes"),
    ],
)
def test_home_storage(
    volumes: Any, mounts: Any, template: str, expected: HomeStorage | None
) -> None:
    assert home_storage(volumes, mounts, template) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([{"a": 1}, "x", {"b": 2}], [("[0]", {"a": 1}), ("[2]", {"b": 2})]),
        ({"z": {"a": 1}, "y": {"b": 2}}, [("['y']", {"b": 2}), ("['z']", {"a": 1})]),
        ("text", []),
        (None, []),
    ],
)
def test_entries_follow_kubespawners_order(value: Any, expected: Any) -> None:
    assert entries(value) == expected


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        pytest.param(
            [
                ("KubeSpawner.volume_mounts[0] (volume-{username})", "/home/jovyan"),
                ("launch_volumes.workspace", "/home/jovyan/"),
            ],
            [
                "mount path /home/jovyan is used twice: KubeSpawner.volume_mounts[0] "
                "(volume-{username}) and launch_volumes.workspace"
            ],
            id="chart home and eohub workspace",
        ),
        pytest.param(
            [("a", "/data"), ("b", "/data/x"), ("c", "/home"), ("d", "//data")],
            ["mount path /data is used twice: a and d"],
            id="nested paths are fine, doubled slashes are not",
        ),
        pytest.param(
            [("a", "/x"), ("b", "/x/"), ("c", "/x")],
            ["mount path /x is used 3 times: a, b and c"],
            id="three sources",
        ),
        pytest.param([("a", "/x"), ("b", "/y")], [], id="no conflict"),
        pytest.param([], [], id="nothing mounted"),
    ],
)
def test_mount_conflicts(sources: list[tuple[str, str]], expected: list[str]) -> None:
    assert mount_conflicts(sources) == expected


@pytest.mark.parametrize(
    ("containers", "pod_context", "expected"),
    [
        pytest.param([CHART_INIT_CONTAINER], None, [CLOUD_METADATA_FIX], id="chart 4.4.0 default"),
        pytest.param([RESTRICTED_INIT], None, [], id="restricted init container"),
        pytest.param({"a": RESTRICTED_INIT}, None, [], id="a dict of named entries"),
        pytest.param([], None, [], id="none"),
        pytest.param(None, None, [], id="unset"),
        pytest.param(
            [
                {
                    **RESTRICTED_INIT,
                    "securityContext": {**RESTRICTED_INIT["securityContext"], "runAsUser": 0},
                }
            ],
            None,
            ["init container 'fetch-data' runs as root (runAsUser 0)"],
            id="root",
        ),
        pytest.param(
            [
                {
                    **RESTRICTED_INIT,
                    "securityContext": {**RESTRICTED_INIT["securityContext"], "privileged": True},
                }
            ],
            None,
            ["init container 'fetch-data' is privileged"],
            id="privileged",
        ),
        pytest.param(
            [{"name": "plain", "image": "busybox"}],
            None,
            [
                "init container 'plain' does not set allowPrivilegeEscalation to false",
                "init container 'plain' does not drop ALL capabilities",
            ],
            id="no security context: KubeSpawner adds none to init containers",
        ),
        pytest.param(
            [{"name": "plain", "image": "busybox"}],
            {},
            [
                "init container 'plain' does not set allowPrivilegeEscalation to false",
                "init container 'plain' may run as root: set runAsNonRoot on the pod or on it",
                "init container 'plain' has no seccomp profile: set RuntimeDefault on the pod "
                "or on it",
                "init container 'plain' does not drop ALL capabilities",
            ],
            id="the admin's pod context sets neither runAsNonRoot nor seccomp",
        ),
        pytest.param(
            [RESTRICTED_INIT],
            {"runAsUser": 0, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            [],
            id="the pod's own problems are not the container's",
        ),
    ],
)
def test_privileged_init_containers(
    containers: Any, pod_context: dict[str, Any] | None, expected: list[str]
) -> None:
    assert privileged_init_containers(containers, pod_context) == expected


def test_the_cloud_metadata_message_names_the_chart_fix_and_the_alternative() -> None:
    (message,) = privileged_init_containers([CHART_INIT_CONTAINER])
    for words in (
        "block-cloud-metadata",
        "singleuser.cloudMetadata.blockWithIptables: false",
        "network policy",
        "169.254.169.254",
        "QuotaKubeSpawner.allow_unrestricted_pods",
    ):
        assert words in message
