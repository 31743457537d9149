"""Volume definitions: each kind per backend, mount paths, and filling in templates."""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.accounting.ledger import GIB
from eohub.domain.launch.fields import LaunchConfigError
from eohub.domain.launch.volumes import (
    DEFAULT_CLAIM,
    FORBIDDEN_MOUNTS,
    MAX_GROUP_SLUG,
    MAX_USERNAME_SLUG,
    Volume,
    expand,
    fill_claim_name,
    parse_volume,
    parse_volumes,
)


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


def test_a_kube_workspace_gets_the_default_claim_and_its_size() -> None:
    data = {"kind": "workspace", "mount_path": "/home/jovyan", "storage": "10Gi"}
    volume = parse_volume("home", data, "kube")
    assert volume == Volume(
        name="home",
        kind="workspace",
        mount_path="/home/jovyan",
        display_name="home",
        claim_name=DEFAULT_CLAIM,
        storage_bytes=10 * GIB,
    )


def test_every_kind_keeps_its_own_settings() -> None:
    nfs = parse_volume(
        "archive",
        {
            "kind": "nfs",
            "server": "[2001:db8::1]",
            "path": "/exports/a",
            "mount_path": "/data/a",
            "sub_path": "{group}/shared",
            "allowed_groups": ["climate"],
            "optional": True,
            "read_only": True,
            "display_name": "Archive",
            "description": "Old runs.\nRead only.",
        },
        "kube",
    )
    assert (nfs.server, nfs.path, nfs.sub_path) == (
        "[2001:db8::1]",
        "/exports/a",
        "{group}/shared",
    )
    assert (nfs.optional, nfs.read_only, nfs.allowed_groups) == (
        True,
        True,
        frozenset({"climate"}),
    )
    assert (nfs.display_name, nfs.description) == ("Archive", "Old runs.\nRead only.")
    local = parse_volume(
        "home",
        {"kind": "workspace", "local_path": "/srv/{group}/{username}", "mount_path": "/w"},
        "local",
    )
    assert (local.local_path, local.claim_name, local.storage_bytes) == (
        "/srv/{group}/{username}",
        "",
        None,
    )
    host = {"kind": "host_path", "path": "/s/{username}", "mount_path": "/s"}
    assert parse_volume("s", host, "local").path == "/s/{username}"


def vol(**kw: Any) -> dict[str, Any]:
    return {"kind": "pvc", "claim_name": "data", "mount_path": "/data", **kw}


# (id, volume, backend, the key path the message starts with, a fragment of it)
REFUSED: list[tuple[str, Any, str, str, str]] = [
    ("not a mapping", "pvc", "kube", "volumes.v.kind", "must be one of workspace, pvc"),
    ("root", vol(mount_path="/"), "kube", "volumes.v.mount_path", "hide a system directory"),
    *[
        (f"over {p}", vol(mount_path=p + "/x"), "kube", "volumes.v.mount_path", "system directory")
        for p in FORBIDDEN_MOUNTS
    ],
    ("a sibling of /etc", vol(mount_path="/etcetera"), "kube", "", ""),
    ("relative mount", vol(mount_path="data"), "kube", "volumes.v.mount_path", "absolute path"),
    ("unnormalised", vol(mount_path="/a//b"), "kube", "volumes.v.mount_path", "'/a/b'"),
    ("dot-dot", vol(mount_path="/a/../b"), "kube", "volumes.v.mount_path", "'..'"),
    ("absolute sub_path", vol(sub_path="/x"), "kube", "volumes.v.sub_path", "relative"),
    ("climbing sub_path", vol(sub_path="../x"), "kube", "volumes.v.sub_path", "relative"),
    ("sub_path field", vol(sub_path="{home}"), "kube", "volumes.v.sub_path", "{username}"),
    ("claim name", vol(claim_name="Data_1"), "kube", "volumes.v.claim_name", "Kubernetes name"),
    ("pvc claim", vol(claim_name=None), "kube", "volumes.v.claim_name", "existing claim"),
    ("unknown field", vol(claim_name="{servername}"), "kube", "volumes.v.claim_name", "{group}"),
    ("conversion", vol(claim_name="c-{group!r}"), "kube", "volumes.v.claim_name", "only"),
    ("attribute", vol(claim_name="{username.x}"), "kube", "volumes.v.claim_name", "only"),
    ("brace", vol(claim_name="c-{group"), "kube", "volumes.v.claim_name", "not a valid template"),
    ("upper case", vol(claim_name="Data-{group}"), "kube", "volumes.v.claim_name", "'Data-group'"),
    ("underscore", vol(claim_name="{group}_data"), "kube", "volumes.v.claim_name", "253"),
    ("leading dash", vol(claim_name="-{username}"), "kube", "volumes.v.claim_name", "starting"),
    (
        "too long with the longest slugs",
        vol(claim_name="c" * 150 + "-{username}-{group}"),
        "kube",
        "volumes.v.claim_name",
        f"is {150 + 2 + MAX_USERNAME_SLUG + MAX_GROUP_SLUG} characters long",
    ),
    ("just fits", vol(claim_name="c" * 140 + "-{username}-{group}"), "kube", "", ""),
    (
        "workspace claim",
        {"kind": "workspace", "mount_path": "/h", "storage": "1G", "claim_name": "W-{username}"},
        "kube",
        "volumes.v.claim_name",
        "Kubernetes name",
    ),
    (
        "templated storage class",
        {"kind": "workspace", "mount_path": "/h", "storage": "1G", "storage_class": "{group}"},
        "kube",
        "volumes.v.storage_class",
        "Kubernetes name",
    ),
    ("sub_path unknown field", vol(sub_path="{servername}"), "kube", "volumes.v.sub_path", "only"),
    (
        "nfs host",
        {"kind": "nfs", "server": "a b", "path": "/x", "mount_path": "/x"},
        "kube",
        "volumes.v.server",
        "is not allowed here",
    ),
    (
        "pvc key on nfs",
        {"kind": "nfs", "server": "s", "path": "/x", "mount_path": "/x", "claim_name": "c"},
        "kube",
        "volumes.v",
        "unknown key 'claim_name'",
    ),
    (
        "workspace size",
        {"kind": "workspace", "mount_path": "/h"},
        "kube",
        "volumes.v.storage",
        "is required",
    ),
    (
        "zero size",
        {"kind": "workspace", "mount_path": "/h", "storage": 0},
        "kube",
        "volumes.v.storage",
        "above 0 bytes",
    ),
]


