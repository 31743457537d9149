"""The launch config: what a valid config becomes, and every error naming its key."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eohub.domain.accounting.ledger import GIB, Resources
from eohub.domain.launch.config import (
    Environment,
    LaunchConfig,
    LaunchConfigError,
    parse_launch_config,
)
from eohub.domain.launch.volumes import Volume, expand

SIZES: dict[str, Any] = {
    "small": {"display_name": "Small", "cpu": 1, "memory": "2G"},
    "large": {"cpu": 4, "cpu_limit": 8, "memory": "16G", "memory_limit": "24G"},
    "gpu": {"cpu": 8, "memory": 34359738368, "gpus": 1},
}
ENVIRONMENTS: dict[str, Any] = {
    "pangeo": {
        "display_name": "Pangeo",
        "description": "Xarray, Dask and friends.\nUpdated monthly.",
        "image": "pangeo/pangeo-notebook:2024.01.01",
        "default": True,
        "sizes": ["large", "small"],
        "default_size": "small",
        "env": {"DASK_DISTRIBUTED__WORKERS": "4", "_X": ""},
        "allowed_groups": ["climate", "vo.example.org:eo"],
        "node_selector": {"node.kubernetes.io/pool": "user"},
        "max_duration": 86400,
    },
    "ml": {
        "image": "quay.io/eohub/ml@sha256:0123abcd",
        "gpu": True,
        "allowed_users": ["alice"],
        "default_urlpath": "/vscode",
        "pass_access_token": True,
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "value": "", "effect": "NoExecute", "tolerationSeconds": 60},
        ],
    },
    "plain": {"image": "jupyter/base-notebook"},
}
VOLUMES: dict[str, Any] = {
    "home": {"kind": "workspace", "mount_path": "/home/jovyan", "storage": "10Gi"},
    "common-data": {
        "kind": "pvc",
        "claim_name": "common-data",
        "mount_path": "/data/common",
        "read_only": True,
    },
    "archive": {
        "kind": "nfs",
        "server": "nfs.example.org",
        "path": "/exports/archive",
        "mount_path": "/data/archive",
        "optional": True,
        "allowed_groups": ["climate"],
        "sub_path": "{group}/shared",
    },
    "scratch": {"kind": "host_path", "path": "/scratch/{username}", "mount_path": "/scratch"},
}


def kube() -> LaunchConfig:
    return parse_launch_config(ENVIRONMENTS, SIZES, VOLUMES, backend="kube")


def test_a_valid_kube_config() -> None:
    config = kube()
    assert list(config.environments) == ["pangeo", "ml", "plain"]
    pangeo = config.environments["pangeo"]
    assert pangeo.sizes == ("large", "small")  # the admin's order
    assert pangeo.default_size == "small"
    assert pangeo.allowed_groups == {"climate", "vo.example.org:eo"}
    assert pangeo.default_urlpath == "/lab"
    assert pangeo.description.endswith("monthly.")
    assert config.default_environment is pangeo
    # Listing no sizes offers them all, GPU sizes only to a GPU environment.
    assert config.environments["ml"].sizes == ("small", "large", "gpu")
    assert config.environments["plain"].sizes == ("small", "large")
    assert config.environments["ml"].tolerations[1] == {
        "key": "spot",
        "operator": "Equal",
        "value": "",
        "effect": "NoExecute",
        "tolerationSeconds": 60,
    }
    assert config.sizes["large"].memory_limit == 24 * GIB
    assert config.sizes["small"].display_name == "Small"
    assert config.sizes["gpu"].display_name == "gpu"
    assert config.volumes["home"].claim_name == "workspace-{username}"
    assert config.volumes["home"].storage_bytes == 10 * GIB
    assert config.charge_groups == frozenset()
    assert config.min_hours == 1


def test_charged_resources_are_the_guarantees() -> None:
    size = kube().sizes["large"]
    assert size.charged == Resources(millicores=4000, memory_bytes=16 * GIB, gpus=0)
    assert kube().sizes["gpu"].charged.gpus == 1


def test_a_valid_local_config() -> None:
    config = parse_launch_config(
        {"lab": {"command": ["jupyterhub-singleuser", "--debug"], "env": {"A": "1"}}},
        {"small": {"cpu": 0.5, "memory": "512Mi"}},
        {
            "home": {
                "kind": "workspace",
                "local_path": "/srv/eohub/workspaces/{username}",
                "mount_path": "/home/work",
            },
            "data": {"kind": "host_path", "path": "/srv/data", "mount_path": "/data"},
        },
        backend="local",
        charge_groups=["climate"],
        min_hours="0.5",
    )
    lab = config.environments["lab"]
    assert lab.image is None
    assert lab.command == ("jupyterhub-singleuser", "--debug")
    assert config.sizes["small"].memory == 512 * 1024**2
    assert config.volumes["home"].local_path == "/srv/eohub/workspaces/{username}"
    assert config.charge_groups == {"climate"}
    assert config.min_hours == Fraction(1, 2)
    assert config.default_environment is None


def test_an_empty_config_is_valid() -> None:
    assert parse_launch_config({}, {}, {}, backend="local").environments == {}


def test_objects_are_frozen_and_hashable() -> None:
    config = kube()
    env = config.environments["pangeo"]
    assert isinstance(env, Environment)
    assert len({env, *config.environments.values()}) == 3
    assert len(set(config.volumes.values())) == 4
    with pytest.raises(AttributeError):
        env.image = "evil"  # type: ignore[misc]


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
    ("volumes not a mapping", "volumes", [vol()], "kube", "volumes", "must be a mapping"),
    ("volume name", "volumes", {"Data": vol()}, "kube", "volumes", "volume name 'Data'"),
    ("kind missing", "volumes", {"v": {"mount_path": "/d"}}, "kube", "volumes.v.kind", "one of"),
    ("kind unknown", "volumes", {"v": vol(kind="s3")}, "kube", "volumes.v.kind", "not 's3'"),
    (
        "pvc on local",
        "volumes",
        {"v": vol()},
        "local",
        "volumes.v.kind",
        "'pvc' volumes need Kubernetes; the local backend takes only 'workspace'",
    ),
    (
        "nfs on local",
        "volumes",
        {"v": {"kind": "nfs", "server": "x", "path": "/x", "mount_path": "/x"}},
        "local",
        "volumes.v.kind",
        "'nfs' volumes need Kubernetes",
    ),
    (
        "local workspace without a path",
        "volumes",
        {"v": {"kind": "workspace", "mount_path": "/w"}},
        "local",
        "volumes.v.local_path",
        "is required",
    ),
    (
        "local workspace shared by all",
        "volumes",
        {"v": {"kind": "workspace", "mount_path": "/w", "local_path": "/srv/w"}},
        "local",
        "volumes.v.local_path",
        "must use {username}",
    ),
    (
        "local workspace with a claim",
        "volumes",
        {"v": home(local_path="/w/{username}")},
        "local",
        "volumes.v",
        "unknown key 'storage'",
    ),
    (
        "kube workspace with a local path",
        "volumes",
        {"v": home(local_path="/w/{username}")},
        "kube",
        "volumes.v",
        "unknown key 'local_path'",
    ),
    (
        "workspace size missing",
        "volumes",
        {"v": home(storage=None)},
        "kube",
        "volumes.v.storage",
        "is required",
    ),
    (
        "workspace size",
        "volumes",
        {"v": home(storage="ten")},
        "kube",
        "volumes.v.storage",
        "like 4G",
    ),
    (
        "claim placeholder",
        "volumes",
        {"v": home(claim_name="ws-{uid}")},
        "kube",
        "volumes.v.claim_name",
        "only the placeholders {username} and {group}, not {uid}",
    ),
    (
        "claim attribute",
        "volumes",
        {"v": home(claim_name="ws-{username.__class__}")},
        "kube",
        "volumes.v.claim_name",
        "only the placeholders",
    ),
    (
        "claim conversion",
        "volumes",
        {"v": home(claim_name="ws-{username!r}")},
        "kube",
        "volumes.v.claim_name",
        "only the placeholders",
    ),
    (
        "claim positional",
        "volumes",
        {"v": home(claim_name="ws-{}")},
        "kube",
        "volumes.v.claim_name",
        "only the placeholders",
    ),
    (
        "claim brace",
        "volumes",
        {"v": home(claim_name="ws-{username")},
        "kube",
        "volumes.v.claim_name",
        "not a valid template",
    ),
    (
        "claim name",
        "volumes",
        {"v": home(claim_name="Work_{username}")},
        "kube",
        "volumes.v.claim_name",
        "not a valid Kubernetes name",
    ),
    (
        "storage class",
        "volumes",
        {"v": home(storage_class="Fast SSD")},
        "kube",
        "volumes.v.storage_class",
        "not a valid Kubernetes name",
    ),
    (
        "pvc without a claim",
        "volumes",
        {"v": vol(claim_name=None)},
        "kube",
        "volumes.v.claim_name",
        "is required",
    ),
    (
        "nfs without a server",
        "volumes",
        {"v": {"kind": "nfs", "path": "/x", "mount_path": "/x"}},
        "kube",
        "volumes.v.server",
        "is required",
    ),
    (
        "nfs server",
        "volumes",
        {"v": {"kind": "nfs", "server": "nfs/x", "path": "/x", "mount_path": "/x"}},
        "kube",
        "volumes.v.server",
        "not allowed",
    ),
    (
        "nfs relative path",
        "volumes",
        {"v": {"kind": "nfs", "server": "10.0.0.1", "path": "x", "mount_path": "/x"}},
        "kube",
        "volumes.v.path",
        "must be an absolute path",
    ),
    (
        "host path climbs",
        "volumes",
        {"v": {"kind": "host_path", "path": "/data/../etc", "mount_path": "/x"}},
        "kube",
        "volumes.v.path",
        "'..'",
    ),
    (
        "host path placeholder",
        "volumes",
        {"v": {"kind": "host_path", "path": "/data/{home}", "mount_path": "/x"}},
        "kube",
        "volumes.v.path",
        "not {home}",
    ),
    (
        "mount path missing",
        "volumes",
        {"v": vol(mount_path=None)},
        "kube",
        "volumes.v.mount_path",
        "is required",
    ),
    *[
        (
            f"mount path {path!r}",
            "volumes",
            {"v": vol(mount_path=path)},
            "kube",
            "volumes.v.mount_path",
            fragment,
        )
        for path, fragment in [
            ("data", "must be an absolute path"),
            ("/", "would hide a system directory"),
            ("/etc", "would hide a system directory"),
            ("/etc/ssl", "would hide a system directory"),
            ("/proc/1", "would hide a system directory"),
            ("/sys", "would hide a system directory"),
            ("/dev/shm", "would hide a system directory"),
            ("/data/", "must be normalised"),
            ("/data//x", "must be normalised"),
            ("/data/./x", "must be normalised"),
            ("/data/../etc", "'..'"),
            ("/data\n", "control characters"),
            (5, "must be a string"),
        ]
    ],
    *[
        (
            f"sub path {path!r}",
            "volumes",
            {"v": vol(sub_path=path)},
            "kube",
            "volumes.v.sub_path",
            fragment,
        )
        for path, fragment in [
            ("/abs", "relative, normalised"),
            ("../up", "relative, normalised"),
            ("a/../../b", "relative, normalised"),
            ("a/", "relative, normalised"),
            ("{user}", "not {user}"),
        ]
    ],
    (
        "read only text",
        "volumes",
        {"v": vol(read_only="no")},
        "kube",
        "volumes.v.read_only",
        "true or false",
    ),
    (
        "volume groups",
        "volumes",
        {"v": vol(allowed_groups=[None])},
        "kube",
        "volumes.v.allowed_groups[0]",
        "non-empty string",
    ),
    (
        "shared mount path",
        "volumes",
        {"a": vol(), "b": vol(claim_name="other")},
        "kube",
        "volumes.b.mount_path",
        "'/data' is already the mount path of volume 'a'",
    ),
]


@pytest.mark.parametrize(
    ("section", "entries", "backend", "where", "fragment"),
    [c[1:] for c in ERRORS],
    ids=[c[0] for c in ERRORS],
)
def test_config_errors_name_the_key(
    section: str, entries: Any, backend: str, where: str, fragment: str
) -> None:
    config: dict[str, Any] = {"environments": {}, "sizes": SIZES, "volumes": {}}
    config[section] = entries
    with pytest.raises(LaunchConfigError) as info:
        parse_launch_config(**config, backend=backend)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{where}: "), message
    assert fragment in message, message
    assert info.value.where == where


def test_an_environment_with_no_size_to_offer() -> None:
    with pytest.raises(LaunchConfigError, match=r"^environments\.e\.sizes: no size is available"):
        parse_launch_config({"e": env()}, {"gpu": SIZES["gpu"]}, {}, backend="kube")


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"backend": "docker"}, "backend"),
        ({"charge_groups": "climate"}, "charge_groups"),
        ({"charge_groups": ["ok", ""]}, "charge_groups"),
        ({"min_hours": -1}, "min_hours"),
        ({"min_hours": "abc"}, "min_hours"),
        ({"min_hours": True}, "min_hours"),
        ({"min_hours": float("inf")}, "min_hours"),
    ],
)
def test_top_level_errors(kwargs: dict[str, Any], where: str) -> None:
    arguments: dict[str, Any] = {"backend": "kube", **kwargs}
    with pytest.raises(LaunchConfigError, match=f"^{where}: "):
        parse_launch_config({}, {}, {}, **arguments)


def test_charge_groups_may_be_any_iterable() -> None:
    config = parse_launch_config({}, {}, {}, backend="kube", charge_groups=iter(["a", "b"]))
    assert config.charge_groups == {"a", "b"}


@pytest.mark.parametrize(
    ("template", "username", "group", "expected"),
    [
        ("workspace-{username}", "alice", "", "workspace-alice"),
        ("/srv/{group}/{username}", "alice", "climate", "/srv/climate/alice"),
        ("shared", "../../etc", "", "shared"),  # no placeholder: the value is not used
        ("{{literal}}-{username}", "bob", "", "{literal}-bob"),
    ],
)
def test_expand(template: str, username: str, group: str, expected: str) -> None:
    assert expand(template, username=username, group=group) == expected


@pytest.mark.parametrize(
    ("template", "username", "group"),
    [
        ("/srv/{username}", "..", ""),
        ("/srv/{username}", "a/b", ""),
        ("/srv/{username}", "a\\b", ""),
        ("/srv/{username}", "", ""),
        ("/srv/{group}", "alice", ""),
        ("/srv/{group}", "alice", "."),
        ("/srv/{username}", "a\x00", ""),
    ],
)
def test_expand_refuses_values_that_would_change_the_path(
    template: str, username: str, group: str
) -> None:
    with pytest.raises(ValueError, match="cannot be used in a path"):
        expand(template, username=username, group=group)


def test_volume_defaults() -> None:
    volume = kube().volumes["common-data"]
    assert volume == Volume(
        name="common-data",
        kind="pvc",
        mount_path="/data/common",
        display_name="common-data",
        read_only=True,
        claim_name="common-data",
    )


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
KEYS = st.sampled_from(
    sorted(
        {k for e in ENVIRONMENTS.values() for k in e}
        | {k for s in SIZES.values() for k in s}
        | {k for v in VOLUMES.values() for k in v}
        | {"command", "local_path", "claim_name", "storage_class"}
    )
)
ENTRY = st.dictionaries(KEYS, JSONISH, max_size=6) | JSONISH
NAMES = st.sampled_from(["small", "large", "gpu", "pangeo", "x", "Bad"]) | st.text(max_size=5)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(NAMES, ENTRY, max_size=3),
    st.dictionaries(NAMES, ENTRY, max_size=3),
    st.dictionaries(NAMES, ENTRY, max_size=3),
    st.sampled_from(["kube", "local"]),
)
def test_any_config_parses_or_fails_with_a_config_error(
    environments: dict[str, Any], sizes: dict[str, Any], volumes: dict[str, Any], backend: str
) -> None:
    error: LaunchConfigError | None = None
    try:
        parse_launch_config(environments, sizes, volumes, backend=backend)  # type: ignore[arg-type]
    except LaunchConfigError as e:
        error = e
    if error is not None:
        assert error.where
        assert str(error).startswith(f"{error.where}: ")
