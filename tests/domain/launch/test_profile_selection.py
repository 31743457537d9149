"""A profile launch's choices: who sees what, every wire shape, saved choices, the form."""

from __future__ import annotations

from typing import Any

import pytest
from slugify import slugify

from eohub.domain.launch.options import OptionsError
from eohub.domain.launch.profile_selection import (
    UNLISTED_MARKER,
    profile_form_to_options,
    saved_selection,
    select_profile,
    visible_profiles,
)
from eohub.domain.launch.profiles import Profile, parse_profile_list


def image(slug: str) -> dict[str, Any]:
    return {"display_name": slug.title(), "kubespawner_override": {"image": f"quay.io/{slug}:1"}}


def free_text(regex: str | None, **extra: Any) -> dict[str, Any]:
    unlisted: dict[str, Any] = {"enabled": True, "kubespawner_override": {"image": "{value}"}}
    if regex is not None:
        unlisted["validation_regex"] = regex
    return {**unlisted, **extra}


RAW: list[dict[str, Any]] = [
    {
        "display_name": "Data science",
        "slug": "ds",
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "pangeo": image("pangeo"),
                    "scipy": {**image("scipy"), "default": True},
                    "secret": {**image("secret"), "allowed_groups": ["Staff"]},
                },
                "unlisted_choice": free_text("quay.io/.*"),
            },
            "resources": {
                "choices": {
                    "small": {"display_name": "Small"},
                    "large": {
                        "display_name": "Large",
                        "default": True,
                        "allowed_groups": ["EO-ML"],
                    },
                }
            },
            "debug": {"allowed_groups": ["staff"], "choices": {"on": {"display_name": "On"}}},
            # Every choice hidden from most users: the option goes with them.
            "gpu_type": {"choices": {"a100": {"display_name": "A100", "allowed_groups": ["ml"]}}},
        },
    },
    {"display_name": "Staff", "slug": "staff", "default": True, "allowed_groups": ["Staff"]},
    {
        "display_name": "Prefix regex",
        "slug": "prefix",
        "profile_options": {"image": {"unlisted_choice": free_text("^quay")}},
    },
    {
        "display_name": "Prefix regex that allows more",
        "slug": "prefix-more",
        "profile_options": {"image": {"unlisted_choice": free_text("^quay.*")}},
    },
    {
        "display_name": "Anything",
        "slug": "free",
        "profile_options": {"image": {"unlisted_choice": free_text(None)}},
    },
    {
        "display_name": "Choices only",
        "slug": "listed",
        "profile_options": {"image": {"choices": {"a": image("a")}}},
    },
    {
        "display_name": "Own image for some",
        "slug": "some",
        "profile_options": {
            "image": {
                "choices": {"a": image("a")},
                "unlisted_choice": free_text(None, allowed_groups=["Power"]),
            }
        },
    },
]
ALL = parse_profile_list(RAW, slugify)
USER: frozenset[str] = frozenset({"eo-sci"})
STAFF = frozenset({"STAFF", "eo-ml", "ML", "power"})  # compared casefolded


def seen(groups: frozenset[str]) -> tuple[Profile, ...]:
    return visible_profiles(ALL, groups)


def shape(profiles: tuple[Profile, ...]) -> dict[str, dict[str, tuple[list[str], bool]]]:
    return {
        p.slug: {o.name: ([c.slug for c in o.choices], o.unlisted is not None) for o in p.options}
        for p in profiles
    }


