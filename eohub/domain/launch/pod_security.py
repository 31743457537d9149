"""The Kubernetes Pod Security Standards, "baseline" and "restricted", for a pod manifest.

A hub that creates pods for users should not depend on the namespace's admission
policy to notice that a config loosened them: :func:`restricted_violations` reads the
pod the spawner is about to send and says, in plain words, what breaks the
"restricted" profile (which includes "baseline"), naming the container or volume.

The rules follow the Pod Security Standards page on kubernetes.io and the checks of
Kubernetes' own ``pod-security-admission`` at the latest policy version (1.37): host
namespaces, HostProcess, privileged containers, capabilities, hostPath volumes, host
ports, probe and lifecycle hosts, AppArmor, SELinux, ``/proc`` mount, seccomp,
sysctls and ulimits (baseline); volume types, privilege escalation, non-root user,
seccomp, capabilities and cgroup mount mode (restricted). Like the admission
controller, the Linux-only restricted checks (privilege escalation, seccomp and
capabilities) exempt pods whose ``spec.os.name`` is ``windows``.

The input is the manifest as the API sees it: camelCase keys, as
``ApiClient.sanitize_for_serialization`` produces. Pure: standard library only. Values
of an unexpected shape count as absent, so this never raises on odd input; the API
server's schema validation is what rejects malformed objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

#: Capabilities baseline lets a container add (the container runtime's default set).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
#: The only capability restricted lets a container add back after dropping ALL.
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
#: Namespaced, isolated sysctls ("safe"), as of Kubernetes 1.32.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ping_group_range",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.tcp_wmem",
    }
)
#: Inline volume sources restricted allows: none reaches the node or a remote server.
RESTRICTED_VOLUME_TYPES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
CONTAINER_KINDS = (
    ("containers", "container"),
    ("initContainers", "init container"),
    ("ephemeralContainers", "ephemeral container"),
)

Pod = Mapping[str, Any]


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _spec(pod: Pod) -> Mapping[str, Any]:
    return _map(pod.get("spec"))


def _pod_context(pod: Pod) -> Mapping[str, Any]:
    return _map(_spec(pod).get("securityContext"))


def _containers(pod: Pod) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every container of the pod, with how to name it in a message."""
    spec = _spec(pod)
    for key, kind in CONTAINER_KINDS:
        for item in _list(spec.get(key)):
            container = _map(item)
            yield f"{kind} {str(container.get('name', '?'))!r}", container


def _context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(container.get("securityContext"))


def _is_windows(pod: Pod) -> bool:
    return _map(_spec(pod).get("os")).get("name") == "windows"


def _one_of(value: object, allowed: frozenset[str]) -> bool:
    # Odd values may be unhashable; only a string can be one of the allowed names.
    return isinstance(value, str) and value in allowed


def _is_root(value: object) -> bool:
    return value == 0 and not isinstance(value, bool)


def _names(values: object) -> list[str]:
    return [str(v) for v in _list(values)]


# -- baseline -------------------------------------------------------------------------


def host_namespaces(pod: Pod) -> list[str]:
    spec = _spec(pod)
    shared = {"hostNetwork": "network", "hostPID": "process IDs", "hostIPC": "IPC"}
    return [
        f"the pod shares the node's {what} ({key})"
        for key, what in shared.items()
        if spec.get(key) is True
    ]


def host_process(pod: Pod) -> list[str]:
    problems = []
    if _map(_pod_context(pod).get("windowsOptions")).get("hostProcess") is True:
        problems.append("the pod runs as a Windows HostProcess")
    for name, container in _containers(pod):
        if _map(_context(container).get("windowsOptions")).get("hostProcess") is True:
            problems.append(f"{name} runs as a Windows HostProcess")
    return problems


def privileged(pod: Pod) -> list[str]:
    return [
        f"{name} is privileged"
        for name, container in _containers(pod)
        if _context(container).get("privileged") is True
    ]


def added_capabilities(pod: Pod) -> list[str]:
    problems = []
    for name, container in _containers(pod):
        added = _names(_map(_context(container).get("capabilities")).get("add"))
        extra = sorted(set(added) - BASELINE_CAPABILITIES)
        if extra:
            problems.append(f"{name} adds the capabilities {', '.join(extra)}")
    return problems


def host_path_volumes(pod: Pod) -> list[str]:
    return [
        f"volume {str(volume.get('name', '?'))!r} mounts a directory of the node (hostPath)"
        for volume in map(_map, _list(_spec(pod).get("volumes")))
        if volume.get("hostPath") is not None
    ]


def git_repo_volumes(pod: Pod) -> list[str]:
    # Baseline since 1.31: the kubelet runs git on the node for it.
    return [
        f"volume {str(volume.get('name', '?'))!r} is a gitRepo volume, cloned by the node"
        for volume in map(_map, _list(_spec(pod).get("volumes")))
        if volume.get("gitRepo") is not None
    ]


