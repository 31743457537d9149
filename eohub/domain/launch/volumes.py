"""Volume definitions of the launch config: what may be mounted, where, and for whom.

Only what the admin writes here ever becomes a mount: a user can choose among the
optional volumes, never describe one. Kinds:

``workspace``
    A per-user persistent volume: a PVC per user on Kubernetes (``claim_name``,
    ``storage``, ``storage_class``), a directory per user on the local backend
    (``local_path``).
``pvc``
    An existing shared claim (``claim_name``); Kubernetes only.
``nfs``
    An NFS export (``server``, ``path``); Kubernetes only.
``host_path``
    A directory of the node or the machine (``path``).

Claim names, sub-paths and paths are templates that may use ``{username}`` and
``{group}`` (the group charged), and nothing else; :func:`expand` fills them in, and
:func:`fill_claim_name` a claim name. On Kubernetes the values are slugs (KubeSpawner's
of the user name, at most :data:`MAX_USERNAME_SLUG` characters; a DNS-1123 label of the
group, at most :data:`MAX_GROUP_SLUG`), and a claim name must stay a valid Kubernetes
name with the longest of them, which start-up checks.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from eohub.domain.fields import describe
from eohub.domain.launch.fields import (
    Entry,
    LaunchConfigError,
    absolute_path_problem,
    check_name,
    sample,
)

VolumeKind = Literal["workspace", "pvc", "nfs", "host_path"]
KINDS: tuple[VolumeKind, ...] = ("workspace", "pvc", "nfs", "host_path")
DEFAULT_CLAIM = "workspace-{username}"
#: System directories a volume may not cover: mounting over them breaks the image.
FORBIDDEN_MOUNTS = ("/proc", "/sys", "/dev", "/etc")
# A DNS-1123 subdomain, as Kubernetes requires of claim and storage class names.
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
#: KubeSpawner's longest ``{username}`` slug, and the longest group slug the spawner uses.
MAX_USERNAME_SLUG = 48
MAX_GROUP_SLUG = 63
MAX_NAME = 253
_CLAIM_RULE = (
    f"is not a valid Kubernetes name: at most {MAX_NAME} lowercase letters, digits, '-' and '.', "
    "starting and ending with a letter or digit"
)
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_COMMON = frozenset(
    {
        "kind",
        "mount_path",
        "sub_path",
        "read_only",
        "allowed_groups",
        "optional",
        "display_name",
        "description",
    }
)
_KIND_KEYS: dict[tuple[str, str], frozenset[str]] = {
    ("kube", "workspace"): frozenset({"claim_name", "storage", "storage_class"}),
    ("kube", "pvc"): frozenset({"claim_name"}),
    ("kube", "nfs"): frozenset({"server", "path"}),
    ("kube", "host_path"): frozenset({"path"}),
    ("local", "workspace"): frozenset({"local_path"}),
    ("local", "host_path"): frozenset({"path"}),
}


@dataclass(frozen=True)
class Volume:
    """One volume the admin defined.

    Attributes
    ----------
    name, kind
        Its config key, and one of :data:`KINDS`.
    mount_path
        Where it appears in the server: absolute and normalised.
    sub_path
        The part of the volume to mount (relative; a template), or "" for all of it.
    optional
        False: mounted for every user allowed to; True: only when the user ticks it.
    allowed_groups
        The groups whose members may mount it; empty means everyone.
    claim_name, storage_bytes, storage_class
        Kubernetes claims: the claim (a template for ``workspace``) and, for a
        workspace, the size and storage class of the claim created per user.
    server, path
        The NFS server and export, or the ``host_path`` directory.
    local_path
        The per-user directory of a ``workspace`` on the local backend (a template).
    """

    name: str
    kind: VolumeKind
    mount_path: str
    display_name: str
    description: str = ""
    sub_path: str = ""
    read_only: bool = False
    optional: bool = False
    allowed_groups: frozenset[str] = frozenset()
    claim_name: str = ""
    storage_bytes: int | None = None
    storage_class: str = ""
    server: str = ""
    path: str = ""
    local_path: str = ""


def expand(template: str, *, username: str, group: str = "") -> str:
    """Fill in ``{username}`` and ``{group}``; refuse values that would change the path.

    The config's templates are checked at start-up; the values come from the login and
    the launch, and must not be able to climb out of the directory the admin chose.
    """
    for what, value in (("username", username), ("group", group)):
        bad = f"{{{what}}}" in template and (
            not value or value in (".", "..") or any(c in value for c in "/\\\x00")
        )
        if bad:
            raise ValueError(f"{what} {describe(value)} cannot be used in a path")
    return template.format(username=username, group=group)


def fill_claim_name(template: str, *, username: str, group: str = "") -> str:
    """The claim name ``template`` names for this user and group, or ValueError.

    ``username`` and ``group`` must be DNS-safe slugs (KubeSpawner's ``{username}``, a
    DNS-1123 label of the group): the result must be a valid Kubernetes name.
    """
    name = expand(template, username=username, group=group)
    if not _K8S_NAME.fullmatch(name):
        raise ValueError(f"claim name {describe(name)} {_CLAIM_RULE}")
    return name


def _mount_path(entry: Entry) -> str:
    path = entry.absolute_path("mount_path", required=True)
    if path == "/" or any(path == p or path.startswith(p + "/") for p in FORBIDDEN_MOUNTS):
        entry.fail("mount_path", f"{path!r} would hide a system directory of the server")
    return path


def _sub_path(entry: Entry) -> str:
    value = entry.template("sub_path") or ""
    if not value:
        return ""
    problem = absolute_path_problem("/" + sample(value))
    if value.startswith("/") or problem:
        entry.fail("sub_path", f"{describe(value)} must be a relative, normalised path")
    return value


def _claim_name(entry: Entry, default: str | None = None) -> str:
    value = entry.template("claim_name", default) or ""
    if not value:
        return ""
    filled = value.format(username="user", group="group")
    if not _K8S_NAME.fullmatch(filled):
        entry.fail("claim_name", f"{describe(value)}, filled in as {filled!r}, {_CLAIM_RULE}")
    longest = len(value.format(username="u" * MAX_USERNAME_SLUG, group="g" * MAX_GROUP_SLUG))
    if longest > MAX_NAME:
        entry.fail(
            "claim_name",
            f"{describe(value)} is {longest} characters long with the longest user name and "
            f"group slugs ({MAX_USERNAME_SLUG} and {MAX_GROUP_SLUG} characters); a claim "
            f"name may have at most {MAX_NAME}",
        )
    return value


def _storage_class(entry: Entry) -> str:
    # Not a template: KubeSpawner sends the storage class as written.
    value = entry.text("storage_class", "") or ""
    if value and not _K8S_NAME.fullmatch(value):
        entry.fail("storage_class", f"{describe(value)} {_CLAIM_RULE}")
    return value


def parse_volume(name: object, data: object, backend: str) -> Volume:
    """Validate the volume called ``name`` for ``backend`` ("kube" or "local")."""
    where = f"volumes.{name}"
    check_name(name, "volumes", "volume")
    assert isinstance(name, str)
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind not in KINDS:
        raise LaunchConfigError(
            f"{where}.kind", f"must be one of {', '.join(KINDS)}, not {describe(kind)}"
        )
    allowed_keys = _KIND_KEYS.get((backend, kind))
    if allowed_keys is None:
        raise LaunchConfigError(
            f"{where}.kind",
            f"{kind!r} volumes need Kubernetes; the local backend takes only 'workspace' "
            "(with a local_path) and 'host_path'",
        )
    entry = Entry(data, where, _COMMON | allowed_keys)
    claim = storage_class = server = path = local_path = ""
    storage: int | None = None
    if kind == "workspace" and backend == "kube":
        claim = _claim_name(entry, DEFAULT_CLAIM)
        storage = entry.byte_size("storage")
        if storage is None:
            entry.fail("storage", "is required: the size of each user's claim, like '10Gi'")
        storage_class = _storage_class(entry)
    elif kind == "workspace":
        local_path = entry.absolute_path("local_path", required=True, template=True)
        if "{username}" not in local_path:
            entry.fail("local_path", "must use {username}: each user needs their own directory")
    elif kind == "pvc":
        claim = _claim_name(entry)
        if not claim:
            entry.fail("claim_name", "is required: the name of the existing claim")
    elif kind == "nfs":
        server = entry.text("server", required=True, pattern=_HOST) or ""
        path = entry.absolute_path("path", required=True)
    else:
        path = entry.absolute_path("path", required=True, template=True)
    return Volume(
        name=name,
        kind=cast(VolumeKind, kind),
        mount_path=_mount_path(entry),
        display_name=entry.text("display_name", name) or name,
        description=entry.description(),
        sub_path=_sub_path(entry),
        read_only=entry.flag("read_only", False),
        optional=entry.flag("optional", False),
        allowed_groups=entry.groups("allowed_groups"),
        claim_name=claim,
        storage_bytes=storage,
        storage_class=storage_class,
        server=server,
        path=path,
        local_path=local_path,
    )


def parse_volumes(volumes: object, backend: str) -> dict[str, Volume]:
    """Validate every volume; two may not share a mount path."""
    if not isinstance(volumes, Mapping):
        raise LaunchConfigError("volumes", "must be a mapping of volume names to settings")
    result: dict[str, Volume] = {}
    mounts: dict[str, str] = {}
    for name, data in volumes.items():
        volume = parse_volume(name, data, backend)
        other = mounts.setdefault(posixpath.normpath(volume.mount_path), volume.name)
        if other != volume.name:
            raise LaunchConfigError(
                f"volumes.{name}.mount_path",
                f"{volume.mount_path!r} is already the mount path of volume {other!r}",
            )
        result[volume.name] = volume
    return result


__all__ = [
    "DEFAULT_CLAIM",
    "FORBIDDEN_MOUNTS",
    "KINDS",
    "MAX_GROUP_SLUG",
    "MAX_USERNAME_SLUG",
    "Volume",
    "VolumeKind",
    "expand",
    "fill_claim_name",
    "parse_volume",
    "parse_volumes",
]
