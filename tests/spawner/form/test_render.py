"""The launch form: what each member sees, budgets, prefill, no leaks, and escaping.

The tests build the form from a parsed config (:func:`build_form`) and read the HTML
back (:class:`tests.spawner.form.forms.Page`), as a browser without JavaScript would see
it. ``test_options_form.py`` renders it through a real spawner, as the hub does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

import pytest

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.options import LaunchRequest, OptionsError
from eohub.domain.launch.policy import Member, authorize, fallback
from eohub.spawner.form.render import render
from eohub.spawner.form.view import (
    UNKNOWN_BUDGET,
    build_form,
)
from tests.spawner.form.forms import (
    CHARGE_GROUPS,
    SECRETS,
    Page,
    allowed,
    kube_config,
    spent,
)


def form_html(
    member: Member,
    answers: Mapping[str, QuotaAnswer] | None = None,
    *,
    saved: Mapping[str, Any] | None = None,
    config: LaunchConfig | None = None,
    server_name: str = "",
) -> str:
    config = config or kube_config()
    request, messages = fallback(config, member, dict(saved or {}))
    if answers is None:
        answers = {g: allowed() for g in CHARGE_GROUPS if g in member.groups}
    form = build_form(config, member, request, messages, answers, server_name=server_name)
    return render(form)


# -- who sees what ----------------------------------------------------------------------

BOB = Member("bob", frozenset({"researchers", "climate"}))
EVE = Member("eve", frozenset({"climate", "ocean", "ml"}))


@pytest.mark.parametrize(
    ("member", "environments", "group_radios", "group_hidden", "sizes"),
    [
        # One funded group: no choice, a hidden input carries it.
        (BOB, ["pangeo", "climate-r"], [], "climate", ["small", "medium", "large"]),
        # A PI of the group sees what its members see, no more.
        (
            Member("carol", frozenset({"climate", "staff"})),
            ["pangeo", "climate-r"],
            [],
            "climate",
            ["small", "medium", "large"],
        ),
        # Several funded groups: a choice, sorted; GPU sizes only with the GPU environment.
        (
            EVE,
            ["pangeo", "climate-r", "deep-learning"],
            ["climate", "ml", "ocean"],
            None,
            ["small", "medium", "large", "gpu"],
        ),
        # No group at all: the open environment is listed, nothing can be charged.
        (Member("dave"), ["pangeo"], [], None, []),
        # Named in allowed_users, but in no funded group.
        (Member("alice", frozenset({"researchers"})), ["pangeo", "personal-alice"], [], None, []),
    ],
)
def test_what_each_member_sees(
    member: Member,
    environments: list[str],
    group_radios: list[str],
    group_hidden: str | None,
    sizes: list[str],
) -> None:
    page = Page.of(form_html(member))
    assert page.visible("environment", "radio") == environments
    assert page.visible("group", "radio") == group_radios
    hidden_group = [
        c.value for c in page.controls if c.name == "group" and c.attrs["type"] == "hidden"
    ]
    assert hidden_group == ([group_hidden] if group_hidden else [])
    assert page.visible("size", "radio") == sizes
    if not group_radios and not group_hidden:
        assert "None of your groups can be charged for a server" in page.text
    else:
        assert "None of your groups" not in page.text
    # The default environment and its default size are preselected.
    assert page.checked("environment") == ["pangeo"]
    assert page.checked("size") == (["medium"] if sizes else [])


def test_the_form_shows_what_a_reader_needs() -> None:
    page = Page.of(
        form_html(
            EVE,
            {"climate": allowed(12.6), "ocean": allowed(), "ml": allowed(40, gpu_hours=3)},
            server_name="gpu-run",
        )
    )
    text = page.text
    assert "Server name: gpu-run" in text
    assert "Xarray, Dask and friends." in text
    assert "Opens /rstudio/ · Sizes: Small, Medium" in text
    assert "12.6 core-hours left" in text
    assert "no limit" in text  # ocean
    assert "40 core-hours left, 3 GPU-hours left" in text  # ml
    assert "2 CPUs (up to 4) · 4 GiB memory (up to 8 GiB)" in text
    assert "about 6.3 hours on climate's budget" in text  # medium: 12.6 / 2
    assert "Common data" in text
    assert "at /data/common, read-only" in text
    assert page.visible("volumes", "checkbox") == ["common-data", "dl-scratch"]
    assert "Always mounted: Your workspace at /home/jovyan" in text
    urlpath = page.control("urlpath", "")
    assert urlpath.attrs["placeholder"] == "/lab"
    # Accessible: every input has a label, every choice list a legend.
    html = form_html(EVE)
    for control in page.controls:
        if control.attrs["type"] in ("radio", "checkbox", "text"):
            assert f'for="{control.attrs["id"]}"' in html
    assert html.count("<fieldset") == html.count("<legend>") == 4


# -- sizes against budgets --------------------------------------------------------------


def test_sizes_are_filtered_by_the_budget_of_the_selected_group() -> None:
    answers = {"climate": allowed(3.0), "ocean": allowed(), "ml": spent("ml")}
    page = Page.of(form_html(EVE, answers))
    # climate is preselected (the first group whose budget fits a size): 3 core-hours
    # run small (1 CPU) 3 hours and medium 1.5; large (8 CPUs) and gpu (4) under 1.
    assert page.checked("group") == ["climate"]
    assert page.visible("size") == ["small", "medium"]
    # Sizes that fit only another group are in the page for the script, hidden and
    # disabled, so without JavaScript they are neither seen nor sent.
    assert page.present("size") == ["small", "medium", "large", "gpu"]
    assert "about 3 hours on climate's budget" in page.text
    assert "about 1.5 hours on climate's budget" in page.text
    assert "no budget limit on ocean" not in page.text  # shown when ocean is chosen
    # The spent group stays listed, with the reason.
    assert "The core-hours budget of group ml is spent" in page.text
    assert page.checked("size") == ["medium"]


def test_a_saved_group_selects_its_sizes() -> None:
    answers = {"climate": allowed(3.0), "ocean": allowed(), "ml": spent("ml")}
    page = Page.of(form_html(EVE, answers, saved={"group": "ocean", "size": "large"}))
    assert page.checked("group") == ["ocean"]
    assert page.visible("size") == ["small", "medium", "large", "gpu"]
    assert page.checked("size") == ["large"]
    assert "no budget limit on ocean" in page.text


def test_a_saved_group_that_cannot_start_a_server_now_is_not_preselected() -> None:
    answers = {"climate": allowed(3.0), "ocean": allowed(), "ml": spent("ml")}
    page = Page.of(form_html(EVE, answers, saved={"group": "ml"}))
    assert page.checked("group") == ["climate"]
    assert "The core-hours budget of group ml is spent" in page.text


def test_min_hours_decides_what_fits() -> None:
    answers = {"climate": allowed(3.0)}
    member = Member("bob", frozenset({"climate"}))
    assert Page.of(form_html(member, answers)).visible("size") == ["small", "medium"]
    strict = kube_config(min_hours=2)
    assert Page.of(form_html(member, answers, config=strict)).visible("size") == ["small"]


def test_a_spent_single_group_shows_the_refusal_and_no_size() -> None:
    member = Member("dave", frozenset({"ml"}))
    page = Page.of(form_html(member, {"ml": spent("ml")}))
    assert page.visible("size") == []
    assert page.present("size") == []
    assert "The core-hours budget of group ml is spent" in page.text
    assert "No size of this environment fits the budget left of group ml" in page.text
    html = form_html(member, {"ml": spent("ml")})
    assert 'class="alert alert-danger eohub-refusal" role="alert"' in html


@pytest.mark.parametrize("source", ["fail-open", "fail-closed"])
def test_an_accounting_outage_says_the_budget_is_unknown(source: str) -> None:
    answer = QuotaAnswer(source == "fail-open", f"no answer ({source})", {}, source)  # type: ignore[arg-type]
    page = Page.of(form_html(BOB, {"climate": answer}))
    assert UNKNOWN_BUDGET in page.text
    assert page.visible("size") == ["small", "medium", "large"]
    assert "the budget left of climate is unknown" in page.text
    assert ("no answer (fail-closed)" in page.text) == (source == "fail-closed")
    # No answer at all (the client raised) reads the same.
    assert UNKNOWN_BUDGET in Page.of(form_html(BOB, {})).text


def test_what_the_form_offers_is_what_a_spawn_accepts() -> None:
    """Every combination the page (with its script) offers passes the spawn's policy,
    and every size it hides for a group is refused for that group."""
    config = kube_config()
    answers = {"climate": allowed(3.0), "ocean": allowed(), "ml": allowed(5.0, gpu_hours=0)}
    budgets = {g: dict(a.budget_left) for g, a in answers.items()}
    html = form_html(EVE, answers)
    page = Page.of(html)
    groups = {c.attrs["data-group-index"]: c.value for c in page.controls if c.name == "group"}
    env_sizes = {
        c.value: c.attrs["data-sizes"].split() for c in page.controls if c.name == "environment"
    }
    # The groups the script leaves enabled for each environment: those that grant it.
    env_groups = {
        c.value: (c.attrs.get("data-charge-groups") or "").split("\n")
        for c in page.controls
        if c.name == "environment" and c.attrs.get("data-charge-groups")
    }
    fits = _fits_by_size(html)
    checked = 0
    for env, sizes in env_sizes.items():
        for index, group in groups.items():
            if env in env_groups and group not in env_groups[env]:
                continue
            for size in sizes:
                request = LaunchRequest(environment=env, size=size, group=group)
                if size in fits and index in fits[size]:
                    authorize(config, EVE, request, budgets)
                    checked += 1
                else:
                    with pytest.raises(OptionsError) as refused:
                        authorize(config, EVE, request, budgets)
                    assert "size" in refused.value.errors
    assert checked >= 6


def _fits_by_size(html: str) -> dict[str, list[str]]:
    """Size name -> the indexes of the groups it fits, from the items' data attributes."""
    found: dict[str, list[str]] = {}

    class Sizes(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = dict(attrs)
            if "data-size" in values:
                found[values["data-size"] or ""] = (values["data-fits"] or "").split()

    Sizes().feed(html)
    return found


# -- prefill and fallback ---------------------------------------------------------------


def test_the_last_choices_are_prefilled() -> None:
    saved = {
        "environment": "climate-r",
        "size": "small",
        "group": "climate",
        "volumes": ["common-data"],
        "urlpath": "/lab/tree/notes.ipynb",
        # Resolved keys stored with the options are ignored.
        "cpu": 1,
        "image": "eohub/climate-r:7",
    }
    page = Page.of(form_html(EVE, saved=saved))
    assert page.checked("environment") == ["climate-r"]
    assert page.checked("size") == ["small"]
    assert page.checked("group") == ["climate"]
    assert page.checked("volumes") == ["common-data"]
    assert page.control("urlpath", "/lab/tree/notes.ipynb").attrs["placeholder"] == "/rstudio/"
    assert "Some of your last choices" not in page.text


def test_choices_that_no_longer_apply_fall_back_with_a_notice() -> None:
    saved = {
        "environment": "retired-env",
        "size": "huge",
        "group": "ocean",  # bob left ocean
        "volumes": ["common-data", "gone-volume"],
        "urlpath": 42,
    }
    page = Page.of(form_html(BOB, saved=saved))
    assert page.checked("environment") == ["pangeo"]
    assert page.checked("size") == ["medium"]
    assert page.present("group") == ["climate"]
    assert page.checked("volumes") == ["common-data"]
    text = page.text
    assert "Some of your last choices no longer apply" in text
    for message in [
        "The environment 'retired-env' you used last time is no longer offered.",
        "You can no longer charge group 'ocean', which you charged last time.",
        "The volume 'gone-volume' you chose last time is no longer offered.",
        "Your last choice of urlpath, 42, could not be used.",
    ]:
        assert message in text
    assert 'role="status"' in form_html(BOB, saved=saved)


def test_a_saved_size_that_no_longer_fits_falls_back_to_one_that_does() -> None:
    page = Page.of(form_html(BOB, {"climate": allowed(3.0)}, saved={"size": "large"}))
    assert page.checked("size") == ["medium"]


# -- nothing admin-only leaks, hostile strings are escaped ------------------------------


@pytest.mark.parametrize(
    "member",
    [BOB, EVE, Member("dave"), Member("alice", frozenset({"researchers"}))],
    ids=lambda m: m.username,
)
def test_no_admin_only_config_reaches_the_page(member: Member) -> None:
    html = form_html(member)
    leaks = [secret for secret in SECRETS if secret in html]
    assert leaks == []
    if "ml" not in member.groups:
        assert "deep-learning" not in html
        assert "dl-scratch" not in html
    if member.username != "alice":
        assert "personal-alice" not in html
        assert "Alice's own" not in html


HOSTILE = '<script>alert("x")</script>'


def test_hostile_display_strings_are_escaped() -> None:
    environments = {
        "lab": {
            "image": "x/y:1",
            "display_name": HOSTILE,
            "description": '"><img src=x onerror=alert(1)>\nsecond line',
        }
    }
    sizes = {"small": {"cpu": 1, "memory": "1G", "display_name": "Small & <b>bold</b>"}}
    volumes = {
        "data": {
            "kind": "pvc",
            "claim_name": "data",
            "mount_path": "/data",
            "optional": True,
            "display_name": "<iframe src=javascript:alert(1)>",
        }
    }
    group = 'a"b<svg onload=alert(1)>'
    config = parse_launch_config(
        environments, sizes, volumes, backend="kube", charge_groups=[group, "ocean"]
    )
    member = Member("mallory", frozenset({group, "ocean"}))
    answers = {
        group: QuotaAnswer(False, "<marquee>refused</marquee>", {"core_hours": 0.0}),
        "ocean": allowed(),
    }
    saved = {"environment": "<svg/onload=alert(2)>", "urlpath": "/lab?a=1&b=2"}
    request, messages = fallback(config, member, saved)
    html = render(build_form(config, member, request, messages, answers, server_name="<b>srv</b>"))
    assert html.count("<script") == 1  # the form's own
    for tag in ("<img", "<iframe", "<svg", "<b>", "<marquee"):
        assert tag not in html
    page = Page.of(html)
    for shown in (HOSTILE, "Small & <b>bold</b>", "<iframe src=javascript:alert(1)>"):
        assert shown in page.text
    assert "<marquee>refused</marquee>" in page.text
    assert "Server name: <b>srv</b>" in page.text
    assert "Your last choice of environment, '<svg/onload=alert(2)>'" in page.text
    assert page.control("group", group).attrs["value"] == group
    assert page.control("urlpath", "/lab?a=1&b=2")
    assert 'value="/lab?a=1&amp;b=2"' in html


# -- accounting's warnings (storage nearly full, or over its quota) -----------------------

GRACE = (
    "Group climate stores 12.0 GiB, over its storage quota of 10 GiB since 2026-12-06 "
    "10:00 UTC. New servers charged to it will be refused from 2026-12-09 10:00 UTC unless "
    "space is freed."
)
NEAR = "Group ocean stores 9.5 GiB, 95% of its storage quota of 10 GiB."


def warned(*warnings: str) -> QuotaAnswer:
    return QuotaAnswer(True, "Within quota.", {"core_hours": 100.0}, warnings=warnings)


def warning_alerts(html: str) -> dict[str, tuple[bool, str]]:
    """Each group's warning alert: whether it shows without JavaScript, and its text."""
    found = {}
    for attrs, body in re.findall(
        r'<div class="alert alert-warning eohub-group-warnings"([^>]*)>(.*?)</div>', html, re.S
    ):
        index = re.search(r'data-warnings-for="(\d+)"', attrs)
        assert index is not None
        found[index.group(1)] = ("hidden" not in attrs, " ".join(Page.of(body).texts))
    return found


def test_the_chosen_groups_warnings_stand_above_start() -> None:
    answers = {"climate": warned(GRACE), "ml": allowed(), "ocean": warned(NEAR, NEAR)}
    html = form_html(EVE, answers)
    assert Page.of(html).checked("group") == ["climate"]
    # climate (0) shows; ocean's (2) waits for a script to show it when chosen; ml has none.
    assert warning_alerts(html) == {"0": (True, GRACE), "2": (False, NEAR)}
    # After every field, so just above the hub's Start button that follows the fragment.
    assert html.index("eohub-group-warnings") > html.index('name="urlpath"')
    assert GRACE in Page.of(html).text
    assert NEAR not in Page.of(html).text


def test_a_single_groups_warning_shows_and_no_warning_shows_nothing() -> None:
    html = form_html(BOB, {"climate": warned(GRACE)})
    assert warning_alerts(html) == {"0": (True, GRACE)}
    assert "eohub-group-warnings" not in form_html(BOB, {"climate": allowed()})


def test_warnings_are_text_not_markup() -> None:
    html = form_html(BOB, {"climate": warned("<script>alert(1)</script> & more ")})
    assert "<script>alert(1)" not in html
    assert warning_alerts(html) == {"0": (True, "<script>alert(1)</script> & more")}