def host_ports(pod: Pod) -> list[str]:
    problems = []
    for name, container in _containers(pod):
        ports = [_map(p).get("hostPort") for p in _list(container.get("ports"))]
        used = sorted(str(p) for p in ports if p not in (None, 0))
        if used:
            problems.append(f"{name} opens the node's ports {', '.join(used)} (hostPort)")
    return problems


def _handler_hosts(value: object) -> list[str]:
    handler = _map(value)
    hosts = (_map(handler.get(k)).get("host") for k in ("httpGet", "tcpSocket"))
    return [str(h) for h in hosts if h]


def probe_hosts(pod: Pod) -> list[str]:
    # Baseline since 1.34: a probe or hook with a host reaches past the pod.
    problems = []
    for name, container in _containers(pod):
        lifecycle = _map(container.get("lifecycle"))
        handlers = [container.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [lifecycle.get("postStart"), lifecycle.get("preStop")]
        hosts = sorted({h for handler in handlers for h in _handler_hosts(handler)})
        if hosts:
            problems.append(f"{name} has probes or hooks that call the hosts {', '.join(hosts)}")
    return problems


def apparmor(pod: Pod) -> list[str]:
    problems = []
    annotations = _map(_map(pod.get("metadata")).get("annotations"))
    for key, value in sorted(annotations.items()):
        text = str(value)
        allowed = text in ("", "runtime/default") or text.startswith("localhost/")
        if str(key).startswith(APPARMOR_ANNOTATION) and not allowed:
            problems.append(f"annotation {key} sets the AppArmor profile {text!r}")
    profile = _map(_pod_context(pod).get("appArmorProfile")).get("type")
    if profile is not None and not _one_of(profile, APPARMOR_TYPES):
        problems.append(f"the pod sets the AppArmor profile {profile!r}")
    for name, container in _containers(pod):
        profile = _map(_context(container).get("appArmorProfile")).get("type")
        if profile is not None and not _one_of(profile, APPARMOR_TYPES):
            problems.append(f"{name} sets the AppArmor profile {profile!r}")
    return problems


def _selinux_problem(value: object) -> str | None:
    options = _map(value)
    wrong = []
    if options.get("type") is not None and not _one_of(options.get("type"), SELINUX_TYPES):
        wrong.append(f"type {options.get('type')!r}")
    wrong += [f"{key} {options[key]!r}" for key in ("user", "role") if options.get(key)]
    return " and ".join(wrong) or None


def selinux(pod: Pod) -> list[str]:
    problems = []
    if problem := _selinux_problem(_pod_context(pod).get("seLinuxOptions")):
        problems.append(f"the pod sets the SELinux {problem}")
    for name, container in _containers(pod):
        if problem := _selinux_problem(_context(container).get("seLinuxOptions")):
            problems.append(f"{name} sets the SELinux {problem}")
    return problems


def proc_mount(pod: Pod) -> list[str]:
    return [
        f"{name} unmasks /proc (procMount {mount!r})"
        for name, container in _containers(pod)
        if (mount := _context(container).get("procMount")) not in (None, "Default")
    ]


def seccomp_unconfined(pod: Pod) -> list[str]:
    problems = []
    if _map(_pod_context(pod).get("seccompProfile")).get("type") == "Unconfined":
        problems.append("the pod turns seccomp off (Unconfined)")
    for name, container in _containers(pod):
        if _map(_context(container).get("seccompProfile")).get("type") == "Unconfined":
            problems.append(f"{name} turns seccomp off (Unconfined)")
    return problems


def sysctls(pod: Pod) -> list[str]:
    names = [str(_map(s).get("name")) for s in _list(_pod_context(pod).get("sysctls"))]
    unsafe = sorted(set(names) - SAFE_SYSCTLS)
    return [f"the pod sets the unsafe sysctls {', '.join(unsafe)}"] if unsafe else []


def ulimits(pod: Pod) -> list[str]:
    # Baseline since 1.37.
    return [
        f"{name} sets ulimits"
        for name, container in _containers(pod)
        if _context(container).get("ulimits") is not None
    ]


BASELINE_CHECKS: tuple[Callable[[Pod], list[str]], ...] = (
    host_process,
    host_namespaces,
    privileged,
    added_capabilities,
    host_path_volumes,
    git_repo_volumes,
    host_ports,
    probe_hosts,
    apparmor,
    selinux,
    proc_mount,
    seccomp_unconfined,
    sysctls,
    ulimits,
)


# -- restricted -----------------------------------------------------------------------


def volume_types(pod: Pod) -> list[str]:
    problems = []
    for volume in map(_map, _list(_spec(pod).get("volumes"))):
        if any(volume.get(t) is not None for t in RESTRICTED_VOLUME_TYPES):
            continue
        if volume.get("hostPath") is not None or volume.get("gitRepo") is not None:
            continue  # already reported by baseline, in its own words
        kinds = sorted(k for k in volume if k != "name") or ["no source"]
        problems.append(
            f"volume {str(volume.get('name', '?'))!r} is of type {', '.join(kinds)}; "
            f"only {', '.join(RESTRICTED_VOLUME_TYPES)} are allowed"
        )
    return problems


def privilege_escalation(pod: Pod) -> list[str]:
    if _is_windows(pod):
        return []
    return [
        f"{name} does not set allowPrivilegeEscalation to false"
        for name, container in _containers(pod)
        if _context(container).get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(pod: Pod) -> list[str]:
    pod_value = _pod_context(pod).get("runAsNonRoot")
    problems = ["the pod sets runAsNonRoot to false"] if pod_value is False else []
    for name, container in _containers(pod):
        value = _context(container).get("runAsNonRoot")
        if value is False:
            problems.append(f"{name} sets runAsNonRoot to false")
        elif value is not True and pod_value is not True:
            problems.append(f"{name} may run as root: set runAsNonRoot on the pod or on it")
    return problems


def run_as_user(pod: Pod) -> list[str]:
    root = _is_root(_pod_context(pod).get("runAsUser"))
    problems = ["the pod runs as root (runAsUser 0)"] if root else []
    for name, container in _containers(pod):
        if _is_root(_context(container).get("runAsUser")):
            problems.append(f"{name} runs as root (runAsUser 0)")
    return problems


def seccomp_required(pod: Pod) -> list[str]:
    if _is_windows(pod):
        return []
    pod_type = _map(_pod_context(pod).get("seccompProfile")).get("type")
    problems = []
    if pod_type is not None and not _one_of(pod_type, SECCOMP_TYPES | {"Unconfined"}):
        problems.append(f"the pod sets the seccomp profile {pod_type!r}")
    for name, container in _containers(pod):
        own = _map(_context(container).get("seccompProfile")).get("type")
        if own is None and not _one_of(pod_type, SECCOMP_TYPES):
            problems.append(
                f"{name} has no seccomp profile: set RuntimeDefault on the pod or on it"
            )
        elif own is not None and not _one_of(own, SECCOMP_TYPES | {"Unconfined"}):
            problems.append(f"{name} sets the seccomp profile {own!r}")
    return problems  # Unconfined is reported by the baseline check


def dropped_capabilities(pod: Pod) -> list[str]:
    if _is_windows(pod):
        return []
    problems = []
    for name, container in _containers(pod):
        capabilities = _map(_context(container).get("capabilities"))
        if "ALL" not in _names(capabilities.get("drop")):
            problems.append(f"{name} does not drop ALL capabilities")
        # Baseline already names additions outside its set; these are within it.
        added = set(_names(capabilities.get("add"))) & BASELINE_CAPABILITIES
        extra = sorted(added - RESTRICTED_CAPABILITIES)
        if extra:
            problems.append(
                f"{name} adds the capabilities {', '.join(extra)}; only NET_BIND_SERVICE "
                "may be added"
            )
    return problems


def cgroup_mount(pod: Pod) -> list[str]:
    problems = []
    for name, container in _containers(pod):
        mode = _map(_context(container).get("cgroupOptions")).get("mountMode")
        if mode not in (None, "ReadOnly"):
            problems.append(f"{name} mounts its cgroups {mode!r}, not ReadOnly")
    return problems


RESTRICTED_CHECKS: tuple[Callable[[Pod], list[str]], ...] = (
    volume_types,
    privilege_escalation,
    run_as_non_root,
    run_as_user,
    seccomp_required,
    dropped_capabilities,
    cgroup_mount,
)


def baseline_violations(pod: object) -> list[str]:
    """What in ``pod`` breaks the "baseline" profile; empty when nothing does."""
    if not isinstance(pod, Mapping):
        return ["the pod manifest is not an object"]
    return [problem for check in BASELINE_CHECKS for problem in check(pod)]


def restricted_violations(pod: object) -> list[str]:
    """What in ``pod`` breaks the "restricted" profile (baseline included); empty if none.

    ``pod`` is the manifest as a mapping; anything else is one violation. Each entry is
    one sentence naming the pod, container or volume at fault, e.g.
    ``"container 'notebook' is privileged"``.
    """
    if not isinstance(pod, Mapping):
        return ["the pod manifest is not an object"]
    return baseline_violations(pod) + [p for check in RESTRICTED_CHECKS for p in check(pod)]


__all__ = [
    "BASELINE_CAPABILITIES",
    "RESTRICTED_VOLUME_TYPES",
    "SAFE_SYSCTLS",
    "baseline_violations",
    "restricted_violations",
]
