"""``profile_list`` profiles on the launch form: who sees what, defaults, saved choices.

The form is built from a LaunchContext as the spawner builds it (profiles already
group-filtered) and read back as a browser without JavaScript would see it
(:class:`tests.spawner.form.forms.Page`). Its fields are those of KubeSpawner's form, and
what it sends is read by the spawner's own ``read_form`` and checked by the domain's
profile selection and policy, so what the form offers is what a spawn accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.options import LaunchRequest, parse_options
from eohub.domain.launch.policy import Member, authorize
from eohub.domain.launch.profile_policy import authorize_profile, wants_profile
from eohub.domain.launch.profile_selection import option_keys, select_profile
from eohub.domain.launch.repository import RepoRules
from eohub.spawner.context import LaunchContext
from eohub.spawner.form.profile_view import chosen_profile
from eohub.spawner.form.render import render_launch_form
from tests.spawner.form.forms import (
    BUILDER,
    ENVIRONMENTS,
    PROFILE_LIST,
    PROFILE_SECRETS,
    RULES,
    SECRETS,
    SIZES,
    VOLUMES,
    Page,
    allowed,
    kube_config,
    profiles_for,
    read_form,
)

EVE = Member("eve", frozenset({"climate", "ocean", "ml"}))
BOB = Member("bob", frozenset({"researchers", "climate"}))
SPY = Member("spy", frozenset({"black-ops"}))
IMAGE = "profile-option-datasci--image"
RAM = "profile-option-datasci--ram"
OWN_IMAGE = IMAGE + "--unlisted-choice"


def context(
    member: Member,
    *,
    saved: Mapping[str, Any] | None = None,
    saved_profile: Mapping[str, object] | None = None,
    messages: tuple[str, ...] = (),
    data: Any = None,
    rules: RepoRules | None = None,
    **config: Any,
) -> LaunchContext:
    return LaunchContext(
        kube_config(**config),
        member,
        rules,
        saved=LaunchRequest(**(saved or {})),
        messages=messages,
        budgets={g: allowed() for g in member.groups},
        profiles=profiles_for(member.groups, data),
        saved_profile=dict(saved_profile or {}),
    )


def page_of(ctx: LaunchContext) -> Page:
    return Page.of(render_launch_form(ctx))


# -- who sees what ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "choices", "images"),
    [
        # The environments first, then the profiles, in one radio group.
        (BOB, ["pangeo", "climate-r", "datasci", "tiny"], ["pangeo", "rocker"]),
        # A choice with allowed_groups is listed for its group only.
        (
            EVE,
            ["pangeo", "climate-r", "deep-learning", "datasci", "tiny"],
            ["pangeo", "rocker", "cuda"],
        ),
        # A profile with allowed_groups too.
        (
            SPY,
            ["pangeo", "secret-project", "datasci", "tiny", "black-ops-gpu"],
            ["pangeo", "rocker"],
        ),
    ],
)
def test_profiles_follow_the_environments_in_one_choice(
    member: Member, choices: list[str], images: list[str]
) -> None:
    page = page_of(context(member))
    assert page.visible("profile", "radio") == choices
    assert page.present("environment") == []  # one field names both
    image = page.select(IMAGE)
    assert [v for v, _, _ in image.options] == [*images, "unlisted-choice"]
    assert image.options[-1][1] == "Other..."
    assert [v for v, _, _ in page.select(RAM).options] == ["4g", "8g"]


def test_without_profiles_the_form_is_unchanged() -> None:
    page = page_of(context(BOB, data=[]))
    assert page.visible("environment", "radio") == ["pangeo", "climate-r"]
    assert page.present("profile") == []
    assert page.checked("size") == ["medium"]


def test_the_defaults_are_preselected() -> None:
    page = page_of(context(BOB))
    # eohub's default environment speaks first, as the spawner decides an empty request.
    assert page.checked("profile") == ["pangeo"]
    assert page.select(IMAGE).selected == "rocker"  # the choice marked default
    assert page.select(RAM).selected == "8g"
    assert page.control(OWN_IMAGE, "").attrs["value"] == ""
    # Sizes are for environments: preselected by the script, never sent for a profile.
    assert page.checked("size") == []
    assert "data-preselected" in render_launch_form(context(BOB))


@pytest.mark.parametrize(
    ("saved", "saved_profile", "env_default", "profile_default", "expected"),
    [
        ({}, {}, True, False, None),  # eohub's default environment
        ({}, {}, True, True, None),  # ... even with a default profile
        ({}, {}, False, True, "tiny"),  # the profile list's default next
        ({}, {}, False, False, None),  # then eohub's first environment
        ({}, {"profile": "tiny"}, True, False, "tiny"),  # the last profile launch
        ({"environment": "climate-r"}, {}, False, True, None),  # the last environment launch
        ({}, {"profile": "gone"}, False, False, None),  # not offered: the defaults
        # A launch link's environment or repository, over the last profile launch.
        ({"environment": "climate-r"}, {"profile": "tiny"}, False, True, None),
        ({"repo": "https://github.com/a/b"}, {"profile": "tiny"}, False, True, None),
    ],
)
def test_which_choice_is_preselected(
    saved: dict[str, Any],
    saved_profile: dict[str, object],
    env_default: bool,
    profile_default: bool,
    expected: str | None,
) -> None:
    environments = {
        k: {**v, "default": env_default and k == "pangeo"} for k, v in ENVIRONMENTS.items()
    }
    config = parse_launch_config(
        environments, SIZES, VOLUMES, backend="kube", charge_groups=["climate"]
    )
    data = [
        {**p, "default": profile_default and p.get("display_name") == "Tiny"} for p in PROFILE_LIST
    ]
    profiles = profiles_for(BOB.groups, data)
    request = LaunchRequest(**saved)
    slug = chosen_profile(config, BOB, profiles, request, saved_profile)
    assert slug == expected
    # The form shows what Start without changes launches.
    if not saved and not saved_profile:
        assert wants_profile(config, BOB, {}, profiles) == (slug is not None)


@pytest.mark.parametrize(
    ("saved_profile", "image", "own", "ram"),
    [
        ({"profile": "datasci", "image": "pangeo", "ram": "4g"}, "pangeo", "", "4g"),
        (
            {"profile": "datasci", "image--unlisted-choice": "quay.io/me/img:1"},
            "unlisted-choice",
            "quay.io/me/img:1",
            "8g",
        ),
        # Another profile's choices leave this one's defaults.
        ({"profile": "tiny"}, "rocker", "", "8g"),
    ],
)
def test_the_last_profile_launch_is_prefilled(
    saved_profile: dict[str, object], image: str, own: str, ram: str
) -> None:
    page = page_of(context(BOB, saved={"group": "climate"}, saved_profile=saved_profile))
    assert page.checked("profile") == [saved_profile["profile"]]
    assert page.select(IMAGE).selected == image
    assert page.control(OWN_IMAGE, own).attrs["value"] == own
    assert page.select(RAM).selected == ram
    assert page.control("urlpath", "").attrs["placeholder"] == ""


def test_dropped_choices_are_said() -> None:
    notice = "Your last choice for Image, 'cuda', is no longer offered; the default is selected."
    page = page_of(context(BOB, saved_profile={"profile": "datasci"}, messages=(notice,)))
    assert notice in page.text
    assert "Some of your last choices no longer apply" in page.text


# -- KubeSpawner's fields, labelled ------------------------------------------------------


def test_the_unlisted_choice_field() -> None:
    html = render_launch_form(context(BOB))
    page = Page.of(html)
    own = page.control(OWN_IMAGE, "")
    assert (
        own.attrs["pattern"]
        == PROFILE_LIST[0]["profile_options"]["image"]["unlisted_choice"]["validation_regex"]
    )
    assert own.attrs["title"] == "An image on quay.io, with a tag."
    assert (
        f'<label class="form-label mb-1" for="{own.attrs["id"]}">Image of your own</label>' in html
    )
    # Without one, no pattern: any value the spawner accepts.
    data = [
        {**PROFILE_LIST[0], "profile_options": {"image": {"unlisted_choice": {"enabled": True}}}}
    ]
    page = page_of(context(BOB, data=data))
    assert "pattern" not in page.control(OWN_IMAGE, "").attrs
    assert [v for v, _, _ in page.select(IMAGE).options] == ["unlisted-choice"]


def test_descriptions_and_labels() -> None:
    ctx = context(EVE)
    html = render_launch_form(ctx)
    page = Page.of(html)
    assert "Pick an image and the memory. Runs on shared nodes." in page.text
    assert "Pangeo: Xarray and Dask." in page.text
    assert "CUDA: For the ML group." in page.text
    # The groups a profile narrows the charge to.
    assert "One core, for the climate group's budget. Charged to: climate" in page.text
    # Every input and select has a label; every choice list a legend.
    for control in [*page.controls, *page.selects]:
        if control.attrs.get("type") != "hidden":
            assert f'for="{control.attrs["id"]}"' in html
    assert html.count("<fieldset") == html.count("<legend")


def test_admin_text_is_escaped_and_overrides_never_shown() -> None:
    data = [
        {
            "display_name": "<b>Bold</b>",
            "slug": "bold",
            "description": "<script>alert(1)</script>",
            "profile_options": {
                "o": {
                    "choices": {"c": {"display_name": "<i>c</i>", "description": '"><img src=x>'}}
                }
            },
        },
        *PROFILE_LIST,
    ]
    html = render_launch_form(context(EVE, data=data))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Bold&lt;/b&gt;" in html
    assert "&#34;&gt;&lt;img src=x&gt;" in html
    for raw in ("<script>alert", "<b>Bold", "<i>c</i>", "<img src=x>"):
        assert raw not in html
    leaks = [s for s in [*SECRETS, *PROFILE_SECRETS] if s in html]
    assert leaks == []


# -- what the form sends, without JavaScript ---------------------------------------------


def test_without_javascript_an_environment_launch_is_valid() -> None:
    ctx = context(BOB)
    options = read_form(page_of(ctx).sent())
    # Every profile's option fields are sent and dropped, as KubeSpawner reads them.
    assert options == {"profile": "pangeo", "group": "climate"}
    assert not wants_profile(ctx.config, BOB, options, ctx.profiles)
    request = LaunchRequest(environment="pangeo", group="climate")
    assert authorize(ctx.config, BOB, request, None).size.name == "medium"  # its default


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, {"image": "rocker", "ram": "8g"}),
        ({RAM: ["4g"], IMAGE: ["pangeo"]}, {"image": "pangeo", "ram": "4g"}),
        # Free text wins over the list, as in KubeSpawner.
        (
            {OWN_IMAGE: ["quay.io/me/img:1"]},
            {"image": "rocker", "image--unlisted-choice": "quay.io/me/img:1", "ram": "8g"},
        ),
    ],
)
def test_without_javascript_a_profile_launch_is_valid(
    changes: dict[str, list[str]], expected: dict[str, str]
) -> None:
    ctx = context(BOB)
    sent = {**page_of(ctx).sent(), "profile": ["datasci"], **changes}
    options = read_form(sent)
    assert options == {"profile": "datasci", "group": "climate", **expected}
    assert wants_profile(ctx.config, BOB, options, ctx.profiles)
    choices = option_keys({k: v for k, v in options.items() if k != "profile"})
    selection = select_profile(ctx.profiles, "datasci", choices)
    rest = parse_options({k: v for k, v in options.items() if k not in choices and k != "profile"})
    assert authorize_profile(ctx.config, BOB, rest, selection).group == "climate"
    own = expected.get("image--unlisted-choice")
    assert (selection.picks[0].unlisted or selection.picks[0].choice.slug) == (
        own or expected["image"]
    )  # type: ignore[union-attr]


# -- a profile that builds images: "Build from a repository" ------------------------------

BUILD = "profile-option-builder--image"
OWN = "image--unlisted-choice"
OWN_BUILD = f"{BUILD}--unlisted-choice"
BUILD_ENTRY = ("", "Build from a repository", False)
WITH_BUILDER = [*PROFILE_LIST, BUILDER]
DEMO = "https://github.com/eohub/demo"
WINS = "when the repository is filled in, the image is built from it"


@pytest.mark.parametrize(
    ("member", "rules", "data", "section"),
    [
        # Repository rules and a profile that builds images: the section and the entry,
        # although no environment builds from a repository.
        (BOB, RULES, WITH_BUILDER, True),
        # The hub has no repository rules: neither; the profile's list remains.
        (BOB, None, WITH_BUILDER, False),
        # No profile builds images, and no environment: no section.
        (BOB, RULES, PROFILE_LIST, False),
        # The builder is listed for the climate group only.
        (SPY, RULES, WITH_BUILDER, False),
    ],
)
def test_the_repository_section_of_a_profile_that_builds_images(
    member: Member, rules: RepoRules | None, data: Any, section: bool
) -> None:
    html = render_launch_form(context(member, rules=rules, data=data))
    page = Page.of(html)
    assert page.visible("repo") == ([""] if section else [])
    assert page.visible("provider", None) == []  # a select, counted below
    assert (WINS in page.text) == section  # said to readers without JavaScript
    builders = [s for s in page.selects if s.name == BUILD]
    if builders:
        values = [v for v, _, _ in builders[0].options]
        assert values == ["pangeo", "unlisted-choice", *([""] if section else [])]
        assert (builders[0].options[-1] == BUILD_ENTRY) == section
        assert builders[0].selected == "pangeo"  # the default, not the repository
        assert ("data-builds" in builders[0].attrs) == section
    else:
        assert not section
    assert "ds-image" not in html  # the builder's listed image, admin-only


@pytest.mark.parametrize(
    ("saved", "saved_profile", "checked", "image", "repo"),
    [
        # The last launch built a repository: its entry, and the section filled in.
        (
            {"group": "climate"},
            {"profile": "builder", "provider": "gh", "repo": "eohub/demo", "ref": "main"},
            "builder",
            "",
            ("gh", "eohub/demo", "main"),
        ),
        # The saved request keeps that repository when the default environment builds
        # too: it is still the profile's.
        (
            {"group": "climate", "provider": "gh", "repo": "eohub/demo"},
            {"profile": "builder", "provider": "gh", "repo": "eohub/demo"},
            "builder",
            "",
            ("gh", "eohub/demo", ""),
        ),
        # It used a listed image: that image, and an empty section.
        ({}, {"profile": "builder", "image": "pangeo"}, "builder", "pangeo", ("", "", "")),
        # A launch link's repository is for an environment, over the last profile launch.
        ({"repo": DEMO}, {}, "pangeo", "pangeo", ("", DEMO, "")),
    ],
)
def test_the_last_repository_launch_of_a_profile_is_prefilled(
    saved: dict[str, Any],
    saved_profile: dict[str, object],
    checked: str,
    image: str,
    repo: tuple[str, str, str],
) -> None:
    ctx = context(BOB, rules=RULES, data=WITH_BUILDER, saved=saved, saved_profile=saved_profile)
    html = render_launch_form(ctx)
    page = Page.of(html)
    assert page.checked("profile") == [checked]
    assert page.select(BUILD).selected == image
    assert (page.select("provider").selected, *page.visible("repo"), *page.visible("ref")) == repo
    if repo[0]:
        assert f'value="/hub/eohub/launch/gh/eohub/demo/{repo[2] or "HEAD"}"' in html


@pytest.mark.parametrize(
    ("changes", "expected", "built"),
    [
        # "Build from a repository" and a repository: the repository fields, no choice.
        ({BUILD: [""], "repo": [DEMO], "ref": ["main"]}, {"repo": DEMO, "ref": "main"}, True),
        # A listed image and a repository: the repository wins, as the page says.
        ({"repo": [DEMO]}, {"image": "pangeo", "repo": DEMO}, True),
        (
            {OWN_BUILD: ["quay.io/me/x:1"], "repo": [DEMO]},
            {"image": "pangeo", OWN: "quay.io/me/x:1", "repo": DEMO},
            True,
        ),
        # Empty repository fields are dropped: the listed image.
        ({}, {"image": "pangeo"}, False),
        # The entry, and no repository: the option's default.
        ({BUILD: [""]}, {}, False),
    ],
)
def test_without_javascript_a_filled_repository_wins(
    changes: dict[str, list[str]], expected: dict[str, str], built: bool
) -> None:
    ctx = context(BOB, rules=RULES, data=WITH_BUILDER)
    sent = page_of(ctx).sent()
    assert (sent[BUILD], sent["repo"], sent[OWN_BUILD]) == (["pangeo"], [""], [""])
    options = read_form({**sent, "profile": ["builder"], **changes})
    assert options == {"profile": "builder", "group": "climate", **expected}
    choices = option_keys({k: v for k, v in options.items() if k != "profile"})
    selection = select_profile(ctx.profiles, "builder", choices)
    rest = parse_options({k: v for k, v in options.items() if k not in choices and k != "profile"})
    parts = authorize_profile(ctx.config, BOB, rest, selection, RULES)
    assert (parts.repo.spec.name if parts.repo else None) == (
        "github.com/eohub/demo" if built else None
    )
    if built:  # the built image replaces the list's value and is not stored
        assert selection.with_image("x/built:1").user_options() == {"profile": "builder"}
