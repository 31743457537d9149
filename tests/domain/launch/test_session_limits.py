"""Session limits: durations, the hub-wide rules, and which value a launch gets."""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.fields import LaunchConfigError
from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.policy import Member, authorize
from eohub.domain.launch.session_limits import (
    MAX_LIMIT,
    NO_RULES,
    LimitRules,
    SessionLimits,
    parse_duration,
    parse_limit_rules,
    resolve_limits,
)

H = 3600
D = 86400


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (3600, 3600),
        ("90s", 90),
        ("90", 90),
        ("30m", 1800),
        ("2h", 2 * H),
        (" 2h ", 2 * H),
        ("2 h", 2 * H),
        ("7d", 7 * D),
        ("366d", MAX_LIMIT),
        (0, 0),
        ("0", 0),
        ("0h", 0),
        ("none", 0),
        ("None", 0),
        ("never", 0),
        ("unlimited", 0),
        (None, 0),
    ],
)
def test_durations(value: object, seconds: int) -> None:
    assert parse_duration(value, "x") == seconds


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (True, "must be a duration like 3600 or '2h', not True"),
        (-1, "between 0 (no limit) and 31622400 seconds"),
        (MAX_LIMIT + 1, "between 0 (no limit) and 31622400 seconds"),
        ("367d", "between 0 (no limit)"),
        ("1.5h", "like 3600, '30m', '2h' or '7d'"),
        ("2 hours", "like 3600, '30m', '2h' or '7d'"),
        ("1h30m", "like 3600, '30m', '2h' or '7d'"),
        ("", "like 3600"),
        (1.5, "like 3600"),
        ([3600], "like 3600"),
    ],
)
def test_bad_durations_name_the_key(value: object, fragment: str) -> None:
    with pytest.raises(LaunchConfigError) as raised:
        parse_duration(value, "environments.gpu.max_duration")
    assert str(raised.value).startswith("environments.gpu.max_duration: ")
    assert fragment in str(raised.value)


UNITS = "the units are s (seconds), m (minutes), h (hours) and d (days), in lower case"


# An admin reads "6M" as six months: units are lower case only, and any other is
# refused with the units spelled out, never taken as the nearest one.
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("6M", "'6M'"),
        ("2H", "'2H'"),
        (" 2H ", "' 2H '"),
        ("90S", "'90S'"),
        ("7D", "'7D'"),
        ("1w", "'1w'"),
        ("1y", "'1y'"),
        ("3mo", "'3mo'"),
        ("10min", "'10min'"),
    ],
)
def test_units_are_lower_case_and_listed_when_refused(value: str, shown: str) -> None:
    with pytest.raises(LaunchConfigError) as raised:
        parse_duration(value, "session_limits.max_duration")
    assert str(raised.value) == (
        "session_limits.max_duration: must be a duration like 3600, '30m', '2h' or '7d',"
        f" not {shown}; {UNITS}"
    )


@pytest.mark.parametrize(
    ("value", "defaults", "groups"),
    [
        (None, {}, {}),
        ({}, {}, {}),
        ({"idle_timeout": "2h"}, {"idle_timeout": 2 * H}, {}),
        ({"idle_timeout": "2h", "max_duration": None}, {"idle_timeout": 2 * H}, {}),
        ({"max_duration": 0}, {"max_duration": 0}, {}),
        (
            {"max_duration": "1d", "groups": {"climate": {"max_duration": "3d"}}},
            {"max_duration": D},
            {"climate": {"max_duration": 3 * D}},
        ),
        ({"groups": {"staff": {"idle_timeout": "none"}}}, {}, {"staff": {"idle_timeout": 0}}),
        ({"groups": None}, {}, {}),
    ],
)
def test_limit_rules(value: object, defaults: dict[str, int], groups: dict[str, Any]) -> None:
    rules = parse_limit_rules(value, "session_limits")
    assert dict(rules.defaults) == defaults
    assert {g: dict(v) for g, v in rules.groups.items()} == groups


