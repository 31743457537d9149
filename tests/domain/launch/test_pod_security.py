"""The restricted Pod Security Standard, one rule at a time: a passing and a failing pod.

Each case changes one field of a pod that meets the standard (paths are dotted, list
items by index) and says which words the violation must contain, or None when the pod
must still pass. Rules and allowed values: kubernetes.io "Pod Security Standards" and
the checks of Kubernetes' pod-security-admission.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eohub.domain.launch.pod_security import baseline_violations, restricted_violations

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def good_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-alice", "annotations": {"eohub.io/group": "eo-sci"}},
        "spec": {
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "fsGroup": 100,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/eohub/pangeo-notebook:2026.11.1",
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                    "securityContext": copy.deepcopy(RESTRICTED_CONTAINER),
                }
            ],
            "initContainers": [
                {
                    "name": "setup",
                    "image": "busybox:1.36",
                    "securityContext": copy.deepcopy(RESTRICTED_CONTAINER),
                }
            ],
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": "workspace-alice"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }


def changed(changes: dict[str, Any]) -> dict[str, Any]:
    """The good pod with ``changes`` applied; a value of DELETE removes the key."""
    pod = good_pod()
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = pod
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            node[int(last)] = value
        elif value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return pod


DELETE = object()
C0 = "spec.containers.0.securityContext"
I0 = "spec.initContainers.0.securityContext"
POD = "spec.securityContext"
EPHEMERAL = {
    "name": "debugger",
    "image": "busybox:1.36",
    "securityContext": {**copy.deepcopy(RESTRICTED_CONTAINER), "privileged": True},
}

CASES: list[tuple[str, dict[str, Any], str | None]] = [
    # host namespaces
    ("hostNetwork", {"spec.hostNetwork": True}, "shares the node's network"),
    ("hostNetwork false", {"spec.hostNetwork": False}, None),
    ("hostPID", {"spec.hostPID": True}, "node's process IDs"),
    ("hostIPC", {"spec.hostIPC": True}, "node's IPC"),
    # Windows HostProcess
    ("hostProcess pod", {f"{POD}.windowsOptions": {"hostProcess": True}}, "HostProcess"),
    (
        "hostProcess container",
        {f"{C0}.windowsOptions.hostProcess": True},
        "container 'notebook' runs as a Windows",
    ),
    ("hostProcess false", {f"{C0}.windowsOptions.hostProcess": False}, None),
    # privileged
    ("privileged", {f"{C0}.privileged": True}, "container 'notebook' is privileged"),
    ("privileged init", {f"{I0}.privileged": True}, "init container 'setup' is privileged"),
    (
        "privileged ephemeral",
        {"spec.ephemeralContainers": [EPHEMERAL]},
        "ephemeral container 'debugger' is privileged",
    ),
    ("privileged false", {f"{C0}.privileged": False}, None),
    # capabilities: baseline additions, restricted drop ALL and add only NET_BIND_SERVICE
    (
        "add SYS_ADMIN",
        {f"{C0}.capabilities.add": ["SYS_ADMIN"]},
        "adds the capabilities SYS_ADMIN",
    ),
    ("add CHOWN", {f"{C0}.capabilities.add": ["CHOWN"]}, "only NET_BIND_SERVICE may be added"),
    ("add NET_BIND_SERVICE", {f"{C0}.capabilities.add": ["NET_BIND_SERVICE"]}, None),
    ("no drop", {f"{C0}.capabilities": DELETE}, "container 'notebook' does not drop ALL"),
    ("drop NET_RAW only", {f"{C0}.capabilities.drop": ["NET_RAW"]}, "does not drop ALL"),
    (
        "drop ALL in init",
        {f"{I0}.capabilities.drop": []},
        "init container 'setup' does not drop ALL",
    ),
    # volumes
    (
        "hostPath",
        {"spec.volumes.1": {"name": "node", "hostPath": {"path": "/srv"}}},
        "volume 'node' mounts a directory of the node",
    ),
    (
        "gitRepo",
        {"spec.volumes.1": {"name": "repo", "gitRepo": {"repository": "x"}}},
        "volume 'repo' is a gitRepo volume",
    ),
    (
        "nfs",
        {"spec.volumes.1": {"name": "archive", "nfs": {"server": "nas", "path": "/eo"}}},
        "volume 'archive' is of type nfs",
    ),
    (
        "awsElasticBlockStore",
        {"spec.volumes.1": {"name": "ebs", "awsElasticBlockStore": {"volumeID": "v"}}},
        "of type awsElasticBlockStore",
    ),
    ("configMap", {"spec.volumes.1": {"name": "cfg", "configMap": {"name": "c"}}}, None),
    ("secret", {"spec.volumes.1": {"name": "s", "secret": {"secretName": "s"}}}, None),
    ("projected", {"spec.volumes.1": {"name": "p", "projected": {"sources": []}}}, None),
    ("downwardAPI", {"spec.volumes.1": {"name": "d", "downwardAPI": {"items": []}}}, None),
    ("csi", {"spec.volumes.1": {"name": "c", "csi": {"driver": "x"}}}, None),
    (
        "ephemeral",
        {"spec.volumes.1": {"name": "e", "ephemeral": {"volumeClaimTemplate": {}}}},
        None,
    ),
    # host ports
    ("hostPort", {"spec.containers.0.ports.0.hostPort": 8888}, "opens the node's ports 8888"),
    ("hostPort 0", {"spec.containers.0.ports.0.hostPort": 0}, None),
    # probe and lifecycle hosts
    (
        "probe host",
        {"spec.containers.0.livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}},
        "call the hosts 10.0.0.1",
    ),
    (
        "hook host",
        {"spec.containers.0.lifecycle": {"preStop": {"tcpSocket": {"host": "db", "port": 5432}}}},
        "call the hosts db",
    ),
    (
        "probe no host",
        {"spec.containers.0.readinessProbe": {"httpGet": {"host": "", "port": 8888}}},
        None,
    ),
    # AppArmor
    (
        "apparmor annotation",
        {
            "metadata.annotations": {
                "container.apparmor.security.beta.kubernetes.io/notebook": "unconfined"
            }
        },
        "AppArmor profile 'unconfined'",
    ),
    (
        "apparmor runtime/default",
        {
            "metadata.annotations": {
                "container.apparmor.security.beta.kubernetes.io/notebook": "runtime/default"
            }
        },
        None,
    ),
    (
        "apparmor localhost/",
        {
            "metadata.annotations": {
                "container.apparmor.security.beta.kubernetes.io/notebook": "localhost/eo"
            }
        },
        None,
    ),
    (
        "apparmor pod Unconfined",
        {f"{POD}.appArmorProfile": {"type": "Unconfined"}},
        "the pod sets the AppArmor profile 'Unconfined'",
    ),
    (
        "apparmor container Localhost",
        {f"{C0}.appArmorProfile": {"type": "Localhost", "localhostProfile": "eo"}},
        None,
    ),
    # SELinux
    ("selinux spc_t", {f"{C0}.seLinuxOptions": {"type": "spc_t"}}, "SELinux type 'spc_t'"),
    (
        "selinux user",
        {f"{POD}.seLinuxOptions": {"user": "sysadm_u"}},
        "the pod sets the SELinux user 'sysadm_u'",
    ),
    ("selinux role", {f"{C0}.seLinuxOptions": {"role": "sysadm_r"}}, "SELinux role 'sysadm_r'"),
    (
        "selinux container_t and level",
        {f"{C0}.seLinuxOptions": {"type": "container_t", "level": "s0:c1,c2"}},
        None,
    ),
    # /proc
    ("procMount Unmasked", {f"{C0}.procMount": "Unmasked"}, "unmasks /proc"),
    ("procMount Default", {f"{C0}.procMount": "Default"}, None),
    # seccomp
    (
        "seccomp pod Unconfined",
        {f"{POD}.seccompProfile.type": "Unconfined"},
        "the pod turns seccomp off",
    ),
    (
        "seccomp container Unconfined",
        {f"{C0}.seccompProfile": {"type": "Unconfined"}},
        "container 'notebook' turns seccomp off",
    ),
    (
        "seccomp missing",
        {f"{POD}.seccompProfile": DELETE},
        "container 'notebook' has no seccomp profile",
    ),
    (
        "seccomp on every container",
        {
            f"{POD}.seccompProfile": DELETE,
            f"{C0}.seccompProfile": {"type": "RuntimeDefault"},
            f"{I0}.seccompProfile": {"type": "Localhost", "localhostProfile": "eo.json"},
        },
        None,
    ),
    # sysctls
    (
        "unsafe sysctl",
        {f"{POD}.sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
        "unsafe sysctls kernel.msgmax",
    ),
    (
        "safe sysctl",
        {f"{POD}.sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]},
        None,
    ),
    # ulimits, cgroups
    ("ulimits", {f"{C0}.ulimits": [{"name": "nofile", "soft": 1, "hard": 2}]}, "sets ulimits"),
    (
        "cgroup ReadWrite",
        {f"{C0}.cgroupOptions": {"mountMode": "ReadWrite"}},
        "mounts its cgroups 'ReadWrite'",
    ),
    ("cgroup ReadOnly", {f"{C0}.cgroupOptions": {"mountMode": "ReadOnly"}}, None),
    # privilege escalation
    (
        "escalation unset",
        {f"{C0}.allowPrivilegeEscalation": DELETE},
        "container 'notebook' does not set allowPrivilegeEscalation",
    ),
    (
        "escalation true",
        {f"{I0}.allowPrivilegeEscalation": True},
        "init container 'setup' does not set allowPrivilegeEscalation",
    ),
    # running as non-root
    (
        "runAsNonRoot unset",
        {f"{POD}.runAsNonRoot": DELETE},
        "container 'notebook' may run as root",
    ),
    (
        "runAsNonRoot pod false",
        {f"{POD}.runAsNonRoot": False},
        "the pod sets runAsNonRoot to false",
    ),
    (
        "runAsNonRoot container false",
        {f"{C0}.runAsNonRoot": False},
        "container 'notebook' sets runAsNonRoot to false",
    ),
    (
        "runAsNonRoot on every container",
        {f"{POD}.runAsNonRoot": DELETE, f"{C0}.runAsNonRoot": True, f"{I0}.runAsNonRoot": True},
        None,
    ),
    ("runAsUser pod 0", {f"{POD}.runAsUser": 0}, "the pod runs as root (runAsUser 0)"),
    ("runAsUser container 0", {f"{C0}.runAsUser": 0}, "container 'notebook' runs as root"),
    ("runAsUser container 1000", {f"{C0}.runAsUser": 1000}, None),
]


@pytest.mark.parametrize(
    ("changes", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_restricted_rule(changes: dict[str, Any], expected: str | None) -> None:
    problems = restricted_violations(changed(changes))
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_the_good_pod_passes_both_profiles() -> None:
    assert restricted_violations(good_pod()) == []
    assert baseline_violations(good_pod()) == []


def test_baseline_does_not_ask_for_restricted_settings() -> None:
    loose = changed({POD: {}, C0: {}, I0: {}, "spec.volumes.1": {"name": "n", "nfs": {}}})
    assert baseline_violations(loose) == []
    assert len(restricted_violations(loose)) >= 5


def test_windows_pods_are_exempt_from_linux_only_rules() -> None:
    # As in pod-security-admission: seccomp, capabilities and privilege escalation do
    # not apply to Windows; running as non-root still does.
    windows = changed({"spec.os": {"name": "windows"}, POD: {}, C0: {}, I0: {}})
    problems = restricted_violations(windows)
    assert problems
    assert all("may run as root" in p for p in problems)


def test_every_violation_is_reported_once_with_its_place() -> None:
    pod = changed({f"{C0}.privileged": True, f"{I0}.privileged": True, "spec.hostPID": True})
    assert restricted_violations(pod) == [
        "the pod shares the node's process IDs (hostPID)",
        "container 'notebook' is privileged",
        "init container 'setup' is privileged",
    ]


# Real field names, so that odd values land where the checks look.
FIELDS = st.sampled_from(
    [
        "spec",
        "metadata",
        "annotations",
        "containers",
        "initContainers",
        "securityContext",
        "volumes",
        "capabilities",
        "add",
        "drop",
        "name",
        "ports",
        "hostPort",
        "sysctls",
        "seccompProfile",
        "type",
        "seLinuxOptions",
        "livenessProbe",
        "httpGet",
        "host",
        "os",
    ]
) | st.text(max_size=6)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(FIELDS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_odd_manifests_never_raise(manifest: Any) -> None:
    problems = restricted_violations(manifest)
    assert all(isinstance(p, str) and p for p in problems)
