"""eohub's part of a profile launch, and which kind of launch a request asks for."""

from __future__ import annotations

from typing import Any

import pytest
from slugify import slugify

from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.options import LaunchRequest, OptionsError
from eohub.domain.launch.policy import Member
from eohub.domain.launch.profile_policy import ProfileParts, authorize_profile, wants_profile
from eohub.domain.launch.profile_selection import select_profile, visible_profiles
from eohub.domain.launch.profiles import Profile, parse_profile_list

SIZES = {"small": {"cpu": 1, "memory": "2G"}}
VOLUMES = {
    "home": {"kind": "workspace", "mount_path": "/home/jovyan", "storage": "10Gi"},
    "scratch": {
        "kind": "pvc",
        "claim_name": "scratch",
        "mount_path": "/scratch",
        "optional": True,
        "allowed_groups": ["eo-sci"],
    },
}


def config(environments: dict[str, Any], charge_groups: tuple[str, ...] = ()) -> LaunchConfig:
    return parse_launch_config(
        environments, SIZES, VOLUMES, backend="kube", charge_groups=charge_groups
    )


PANGEO = {"image": "quay.io/pangeo:1", "sizes": ["small"]}
ML_ONLY = {**PANGEO, "allowed_groups": ["ml"]}
#: A default environment everyone sees.
WITH_DEFAULT = config({"pangeo": {**PANGEO, "default": True}, "ml": ML_ONLY})
#: Environments, none of them the default.
NO_DEFAULT = config({"pangeo": PANGEO, "ml": ML_ONLY})
#: The default environment is for group ml only.
HIDDEN_DEFAULT = config({"ml": {**ML_ONLY, "default": True}, "pangeo": PANGEO})
#: Only environments for group ml.
ML_ENVS = config({"ml": ML_ONLY})
NO_ENVS = config({})
CHARGED = config({}, ("eo-sci", "ml", "climate"))

LISTED = parse_profile_list(
    [
        {"display_name": "Data science", "slug": "ds"},
        {
            "display_name": "GPU",
            "slug": "gpu",
            "eohub": {"charge_groups": ["ml", "climate"]},
        },
        {"display_name": "Outside", "slug": "outside", "eohub": {"charge_groups": ["outside"]}},
    ],
    slugify,
)
MARKED = parse_profile_list(
    [{"display_name": "Data science", "slug": "ds"}, {"display_name": "B", "default": True}],
    slugify,
)

USER = Member("alice", frozenset({"eo-sci"}))
ML = Member("bob", frozenset({"eo-sci", "ml"}))
OUTSIDER = Member("olga", frozenset({"outside"}))
ML_ONLY_MEMBER = Member("mo", frozenset({"ml"}))

WANTS: list[tuple[str, LaunchConfig, Member, dict[str, object], tuple[Profile, ...], bool]] = [
    ("no profiles", NO_ENVS, USER, {"profile": "ds"}, (), False),
    (
        "an environment asked for",
        NO_ENVS,
        USER,
        {"environment": "ds", "profile": "ds"},
        LISTED,
        False,
    ),
    ("profile names an environment", WITH_DEFAULT, USER, {"profile": "pangeo"}, LISTED, False),
    ("profile names a hidden environment", WITH_DEFAULT, USER, {"profile": "ml"}, LISTED, False),
    ("profile names a profile", WITH_DEFAULT, USER, {"profile": "ds"}, LISTED, True),
    ("profile names nothing known", WITH_DEFAULT, USER, {"profile": "nope"}, LISTED, True),
    # Not a name at all: the profile check reports it (as a 400), it does not crash.
    ("a list is no name", WITH_DEFAULT, USER, {"profile": ["pangeo"]}, LISTED, True),
    ("an object is no name", WITH_DEFAULT, USER, {"profile": {"a": 1}}, LISTED, True),
    ("a number is no name", WITH_DEFAULT, USER, {"profile": 5}, LISTED, True),
    ("an empty profile is none", WITH_DEFAULT, USER, {"profile": ""}, MARKED, False),
    (
        "an empty environment is none",
        NO_DEFAULT,
        USER,
        {"environment": "", "profile": "ds"},
        LISTED,
        True,
    ),
    # Neither: eohub's default environment, then the list's default, then eohub's first
    # environment, then the first profile.
    ("eohub's default environment wins", WITH_DEFAULT, USER, {}, MARKED, False),
    ("then the list's default", NO_DEFAULT, USER, {}, MARKED, True),
    ("a hidden default environment is none", HIDDEN_DEFAULT, USER, {}, MARKED, True),
    ("a visible default environment", HIDDEN_DEFAULT, ML, {}, MARKED, False),
    ("then eohub's first environment", NO_DEFAULT, USER, {}, LISTED, False),
    ("then the first profile", ML_ENVS, USER, {}, LISTED, True),
    ("only profiles", NO_ENVS, USER, {"group": "eo-sci"}, LISTED, True),
]


@pytest.mark.parametrize(
    ("config", "member", "raw", "profiles", "expected"),
    [w[1:] for w in WANTS],
    ids=[w[0] for w in WANTS],
)
def test_wants_profile(
    config: LaunchConfig,
    member: Member,
    raw: dict[str, object],
    profiles: tuple[Profile, ...],
    expected: bool,
) -> None:
    assert wants_profile(config, member, raw, profiles) is expected


