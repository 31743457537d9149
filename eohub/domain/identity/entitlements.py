"""Entitlement URNs (EGI Check-in, AARC guidelines) → group names and roles.

EGI Check-in releases group membership as ``eduperson_entitlement`` values such as
``urn:mace:egi.eu:group:vo.example.org:climate:role=manager#aai.egi.eu``. A configurable
regular expression with the named groups ``group`` (required), ``role`` and
``authority`` (optional) turns each value into an :class:`Entitlement`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from eohub.domain.identity.groups import GroupConfigError

# AARC-G002 as EGI Check-in issues it: the group path is one or more ':'-separated
# parts, then an optional role, then the issuing authority after '#'.
EGI_ENTITLEMENT_PATTERN = (
    r"urn:mace:egi\.eu:group:(?P<group>[^:#=]+(?::[^:#=]+)*?)"
    r"(?::role=(?P<role>[^:#]+))?(?:#(?P<authority>[^#]+))?"
)

DEFAULT_ROLE = "member"


@dataclass(frozen=True)
class Entitlement:
    """One parsed entitlement: the group path, the role in it, and who asserted it."""

    group: str
    role: str
    authority: str


def compile_entitlement_pattern(
    pattern: str, where: str = "entitlement pattern"
) -> re.Pattern[str]:
    """Compile an admin's entitlement pattern, insisting on a named group ``group``."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise GroupConfigError(f"{where}: invalid regular expression {pattern!r}: {e}") from e
    if "group" not in compiled.groupindex:
        raise GroupConfigError(f"{where}: {pattern!r} needs a named group (?P<group>...)")
    return compiled


def parse_entitlement(value: str, pattern: re.Pattern[str]) -> Entitlement | None:
    """The entitlement ``value`` describes, or None when it does not match in full."""
    match = pattern.fullmatch(value)
    if match is None or not match.group("group"):
        return None
    found = match.groupdict()
    return Entitlement(
        group=found["group"],
        role=found.get("role") or DEFAULT_ROLE,
        authority=found.get("authority") or "",
    )


def roles_by_group(values: Iterable[str], pattern: re.Pattern[str]) -> dict[str, frozenset[str]]:
    """Group path → roles, over every value that parses; other values are ignored."""
    roles: dict[str, set[str]] = {}
    for value in values:
        entitlement = parse_entitlement(value, pattern)
        if entitlement is not None:
            roles.setdefault(entitlement.group, set()).add(entitlement.role)
    return {group: frozenset(r) for group, r in roles.items()}
