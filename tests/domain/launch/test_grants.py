"""The group charged must grant what it pays for, unless the admin chose the permissive rule.

One table of cases, each run under both rules: the default (``charged_group_must_grant``)
and the permissive one. An expected refusal is ``(field, words in the message)``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from slugify import slugify

from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.options import LaunchRequest, OptionsError
from eohub.domain.launch.policy import Member, authorize, visible_environments
from eohub.domain.launch.profile_policy import authorize_profile, profile_groups
from eohub.domain.launch.profile_selection import select_profile, visible_profiles
from eohub.domain.launch.profiles import parse_profile_list
from eohub.domain.launch.volumes import expand

SIZES = {"small": {"cpu": 1, "memory": "2G"}}
ENVIRONMENTS = {
    "pangeo": {"image": "pangeo:1", "default": True},
    "climate": {"image": "climate:1", "allowed_groups": ["climate"]},
    "personal": {"image": "alice:1", "allowed_users": ["alice"], "allowed_groups": ["ml"]},
    "staff-lab": {"image": "staff:1", "allowed_groups": ["staff"]},
}
VOLUMES = {
    "home": {"kind": "workspace", "mount_path": "/home/jovyan", "storage": "10Gi"},
    "ml-scratch": {
        "kind": "pvc",
        "claim_name": "ml-scratch",
        "mount_path": "/scratch",
        "optional": True,
        "allowed_groups": ["ml"],
    },
    # A folder per group: only climate's and ml's may be mounted.
    "group-share": {
        "kind": "host_path",
        "path": "/shares/{group}",
        "mount_path": "/data/group",
        "allowed_groups": ["climate", "ml"],
    },
}
STRICT = parse_launch_config(
    ENVIRONMENTS, SIZES, VOLUMES, backend="kube", charge_groups=["climate", "ml", "other"]
)
PERMISSIVE = replace(STRICT, charged_group_must_grant=False)

BOB = Member("bob", frozenset({"climate", "ml"}))
ALICE = Member("alice", frozenset({"climate", "other"}))
# staff is not a charge group: staff-lab has no group to pay for it.
DAVE = Member("dave", frozenset({"ml", "staff"}))

Expected = tuple[str, str, tuple[str, ...]] | tuple[str, str]
# name, member, request, expected by default, expected with the permissive rule.
CASES: list[tuple[str, Member, dict[str, Any], Expected, Expected]] = [
    (
        "an environment of one group charged to another",
        BOB,
        {"environment": "climate", "group": "ml"},
        (
            "group",
            "group 'ml' does not grant environment 'climate', so it cannot pay for it; "
            "charge 'climate'",
        ),
        ("climate", "ml", ("home", "group-share")),
    ),
    (
        "the group is left out: the one that grants the environment",
        BOB,
        {"environment": "climate"},
        ("climate", "climate", ("home", "group-share")),
        ("group", "choose the group to charge"),
    ),
    (
        "an environment for everyone, either group",
        BOB,
        {"environment": "pangeo", "group": "ml"},
        ("pangeo", "ml", ("home", "group-share")),
        ("pangeo", "ml", ("home", "group-share")),
    ),
    (
        "a volume of one group charged to another",
        BOB,
        {"environment": "pangeo", "group": "climate", "volumes": ("ml-scratch",)},
        (
            "volumes",
            "group 'climate' does not grant volume 'ml-scratch', so it cannot pay "
            "for it; charge 'ml'",
        ),
        ("pangeo", "climate", ("home", "ml-scratch", "group-share")),
    ),
    (
        "a volume of the group charged",
        BOB,
        {"environment": "pangeo", "group": "ml", "volumes": ("ml-scratch",)},
        ("pangeo", "ml", ("home", "ml-scratch", "group-share")),
        ("pangeo", "ml", ("home", "ml-scratch", "group-share")),
    ),
    (
        "a {group} folder of a group not allowed on it is not mounted",
        ALICE,
        {"environment": "pangeo", "group": "other"},
        ("pangeo", "other", ("home",)),
        ("pangeo", "other", ("home", "group-share")),
    ),
    (
        "an environment granted to the user in person, any group pays",
        ALICE,
        {"environment": "personal", "group": "other"},
        ("personal", "other", ("home",)),
        ("personal", "other", ("home", "group-share")),
    ),
    (
        "an environment no chargeable group grants",
        DAVE,
        {"environment": "staff-lab", "group": "ml"},
        ("environment", "no environment 'staff-lab' is available to you"),
        ("staff-lab", "ml", ("home", "group-share")),
    ),
]


def _outcome(config: LaunchConfig, member: Member, raw: dict[str, Any]) -> Expected:
    try:
        launch = authorize(config, member, LaunchRequest(**raw), None)
    except OptionsError as e:
        field = next(iter(e.errors))
        return field, e.errors[field]
    return launch.environment.name, launch.group, tuple(v.name for v in launch.volumes)


@pytest.mark.parametrize(
    ("member", "raw", "strict", "permissive"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_the_charged_group_grants_what_it_pays_for(
    member: Member, raw: dict[str, Any], strict: Expected, permissive: Expected
) -> None:
    assert _outcome(STRICT, member, raw) == strict
    assert _outcome(PERMISSIVE, member, raw) == permissive


@pytest.mark.parametrize(
    ("config", "member", "expected"),
    [
        (STRICT, DAVE, ["pangeo", "personal"]),
        (PERMISSIVE, DAVE, ["pangeo", "personal", "staff-lab"]),
        (STRICT, BOB, ["pangeo", "climate", "personal"]),
        (STRICT, ALICE, ["pangeo", "climate", "personal"]),
        # No group can be charged at all: the form says so, and still lists them.
        (STRICT, Member("eve", frozenset({"staff"})), ["pangeo", "staff-lab"]),
    ],
)
def test_an_environment_no_chargeable_group_grants_is_not_offered(
    config: LaunchConfig, member: Member, expected: list[str]
) -> None:
    assert [e.name for e in visible_environments(config, member)] == expected


def test_a_group_folder_names_the_group_that_pays() -> None:
    launch = authorize(STRICT, BOB, LaunchRequest(environment="climate"), None)
    share = next(v for v in launch.volumes if v.name == "group-share")
    assert expand(share.path, username="bob", group=launch.group) == "/shares/climate"


PROFILES = parse_profile_list(
    [
        {"display_name": "Open", "slug": "open"},
        {"display_name": "Climate GPU", "slug": "cgpu", "allowed_groups": ["climate"]},
        {
            "display_name": "Images",
            "slug": "images",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "base": {"display_name": "Base", "default": True},
                        "ml": {"display_name": "ML", "allowed_groups": ["ml"]},
                    },
                }
            },
        },
    ],
    slugify,
)
PROFILE_CASES: list[tuple[str, str, dict[str, object], str | None, str, str]] = [
    ("an open profile, any group", "open", {}, "ml", "ml", "ml"),
    (
        "a profile of one group charged to another",
        "cgpu",
        {},
        "ml",
        "group 'ml' does not grant profile 'Climate GPU' with these choices",
        "ml",
    ),
    ("the group left out: the one that grants it", "cgpu", {}, None, "climate", "choose"),
    (
        "a choice of one group charged to another",
        "images",
        {"image": "ml"},
        "climate",
        "group 'climate' does not grant profile 'Images' with these choices",
        "climate",
    ),
    ("a choice of the group charged", "images", {"image": "ml"}, "ml", "ml", "ml"),
]


@pytest.mark.parametrize(
    ("slug", "options", "group", "strict", "permissive"),
    [c[1:] for c in PROFILE_CASES],
    ids=[c[0] for c in PROFILE_CASES],
)
def test_a_profile_launch_charges_a_group_that_grants_it(
    slug: str, options: dict[str, object], group: str | None, strict: str, permissive: str
) -> None:
    selection = select_profile(visible_profiles(PROFILES, BOB.groups), slug, options)
    for config, expected in ((STRICT, strict), (PERMISSIVE, permissive)):
        try:
            got = authorize_profile(config, BOB, LaunchRequest(group=group), selection).group
        except OptionsError as e:
            got = e.errors["group"]
        assert expected in got


def test_the_form_offers_the_groups_that_grant_a_profile() -> None:
    cgpu = next(p for p in PROFILES if p.slug == "cgpu")
    assert profile_groups(STRICT, cgpu, ["climate", "ml"]) == ["climate"]
    assert profile_groups(PERMISSIVE, cgpu, ["climate", "ml"]) == ["climate", "ml"]


# Profile lists compare group names casefolded (2i2c's convention): ``allowed_groups:
# [Climate]`` shows the profile to a member of the hub group ``Climate``, so charging
# ``Climate`` must pay for it too, whatever the case either is written in.
MIXED_CASE = parse_profile_list(
    [
        {"display_name": "Climate GPU", "slug": "cgpu", "allowed_groups": ["Climate"]},
        {
            "display_name": "Images",
            "slug": "images",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "base": {"display_name": "Base", "default": True},
                        "ml": {"display_name": "ML", "allowed_groups": ["ML-Team"]},
                    },
                }
            },
        },
    ],
    slugify,
)
MIXED = parse_launch_config(
    ENVIRONMENTS, SIZES, VOLUMES, backend="kube", charge_groups=["Climate", "ml-team", "other"]
)
CAROL = Member("carol", frozenset({"Climate", "ml-team", "other"}))
MIXED_CASES: list[tuple[str, str, dict[str, object], str | None, str]] = [
    ("the profile's group, capitalised alike", "cgpu", {}, "Climate", "Climate"),
    ("the group left out: the one that grants it", "cgpu", {}, None, "Climate"),
    (
        "another group still does not grant it",
        "cgpu",
        {},
        "other",
        "group 'other' does not grant profile 'Climate GPU' with these choices",
    ),
    ("a choice's group, capitalised otherwise", "images", {"image": "ml"}, "ml-team", "ml-team"),
    (
        "a choice of one group charged to another",
        "images",
        {"image": "ml"},
        "Climate",
        "group 'Climate' does not grant profile 'Images' with these choices",
    ),
]


@pytest.mark.parametrize(
    ("slug", "options", "group", "expected"),
    [c[1:] for c in MIXED_CASES],
    ids=[c[0] for c in MIXED_CASES],
)
def test_profile_groups_are_compared_casefolded(
    slug: str, options: dict[str, object], group: str | None, expected: str
) -> None:
    selection = select_profile(visible_profiles(MIXED_CASE, CAROL.groups), slug, options)
    try:
        got = authorize_profile(MIXED, CAROL, LaunchRequest(group=group), selection).group
    except OptionsError as e:
        got = e.errors["group"]
    assert got == expected if expected in CAROL.groups else got.startswith(expected)


@pytest.mark.parametrize(
    ("slug", "groups", "expected"),
    [
        ("cgpu", ["Climate", "ml-team", "other"], ["Climate"]),
        ("cgpu", ["CLIMATE", "climate"], ["CLIMATE", "climate"]),
        ("images", ["Climate", "ml-team"], ["Climate", "ml-team"]),
    ],
)
def test_the_form_offers_the_groups_that_grant_a_profile_whatever_their_case(
    slug: str, groups: list[str], expected: list[str]
) -> None:
    profile = next(p for p in MIXED_CASE if p.slug == slug)
    assert profile_groups(MIXED, profile, groups) == expected