def authorize(cfg: LaunchConfig, member: Member, slug: str, **request: Any) -> ProfileParts:
    selection = select_profile(visible_profiles(LISTED, member.groups), slug, {})
    return authorize_profile(cfg, member, LaunchRequest(**request), selection)


ALLOWED: list[
    tuple[str, LaunchConfig, Member, str, dict[str, Any], str, list[str], str | None]
] = [
    ("the only group", NO_ENVS, USER, "ds", {}, "eo-sci", ["home"], None),
    ("a group asked for", NO_ENVS, ML, "ds", {"group": "ml"}, "ml", ["home"], None),
    (
        "an optional volume",
        NO_ENVS,
        USER,
        "ds",
        {"volumes": ("scratch",)},
        "eo-sci",
        ["home", "scratch"],
        None,
    ),
    (
        "a start page",
        NO_ENVS,
        USER,
        "ds",
        {"urlpath": "/lab/tree/x"},
        "eo-sci",
        ["home"],
        "/lab/tree/x",
    ),
    # The profile's charge_groups narrow the groups: only ml is left for bob.
    ("the profile's charge groups", NO_ENVS, ML, "gpu", {}, "ml", ["home"], None),
    ("the profile's charge groups with the hub's", CHARGED, ML, "gpu", {}, "ml", ["home"], None),
]


@pytest.mark.parametrize(
    ("cfg", "member", "slug", "request_", "group", "volumes", "urlpath"),
    [a[1:] for a in ALLOWED],
    ids=[a[0] for a in ALLOWED],
)
def test_authorize_profile(
    cfg: LaunchConfig,
    member: Member,
    slug: str,
    request_: dict[str, Any],
    group: str,
    volumes: list[str],
    urlpath: str | None,
) -> None:
    parts = authorize(cfg, member, slug, **request_)
    assert parts.group == group
    assert [v.name for v in parts.volumes] == volumes
    assert parts.urlpath == urlpath


#: A profile without dynamic_image_building takes no repository.
NO_BUILDS = "is only for profiles that build images; 'Data science' does not"
REFUSED: list[tuple[str, LaunchConfig, Member, str, dict[str, Any], dict[str, str]]] = [
    (
        "an environment",
        NO_ENVS,
        USER,
        "ds",
        {"environment": "pangeo"},
        {"environment": "is not used by profile 'Data science'"},
    ),
    (
        "a size",
        NO_ENVS,
        USER,
        "ds",
        {"size": "small"},
        {"size": "is not used by profile 'Data science'"},
    ),
    (
        "a repository",
        NO_ENVS,
        USER,
        "ds",
        {"repo": "org/repo"},
        {"repo": NO_BUILDS},
    ),
    (
        "every repository key",
        NO_ENVS,
        USER,
        "ds",
        {"provider": "gh", "repo": "a/b", "ref": "main", "filepath": "x.ipynb"},
        dict.fromkeys(("provider", "repo", "ref", "filepath"), NO_BUILDS),
    ),
    ("no group chosen", NO_ENVS, ML, "ds", {}, {"group": "choose the group to charge"}),
    (
        "not a member",
        NO_ENVS,
        USER,
        "ds",
        {"group": "ml"},
        {"group": "you are not a member of group 'ml'"},
    ),
    (
        "outside the profile's groups",
        NO_ENVS,
        ML,
        "gpu",
        {"group": "eo-sci"},
        {"group": "group 'eo-sci' cannot be charged"},
    ),
    (
        "no group of the profile",
        NO_ENVS,
        USER,
        "gpu",
        {},
        {"group": "none of your groups can be charged for a server"},
    ),
    (
        "a group outside the hub's charge groups",
        CHARGED,
        OUTSIDER,
        "outside",
        {},
        {"group": "none of your groups can be charged for a server"},
    ),
    (
        "a volume of another group",
        NO_ENVS,
        ML_ONLY_MEMBER,
        "ds",
        {"volumes": ("scratch",)},
        {"volumes": "no volume 'scratch' is available to you"},
    ),
    (
        "an always-mounted volume",
        NO_ENVS,
        USER,
        "ds",
        {"volumes": ("home",)},
        {"volumes": "volume 'home' is always mounted; it is not a choice"},
    ),
    (
        "a bad start page",
        NO_ENVS,
        USER,
        "ds",
        {"urlpath": "//evil.example.org"},
        {"urlpath": "must be a path on your server: no '//' or '\\'"},
    ),
]


@pytest.mark.parametrize(
    ("cfg", "member", "slug", "request_", "errors"),
    [r[1:] for r in REFUSED],
    ids=[r[0] for r in REFUSED],
)
def test_authorize_profile_refuses_naming_each_field(
    cfg: LaunchConfig,
    member: Member,
    slug: str,
    request_: dict[str, Any],
    errors: dict[str, str],
) -> None:
    with pytest.raises(OptionsError) as raised:
        authorize(cfg, member, slug, **request_)
    assert raised.value.errors == errors
