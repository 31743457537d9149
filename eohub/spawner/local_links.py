"""The symbolic links by which QuotaLocalSpawner shows ``host_path`` volumes.

One machine has no mounts per server: a ``host_path`` volume appears in the workspace
as a link named after its mount path's last part. A launch must show exactly its own
volumes, so the links eohub made for an earlier launch that this one does not have (an
optional volume left unchecked, a volume no longer allowed) are removed.

Only eohub's own links are ever removed or replaced: each server remembers the links it
made (path and target, in its state), and a path is touched only while it is still
that very link. A file, a folder or a link of the user's own in the way is left as it is.

The workspace belongs to the user, not to one server: all of a user's named servers
share it. A link that another of the user's running servers uses is never removed nor
pointed elsewhere, whatever this launch wants (``in_use``).

A server whose state has no record yet (one last launched before eohub kept records)
adopts the links in the workspace that eohub would have made for this user: named and
pointing exactly as one of the ``host_path`` volumes the user may mount
(:func:`eohub_made_links`), so that they go when no longer chosen; nothing else is
adopted.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from eohub.domain.launch.volumes import Volume, expand
from eohub.logs import get_logger

log = get_logger(__name__)


def _link_target(path: Path) -> str | None:
    """Where the link at ``path`` points, or None when ``path`` is no link."""
    return os.readlink(path) if path.is_symlink() else None


def link_name(volume: Volume) -> str:
    """The name of the link that shows ``volume`` in the workspace."""
    return Path(volume.mount_path).name


def eohub_made_links(
    volumes: Iterable[Volume], username: str, groups: Collection[str]
) -> dict[str, frozenset[str]]:
    """Each link name eohub may have made for ``username``, with its possible targets:
    the ``host_path`` volumes among ``volumes``, expanded for each of ``groups``."""
    found: dict[str, set[str]] = {}
    for volume in volumes:
        if volume.kind != "host_path":
            continue
        for group in groups or [""]:
            try:
                target = expand(volume.path, username=username, group=group)
            except ValueError:  # a group name that cannot be a folder was never mounted
                continue
            found.setdefault(link_name(volume), set()).add(target)
    return {name: frozenset(targets) for name, targets in found.items()}


def adopt_links(workdir: Path, known: Mapping[str, Collection[str]]) -> dict[str, str]:
    """The links in ``workdir`` that eohub would have made (``known``: name → targets),
    as a record of links made (full path → target)."""
    adopted: dict[str, str] = {}
    for name, targets in known.items():
        path = workdir / name
        target = _link_target(path)
        if target is not None and target in targets:
            adopted[str(path)] = target
    return adopted


def place_links(
    workdir: Path,
    wanted: Mapping[str, str],
    made: Mapping[str, str],
    in_use: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Make the links ``wanted`` (name in ``workdir`` → target); remove the others.

    ``made`` holds the links eohub made before (full path → target); ``in_use`` those
    the user's other running servers use (full path → target), which stay as they are.
    The result is the record to keep for the next launch.
    """
    in_use = in_use or {}
    paths = {str(workdir / name): target for name, target in wanted.items()}
    kept: dict[str, str] = {}
    for path, target in made.items():
        if path in paths or _link_target(Path(path)) != target:
            continue
        if in_use.get(path) == target:
            log.info("Kept the link {path}: another running server of the user uses it", path=path)
            continue
        Path(path).unlink()
        log.info("Removed the link {path} of a volume this launch does not have", path=path)
    for path, target in paths.items():
        link = Path(path)
        found = _link_target(link)
        if found == target:
            kept[path] = target
            continue
        if found is not None and in_use.get(path) == found:
            log.warning(
                "Not linking a volume at {path}: another running server of the user "
                "links it to {target}",
                path=path,
                target=found,
            )
            continue
        if found is not None and made.get(path) == found:
            link.unlink()  # eohub's link to where the volume was before
        elif found is not None or link.exists():
            log.warning(
                "Not linking a volume at {path}: something of the user's is there", path=path
            )
            continue
        link.symlink_to(target)
        kept[path] = target
    return kept


__all__ = ["adopt_links", "eohub_made_links", "link_name", "place_links"]