# -- who sees what -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (
            USER,
            {
                "ds": {"image": (["pangeo", "scipy"], True), "resources": (["small"], False)},
                "prefix": {"image": ([], True)},
                "prefix-more": {"image": ([], True)},
                "free": {"image": ([], True)},
                "listed": {"image": (["a"], False)},
                "some": {"image": (["a"], False)},
            },
        ),
        (
            STAFF,
            {
                "ds": {
                    "image": (["pangeo", "scipy", "secret"], True),
                    "resources": (["small", "large"], False),
                    "debug": (["on"], False),
                    "gpu_type": (["a100"], False),
                },
                "staff": {},
                "prefix": {"image": ([], True)},
                "prefix-more": {"image": ([], True)},
                "free": {"image": ([], True)},
                "listed": {"image": (["a"], False)},
                "some": {"image": (["a"], True)},
            },
        ),
    ],
    ids=["user", "staff"],
)
def test_visible_profiles_remove_what_the_groups_may_not_use(
    groups: frozenset[str], expected: dict[str, Any]
) -> None:
    assert shape(seen(groups)) == expected


def test_visible_profiles_keep_everything_else() -> None:
    (ds, *_) = seen(USER)
    assert ds == ALL[0].__class__(**{**ALL[0].__dict__, "options": ds.options})
    assert ds.options[0].path == "profile_list[0].profile_options.image"


@pytest.mark.parametrize(
    ("groups", "profile", "defaults"),
    [
        # The marked default profile is hidden: the first visible one is the default.
        (USER, "ds", {"image": "scipy", "resources": "small"}),
        # The marked default choice is visible: it is the default.
        (STAFF, "staff", {}),
    ],
)
def test_defaults_are_picked_among_what_is_visible(
    groups: frozenset[str], profile: str, defaults: dict[str, str]
) -> None:
    selection = select_profile(seen(groups), None, {})
    assert selection.profile.slug == profile
    assert {k: v for k, v in selection.user_options().items() if k != "profile"} == defaults


def test_a_hidden_default_choice_leaves_the_first_visible_one() -> None:
    staff = select_profile(seen(STAFF), "ds", {})
    assert staff.user_options()["resources"] == "large"  # marked default, visible to staff
    user = select_profile(seen(USER), "ds", {})
    assert user.user_options()["resources"] == "small"


# -- every wire shape ------------------------------------------------------------------------

SELECTIONS: list[tuple[str, str | None, dict[str, object], dict[str, object]]] = [
    ("defaults", "ds", {}, {"image": "scipy", "resources": "small"}),
    ("a choice", "ds", {"image": "pangeo"}, {"image": "pangeo", "resources": "small"}),
    (
        "empty means default",
        "ds",
        {"image": "", "resources": None},
        {"image": "scipy", "resources": "small"},
    ),
    ("one-item list", "ds", {"image": ["pangeo"]}, {"image": "pangeo", "resources": "small"}),
    (
        "free text wins over the choice",
        "ds",
        {"image": "pangeo", "image--unlisted-choice": "quay.io/me/x:1"},
        {"image--unlisted-choice": "quay.io/me/x:1", "resources": "small"},
    ),
    (
        "the form's marker with text",
        "ds",
        {"image": UNLISTED_MARKER, "image--unlisted-choice": "quay.io/me/x:1"},
        {"image--unlisted-choice": "quay.io/me/x:1", "resources": "small"},
    ),
    (
        "the marker without text",
        "ds",
        {"image": UNLISTED_MARKER},
        {"image": "scipy", "resources": "small"},
    ),
    (
        "regex in full",
        "prefix",
        {"image--unlisted-choice": "quay"},
        {"image--unlisted-choice": "quay"},
    ),
    (
        "a regex that allows more",
        "prefix-more",
        {"image--unlisted-choice": "quay.io/x;rm"},
        {"image--unlisted-choice": "quay.io/x;rm"},
    ),
    (
        "no regex",
        "free",
        {"image--unlisted-choice": "docker.io/x:1"},
        {"image--unlisted-choice": "docker.io/x:1"},
    ),
]


@pytest.mark.parametrize(
    ("slug", "options", "expected"), [s[1:] for s in SELECTIONS], ids=[s[0] for s in SELECTIONS]
)
def test_select_profile(
    slug: str | None, options: dict[str, object], expected: dict[str, object]
) -> None:
    selection = select_profile(seen(USER), slug, options)
    assert selection.user_options() == {"profile": slug, **expected}