@pytest.mark.parametrize(
    ("value", "where", "fragment"),
    [
        (["2h"], "session_limits", "must be a mapping, not"),
        ({"idle": "2h"}, "session_limits.idle", "use idle_timeout, max_duration, groups"),
        ({"idle_timeout": "2 hours"}, "session_limits.idle_timeout", "must be a duration"),
        ({"groups": ["climate"]}, "session_limits.groups", "must map group names to limits"),
        ({"groups": {"climate": 3600}}, "session_limits.groups.climate", "mapping of limits"),
        ({"groups": {" eo": {}}}, "session_limits.groups. eo", "not a valid group name"),
        (
            {"groups": {"climate": {"max_durations": "1d"}}},
            "session_limits.groups.climate.max_durations",
            "is not a limit",
        ),
        (
            {"groups": {"climate": {"max_duration": -5}}},
            "session_limits.groups.climate.max_duration",
            "between 0 (no limit)",
        ),
    ],
)
def test_bad_limit_rules_name_the_key(value: object, where: str, fragment: str) -> None:
    with pytest.raises(LaunchConfigError) as raised:
        parse_limit_rules(value, "session_limits")
    assert raised.value.where == where
    assert fragment in str(raised.value)


HUB = LimitRules(
    defaults={"idle_timeout": 2 * H, "max_duration": D},
    groups={"climate": {"max_duration": 3 * D}, "Staff": {"idle_timeout": 0}},
)


# (id, rules, group, the environment's own, its group_limits, idle_timeout, max_duration)
RESOLUTION: list[tuple[str, LimitRules, str, dict[str, int], dict[str, Any], Any, Any]] = [
    ("nothing set", NO_RULES, "eo", {}, {}, None, None),
    ("hub defaults", HUB, "eo", {}, {}, 2 * H, D),
    ("hub group beats hub default", HUB, "climate", {}, {}, 2 * H, 3 * D),
    ("hub group lifts a limit", HUB, "staff", {}, {}, None, D),
    ("hub group names fold case", HUB, "STAFF", {}, {}, None, D),
    ("environment beats hub default", HUB, "eo", {"max_duration": 4 * H}, {}, 2 * H, 4 * H),
    ("environment beats hub group", HUB, "climate", {"max_duration": 4 * H}, {}, 2 * H, 4 * H),
    ("environment lifts a limit", HUB, "eo", {"idle_timeout": 0}, {}, None, D),
    (
        "environment group beats environment",
        HUB,
        "climate",
        {"max_duration": 4 * H},
        {"climate": {"max_duration": 2 * D}},
        2 * H,
        2 * D,
    ),
    (
        "environment group lifts its own limit",
        HUB,
        "climate",
        {"max_duration": 4 * H},
        {"Climate": {"max_duration": 0}},
        2 * H,
        None,
    ),
    (
        "another group's override does not apply",
        HUB,
        "eo",
        {"max_duration": 4 * H},
        {"climate": {"max_duration": 2 * D}},
        2 * H,
        4 * H,
    ),
    (
        "keys resolve one by one",
        HUB,
        "climate",
        {"idle_timeout": 30 * 60},
        {"climate": {"max_duration": 2 * D}},
        30 * 60,
        2 * D,
    ),
    ("environment alone", NO_RULES, "eo", {"idle_timeout": 600}, {}, 600, None),
]


@pytest.mark.parametrize(
    ("rules", "group", "own", "own_groups", "idle", "duration"),
    [c[1:] for c in RESOLUTION],
    ids=[c[0] for c in RESOLUTION],
)
def test_resolution_precedence(
    rules: LimitRules,
    group: str,
    own: dict[str, int],
    own_groups: dict[str, Any],
    idle: int | None,
    duration: int | None,
) -> None:
    limits = resolve_limits(rules, group, own, own_groups)
    assert limits == SessionLimits(idle_timeout=idle, max_duration=duration)


