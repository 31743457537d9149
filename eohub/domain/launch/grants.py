"""Which group grants what: the rule that links the group charged to what it pays for.

By default (``LaunchConfig.charged_group_must_grant``) the group charged must itself
grant what the launch uses: an environment (or ``profile_list`` profile) whose
``allowed_groups`` name it, and volumes whose ``allowed_groups`` name it. A user in
``climate`` and ``staff`` may then run the climate group's environment only on
climate's budget, and a ``{group}`` volume mounts only the folder of a group that is
allowed on it. Sizes belong to an environment, so the group that grants the
environment grants its sizes.

An environment or volume without ``allowed_groups`` is granted by every group; an
environment that names the user in ``allowed_users`` is granted to them in person,
whichever of their chargeable groups pays.

With the rule off (the permissive rule, the admin's explicit choice), a user may run
whatever any of their groups grants and charge any group they may charge.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from eohub.domain.launch.config import Environment, LaunchConfig
from eohub.domain.launch.volumes import Volume


@dataclass(frozen=True)
class Grant:
    """What a launch uses, in words (``environment 'Climate lab'``), and which groups
    may pay for it."""

    what: str
    check: Callable[[str], bool]


def environment_grant(config: LaunchConfig, env: Environment, username: str) -> Grant:
    """The :class:`Grant` of ``env`` for the user ``username``."""
    return Grant(
        f"environment {env.display_name!r}",
        lambda group: grants_environment(config, env, username, group),
    )


def grants_environment(
    config: LaunchConfig, env: Environment, username: str, group: str | None
) -> bool:
    """Whether charging ``group`` may pay for ``env`` (for the user ``username``)."""
    if not config.charged_group_must_grant or group is None:
        return True
    if not env.allowed_groups and not env.allowed_users:
        return True
    return username in env.allowed_users or group in env.allowed_groups


def grants_groups(
    config: LaunchConfig, allowed: Collection[str] | None, group: str | None
) -> bool:
    """Whether ``group`` grants what ``allowed`` (an ``allowed_groups``, None or empty:
    everyone) guards, under the config's rule."""
    if not config.charged_group_must_grant or group is None or not allowed:
        return True
    return group in allowed


def grants_profile_groups(
    config: LaunchConfig, allowed: Collection[str] | None, group: str | None
) -> bool:
    """:func:`grants_groups` for a ``profile_list`` ``allowed_groups``, which is kept
    casefolded (2i2c's convention, and what decides which profiles a member sees): the
    group charged is compared casefolded too, so ``Climate`` grants ``[Climate]``."""
    return grants_groups(config, allowed, None if group is None else group.casefold())


def grants_volume(config: LaunchConfig, volume: Volume, group: str | None) -> bool:
    """Whether charging ``group`` may mount ``volume``."""
    return grants_groups(config, volume.allowed_groups, group)


def granting_groups(
    config: LaunchConfig, env: Environment, username: str, groups: Iterable[str]
) -> list[str]:
    """Those of ``groups`` that may pay for ``env``, in their order."""
    return [g for g in groups if grants_environment(config, env, username, g)]


def not_granted(what: str, group: str, others: Collection[str]) -> str:
    """The refusal for a group that does not grant ``what``, naming those that do."""
    text = f"group {group!r} does not grant {what}, so it cannot pay for it"
    if others:
        text += "; charge " + " or ".join(repr(g) for g in sorted(others))
    return text


__all__ = [
    "Grant",
    "environment_grant",
    "granting_groups",
    "grants_environment",
    "grants_groups",
    "grants_profile_groups",
    "grants_volume",
    "not_granted",
]