def test_an_unlisted_pick_fills_in_its_value() -> None:
    selection = select_profile(seen(USER), "ds", {"image--unlisted-choice": "quay.io/me/x:1"})
    paths = dict(selection.overrides())
    assert paths["profile_list[0].profile_options.image.unlisted_choice.kubespawner_override"] == {
        "image": "quay.io/me/x:1"
    }
    assert selection.summary() == "Data science (Image: quay.io/me/x:1, resources: Small)"


REFUSED: list[tuple[str, frozenset[str], str | None, dict[str, object], dict[str, str]]] = [
    ("unknown profile", USER, "nope", {}, {"profile": "no profile 'nope' is available to you"}),
    ("hidden profile", USER, "staff", {}, {"profile": "no profile 'staff' is available to you"}),
    ("no profiles", frozenset(), None, {}, {}),  # filled in below: nothing visible at all
    (
        "unknown option",
        USER,
        "ds",
        {"nope": "x"},
        {"nope": "is not an option of profile 'Data science'"},
    ),
    (
        "unknown unlisted option",
        USER,
        "ds",
        {"nope--unlisted-choice": "x"},
        {"nope--unlisted-choice": "is not an option of profile 'Data science'"},
    ),
    (
        "hidden option",
        USER,
        "ds",
        {"debug": "on"},
        {"debug": "is not an option of profile 'Data science'"},
    ),
    (
        "option left with nothing",
        USER,
        "ds",
        {"gpu_type": "a100"},
        {"gpu_type": "is not an option of profile 'Data science'"},
    ),
    (
        "unknown choice",
        USER,
        "ds",
        {"image": "nope"},
        {"image": "'nope' is not one of the choices available to you"},
    ),
    (
        "hidden choice",
        USER,
        "ds",
        {"image": "secret"},
        {"image": "'secret' is not one of the choices available to you"},
    ),
    (
        "regex is matched in full",
        USER,
        "ds",
        {"image--unlisted-choice": "evil.io/quay.io/x"},
        {"image": "must match quay.io/.*"},
    ),
    (
        "prefix regex",
        USER,
        "prefix",
        {"image--unlisted-choice": "quay.io/x;rm"},
        {"image": "must match ^quay"},
    ),
    (
        "braces",
        USER,
        "free",
        {"image--unlisted-choice": "quay.io/{username}"},
        {"image": "must not contain '{' or '}'"},
    ),
    (
        "a brace",
        USER,
        "free",
        {"image--unlisted-choice": "x}"},
        {"image": "must not contain '{' or '}'"},
    ),
    (
        "control characters",
        USER,
        "free",
        {"image--unlisted-choice": "x\ny"},
        {"image": "must be 1 to 1024 characters, without control characters"},
    ),
    (
        "too long",
        USER,
        "free",
        {"image--unlisted-choice": "x" * 1025},
        {"image": "must be 1 to 1024 characters, without control characters"},
    ),
    (
        "no value of your own here",
        USER,
        "listed",
        {"image--unlisted-choice": "x"},
        {"image": "does not take a value of your own here"},
    ),
    (
        "hidden unlisted choice",
        USER,
        "some",
        {"image--unlisted-choice": "x"},
        {"image": "does not take a value of your own here"},
    ),
    (
        "free text needs a value",
        USER,
        "free",
        {},
        {"image": "needs a value: write one in the box"},
    ),
    (
        "the marker needs a value",
        USER,
        "free",
        {"image": UNLISTED_MARKER},
        {"image": "needs a value: write one in the box"},
    ),
    (
        "two values",
        USER,
        "ds",
        {"image": ["pangeo", "scipy"]},
        {"image": "must be a string, not ['pangeo', 'scipy']"},
    ),
    ("a number", USER, "ds", {"image": 3}, {"image": "must be a string, not 3"}),
    ("an object", USER, "ds", {"image": {"a": 1}}, {"image": "must be a string, not {'a': 1}"}),
    (
        "a list of free text",
        USER,
        "free",
        {"image--unlisted-choice": ["a", "b"]},
        {"image": "must be a string, not ['a', 'b']"},
    ),
    (
        "every bad field at once",
        USER,
        "ds",
        {"image": "nope", "resources": "large", "x": 1},
        {
            "image": "'nope' is not one of the choices available to you",
            "resources": "'large' is not one of the choices available to you",
            "x": "is not an option of profile 'Data science'",
        },
    ),
]
REFUSED[2] = ("no profiles", USER, None, {}, {"profile": "no profile is available to you"})


