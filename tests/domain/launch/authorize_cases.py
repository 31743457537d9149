"""Tables for ``authorize``: the defaults it fills in, and the refusals naming each field."""

from __future__ import annotations

from typing import Any

from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.policy import Member
from tests.domain.launch.policy_fixtures import (
    ALICE,
    BOB,
    CAROL,
    CONFIG,
    DAVE,
    FUNDED,
    HIDDEN_DEFAULT,
    budget,
)


def request(**kw: Any) -> LaunchRequest:
    return LaunchRequest(**kw)


# (id, config, member, request, budgets, (environment, size, group, volumes, urlpath))
DEFAULTS: list[tuple[str, LaunchConfig, Member, LaunchRequest, Any, tuple[Any, ...]]] = [
    (
        "nothing given",
        CONFIG,
        ALICE,
        request(),
        None,
        ("pangeo", "medium", "climate", ("home", "climate-archive"), "/lab"),
    ),
    (
        "no default size: the first",
        CONFIG,
        ALICE,
        request(environment="climate"),
        None,
        ("climate", "small", "climate", ("home", "climate-archive"), "/rstudio/"),
    ),
    (
        "the default size fits",
        CONFIG,
        ALICE,
        request(),
        {"climate": budget(core=3)},
        ("pangeo", "medium", "climate", ("home", "climate-archive"), "/lab"),
    ),
    (
        "the default size does not fit: the first that does",
        CONFIG,
        ALICE,
        request(),
        {"climate": budget(core=1.5)},
        ("pangeo", "small", "climate", ("home", "climate-archive"), "/lab"),
    ),
    (
        "an optional volume, mounted in config order",
        CONFIG,
        ALICE,
        request(volumes=("common-data",)),
        None,
        ("pangeo", "medium", "climate", ("home", "common-data", "climate-archive"), "/lab"),
    ),
    (
        "everything chosen",
        CONFIG,
        BOB,
        request(
            environment="ml",
            size="gpu",
            group="ml",
            volumes=("ml-scratch", "common-data"),
            urlpath="/lab/tree/train.ipynb",
        ),
        {"ml": budget(core=100, mem=1000, gpu=2)},
        (
            "ml",
            "gpu",
            "ml",
            # Not climate's archive: ml pays, and only climate may mount it.
            ("home", "common-data", "ml-scratch"),
            "/lab/tree/train.ipynb",
        ),
    ),
    (
        "a group accounting does not list: no budget information",
        CONFIG,
        BOB,
        request(size="large", group="climate"),
        {"ml": budget(core=0)},
        ("pangeo", "large", "climate", ("home", "climate-archive"), "/lab"),
    ),
    (
        "the only funded group",
        FUNDED,
        DAVE,
        request(),
        None,
        ("pangeo", "medium", "ml", ("home",), "/lab"),
    ),
    (
        "the default environment is hidden: the first visible",
        HIDDEN_DEFAULT,
        Member("u", frozenset({"g"})),
        request(),
        None,
        ("b", "s", "g", (), "/lab"),
    ),
    (
        "the default environment is visible",
        HIDDEN_DEFAULT,
        Member("u", frozenset({"x"})),
        request(),
        None,
        ("a", "s", "x", (), "/lab"),
    ),
]

# (id, config, member, request, budgets, {field: message})
REFUSALS: list[tuple[str, LaunchConfig, Member, LaunchRequest, Any, dict[str, str]]] = [
    (
        "an unknown environment",
        CONFIG,
        ALICE,
        request(environment="nope"),
        None,
        {"environment": "no environment 'nope' is available to you"},
    ),
    (
        "a hidden environment",
        CONFIG,
        ALICE,
        request(environment="ml"),
        None,
        {"environment": "no environment 'ml' is available to you"},
    ),
    (
        "another user's environment",
        CONFIG,
        BOB,
        request(environment="personal"),
        None,
        {"environment": "no environment 'personal' is available to you", "group": ""},
    ),
    (
        "an unknown size",
        CONFIG,
        ALICE,
        request(size="huge"),
        None,
        {"size": "size 'huge' is not offered for environment 'pangeo'"},
    ),
    (
        "a size of another environment",
        CONFIG,
        BOB,
        request(environment="ml", size="large", group="ml"),
        None,
        {"size": "size 'large' is not offered for environment 'ml'"},
    ),
    (
        "a GPU size on an environment without GPUs",
        CONFIG,
        BOB,
        request(size="gpu", group="ml"),
        None,
        {"size": "size 'gpu' has GPUs, which environment 'pangeo' does not use"},
    ),
    (
        "a size over the budget",
        CONFIG,
        ALICE,
        request(size="large"),
        {"climate": budget(core=3)},
        {
            "size": "size 'large' does not fit the budget left of group 'climate': "
            "it buys 0.8 hours of it, and at least 1 are needed"
        },
    ),
    (
        "no size fits",
        CONFIG,
        ALICE,
        request(),
        {"climate": budget(core=0.5)},
        {"size": "no size of environment 'pangeo' fits the budget left of group 'climate'"},
    ),
    (
        "a spent GPU budget",
        CONFIG,
        BOB,
        request(environment="ml", size="gpu", group="ml"),
        {"ml": budget(core=100, gpu=0)},
        {"size": "size 'gpu' does not fit the budget left of group 'ml'"},
    ),
    (
        "a group the user is not in",
        CONFIG,
        ALICE,
        request(group="ml"),
        None,
        {"group": "you are not a member of group 'ml'"},
    ),
    (
        "a group that is not funded",
        FUNDED,
        DAVE,
        request(group="staff"),
        None,
        {"group": "group 'staff' cannot be charged"},
    ),
    (
        "several groups, none chosen",
        CONFIG,
        BOB,
        request(),
        None,
        {"group": "choose the group to charge"},
    ),
    (
        "no group at all",
        CONFIG,
        CAROL,
        request(),
        None,
        {"group": "none of your groups can be charged"},
    ),
    (
        "a hidden volume",
        CONFIG,
        ALICE,
        request(volumes=("ml-scratch",)),
        None,
        {"volumes": "no volume 'ml-scratch' is available to you"},
    ),
    (
        "an unknown volume and an always-mounted one",
        CONFIG,
        ALICE,
        request(volumes=("nope", "home")),
        None,
        {
            "volumes": "no volume 'nope' is available to you; "
            "volume 'home' is always mounted; it is not a choice"
        },
    ),
    (
        "a bad start page built without parsing",
        CONFIG,
        ALICE,
        request(urlpath="//evil.example.org"),
        None,
        {"urlpath": "no '//'"},
    ),
    (
        "every problem at once",
        CONFIG,
        ALICE,
        request(environment="nope", group="ml", volumes=("x",), urlpath="/.."),
        None,
        {"environment": "nope", "group": "ml", "volumes": "'x'", "urlpath": ".."},
    ),
    (
        "nothing visible",
        parse_launch_config(
            {"a": {"image": "a", "allowed_groups": ["x"]}},
            {"s": {"cpu": 1, "memory": "1G"}},
            {},
            backend="kube",
        ),
        ALICE,
        request(),
        None,
        {"environment": "no environment is available to you"},
    ),
]
