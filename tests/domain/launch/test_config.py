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
from eohub.domain.launch.volumes import Volume
from tests.domain.launch.config_errors import ERRORS as SIZE_AND_ENVIRONMENT_ERRORS
from tests.domain.launch.config_errors import env
from tests.domain.launch.config_volume_errors import VOLUME_ERRORS

ERRORS = [*SIZE_AND_ENVIRONMENT_ERRORS, *VOLUME_ERRORS]

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