@pytest.mark.parametrize(
    ("groups", "slug", "options", "errors"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_select_profile_refuses_naming_each_field(
    groups: frozenset[str], slug: str | None, options: dict[str, object], errors: dict[str, str]
) -> None:
    profiles = seen(groups) if errors.get("profile") != "no profile is available to you" else ()
    with pytest.raises(OptionsError) as raised:
        select_profile(profiles, slug, options)
    assert raised.value.errors == errors


@pytest.mark.parametrize(
    ("hidden", "unknown"),
    [
        (("staff", {}), ("no-such", {})),
        (("ds", {"image": "secret"}), ("ds", {"image": "no-such"})),
        (("ds", {"debug": "on"}), ("ds", {"no-such": "on"})),
        (("some", {"image--unlisted-choice": "x"}), ("listed", {"image--unlisted-choice": "x"})),
    ],
)
def test_what_is_hidden_gets_the_answer_of_what_does_not_exist(
    hidden: tuple[str, dict[str, object]], unknown: tuple[str, dict[str, object]]
) -> None:
    answers = []
    for slug, options in (hidden, unknown):
        with pytest.raises(OptionsError) as raised:
            select_profile(seen(USER), slug, options)
        text = repr(raised.value.errors).replace(slug, "<profile>")
        for value in [*map(str, options.values()), *options]:
            text = text.replace(value, "<name>")
        answers.append(
            text.replace("Own image for some", "<title>").replace("Choices only", "<title>")
        )
    assert answers[0] == answers[1]


# -- saved choices -------------------------------------------------------------------------

GONE = "is no longer offered; the default is selected."
SAVED: list[tuple[str, dict[str, object], dict[str, object], list[str]]] = [
    (
        "all still hold",
        {"profile": "ds", "image": "pangeo"},
        {"profile": "ds", "image": "pangeo"},
        [],
    ),
    (
        "free text still holds",
        {"profile": "ds", "image--unlisted-choice": "quay.io/a:1", "cpu": 1.0, "group": "eo-sci"},
        {"profile": "ds", "image--unlisted-choice": "quay.io/a:1"},
        [],
    ),
    (
        "a removed profile",
        {"profile": "gone", "image": "pangeo"},
        {},
        ["The profile 'gone' you used last time is no longer offered."],
    ),
    (
        "a hidden profile",
        {"profile": "staff"},
        {},
        ["The profile 'staff' you used last time is no longer offered."],
    ),
    ("no profile", {"image": "pangeo"}, {}, []),
    ("junk profile", {"profile": ["ds"]}, {}, []),
    ("junk profile object", {"profile": {"a": 1}}, {}, []),
    (
        "a removed choice",
        {"profile": "ds", "image": "secret", "resources": "small"},
        {"profile": "ds", "resources": "small"},
        [f"Your last choice for Image, 'secret', {GONE}"],
    ),
    (
        "free text the regex now refuses",
        {"profile": "ds", "image--unlisted-choice": "docker.io/x"},
        {"profile": "ds"},
        [f"Your last choice for Image, 'docker.io/x', {GONE}"],
    ),
    (
        "junk values",
        {"profile": "ds", "image": {"x": [1]}, "resources": 7},
        {"profile": "ds"},
        [
            f"Your last choice for Image, {{'x': [1]}}, {GONE}",
            f"Your last choice for resources, 7, {GONE}",
        ],
    ),
]


@pytest.mark.parametrize(
    ("saved", "kept", "messages"), [s[1:] for s in SAVED], ids=[s[0] for s in SAVED]
)
def test_saved_selection_keeps_what_still_holds(
    saved: dict[str, object], kept: dict[str, object], messages: list[str]
) -> None:
    assert saved_selection(seen(USER), saved) == (kept, messages)


# -- KubeSpawner's form fields ---------------------------------------------------------------

FORMS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "the chosen profile's fields",
        {
            "profile": ["ds"],
            "profile-option-ds--image": ["pangeo"],
            "profile-option-ds--image--unlisted-choice": [""],
            "profile-option-free--image--unlisted-choice": ["docker.io/x"],
            "group": ["eo-sci"],
            "_xsrf": ["token"],
        },
        {
            "profile": ["ds"],
            "image": ["pangeo"],
            "image--unlisted-choice": [""],
            "group": ["eo-sci"],
            "_xsrf": ["token"],
        },
    ),
    (
        "a profile whose slug starts like another's",
        {
            "profile": ["ds"],
            "profile-option-ds-2--image": ["x"],
            "profile-option-ds--image": ["y"],
        },
        {"profile": ["ds"], "image": ["y"]},
    ),
    (
        "no profile: every profile field dropped",
        {"profile-option-ds--image": ["x"], "size": ["s"]},
        {"size": ["s"]},
    ),
    ("an empty profile", {"profile": [""], "profile-option-ds--image": ["x"]}, {"profile": [""]}),
    ("no profile list", {"profile": [], "profile-option-ds--image": ["x"]}, {"profile": []}),
    (
        "a plain string",
        {"profile": "ds", "profile-option-ds--image": "x"},
        {"profile": "ds", "image": "x"},
    ),
    # The opt- prefix of /hub/spawn links is the spawner's to strip (mixin), not this.
    (
        "opt- left alone",
        {"opt-profile": ["ds"], "opt-image": ["x"]},
        {"opt-profile": ["ds"], "opt-image": ["x"]},
    ),
]


