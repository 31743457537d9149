"""Launch config errors in sizes and environments: each bad entry, and the key its message
names (``config_volume_errors`` holds those in volumes)."""

from __future__ import annotations

from typing import Any


def size(**kw: Any) -> dict[str, Any]:
    return {"cpu": 1, "memory": "1G", **kw}


def env(**kw: Any) -> dict[str, Any]:
    return {"image": "jupyter/base-notebook:latest", **kw}


def vol(**kw: Any) -> dict[str, Any]:
    return {"kind": "pvc", "claim_name": "data", "mount_path": "/data", **kw}


def home(**kw: Any) -> dict[str, Any]:
    return {"kind": "workspace", "mount_path": "/home/jovyan", "storage": "1G", **kw}


# (id, section, entries, backend, the key path the message starts with, a fragment of it)
ERRORS: list[tuple[str, str, Any, str, str, str]] = [
    ("sizes not a mapping", "sizes", ["small"], "kube", "sizes", "must be a mapping"),
    ("size name", "sizes", {"Big": size()}, "kube", "sizes", "size name 'Big' must be"),
    ("size name type", "sizes", {1: size()}, "kube", "sizes", "must be strings"),
    ("size not a mapping", "sizes", {"s": 4}, "kube", "sizes.s", "must be a mapping"),
    ("size unknown key", "sizes", {"s": size(ram=2)}, "kube", "sizes.s", "unknown key 'ram'"),
    ("size allowed keys listed", "sizes", {"s": size(ram=2)}, "kube", "sizes.s", "cpu, cpu_limit"),
    ("cpu missing", "sizes", {"s": {"memory": "1G"}}, "kube", "sizes.s.cpu", "is required"),
    ("cpu zero", "sizes", {"s": size(cpu=0)}, "kube", "sizes.s.cpu", "above 0"),
    ("cpu text", "sizes", {"s": size(cpu="2")}, "kube", "sizes.s.cpu", "must be a number"),
    ("cpu boolean", "sizes", {"s": size(cpu=True)}, "kube", "sizes.s.cpu", "must be a number"),
    ("cpu nan", "sizes", {"s": size(cpu=float("nan"))}, "kube", "sizes.s.cpu", "above 0"),
    ("cpu tiny", "sizes", {"s": size(cpu=0.0001)}, "kube", "sizes.s.cpu", "one millicore"),
    ("cpu huge", "sizes", {"s": size(cpu=10**6)}, "kube", "sizes.s.cpu", "at most 4096"),
    ("cpu vast", "sizes", {"s": size(cpu=10**400)}, "kube", "sizes.s.cpu", "at most 4096"),
    ("memory missing", "sizes", {"s": {"cpu": 1}}, "kube", "sizes.s.memory", "is required"),
    ("memory text", "sizes", {"s": size(memory="lots")}, "kube", "sizes.s.memory", "like 4G"),
    ("memory zero", "sizes", {"s": size(memory=0)}, "kube", "sizes.s.memory", "above 0 bytes"),
    ("cpu limit", "sizes", {"s": size(cpu=2, cpu_limit=1)}, "kube", "sizes.s.cpu_limit", "cpu"),
    (
        "memory limit",
        "sizes",
        {"s": size(memory="2G", memory_limit="1G")},
        "kube",
        "sizes.s.memory_limit",
        "at least memory",
    ),
    ("gpus negative", "sizes", {"s": size(gpus=-1)}, "kube", "sizes.s.gpus", "between 0"),
    ("gpus fraction", "sizes", {"s": size(gpus=0.5)}, "kube", "sizes.s.gpus", "whole number"),
    (
        "display name",
        "sizes",
        {"s": size(display_name=5)},
        "kube",
        "sizes.s.display_name",
        "must be a string",
    ),
    (
        "display name control",
        "sizes",
        {"s": size(display_name="a\nb")},
        "kube",
        "sizes.s.display_name",
        "control characters",
    ),
    ("envs not a mapping", "environments", ["x"], "kube", "environments", "must be a mapping"),
    ("env name", "environments", {"a b": env()}, "kube", "environments", "name 'a b'"),
    ("env name long", "environments", {"a" * 64: env()}, "kube", "environments", "1 to 63"),
    ("env unknown key", "environments", {"e": env(img=1)}, "kube", "environments.e", "'img'"),
    (
        "image required",
        "environments",
        {"e": {}},
        "kube",
        "environments.e.image",
        "is required",
    ),
    (
        "image on local",
        "environments",
        {"e": env()},
        "local",
        "environments.e.image",
        "not used by the 'local' backend",
    ),
    (
        "command on kube",
        "environments",
        {"e": env(command=["x"])},
        "kube",
        "environments.e.command",
        "not used by the 'kube' backend",
    ),
    (
        "image with more after the tag",
        "environments",
        {"e": env(image="jupyter/x:y; anything")},
        "kube",
        "environments.e.image",
        "is not allowed here",
    ),
    (
        "command not a list",
        "environments",
        {"e": {"command": "jupyterhub-singleuser"}},
        "local",
        "environments.e.command",
        "must be a list",
    ),
    (
        "command item",
        "environments",
        {"e": {"command": ["x", 3]}},
        "local",
        "environments.e.command[1]",
        "non-empty string",
    ),
    (
        "env variable name",
        "environments",
        {"e": env(env={"1BAD": "x"})},
        "kube",
        "environments.e.env",
        "'1BAD' is not a valid environment variable name",
    ),
    (
        "env variable value",
        "environments",
        {"e": env(env={"N": 1})},
        "kube",
        "environments.e.env.N",
        "must be a string",
    ),
    (
        "env not a mapping",
        "environments",
        {"e": env(env=["A=1"])},
        "kube",
        "environments.e.env",
        "must be a mapping",
    ),
    *[
        (
            f"default_urlpath {path!r}",
            "environments",
            {"e": env(default_urlpath=path)},
            "kube",
            "environments.e.default_urlpath",
            fragment,
        )
        for path, fragment in [
            ("lab", "must start with '/'"),
            ("/lab/../../hub", "'..'"),
            ("//evil.example.org", "'//'"),
            ("/\\evil.example.org", "no '//' or"),
            ("/lab\x00", "control"),
            ("/javascript:alert(1)", "scheme"),
            ("/lab tree", "may contain only"),
        ]
    ],
    (
        "allowed_groups as text",
        "environments",
        {"e": env(allowed_groups="climate")},
        "kube",
        "environments.e.allowed_groups",
        "must be a list",
    ),
    (
        "allowed_groups item",
        "environments",
        {"e": env(allowed_groups=["ok", ""])},
        "kube",
        "environments.e.allowed_groups[1]",
        "non-empty string",
    ),
    (
        "allowed_groups padded",
        "environments",
        {"e": env(allowed_groups=[" climate"])},
        "kube",
        "environments.e.allowed_groups[0]",
        "not a valid group name",
    ),
    (
        "allowed_users repeated",
        "environments",
        {"e": env(allowed_users=["a", "a"])},
        "kube",
        "environments.e.allowed_users[1]",
        "listed twice",
    ),
    (
        "unknown size",
        "environments",
        {"pangeo": env(sizes=["small", "huge"])},
        "kube",
        "environments.pangeo.sizes[1]",
        "unknown size 'huge'",
    ),
    (
        "size listed twice",
        "environments",
        {"e": env(sizes=["small", "small"])},
        "kube",
        "environments.e.sizes[1]",
        "listed twice",
    ),
    (
        "GPU size without gpu",
        "environments",
        {"e": env(sizes=["gpu"])},
        "kube",
        "environments.e.sizes[0]",
        "set gpu: true",
    ),
    (
        "default size elsewhere",
        "environments",
        {"e": env(sizes=["small"], default_size="large")},
        "kube",
        "environments.e.default_size",
        "not among this environment's sizes",
    ),
    (
        "default size is a GPU size",
        "environments",
        {"e": env(default_size="gpu")},
        "kube",
        "environments.e.default_size",
        "not among",
    ),
    ("gpu text", "environments", {"e": env(gpu="yes")}, "kube", "environments.e.gpu", "true or"),
    (
        "node selector key",
        "environments",
        {"e": env(node_selector={"bad key": "x"})},
        "kube",
        "environments.e.node_selector",
        "not a valid label key",
    ),
    (
        "tolerations not a list",
        "environments",
        {"e": env(tolerations={"key": "x"})},
        "kube",
        "environments.e.tolerations",
        "must be a list",
    ),
    *[
        (
            f"toleration {label}",
            "environments",
            {"e": env(tolerations=[{"key": "a", "effect": "NoSchedule"}, toleration])},
            "kube",
            f"environments.e.tolerations[1]{path}",
            fragment,
        )
        for label, toleration, path, fragment in [
            ("not a mapping", "a=b", "", "must be a mapping"),
            ("unknown key", {"key": "a", "effects": "x"}, "", "unknown key 'effects'"),
            ("operator", {"key": "a", "operator": "In"}, ".operator", "'Equal' or 'Exists'"),
            ("exists with value", {"operator": "Exists", "value": "x"}, ".value", "left out"),
            ("equal without key", {"value": "x"}, ".key", "is required"),
            ("effect", {"key": "a", "effect": "Never"}, ".effect", "NoSchedule"),
            ("seconds", {"key": "a", "tolerationSeconds": 5}, ".tolerationSeconds", "NoExecute"),
        ]
    ],
    (
        "max duration zero",
        "environments",
        {"e": env(max_duration=0)},
        "kube",
        "environments.e.max_duration",
        "between 1",
    ),
    (
        "max duration text",
        "environments",
        {"e": env(max_duration="8h")},
        "kube",
        "environments.e.max_duration",
        "whole number",
    ),
    (
        "pass_access_token text",
        "environments",
        {"e": env(pass_access_token="true")},
        "kube",
        "environments.e.pass_access_token",
        "true or false",
    ),
    (
        "two defaults",
        "environments",
        {"a": env(default=True), "b": env(), "c": env(default=True)},
        "kube",
        "environments.c.default",
        "environment 'a' is already the default",
    ),
]
