"""How long a server may run, and stay idle: per environment, with hub defaults and groups.

A launch's :class:`SessionLimits` are resolved once, when it starts, from four places,
the most specific first, key by key:

1. the environment's (or profile's) own ``group_limits`` for the group charged;
2. the environment's own ``idle_timeout`` / ``max_duration``;
3. the hub-wide ``session_limits.groups`` entry for the group charged;
4. the hub-wide ``session_limits`` defaults.

A value of ``0`` (or ``"0"``, ``"none"``) means "no limit" and stops the search, so an
environment can lift a hub default, and a group can lift an environment's limit. The
resolved limits travel with the session to accounting, whose enforcement worker stops
the server (:mod:`eohub.domain.accounting.lifetimes`).

Durations are whole seconds, or a number with one unit: ``90s``, ``30m``, ``2h``, ``7d``.
Units are lower case only: an admin may read ``6M`` as six months, so it is refused rather
than taken as six minutes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from eohub.domain.fields import describe
from eohub.domain.identity.groups import valid_group_name
from eohub.domain.launch.fields import LaunchConfigError

#: The longest limit accepted: a year and a day, as the launch config always allowed.
MAX_LIMIT = 366 * 24 * 3600
LIMIT_KEYS = ("idle_timeout", "max_duration")
#: The key of an environment's (or profile's) per-group overrides.
GROUP_LIMITS_KEY = "group_limits"
#: The keys an environment or a profile's ``eohub`` entry may use for its limits.
OWN_LIMIT_KEYS = (*LIMIT_KEYS, GROUP_LIMITS_KEY)
_DURATION = re.compile(r"\s*([0-9]+)\s*(s|m|h|d)?\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_UNIT_WORDS = "the units are s (seconds), m (minutes), h (hours) and d (days), in lower case"
_NO_LIMIT = frozenset({"0", "none", "never", "unlimited"})


@dataclass(frozen=True)
class SessionLimits:
    """A session's limits, in seconds; ``None`` means no limit."""

    idle_timeout: int | None = None
    max_duration: int | None = None

    def as_dict(self) -> dict[str, int]:
        """The limits that are set, as the accounting start event carries them."""
        return {k: v for k in LIMIT_KEYS if (v := getattr(self, k)) is not None}

    @classmethod
    def from_dict(cls, data: object) -> SessionLimits:
        """The limits kept in ``data`` (a spawner's state, an event); a value that is not
        a whole number of seconds in range is no limit, as it was never set."""
        if not isinstance(data, Mapping):
            return cls()
        kept: dict[str, int] = {}
        for key in LIMIT_KEYS:
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_LIMIT:
                kept[key] = value
        return cls(**kept)


#: No limit at all: a launch's limits until they are resolved.
NO_LIMITS = SessionLimits()

#: A partial set of limits from one place: a key left out is inherited, ``0`` is "none".
PartialLimits = Mapping[str, int]


@dataclass(frozen=True)
class LimitRules:
    """The hub-wide defaults and per-group overrides (``session_limits``)."""

    defaults: PartialLimits = field(default_factory=dict, hash=False)
    groups: Mapping[str, PartialLimits] = field(default_factory=dict, hash=False)


NO_RULES = LimitRules()


def parse_duration(value: object, where: str) -> int:
    """Seconds from an int or a ``"<n>[s|m|h|d]"`` string; ``0`` means no limit.

    Units are lower case only (``6M`` is refused, not six minutes); the words for no
    limit (``none``, ``never``...) are read in any case.
    """
    if isinstance(value, bool):
        raise LaunchConfigError(where, f"must be a duration like 3600 or '2h', not {value!r}")
    if value is None or (isinstance(value, str) and value.strip().lower() in _NO_LIMIT):
        return 0
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        seconds = int(m[1]) * _UNITS[m[2] or "s"]
    else:
        raise LaunchConfigError(
            where,
            f"must be a duration like 3600, '30m', '2h' or '7d', not {describe(value)};"
            f" {_UNIT_WORDS}",
        )
    if not 0 <= seconds <= MAX_LIMIT:
        raise LaunchConfigError(where, f"must be between 0 (no limit) and {MAX_LIMIT} seconds")
    return seconds


