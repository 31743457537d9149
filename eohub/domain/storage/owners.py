"""Who owns what a storage sampler measured, and which group pays for it.

A sampler measures directories or claims (:class:`Owner`: a user, maybe a group, bytes
and files). The group charged is, in order (:func:`charge_group`):

1. the group the source names itself: a ``{group}`` folder of the path layout, a claim's
   annotation or the ``claim_groups`` map;
2. the admin's explicit ``user_groups`` map;
3. the user's hub groups: the first of ``group_priority`` the user is in, else the only
   hub group of a user who has exactly one;
4. ``default_group`` (``""``: no group).

Path layouts (:class:`Layout`) say where users' and groups' directories are under a
root: ``{user}``, ``{group}``, ``{group}/{user}``, or the ``local_path`` template of a
workspace volume (``/srv/eohub/workspaces/{username}``), split by :func:`split_template`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from eohub.domain.accounting.events import NAME
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.fields import describe
from eohub.domain.identity.groups import valid_group_name

#: The placeholders a layout may use, and the field each fills (``{username}`` is the
#: launch config's spelling of ``{user}``).
PLACEHOLDERS = {"user": "user", "username": "user", "group": "group"}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# A name that is not valid UTF-8 reaches Python as lone surrogates (surrogateescape).
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Owner:
    """What one user (or group) holds in one source, before its group is resolved.

    ``group`` is the group the source itself names, or None when it names none (the
    shared mapping then decides). ``source`` says where it was measured (a root path,
    ``pvc:<namespace>/<claim>``): the accounting service adds up a user's sources, so
    a source that could not be measured this round is left out rather than counted as
    empty.
    """

    user: str
    group: str | None
    bytes: int
    file_count: int
    source: str = ""


def charge_group(
    user: str,
    *,
    source_group: str | None,
    user_groups: Mapping[str, str],
    hub_groups: Collection[str] | None,
    group_priority: Sequence[str],
    default_group: str,
) -> str:
    """The group ``user``'s storage is charged to (``""``: none); see the module doc.

    ``hub_groups`` is None when the hub's groups are not read.
    """
    if source_group:
        return source_group
    if user in user_groups:
        return user_groups[user]
    if hub_groups:
        for group in group_priority:
            if group in hub_groups:
                return group
        if len(hub_groups) == 1:
            return next(iter(hub_groups))
    return default_group


def name_problem(name: str, kind: str) -> str | None:
    """Why a directory's ``name`` cannot be a ``kind`` ("user" or "group"), or None.

    The accounting service takes any name without control characters (at most 255);
    a group must also be a valid hub group name. Bytes that are not UTF-8 cannot be
    sent at all.
    """
    if _SURROGATE.search(name):
        return "is not valid UTF-8"
    if not NAME.fullmatch(name):
        return "is empty, longer than 255 characters or holds control characters"
    if name != name.strip():
        return "starts or ends with white space"
    if kind == "group" and not valid_group_name(name):
        return "is not a valid group name"
    return None


class LayoutError(ValueError):
    """A path layout or template that cannot be used; the message says why."""


@dataclass(frozen=True)
class Segment:
    """One folder level of a layout: a literal name, or a pattern that captures a field."""

    text: str
    field: str | None = None
    pattern: re.Pattern[str] | None = None

    def match(self, name: str) -> str | None:
        """The captured value when ``name`` fits this level ("" for a literal), else None."""
        if self.pattern is None:
            return "" if name == self.text else None
        found = self.pattern.fullmatch(name)
        return found.group(1) if found else None


@dataclass(frozen=True)
class Layout:
    """Where the measured directories are below a root, e.g. ``{group}/{user}``."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(s.field for s in self.segments if s.field)

    @classmethod
    def parse(cls, text: str) -> Layout:
        """Parse a relative layout; :class:`LayoutError` names what is wrong."""
        where = f"layout {describe(text)}"
        if not text or text.startswith("/"):
            raise LayoutError(
                f"{where} must be a relative path like {{user}} or {{group}}/{{user}}"
            )
        segments = []
        seen: set[str] = set()
        for part in text.strip("/").split("/"):
            segment = _segment(part, where)
            if segment.field in seen:
                raise LayoutError(f"{where} names {{{segment.field}}} twice")
            if segment.field:
                seen.add(segment.field)
            segments.append(segment)
        if not seen:
            raise LayoutError(f"{where} must use {{user}} or {{group}}")
        # A literal folder after the last placeholder (``{user}/work``) is measured as
        # that user's; literal folders before the first belong to the root.
        return cls(text, tuple(segments))


def _segment(part: str, where: str) -> Segment:
    if part in ("", ".", ".."):
        raise LayoutError(f"{where} has an empty, '.' or '..' folder")
    names = _PLACEHOLDER.findall(part)
    if not names:
        if "{" in part or "}" in part:
            raise LayoutError(f"{where}: unbalanced brace in {describe(part)}")
        return Segment(part)
    if len(names) > 1:
        raise LayoutError(f"{where}: one placeholder per folder, not {describe(part)}")
    field = PLACEHOLDERS.get(names[0])
    if field is None:
        raise LayoutError(
            f"{where}: unknown placeholder {{{names[0]}}}; use {{user}}, {{username}} or {{group}}"
        )
    before, after = _PLACEHOLDER.split(part)[0], _PLACEHOLDER.split(part)[2]
    if "{" in before + after or "}" in before + after:
        raise LayoutError(f"{where}: unbalanced brace in {describe(part)}")
    pattern = re.compile(re.escape(before) + "(.+)" + re.escape(after), re.DOTALL)
    return Segment(part, field, pattern)


def split_template(template: str) -> tuple[str, Layout]:
    """An absolute path template (a workspace's ``local_path``) as (root, layout).

    ``/srv/eohub/workspaces/{username}`` is the root ``/srv/eohub/workspaces`` with the
    layout ``{username}``; the root is the folders before the first placeholder.
    """
    if not template.startswith("/"):
        raise LayoutError(f"path template {describe(template)} must be absolute")
    parts = [p for p in template.split("/") if p]
    first = next((i for i, p in enumerate(parts) if "{" in p or "}" in p), None)
    if first is None:
        raise LayoutError(f"path template {describe(template)} must use {{username}}")
    root = "/" + "/".join(parts[:first])
    layout = Layout.parse("/".join(parts[first:]))
    if "user" not in layout.fields:
        raise LayoutError(f"path template {describe(template)} must use {{username}}")
    return root, layout


def round_samples(
    charged: Iterable[tuple[Owner, str]], measured_at: datetime
) -> list[StorageSample]:
    """One sample per (user, group charged, source), all at the round's ``measured_at``.

    ``charged`` pairs each owner with the group it is charged to. Owners of the same
    (user, group, source) are parts of one source (two folders of one root) and are
    added up; sources are never added together, so that the service can keep each
    one's latest figure and a source missing from a round keeps its last one.
    """
    totals: dict[tuple[str, str, str], tuple[int, int]] = {}
    for owner, group in charged:
        key = (owner.user, group, owner.source)
        size, files = totals.get(key, (0, 0))
        totals[key] = (size + owner.bytes, files + owner.file_count)
    return [
        StorageSample(user, group, size, measured_at, files, source=source)
        for (user, group, source), (size, files) in sorted(totals.items())
    ]


__all__ = [
    "Layout",
    "LayoutError",
    "Owner",
    "Segment",
    "charge_group",
    "name_problem",
    "round_samples",
    "split_template",
]
