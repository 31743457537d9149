"""Reading KubeSpawner's ``profile_list``: the forms, KubeSpawner's defaults, the errors.

Slugs, default choices and the default profile are compared with what KubeSpawner's own
``_get_initialized_profile_list`` makes of the same list, with its own ``slugify``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubespawner import KubeSpawner
from kubespawner.spawner import slugify as kubespawner_slugify

from eohub.domain.launch.fields import LaunchConfigError
from eohub.domain.launch.profile_selection import default_profile
from eohub.domain.launch.profiles import (
    RESERVED_OPTIONS,
    Profile,
    ProfileRules,
    fill_unlisted,
    parse_profile_list,
)

KNOWN = frozenset({"image", "cpu_guarantee", "mem_guarantee", "node_selector", "environment"})


def parse(data: object, known: frozenset[str] | None = KNOWN) -> tuple[Profile, ...]:
    return parse_profile_list(data, kubespawner_slugify, known_traits=known)


def option(**extra: Any) -> dict[str, Any]:
    """An option with two choices, ``a`` and ``b``."""
    return {
        "display_name": "Image",
        "choices": {
            "a": {"display_name": "A", "kubespawner_override": {"image": "a:1"}},
            "b": {"display_name": "B", "kubespawner_override": {"image": "b:1"}},
        },
        **extra,
    }


def unlisted(**extra: Any) -> dict[str, Any]:
    return {"enabled": True, "kubespawner_override": {"image": "{value}"}, **extra}


def listing(**profile: Any) -> list[dict[str, Any]]:
    """A list of one profile called ``A`` with ``profile`` merged in."""
    return [{"display_name": "A", **profile}]


# -- the forms and KubeSpawner's defaults ----------------------------------------------

DISPLAY_NAMES = [
    "Small CPU",
    "GPU (A100) \u2014 1\u00d7",
    "Ünïcode Prøfile",
    "  spaces around  ",
    "a/b_c.d",
    "Python 3.12 (default)",
    "UPPER lower",
]


@pytest.mark.parametrize("name", DISPLAY_NAMES)
def test_a_missing_slug_is_kubespawners_slug_of_the_display_name(name: str) -> None:
    data = [{"display_name": name}]
    initialized = KubeSpawner._get_initialized_profile_list(None, copy.deepcopy(data))
    assert [p.slug for p in parse(data)] == [initialized[0]["slug"]]


def _lists() -> list[tuple[str, Any]]:
    two = [{"display_name": "One"}, {"display_name": "Two"}]
    marked = [{"display_name": "One"}, {"display_name": "Two", "default": True}]
    choices = listing(profile_options={"image": option()})
    marked_choice = copy.deepcopy(choices)
    marked_choice[0]["profile_options"]["image"]["choices"]["b"]["default"] = True
    two_marked = copy.deepcopy(marked_choice)
    two_marked[0]["profile_options"]["image"]["choices"]["a"]["default"] = True
    return [
        ("first profile is the default", two),
        ("marked profile is the default", marked),
        ("first choice is the default", choices),
        ("marked choice is the default", marked_choice),
        ("first marked choice wins", two_marked),
        (
            "first marked profile wins",
            [{"display_name": "A", "default": True}, {"display_name": "B", "default": True}],
        ),
        ("explicit slugs", [{"display_name": "X", "slug": "x-1"}, {"display_name": "X"}]),
    ]


@pytest.mark.parametrize(("case", "data"), _lists(), ids=[c for c, _ in _lists()])
def test_defaults_are_kubespawners(case: str, data: list[dict[str, Any]]) -> None:
    initialized = KubeSpawner._get_initialized_profile_list(None, copy.deepcopy(data))
    profiles = parse(data)
    assert [p.slug for p in profiles] == [p["slug"] for p in initialized]
    default = default_profile(profiles)
    assert default is not None
    assert default.slug == next(p["slug"] for p in initialized if p.get("default"))
    for profile, raw in zip(profiles, initialized, strict=True):
        for opt in profile.options:
            raw_choices = raw["profile_options"][opt.name]["choices"]
            marked = next(slug for slug, c in raw_choices.items() if c.get("default"))
            assert opt.default_choice is not None
            assert opt.default_choice.slug == marked


FORMS = [
    ("list", [{"display_name": "B"}, {"display_name": "A"}], ["b", "a"], "profile_list[1]"),
    ("tuple", ({"display_name": "B"}, {"display_name": "A"}), ["b", "a"], "profile_list[1]"),
    # The dict form: in the order of the keys; a missing slug still from the name.
    (
        "dict",
        {"z": {"display_name": "First"}, "m": {"display_name": "Second", "slug": "two"}},
        ["two", "first"],
        "profile_list.z",
    ),
    (
        "callable result",
        (lambda spawner: [{"display_name": "B"}, {"display_name": "A"}])(None),
        ["b", "a"],
        "profile_list[1]",
    ),
    ("empty list", [], [], None),
    ("empty dict", {}, [], None),
]


@pytest.mark.parametrize(
    ("data", "slugs", "second_path"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS]
)
def test_the_forms_of_profile_list(data: Any, slugs: list[str], second_path: str | None) -> None:
    profiles = parse(data)
    assert [p.slug for p in profiles] == slugs
    if second_path is not None:
        assert profiles[1].path == second_path


def test_a_profile_is_read_with_every_key() -> None:
    data = listing(
        slug="full",
        description="Line one.\nLine two.",
        default=True,
        kubespawner_override={"image": "x:1", "node_selector": {"pool": None}},
        allowed_groups=["EO-Sci", "climate"],
        eohub={
            "charge_groups": ["eo-sci"],
            "max_duration": 3600,
            "idle_timeout": "30m",
            "group_limits": {"EO-Sci": {"max_duration": "1d"}},
            "charge": "limit",
        },
        profile_options={
            "image": option(
                allowed_groups=["ML"],
                unlisted_choice=unlisted(
                    display_name="Your image",
                    validation_regex="quay\\.io/.*",
                    validation_message="Only quay.io",
                    allowed_groups=["Power"],
                ),
                description_in_choices=True,
                dynamic_image_building={"enabled": True},
            )
        },
    )
    (profile,) = parse(data)
    assert profile.slug == "full"
    assert profile.default is True
    assert profile.description == "Line one.\nLine two."
    assert profile.overrides == {"image": "x:1", "node_selector": {"pool": None}}
    assert profile.allowed_groups == frozenset({"eo-sci", "climate"})  # casefolded
    assert profile.rules == ProfileRules(
        frozenset({"eo-sci"}), 3600, "limit", 1800, {"EO-Sci": {"max_duration": 86400}}
    )
    assert profile.rules.own_limits == {"idle_timeout": 1800, "max_duration": 3600}
    assert profile.repository is True
    (opt,) = profile.options
    assert opt.path == "profile_list[0].profile_options.image"
    assert [c.slug for c in opt.choices] == ["a", "b"]
    assert opt.choices[0].path == "profile_list[0].profile_options.image.choices.a"
    assert opt.allowed_groups == frozenset({"ml"})
    assert opt.unlisted is not None
    assert opt.unlisted.path == "profile_list[0].profile_options.image.unlisted_choice"
    assert opt.unlisted.display_name_in_choices == "Other..."
    assert opt.unlisted.allowed_groups == frozenset({"power"})
    assert opt.unlisted.problem("quay.io/x:1") is None
    assert opt.unlisted.problem("docker.io/x:1") == "Only quay.io"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Empty YAML values are "not given".
        (listing(kubespawner_override=None, profile_options=None, eohub=None), ()),
        (
            listing(profile_options={"image": option(unlisted_choice={"enabled": False})}),
            ("image",),
        ),
        (listing(profile_options={"image": {"unlisted_choice": unlisted()}}), ("image",)),
    ],
)
def test_empty_values_and_disabled_unlisted_choices(
    data: list[dict[str, Any]], expected: tuple[str, ...]
) -> None:
    (profile,) = parse(data)
    assert tuple(o.name for o in profile.options) == expected
    assert profile.rules == ProfileRules()
    if profile.options and profile.options[0].choices:
        assert profile.options[0].unlisted is None


def test_without_known_traits_any_override_key_is_kept() -> None:
    (profile,) = parse(listing(kubespawner_override={"anything_at_all": 1}), known=None)
    assert profile.overrides == {"anything_at_all": 1}


def test_the_admins_data_is_not_changed() -> None:
    data = listing(profile_options={"image": option()})
    before = copy.deepcopy(data)
    parse(data)
    assert data == before


@pytest.mark.parametrize(
    ("overrides", "text", "expected"),
    [
        ({"image": "{value}"}, "quay.io/x:1", {"image": "quay.io/x:1"}),
        # {username} and friends stay for KubeSpawner's own expansion.
        (
            {"environment": {"A": "{value}-{username}"}},
            "v",
            {"environment": {"A": "v-{username}"}},
        ),
        ({"environment": {"{value}": "k"}}, "v", {"environment": {"v": "k"}}),
        ({"args": ["--image", "{value}"]}, "v", {"args": ["--image", "v"]}),
        ({"cpu_guarantee": 2, "x": None}, "v", {"cpu_guarantee": 2, "x": None}),
        ({"image": "{value:>4}"}, "v", {"image": "   v"}),
    ],
)
def test_fill_unlisted_is_kubespawners_recursive_format(
    overrides: dict[str, Any], text: str, expected: dict[str, Any]
) -> None:
    from kubespawner.utils import recursive_format

    assert fill_unlisted(overrides, text) == expected
    assert {k: recursive_format(v, value=text) for k, v in overrides.items()} == expected


# -- errors name the key path ------------------------------------------------------------

P0 = "profile_list[0]"
OPT = f"{P0}.profile_options.image"
ERRORS: list[tuple[str, object, str, str]] = [
    ("not a list", "gpu", "profile_list", "must be a list or mapping of profiles"),
    ("profile not a mapping", ["gpu"], P0, "must be a mapping of settings"),
    ("no display name", [{"slug": "x"}], f"{P0}.display_name", "is required"),
    (
        "unknown profile key",
        listing(kubespawner_overide={}),
        P0,
        "unknown key 'kubespawner_overide'",
    ),
    ("no slug from the name", [{"display_name": "!!!"}], f"{P0}.slug", "cannot be made"),
    (
        "typo'd override trait",
        listing(kubespawner_override={"imagee": "x"}),
        f"{P0}.kubespawner_override.imagee",
        "is not a KubeSpawner setting",
    ),
    (
        "typo'd trait in a choice",
        listing(
            profile_options={"image": {"choices": {"a": {"kubespawner_override": {"cpu": 1}}}}}
        ),
        f"{OPT}.choices.a.kubespawner_override.cpu",
        "is not a KubeSpawner setting",
    ),
    (
        "typo'd trait in an unlisted choice",
        listing(
            profile_options={
                "image": {"unlisted_choice": unlisted(kubespawner_override={"img": "{value}"})}
            }
        ),
        f"{OPT}.unlisted_choice.kubespawner_override.img",
        "is not a KubeSpawner setting",
    ),
    (
        "override not a mapping",
        listing(kubespawner_override=["image"]),
        f"{P0}.kubespawner_override",
        "must be a mapping of traits",
    ),
    (
        "unknown option key",
        listing(profile_options={"image": option(choice="a")}),
        OPT,
        "unknown key 'choice'",
    ),
    (
        "unknown choice key",
        listing(profile_options={"image": {"choices": {"a": {"kubespawner_overrides": {}}}}}),
        f"{OPT}.choices.a",
        "unknown key 'kubespawner_overrides'",
    ),
    (
        "unknown unlisted key",
        listing(profile_options={"image": option(unlisted_choice=unlisted(regex=".*"))}),
        f"{OPT}.unlisted_choice",
        "unknown key 'regex'",
    ),
    (
        "bad regex",
        listing(
            profile_options={"image": option(unlisted_choice=unlisted(validation_regex="(["))}
        ),
        f"{OPT}.unlisted_choice.validation_regex",
        "is not a valid regular expression",
    ),
    (
        "no choices and no unlisted choice",
        listing(profile_options={"image": {"display_name": "Image"}}),
        f"{OPT}.choices",
        "are required unless unlisted_choice is enabled",
    ),
    (
        "disabled unlisted choice only",
        listing(profile_options={"image": {"unlisted_choice": {"enabled": False}}}),
        f"{OPT}.choices",
        "are required",
    ),
    (
        "choices not a mapping",
        listing(profile_options={"image": {"choices": ["a", "b"]}}),
        f"{OPT}.choices",
        "must be a mapping of slugs to choices",
    ),
    (
        "options not a mapping",
        listing(profile_options=[option()]),
        f"{P0}.profile_options",
        "must be a mapping of options",
    ),
    (
        "bad option name",
        listing(profile_options={"an image": option()}),
        f"{P0}.profile_options",
        "must be 1 to 63",
    ),
    (
        "choice default not a bool",
        listing(profile_options={"image": {"choices": {"a": {"default": "yes"}}}}),
        f"{OPT}.choices.a.default",
        "must be true or false",
    ),
    (
        "allowed_groups not a list",
        listing(allowed_groups="eo-sci"),
        f"{P0}.allowed_groups",
        "must be a list",
    ),
    (
        "duplicate generated slugs",
        [{"display_name": "Small"}, {"display_name": "small"}],
        "profile_list[1].slug",
        "'small' is also the slug of profile_list[0]",
    ),
    (
        "explicit slug clashing with a generated one",
        [{"display_name": "GPU"}, {"display_name": "Other", "slug": "gpu"}],
        "profile_list[1].slug",
        "is also the slug of profile_list[0]",
    ),
    (
        "dict form path",
        {"gpu": {"display_name": "GPU", "kubespawner_override": {"imagee": "x"}}},
        "profile_list.gpu.kubespawner_override.imagee",
        "is not a KubeSpawner setting",
    ),
    (
        "eohub unknown key",
        listing(eohub={"charge_group": ["x"]}),
        f"{P0}.eohub",
        "unknown key 'charge_group'",
    ),
    (
        "eohub charge",
        listing(eohub={"charge": "both"}),
        f"{P0}.eohub.charge",
        "must be one of guarantee, limit",
    ),
    (
        "eohub max_duration negative",
        listing(eohub={"max_duration": -1}),
        f"{P0}.eohub.max_duration",
        "must be between 0 (no limit)",
    ),
    (
        "eohub max_duration text",
        listing(eohub={"max_duration": "8 hours"}),
        f"{P0}.eohub.max_duration",
        "must be a duration like 3600",
    ),
    (
        "eohub idle_timeout too long",
        listing(eohub={"idle_timeout": "400d"}),
        f"{P0}.eohub.idle_timeout",
        "must be between 0 (no limit)",
    ),
    (
        "eohub group_limits bad duration",
        listing(eohub={"group_limits": {"climate": {"max_duration": "2 days"}}}),
        f"{P0}.eohub.group_limits.climate.max_duration",
        "must be a duration",
    ),
    (
        "eohub group_limits unknown key",
        listing(eohub={"group_limits": {"climate": {"charge": "limit"}}}),
        f"{P0}.eohub.group_limits.climate.charge",
        "is not a limit",
    ),
    (
        "eohub charge_groups text",
        listing(eohub={"charge_groups": "eo-sci"}),
        f"{P0}.eohub.charge_groups",
        "must be a list",
    ),
    ("eohub not a mapping", listing(eohub=["limit"]), f"{P0}.eohub", "must be a mapping"),
]
ERRORS += [
    (
        f"reserved option {name}",
        listing(profile_options={name: option()}),
        f"{P0}.profile_options.{name}",
        "is one of eohub's own launch options",
    )
    for name in sorted(RESERVED_OPTIONS)
]
BAD_PLACEHOLDERS = [
    "{value",
    "value}",
    "{0}",
    "{}",
    "{value!z}",
    "{value:d}",
    "{value.nope}",
    "{value[x]}",
    "{username.home}",
]
ERRORS += [
    (
        f"unlisted placeholder {text}",
        listing(
            profile_options={
                "image": {"unlisted_choice": unlisted(kubespawner_override={"image": text})}
            }
        ),
        f"{OPT}.unlisted_choice.kubespawner_override",
        "may use only {value} as a placeholder",
    )
    for text in BAD_PLACEHOLDERS
]


@pytest.mark.parametrize(
    ("data", "where", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_an_invalid_profile_list_names_the_key_path(
    data: object, where: str, message: str
) -> None:
    with pytest.raises(LaunchConfigError) as raised:
        parse(data)
    assert raised.value.where == where
    assert str(raised.value).startswith(f"{where}: ")
    assert message in str(raised.value)