@pytest.mark.parametrize(
    ("limits", "data"),
    [
        (SessionLimits(), {}),
        (SessionLimits(idle_timeout=600), {"idle_timeout": 600}),
        (SessionLimits(600, 3600), {"idle_timeout": 600, "max_duration": 3600}),
    ],
)
def test_limits_as_and_from_a_dict(limits: SessionLimits, data: dict[str, int]) -> None:
    assert limits.as_dict() == data
    assert SessionLimits.from_dict(data) == limits
    assert SessionLimits.from_dict({**data, "started_at": "x", "group": "eo"}) == limits


@pytest.mark.parametrize(
    "data",
    [None, "600", {"idle_timeout": "600"}, {"idle_timeout": True}, {"max_duration": 0}],
)
def test_limits_from_a_bad_dict_are_none(data: object) -> None:
    assert SessionLimits.from_dict(data) == SessionLimits()


# -- in the launch config, and in an authorized launch ------------------------------------

SIZES = {"small": {"cpu": 1, "memory": "2G"}}
ENVIRONMENTS: dict[str, Any] = {
    "pangeo": {"image": "pangeo/pangeo-notebook:2024.01.01", "default": True},
    "gpu": {
        "image": "eohub/gpu:1",
        "idle_timeout": "30m",
        "max_duration": "8h",
        "group_limits": {"climate": {"max_duration": "2d"}, "staff": {"idle_timeout": 0}},
    },
    "batch": {"image": "eohub/batch:1", "max_duration": 0, "idle_timeout": None},
}
SESSION_LIMITS = {
    "idle_timeout": "2h",
    "max_duration": "1d",
    "groups": {"climate": {"max_duration": "3d"}},
}


def config() -> Any:
    return parse_launch_config(
        ENVIRONMENTS, SIZES, {}, backend="kube", session_limits=SESSION_LIMITS
    )


def test_the_config_keeps_the_rules_and_each_environments_own_limits() -> None:
    parsed = config()
    assert parsed.limit_rules == LimitRules(
        defaults={"idle_timeout": 2 * H, "max_duration": D},
        groups={"climate": {"max_duration": 3 * D}},
    )
    gpu, batch, pangeo = (parsed.environments[n] for n in ("gpu", "batch", "pangeo"))
    assert (gpu.idle_timeout, gpu.max_duration) == (30 * 60, 8 * H)
    assert gpu.own_limits == {"idle_timeout": 30 * 60, "max_duration": 8 * H}
    assert gpu.group_limits == {"climate": {"max_duration": 2 * D}, "staff": {"idle_timeout": 0}}
    assert batch.own_limits == {"max_duration": 0}  # an empty value is not given
    assert pangeo.own_limits == {}
    assert pangeo.group_limits == {}
    assert parse_launch_config({}, {}, {}, backend="kube").limit_rules == NO_RULES


@pytest.mark.parametrize(
    ("environment", "groups", "group", "idle", "duration"),
    [
        ("pangeo", {"eo"}, "eo", 2 * H, D),
        ("pangeo", {"climate"}, "climate", 2 * H, 3 * D),
        ("gpu", {"eo"}, "eo", 30 * 60, 8 * H),
        ("gpu", {"climate"}, "climate", 30 * 60, 2 * D),
        ("gpu", {"staff"}, "staff", None, 8 * H),
        ("batch", {"eo"}, "eo", 2 * H, None),
        ("batch", {"climate"}, "climate", 2 * H, None),
    ],
)
def test_an_authorized_launch_has_the_limits_of_the_group_charged(
    environment: str, groups: set[str], group: str, idle: int | None, duration: int | None
) -> None:
    member = Member("alice", frozenset(groups))
    launch = authorize(config(), member, LaunchRequest(environment=environment), None)
    assert launch.group == group
    assert launch.limits == SessionLimits(idle_timeout=idle, max_duration=duration)


def test_session_limits_errors_fail_the_config_with_the_key() -> None:
    with pytest.raises(LaunchConfigError) as raised:
        parse_launch_config(
            {}, {}, {}, backend="kube", session_limits={"groups": {"eo": {"idle_timeout": "1w"}}}
        )
    assert str(raised.value).startswith("session_limits.groups.eo.idle_timeout: must be")
