"""Reading XFS project quota reports: how much each project directory holds.

On an NFS home server with XFS project quotas (the setup of 2i2c's home-NFS tooling),
each user's directory is a project and the filesystem already counts its blocks and
inodes. ``xfs_quota -x -c 'report -p -b -i -n -N' <mount>`` prints one line per project,
numbers only (``-n``: ids, not names; ``-N``: no header)::

    #0          2048        0        0  00 [--------]     5     0     0  00 [--------]
    #1001    1048576        0  2097152  00 [--------]  1234     0     0  00 [--------]

The block columns are used, soft and hard limits in KiB (1024 bytes), then the warning
count and the grace time in brackets (``[--------]``, ``[6 days]``, ``[-none-]``); with
``-i`` the same five columns follow for inodes. Without ``-n`` the first column is the
project's name from ``/etc/projid``. ``/etc/projects`` maps project ids to directories
(``1001:/export/home/alice``), ``/etc/projid`` names to ids (``alice:1001``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KIB = 1024
_LIMITS = r"(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\[[^\]\n]*\]"
_LINE = re.compile(rf"(\S+)\s+{_LIMITS}(?:\s+{_LIMITS})?\s*")


class XfsReportError(ValueError):
    """A report or mapping file that cannot be read as expected; the message says where."""


@dataclass(frozen=True)
class ProjectUsage:
    """One project's line: its id (``#1001``) or name, bytes used, and inodes (if shown)."""

    project: str
    bytes: int
    files: int | None


def parse_report(text: str) -> list[ProjectUsage]:
    """The lines of a project report; any other line is an error, so that a format this
    parser does not know is never misread (the sampler then walks instead)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line.strip())
        if match is None:
            raise XfsReportError(f"report line {number} is not a quota line: {line[:120]!r}")
        inodes = match.group(6)
        found.append(
            ProjectUsage(
                project=match.group(1),
                bytes=int(match.group(2)) * KIB,
                files=int(inodes) if inodes is not None else None,
            )
        )
    return found


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        left, sep, right = line.partition(":")
        if not sep or not left or not right:
            raise XfsReportError(f"{what} line {number} is not 'a:b': {raw[:120]!r}")
        pairs.append((left.strip(), right.strip()))
    return pairs


def parse_projects(text: str) -> dict[int, list[str]]:
    """``/etc/projects``: project id -> its directories (a project may have several)."""
    paths: dict[int, list[str]] = {}
    for left, right in _pairs(text, "projects"):
        if not left.isdigit():
            raise XfsReportError(f"projects: {left!r} is not a numeric project id")
        paths.setdefault(int(left), []).append(right.rstrip("/") or "/")
    return paths


def parse_projid(text: str) -> dict[str, int]:
    """``/etc/projid``: project name -> id."""
    ids: dict[str, int] = {}
    for left, right in _pairs(text, "projid"):
        if not right.isdigit():
            raise XfsReportError(f"projid: {right!r} is not a numeric project id")
        ids[left] = int(right)
    return ids


def usage_by_path(
    report: list[ProjectUsage], projects: dict[int, list[str]], projid: dict[str, int]
) -> dict[str, ProjectUsage]:
    """The usage of each project directory, by its path.

    A project with several directories is counted once, for the whole project, so its
    directories are left out (the sampler walks them): the quota cannot tell them apart.
    Project 0 (everything outside a project) and projects with no directory are left out.
    """
    by_path: dict[str, ProjectUsage] = {}
    for usage in report:
        if usage.project.startswith("#") and usage.project[1:].isdigit():
            number: int | None = int(usage.project[1:])
        else:
            number = projid.get(usage.project)
        if not number:
            continue
        paths = projects.get(number, [])
        if len(paths) == 1:
            by_path[paths[0]] = usage
    return by_path


__all__ = [
    "KIB",
    "ProjectUsage",
    "XfsReportError",
    "parse_projects",
    "parse_projid",
    "parse_report",
    "usage_by_path",
]
