"""The launch form's session limits: worded per environment (or profile) and group.

Tables of hub-wide ``session_limits``, an environment's own limits and its
``group_limits``, and the group charged, against the words the form shows; then the
form's HTML as a browser without JavaScript reads it (the preselected group's words).
"""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.policy import Member, fallback
from eohub.spawner.form.limits_view import LimitsText, environment_limits, profile_limits
from eohub.spawner.form.render import render
from eohub.spawner.form.view import build_form
from tests.spawner.form.forms import SIZES, Page, allowed, profiles_for

HUB_LIMITS = {
    "idle_timeout": "2h",
    "max_duration": "24h",
    "groups": {"long-runs": {"max_duration": "7d"}},
}
GROUPS = ["climate", "long-runs", "ocean"]


def config_with(env: dict[str, Any], session_limits: Any = None) -> Any:
    environments = {"lab": {"display_name": "Lab", "image": "lab:1", "sizes": ["small"], **env}}
    return parse_launch_config(
        environments,
        {"small": SIZES["small"]},
        {},
        backend="kube",
        charge_groups=GROUPS,
        session_limits=session_limits,
    )


@pytest.mark.parametrize(
    ("hub", "env", "expected"),
    [
        # No limits anywhere: one line for everyone.
        (None, {}, [(None, "no time limit")]),
        # The hub's defaults, and a group's override: a line per group.
        (
            HUB_LIMITS,
            {},
            [
                (0, "stops after 2 hours idle, at most 24 hours"),
                (1, "stops after 2 hours idle, at most 7 days"),
                (2, "stops after 2 hours idle, at most 24 hours"),
            ],
        ),
        # The environment's own limit is more specific than the hub's group override.
        (
            HUB_LIMITS,
            {"idle_timeout": "30m", "max_duration": "8h"},
            [(None, "stops after 30 minutes idle, at most 8 hours")],
        ),
        # ... and its group_limits more specific still; 0 lifts a limit.
        (
            HUB_LIMITS,
            {"max_duration": "8h", "group_limits": {"climate": {"max_duration": 0}}},
            [
                (0, "stops after 2 hours idle"),
                (1, "stops after 2 hours idle, at most 8 hours"),
                (2, "stops after 2 hours idle, at most 8 hours"),
            ],
        ),
        (None, {"max_duration": 90}, [(None, "runs at most 1 minute 30 seconds")]),
    ],
)
def test_an_environments_limits_per_group(
    hub: Any, env: dict[str, Any], expected: list[tuple[int | None, str]]
) -> None:
    config = config_with(env, hub)
    found = environment_limits(config, config.environments["lab"], GROUPS)
    assert found == tuple(LimitsText(g, t) for g, t in expected)


def test_without_a_group_to_charge_the_limits_anyone_gets_are_shown() -> None:
    config = config_with({"idle_timeout": "1h"}, HUB_LIMITS)
    found = environment_limits(config, config.environments["lab"], [])
    assert found == (LimitsText(None, "stops after 1 hour idle, at most 24 hours"),)


PROFILE = {
    "display_name": "Climate notebooks",
    "slug": "climate-nb",
    "kubespawner_override": {"cpu_guarantee": 1, "mem_guarantee": "2G"},
    "eohub": {"max_duration": "4h", "group_limits": {"long-runs": {"max_duration": "2d"}}},
}


def test_a_profiles_limits_per_group() -> None:
    config = config_with({}, HUB_LIMITS)
    (profile,) = profiles_for(frozenset(GROUPS), [PROFILE])
    assert profile_limits(config, profile, GROUPS) == (
        LimitsText(0, "stops after 2 hours idle, at most 4 hours"),
        LimitsText(1, "stops after 2 hours idle, at most 2 days"),
        LimitsText(2, "stops after 2 hours idle, at most 4 hours"),
    )


def page_of(config: Any, member: Member, saved: dict[str, Any], profiles: Any = ()) -> Page:
    request, messages = fallback(config, member, saved)
    answers = {g: allowed() for g in GROUPS if g in member.groups}
    form = build_form(config, member, request, messages, answers, profiles=profiles)
    return Page.of(render(form))


def test_the_form_shows_the_limits_of_the_preselected_group() -> None:
    config = config_with({"max_duration": "8h"}, HUB_LIMITS)
    member = Member("eve", frozenset(GROUPS))
    page = page_of(config, member, {"group": "long-runs"})
    # Every environment's own limit wins over long-runs' 7 days; the profile's override
    # for long-runs gives it 2 days.
    assert "Stops after 2 hours idle, at most 8 hours." in page.text
    profiles = profiles_for(frozenset(GROUPS), [PROFILE])
    page = page_of(config, member, {"group": "long-runs"}, profiles)
    assert "Stops after 2 hours idle, at most 2 days." in page.text
    assert "at most 4 hours" not in page.text  # the other groups' line is hidden
    page = page_of(config, member, {"group": "ocean"}, profiles)
    assert "Stops after 2 hours idle, at most 4 hours." in page.text
    assert "at most 2 days" not in page.text


def test_a_hub_without_limits_says_nothing_of_them() -> None:
    page = page_of(config_with({}), Member("eve", frozenset(GROUPS)), {})
    assert "time limit" not in page.text
    assert "Stops" not in page.text
