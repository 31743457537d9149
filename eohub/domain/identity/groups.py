"""Group names from a directory or identity provider, made canonical.

Directories and identity providers name groups in their own ways: LDAP DNs, ``cn``
values, Keycloak paths, EGI Check-in entitlement URNs. :class:`GroupRule` rewrites or
drops such names with a regular expression, and :func:`canonical_groups` applies an
ordered list of rules, so that every later decision sees one set of plain names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# JupyterHub stores group names in a 255-character column; a name that is empty,
# too long or full of control characters is a directory quirk, not a group.
MAX_GROUP_NAME = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GROUP_REFERENCE = re.compile(r"\\(\d+)|\\g<([^>]*)>")


class GroupConfigError(ValueError):
    """A group mapping rule in the hub config is invalid; the message names it."""


@dataclass(frozen=True)
class GroupRule:
    """Rewrite group names that fully match ``pattern`` to ``replacement``.

    ``replacement`` may use ``\\1`` or ``\\g<name>`` for the pattern's groups. An empty
    replacement drops the group.
    """

    pattern: re.Pattern[str]
    replacement: str

    @classmethod
    def parse(cls, spec: Mapping[str, str], where: str = "group rule") -> GroupRule:
        """Build a rule from config data ``{"pattern": ..., "replacement": ...}``."""
        unknown = set(spec) - {"pattern", "replacement"}
        if unknown:
            raise GroupConfigError(f"{where}: unknown keys {sorted(unknown)}")
        if "pattern" not in spec or "replacement" not in spec:
            raise GroupConfigError(f"{where}: needs both 'pattern' and 'replacement'")
        try:
            pattern = re.compile(spec["pattern"])
        except re.error as e:
            raise GroupConfigError(f"{where}: invalid pattern {spec['pattern']!r}: {e}") from e
        replacement = str(spec["replacement"])
        # A reference to a group the pattern lacks would fail at someone's login;
        # catch it at hub start-up instead.
        for number, name in _GROUP_REFERENCE.findall(replacement):
            ref = number or name
            known = int(ref) <= pattern.groups if ref.isdigit() else ref in pattern.groupindex
            if not known:
                raise GroupConfigError(
                    f"{where}: replacement {replacement!r} refers to group {ref!r}, "
                    f"which pattern {pattern.pattern!r} does not define"
                )
        return cls(pattern=pattern, replacement=replacement)

    def apply(self, name: str) -> str | None:
        """The rewritten name, '' to drop it, or None when the rule does not match."""
        match = self.pattern.fullmatch(name)
        if match is None:
            return None
        return match.expand(self.replacement)


def valid_group_name(name: str) -> bool:
    """Whether ``name`` can be stored as a JupyterHub group."""
    return 0 < len(name) <= MAX_GROUP_NAME and not _CONTROL.search(name) and name == name.strip()


def group_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot start every group name of a source, or None if it can."""
    if prefix != prefix.strip() or _CONTROL.search(prefix):
        return "must not contain spaces at either end or control characters"
    if len(prefix) >= MAX_GROUP_NAME:
        return f"must be shorter than {MAX_GROUP_NAME} characters"
    return None


def canonical_groups(
    raw_names: Iterable[str],
    rules: Sequence[GroupRule] = (),
    *,
    keep_unmatched: bool = True,
    prefix: str = "",
) -> frozenset[str]:
    """Apply ``rules`` in order (the first match wins) and keep only valid names.

    With ``keep_unmatched`` false, names that no rule matches are dropped: a hub can
    then map just the directory groups it knows and ignore the rest. ``prefix`` is
    put before every name that is kept (after the rules), so that two sources on one
    hub can keep groups of the same name apart.
    """
    result: set[str] = set()
    for raw in raw_names:
        name: str | None = None
        for rule in rules:
            name = rule.apply(raw)
            if name is not None:
                break
        if name is None:
            name = raw if keep_unmatched else ""
        # A dropped group stays dropped: the prefix alone is not a group.
        if name and valid_group_name(prefix + name):
            result.add(prefix + name)
    return frozenset(result)