@pytest.mark.parametrize(
    ("data", "backend", "where", "fragment"),
    [c[1:] for c in REFUSED],
    ids=[c[0] for c in REFUSED],
)
def test_bad_volumes_name_the_key(data: Any, backend: str, where: str, fragment: str) -> None:
    if not where:
        assert parse_volume("v", data, backend).name == "v"
        return
    with pytest.raises(LaunchConfigError) as caught:
        parse_volume("v", data, backend)
    assert caught.value.where == where
    assert fragment in str(caught.value), str(caught.value)


def test_two_volumes_cannot_share_a_mount_path() -> None:
    volumes = {"a": vol(), "b": vol(claim_name="other")}
    with pytest.raises(LaunchConfigError) as caught:
        parse_volumes(volumes, "kube")
    assert caught.value.where == "volumes.b.mount_path"
    assert "already the mount path of volume 'a'" in str(caught.value)


def test_volumes_keep_the_admins_order() -> None:
    volumes = {"z": vol(mount_path="/z"), "a": vol(mount_path="/a")}
    assert list(parse_volumes(volumes, "kube")) == ["z", "a"]
    assert parse_volumes({}, "local") == {}
    with pytest.raises(LaunchConfigError, match=r"^volumes: must be a mapping"):
        parse_volumes([vol()], "kube")


@pytest.mark.parametrize(
    ("data", "claim", "sub_path"),
    [
        (vol(claim_name="{group}-data"), "{group}-data", ""),
        (
            vol(claim_name="data.{group}", sub_path="{group}/{username}"),
            "data.{group}",
            "{group}/{username}",
        ),
        (vol(claim_name="shared"), "shared", ""),
        (
            {
                "kind": "workspace",
                "mount_path": "/h",
                "storage": "1G",
                "claim_name": "ws-{group}-{username}",
            },
            "ws-{group}-{username}",
            "",
        ),
    ],
)
def test_claim_names_and_sub_paths_keep_their_templates(
    data: dict[str, Any], claim: str, sub_path: str
) -> None:
    volume = parse_volume("v", data, "kube")
    assert (volume.claim_name, volume.sub_path) == (claim, sub_path)


@pytest.mark.parametrize(
    ("template", "username", "group", "expected"),
    [
        ("{group}-data", "alice", "climate", "climate-data"),
        ("workspace-{username}", "alice", "", "workspace-alice"),
        ("ws-{group}-{username}", "u" * MAX_USERNAME_SLUG, "g" * MAX_GROUP_SLUG, None),
        ("shared", "Not A Slug", "", "shared"),
    ],
)
def test_fill_claim_name(template: str, username: str, group: str, expected: str | None) -> None:
    if expected is None:
        expected = f"ws-{group}-{username}"
    assert fill_claim_name(template, username=username, group=group) == expected


@pytest.mark.parametrize(
    ("template", "username", "group", "words"),
    [
        ("{group}-data", "alice", "", "group '' cannot be used"),
        ("{group}-data", "alice", "Climate", "not a valid Kubernetes name"),
        ("{group}-data", "alice", "eo_sci", "not a valid Kubernetes name"),
        ("data-{username}", "a/b", "", "cannot be used in a path"),
        ("c" * 250 + "{username}", "alice", "", "not a valid Kubernetes name"),
    ],
)
def test_fill_claim_name_refuses_names_kubernetes_would(
    template: str, username: str, group: str, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        fill_claim_name(template, username=username, group=group)
