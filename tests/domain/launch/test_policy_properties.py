"""Launch policy over random input: refused, or launching only what policy allows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eohub.domain.launch.config import LaunchConfig
from eohub.domain.launch.options import (
    FIELDS,
    LaunchRequest,
    OptionsError,
    parse_options,
    urlpath_problem,
)
from eohub.domain.launch.policy import (
    Budget,
    Launch,
    Member,
    allowed_volumes,
    authorize,
    chargeable_groups,
    check_charged,
    fallback,
    size_fits,
    split_charged,
    visible_environments,
)
from tests.domain.launch.policy_fixtures import ALICE, CONFIG, ENVIRONMENTS, FUNDED, SIZES, VOLUMES

# -- properties over random input -------------------------------------------------------

NAMES_IN_CONFIG = sorted({*ENVIRONMENTS, *SIZES, *VOLUMES, "climate", "ml", "staff", "x"})
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(NAMES_IN_CONFIG),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
VALUES = (
    st.sampled_from(NAMES_IN_CONFIG)
    | st.lists(st.sampled_from(NAMES_IN_CONFIG), max_size=4)
    | st.sampled_from(["/lab", "/rstudio/", "//evil", "/../hub", ""])
    | JSONISH
)
KEYS = st.sampled_from([*FIELDS, "repo", "cpu", "image", "server_name"]) | st.text(max_size=10)
# Mostly well-formed choices, so that many launches get through to the checks.
CHOICES = st.fixed_dictionaries(
    {},
    optional={
        "environment": st.sampled_from([*ENVIRONMENTS, "nope"]),
        "size": st.sampled_from([*SIZES, "nope"]),
        "group": st.sampled_from(["climate", "ml", "staff", "x"]),
        "volumes": st.lists(st.sampled_from([*VOLUMES, "nope"]), max_size=2, unique=True),
        "urlpath": st.sampled_from(["/lab", "/rstudio/", "/lab/tree/a.ipynb"]),
    },
)
RAW = st.one_of(st.dictionaries(KEYS, VALUES, max_size=7), CHOICES, CHOICES, CHOICES)
MEMBER = st.builds(
    Member,
    username=st.sampled_from(["alice", "bob", "mallory"]),
    groups=st.sampled_from([{"climate"}, {"ml"}, {"x"}]).map(frozenset)
    | st.frozensets(st.sampled_from(["climate", "ml", "staff", "x"])),
)
HOURS = st.none() | st.floats(min_value=-1, max_value=40, allow_nan=False)
BUDGETS = st.none() | st.dictionaries(
    st.sampled_from(["climate", "ml", "staff", "x"]),
    st.fixed_dictionaries({"core_hours": HOURS, "memory_gib_hours": HOURS, "gpu_hours": HOURS}),
)


def check_launch(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    budgets: dict[str, Budget] | None,
    launch: Launch,
) -> None:
    env, size = launch.environment, launch.size
    assert env in visible_environments(config, member)
    assert env is config.environments[env.name]
    assert size is config.sizes[size.name]
    assert size.name in env.sizes
    assert env.gpu or size.gpus == 0
    if budgets is not None and launch.group in budgets:
        assert size_fits(size, budgets[launch.group], config.min_hours)
    assert launch.group in chargeable_groups(config, member)
    allowed = allowed_volumes(config, member)
    for volume in launch.volumes:
        assert volume in allowed
        assert volume is config.volumes[volume.name]
        assert not volume.optional or volume.name in (req.volumes or ())
    assert urlpath_problem(launch.urlpath) is None
    assert launch.user_options().get("image") == env.image


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RAW, MEMBER, BUDGETS, st.sampled_from([CONFIG, FUNDED]))
def test_random_options_are_refused_or_launch_only_what_policy_allows(
    raw: dict[str, object], member: Member, budgets: dict[str, Budget] | None, config: LaunchConfig
) -> None:
    refusal: OptionsError | None = None
    try:
        req = parse_options(raw)
        launch = authorize(config, member, req, budgets)
    except OptionsError as e:
        refusal = e
    event("refused" if refusal else "launched")
    if refusal is not None:
        assert refusal.errors, "a refusal names at least one field"
    else:
        check_launch(config, member, req, budgets, launch)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=7) | JSONISH, MEMBER)
def test_fallback_never_fails_and_leaves_a_launchable_request(saved: Any, member: Member) -> None:
    req, messages = fallback(CONFIG, member, saved)
    assert all(isinstance(m, str) and m.endswith(".") for m in messages)
    single = Member(member.username, frozenset({"climate"}))  # one group to charge
    req, _ = fallback(CONFIG, single, saved)
    launch = authorize(CONFIG, single, req, None)  # whatever was saved: no refusal
    check_launch(CONFIG, single, req, None, launch)


def test_stored_options_split_into_choices_and_what_the_launch_charges() -> None:
    launch = authorize(CONFIG, ALICE, LaunchRequest(), None)
    stored = launch.user_options()
    choices, charged = split_charged(stored)
    assert set(charged) <= {"cpu", "mem", "gpus", "profile", "image"}
    assert charged
    assert not set(charged) & set(choices)  # type: ignore[arg-type]
    assert authorize(CONFIG, ALICE, parse_options(choices), None) == launch  # type: ignore[arg-type]
    check_charged(charged, launch)  # what was stored agrees with the launch
    assert split_charged("not a mapping") == ("not a mapping", {})


@pytest.mark.parametrize(
    ("key", "value"), [("cpu", 64), ("mem", 1), ("gpus", 8), ("image", "evil/miner:latest")]
)
def test_charged_keys_that_differ_from_the_launch_are_refused(key: str, value: object) -> None:
    launch = authorize(CONFIG, ALICE, LaunchRequest(), None)
    with pytest.raises(OptionsError) as refused:
        check_charged({key: value}, launch)
    assert list(refused.value.errors) == [key]
    assert "is set by the environment and size" in refused.value.errors[key]