@pytest.mark.parametrize(
    ("formdata", "expected"), [f[1:] for f in FORMS], ids=[f[0] for f in FORMS]
)
def test_profile_form_to_options(formdata: dict[str, Any], expected: dict[str, Any]) -> None:
    assert profile_form_to_options(formdata) == expected


def test_form_fields_read_as_kubespawner_reads_them() -> None:
    from kubespawner import KubeSpawner

    formdata = {
        "profile": ["ds"],
        "profile-option-ds--image": ["pangeo"],
        "profile-option-ds--resources": ["small"],
        "profile-option-free--image--unlisted-choice": ["x"],
    }
    ours = {k: v[0] for k, v in profile_form_to_options(formdata).items()}
    theirs = KubeSpawner._options_from_form(KubeSpawner.__new__(KubeSpawner), formdata)
    assert ours == theirs


BUILDING = parse_profile_list(
    [
        {
            "display_name": "Builder",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "dynamic_image_building": {"enabled": True},
                    "choices": {"a": {"display_name": "A"}},
                }
            },
        },
        {"display_name": "Plain"},
    ],
    str.lower,
)


@pytest.mark.parametrize(
    ("saved", "kept", "messages"),
    [
        (
            {"profile": "builder", "repo": "https://github.com/o/r", "ref": "main"},
            {"profile": "builder", "repo": "https://github.com/o/r", "ref": "main"},
            [],
        ),
        (
            {"profile": "builder", "repo": "https://github.com/o/r", "ref": "a b"},
            {"profile": "builder", "repo": "https://github.com/o/r"},
            ["Your last choice of ref, 'a b', could not be used."],
        ),
        # Only a profile that builds images keeps a repository.
        ({"profile": "plain", "repo": "https://github.com/o/r"}, {"profile": "plain"}, []),
    ],
)
def test_a_building_profiles_saved_repository_is_kept_for_the_form(
    saved: dict[str, object], kept: dict[str, object], messages: list[str]
) -> None:
    assert saved_selection(BUILDING, saved) == (kept, messages)
