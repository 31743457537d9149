"""The launch form's session limits: each environment's and profile's, per group charged.

A session's limits depend on the group it is charged to (an environment's
``group_limits``, the hub's ``session_limits.groups``), so the form words them for each
(environment or profile, group the user may charge) pair here, with the launch policy's
own resolution (:func:`eohub.domain.launch.policy.session_limits`,
:func:`eohub.domain.launch.session_limits.resolve_limits`). The page shows the words of
the chosen group; its script only switches which is shown (``data-limits-for``), so
no rule is ever repeated in JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eohub.domain.launch.config import Environment, LaunchConfig
from eohub.domain.launch.policy import session_limits
from eohub.domain.launch.profiles import Profile
from eohub.domain.launch.session_limits import SessionLimits, resolve_limits
from eohub.domain.wording import NO_TIME_LIMIT, limits_text


@dataclass(frozen=True)
class LimitsText:
    """An environment's (or profile's) session limits in words, for the group at
    index ``group`` of the form's groups; ``group`` None: the same for every group."""

    group: int | None
    text: str

    @property
    def sentence(self) -> str:
        """``Stops after 2 hours idle, at most 24 hours.``"""
        return self.text[:1].upper() + self.text[1:] + "."


Limits = tuple[LimitsText, ...]


def _texts(groups: Sequence[str], resolve: Callable[[str], SessionLimits]) -> Limits:
    """The words of each group's limits: one entry when they agree."""
    texts = [limits_text(lim.idle_timeout, lim.max_duration) for lim in map(resolve, groups)]
    if not texts:  # no group to charge: what applies to anyone
        limits = resolve("")
        return (LimitsText(None, limits_text(limits.idle_timeout, limits.max_duration)),)
    if len(set(texts)) == 1:
        return (LimitsText(None, texts[0]),)
    return tuple(LimitsText(i, text) for i, text in enumerate(texts))


def environment_limits(config: LaunchConfig, env: Environment, groups: Sequence[str]) -> Limits:
    """``env``'s limits for each of ``groups`` (the form's, in its order)."""
    return _texts(groups, lambda group: session_limits(config.limit_rules, env, group))


def profile_limits(config: LaunchConfig, profile: Profile, groups: Sequence[str]) -> Limits:
    """A ``profile_list`` profile's limits for each of ``groups``, as its launch resolves
    them (:class:`eohub.domain.launch.profiles.ProfileRules`)."""
    rules = profile.rules
    return _texts(
        groups,
        lambda group: resolve_limits(
            config.limit_rules, group, rules.own_limits, rules.group_limits
        ),
    )


def any_limit(limits: Sequence[Limits]) -> bool:
    """Whether any of ``limits`` sets a limit: a hub without any says nothing of them."""
    return any(entry.text != NO_TIME_LIMIT for entries in limits for entry in entries)


__all__ = [
    "Limits",
    "LimitsText",
    "any_limit",
    "environment_limits",
    "profile_limits",
]
