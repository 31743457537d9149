"""Reading identity-provider claims: dotted paths, string lists, entitlement roles."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from inspect import isawaitable
from typing import Any

from eohub.domain.identity.entitlements import roles_by_group


def claim_at(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` (``"oauth_user.groups"``), or None."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def string_list(value: Any) -> list[str]:
    """A claim as a list of strings: providers send a string, a list, or nothing."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return [v for v in value if isinstance(v, str)]
    return []


def entitlement_roles(
    values: Iterable[str],
    pattern: re.Pattern[str],
    resolve: Callable[[Iterable[str]], frozenset[str]],
) -> tuple[list[str], dict[str, frozenset[str]]]:
    """Group paths named by entitlement URNs, and the roles per *canonical* group.

    ``resolve`` is the authenticator's group mapping, so a role follows its group
    through the same ``group_rules`` that rename or drop it.
    """
    by_path = roles_by_group(values, pattern)
    roles: dict[str, frozenset[str]] = {}
    for path, path_roles in by_path.items():
        for name in resolve([path]):
            roles[name] = roles.get(name, frozenset()) | path_roles
    return list(by_path), roles


async def claimed_groups(
    key: str | Callable[..., Any], auth_state: Mapping[str, Any]
) -> list[str]:
    """Group names at a dotted path in ``auth_state``, or from a (maybe async) callable.

    This is oauthenticator's ``auth_state_groups_key`` contract, minus its error log
    for users who simply have no groups claim.
    """
    if callable(key):
        found = key(auth_state)
        if isawaitable(found):
            found = await found
    else:
        found = claim_at(auth_state, key)
    return string_list(found)
