"""Launch policy: visibility, authorization and fallback (budgets: test_budget.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.reconcile import HubServer, StartDefaults, session_start
from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.options import LaunchRequest, OptionsError
from eohub.domain.launch.policy import (
    Member,
    allowed_volumes,
    authorize,
    chargeable_groups,
    fallback,
    visible_environments,
)
from tests.domain.launch.authorize_cases import DEFAULTS, REFUSALS, request
from tests.domain.launch.policy_fixtures import (
    ALICE,
    BOB,
    CAROL,
    CONFIG,
    DAVE,
    FUNDED,
)


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (ALICE, ["pangeo", "climate", "personal"]),
        (BOB, ["pangeo", "climate", "ml"]),
        (CAROL, ["pangeo"]),
        (DAVE, ["pangeo", "ml"]),
        (Member("alice"), ["pangeo", "personal"]),  # by name, without any group
        (Member("Alice", frozenset({"Climate"})), ["pangeo"]),  # names are exact
    ],
)
def test_visible_environments(member: Member, expected: list[str]) -> None:
    assert [e.name for e in visible_environments(CONFIG, member)] == expected


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (ALICE, ["home", "common-data", "climate-archive"]),
        (BOB, ["home", "common-data", "ml-scratch", "climate-archive"]),
        (CAROL, ["home", "common-data"]),
        (DAVE, ["home", "common-data", "ml-scratch"]),
    ],
)
def test_allowed_volumes(member: Member, expected: list[str]) -> None:
    assert [v.name for v in allowed_volumes(CONFIG, member)] == expected


@pytest.mark.parametrize(
    ("config", "member", "expected"),
    [
        (CONFIG, ALICE, ["climate"]),
        (CONFIG, DAVE, ["ml", "staff"]),
        (CONFIG, CAROL, []),
        (FUNDED, DAVE, ["ml"]),
        (FUNDED, BOB, ["climate", "ml"]),
        (FUNDED, Member("eve", frozenset({"staff"})), []),
    ],
)
def test_chargeable_groups(config: LaunchConfig, member: Member, expected: list[str]) -> None:
    assert chargeable_groups(config, member) == expected


@pytest.mark.parametrize(
    ("config", "member", "req", "budgets", "expected"),
    [c[1:] for c in DEFAULTS],
    ids=[c[0] for c in DEFAULTS],
)
def test_authorize_fills_in_defaults(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    budgets: Any,
    expected: tuple[Any, ...],
) -> None:
    launch = authorize(config, member, req, budgets)
    got = (
        launch.environment.name,
        launch.size.name,
        launch.group,
        tuple(v.name for v in launch.volumes),
        launch.urlpath,
    )
    assert got == expected
    assert launch.environment is config.environments[launch.environment.name]
    assert launch.size is config.sizes[launch.size.name]


@pytest.mark.parametrize(
    ("config", "member", "req", "budgets", "expected"),
    [c[1:] for c in REFUSALS],
    ids=[c[0] for c in REFUSALS],
)
def test_authorize_refuses_naming_each_field(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    budgets: Any,
    expected: dict[str, str],
) -> None:
    with pytest.raises(OptionsError) as info:
        authorize(config, member, req, budgets)
    assert set(info.value.errors) == set(expected)
    for field, fragment in expected.items():
        assert fragment in info.value.errors[field]


def test_a_hidden_environment_is_refused_like_a_missing_one() -> None:
    def refusal(name: str) -> str:
        with pytest.raises(OptionsError) as info:
            authorize(CONFIG, ALICE, request(environment=name), None)
        return info.value.errors["environment"].replace(repr(name), "NAME")

    assert refusal("ml") == refusal("does-not-exist")


def test_user_options_are_what_accounting_charges() -> None:
    launch = authorize(CONFIG, ALICE, request(volumes=("common-data",)), None)
    options = launch.user_options()
    assert options == {
        "environment": "pangeo",
        "size": "medium",
        "group": "climate",
        "volumes": ["common-data"],
        "cpu": 2.0,
        "mem": 4 * GIB,
        "gpus": 0,
        "profile": "pangeo",
        "image": "pangeo/pangeo-notebook:2024.01.01",
    }
    server = HubServer("alice", "", datetime(2026, 1, 1, tzinfo=UTC), user_options=options)
    start = session_start(server, StartDefaults(), {"climate"})
    assert (start.group, start.cpu, start.memory_bytes, start.gpus) == ("climate", 2.0, 4 * GIB, 0)
    assert (start.profile, start.image, start.notes) == ("pangeo", launch.environment.image, ())


def test_the_start_page_is_stored_only_when_chosen() -> None:
    chosen = authorize(CONFIG, ALICE, request(urlpath="/lab/tree/a.ipynb"), None)
    assert chosen.user_options()["urlpath"] == "/lab/tree/a.ipynb"
    default = authorize(CONFIG, ALICE, request(environment="climate"), None)
    assert default.urlpath == "/rstudio/"
    assert "urlpath" not in default.user_options()


def test_local_launches_store_no_image() -> None:
    config = parse_launch_config(
        {"lab": {}}, {"s": {"cpu": 1, "memory": "1G"}}, {}, backend="local"
    )
    options = authorize(config, ALICE, request(), None).user_options()
    assert "image" not in options
    assert options["profile"] == "lab"


def test_saved_options_authorize_to_the_same_launch() -> None:
    launch = authorize(
        CONFIG, BOB, request(environment="ml", group="ml", volumes=("ml-scratch",)), None
    )
    saved, messages = fallback(CONFIG, BOB, launch.user_options())
    assert messages == []
    assert authorize(CONFIG, BOB, saved, None) == launch


# (id, member, saved, expected request, messages)
FALLBACKS: list[tuple[str, Member, Any, LaunchRequest, list[str]]] = [
    ("nothing saved", ALICE, {}, request(), []),
    ("not an object", ALICE, ["pangeo"], request(), []),
    ("null", ALICE, None, request(), []),
    (
        "still valid",
        ALICE,
        {"environment": "climate", "size": "large", "group": "climate", "urlpath": "/lab"},
        request(environment="climate", size="large", group="climate", urlpath="/lab"),
        [],
    ),
    (
        "resolved keys are ignored",
        ALICE,
        {"cpu": 99, "mem": "x", "gpus": 8, "profile": "ml", "image": "evil", "other": 1},
        request(),
        [],
    ),
    (
        "a removed environment",
        ALICE,
        {"environment": "old"},
        request(),
        ["The environment 'old' you used last time is no longer offered."],
    ),
    (
        "an environment no longer visible",
        Member("alice", frozenset()),
        {"environment": "climate", "group": "climate"},
        request(),
        [
            "The environment 'climate' you used last time is no longer offered.",
            "You can no longer charge group 'climate', which you charged last time.",
        ],
    ),
    (
        "a removed size",
        ALICE,
        {"environment": "pangeo", "size": "xl"},
        request(environment="pangeo"),
        ["The size 'xl' you used last time is no longer offered for pangeo."],
    ),
    (
        "a size of the dropped environment",
        BOB,
        {"environment": "old", "size": "gpu"},
        request(),
        [
            "The environment 'old' you used last time is no longer offered.",
            "The size 'gpu' you used last time is no longer offered for pangeo.",
        ],
    ),
    (
        "a group the user left",
        ALICE,
        {"group": "ml", "size": "small"},
        request(size="small"),
        ["You can no longer charge group 'ml', which you charged last time."],
    ),
    (
        "volumes removed, hidden and now always mounted",
        ALICE,
        {"volumes": ["common-data", "old", "ml-scratch", "home"]},
        request(volumes=("common-data",)),
        [
            "The volume 'old' you chose last time is no longer offered.",
            "The volume 'ml-scratch' you chose last time is no longer offered.",
        ],
    ),
    (
        "garbage values",
        ALICE,
        {"environment": 5, "volumes": "common-data", "urlpath": "//evil", "size": "small"},
        request(size="small"),
        [
            "Your last choice of environment, 5, could not be used.",
            "Your last choice of volumes, 'common-data', could not be used.",
            "Your last choice of urlpath, '//evil', could not be used.",
        ],
    ),
    (
        "a huge value is not echoed",
        ALICE,
        {"group": "g" * 10_000},
        request(),
        ["Your last choice of group, '" + "g" * 59 + "...', could not be used."],
    ),
]


@pytest.mark.parametrize(
    ("member", "saved", "expected", "messages"),
    [c[1:] for c in FALLBACKS],
    ids=[c[0] for c in FALLBACKS],
)
def test_fallback(
    member: Member, saved: Any, expected: LaunchRequest, messages: list[str]
) -> None:
    assert fallback(CONFIG, member, saved) == (expected, messages)