def parse_partial_limits(data: Mapping[str, object], where: str) -> dict[str, int]:
    """The limit keys given in ``data`` (other keys are the caller's business).

    A key whose value is ``None`` (an empty YAML value) is not given, as everywhere in
    the launch config: write ``0`` or ``none`` to lift a limit.
    """
    return {
        key: parse_duration(data[key], f"{where}.{key}" if where else key)
        for key in LIMIT_KEYS
        if data.get(key) is not None
    }


def parse_group_limits(value: object, where: str) -> dict[str, dict[str, int]]:
    """``{group: {idle_timeout, max_duration}}``, each entry checked with its key path."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise LaunchConfigError(where, f"must map group names to limits, not {describe(value)}")
    parsed: dict[str, dict[str, int]] = {}
    for group, limits in value.items():
        path = f"{where}.{group}"
        if not isinstance(group, str) or not valid_group_name(group):
            raise LaunchConfigError(path, "is not a valid group name")
        if not isinstance(limits, Mapping):
            raise LaunchConfigError(path, f"must be a mapping of limits, not {describe(limits)}")
        if unknown := sorted(set(map(str, limits)) - set(LIMIT_KEYS)):
            raise LaunchConfigError(
                f"{path}.{unknown[0]}", f"is not a limit; use {' or '.join(LIMIT_KEYS)}"
            )
        parsed[group] = parse_partial_limits(limits, path)
    return parsed


def parse_own_limits(
    data: Mapping[str, object], where: str
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """An environment's (or profile's) own limits and its ``group_limits``."""
    own = parse_partial_limits(data, where)
    groups = parse_group_limits(data.get(GROUP_LIMITS_KEY), f"{where}.{GROUP_LIMITS_KEY}")
    return own, groups


def parse_limit_rules(value: object, where: str = "session_limits") -> LimitRules:
    """The hub-wide ``session_limits``: ``idle_timeout``, ``max_duration`` and ``groups``."""
    if value is None:
        return NO_RULES
    if not isinstance(value, Mapping):
        raise LaunchConfigError(where, f"must be a mapping, not {describe(value)}")
    if unknown := sorted(set(map(str, value)) - {*LIMIT_KEYS, "groups"}):
        raise LaunchConfigError(
            f"{where}.{unknown[0]}", "is not a setting; use idle_timeout, max_duration, groups"
        )
    return LimitRules(
        defaults=parse_partial_limits(value, where),
        groups=parse_group_limits(value.get("groups"), f"{where}.groups"),
    )


def resolve_limits(
    rules: LimitRules,
    group: str,
    own: PartialLimits | None = None,
    own_groups: Mapping[str, PartialLimits] | None = None,
) -> SessionLimits:
    """The limits of a session charged to ``group`` (see the module docstring).

    ``own`` and ``own_groups`` are the environment's (or profile's) limits and its
    per-group overrides. Groups are compared casefolded, as JupyterHub's names are.
    """
    folded = group.casefold()

    def for_group(table: Mapping[str, PartialLimits] | None) -> PartialLimits:
        if not table:
            return {}
        return next((v for k, v in table.items() if k.casefold() == folded), {})

    places = (for_group(own_groups), own or {}, for_group(rules.groups), rules.defaults)
    resolved: dict[str, int | None] = {}
    for key in LIMIT_KEYS:
        value = next((p[key] for p in places if key in p), 0)
        resolved[key] = value or None
    return SessionLimits(**resolved)


__all__ = [
    "GROUP_LIMITS_KEY",
    "LIMIT_KEYS",
    "MAX_LIMIT",
    "NO_LIMITS",
    "NO_RULES",
    "OWN_LIMIT_KEYS",
    "LimitRules",
    "PartialLimits",
    "SessionLimits",
    "parse_duration",
    "parse_group_limits",
    "parse_limit_rules",
    "parse_own_limits",
    "parse_partial_limits",
    "resolve_limits",
]
