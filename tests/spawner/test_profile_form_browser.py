"""``profile_list`` profiles on the launch form, in headless Chromium.

The form is rendered from a LaunchContext as QuotaKubeSpawner builds it (profiles
group-filtered, the last profile launch's choices) and served, inside a page shaped like
JupyterHub's spawn page (its ``<form id="spawn_form">``, its Bootstrap), from an origin the
browser intercepts: no hub and no Kubernetes are needed to test what the browser sends.
The POST is caught and read by the spawner's own ``QuotaSpawnerMixin.read_form``, then
checked by the profile selection the spawn uses. ``test_launch_browser.py`` drives the
same form end to end through a real hub.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from jupyterhub._data import DATA_FILES_PATH
from playwright.sync_api import Browser, Page, Route, expect

from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.options import LaunchRequest, parse_options
from eohub.domain.launch.policy import Member
from eohub.domain.launch.profile_policy import authorize_profile
from eohub.domain.launch.profile_selection import option_keys, select_profile
from eohub.spawner.context import LaunchContext
from eohub.spawner.form.render import render_launch_form
from tests.spawner.form.forms import (
    BUILDER,
    CHARGE_GROUPS,
    ENVIRONMENTS,
    PROFILE_LIST,
    RULES,
    SIZES,
    VOLUMES,
    allowed,
    kube_config,
    profiles_for,
    read_form,
)

pytestmark = pytest.mark.browser

ORIGIN = "http://eohub.test"
BOOTSTRAP = Path(DATA_FILES_PATH) / "static/components/bootstrap/dist/css/bootstrap.min.css"
EVE = Member("eve", frozenset({"climate", "ocean"}))
OWN_IMAGE = "quay.io/eve/snowflake:v2"


def spawn_page(ctx: LaunchContext) -> str:
    """The form inside a page shaped as JupyterHub's spawn.html."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Spawn</title>
<link rel="stylesheet" href="/static/bootstrap.min.css"></head>
<body><div class="container"><form id="spawn_form" method="post" action="/hub/spawn">
{render_launch_form(ctx)}
<button type="submit" class="btn btn-primary">Start</button></form></div></body></html>"""


class SpawnPage:
    """Serves one form and keeps what the browser posts to /hub/spawn."""

    def __init__(self, page: Page, ctx: LaunchContext) -> None:
        self.page = page
        self.posts: list[dict[str, list[str]]] = []
        html = spawn_page(ctx)
        page.route(
            f"{ORIGIN}/hub/spawn-form", lambda r: r.fulfill(body=html, content_type="text/html")
        )
        page.route(f"{ORIGIN}/static/bootstrap.min.css", lambda r: r.fulfill(path=BOOTSTRAP))
        page.route(f"{ORIGIN}/hub/spawn", self._post)
        page.goto(f"{ORIGIN}/hub/spawn-form")

    def _post(self, route: Route) -> None:
        body = route.request.post_data or ""
        self.posts.append(parse_qs(body, keep_blank_values=True))
        route.fulfill(body="<p id=posted>posted</p>", content_type="text/html")

    def submit(self) -> dict[str, list[str]]:
        self.page.click("#spawn_form button[type=submit]")
        expect(self.page.locator("#posted")).to_be_visible()
        return self.posts[-1]


def launch_context(**saved_profile: object) -> LaunchContext:
    return LaunchContext(
        kube_config(),
        EVE,
        saved=LaunchRequest(group="ocean") if saved_profile else LaunchRequest(),
        budgets={"climate": allowed(12.0), "ocean": allowed()},
        profiles=profiles_for(EVE.groups),
        saved_profile=saved_profile,
    )


@pytest.fixture
def form(page: Page) -> SpawnPage:
    return SpawnPage(page, launch_context())


def selection_of(options: dict[str, Any]) -> dict[str, object]:
    """The profile launch the spawn makes of ``options``: the checked choices."""
    choices = option_keys({k: v for k, v in options.items() if k != "profile"})
    return select_profile(launch_context().profiles, options["profile"], choices).user_options()


def profile_fields(posted: dict[str, list[str]]) -> list[str]:
    return sorted(k for k in posted if k.startswith("profile-option-"))


def test_a_profile_a_choice_and_other_with_free_text(form: SpawnPage, artifacts: Path) -> None:
    page = form.page
    # eohub's default environment is preselected, its sizes shown, no profile options.
    expect(page.locator("#eohub-environment-pangeo")).to_be_checked()
    expect(page.locator(".eohub-sizes")).to_be_visible()
    expect(page.get_by_label("Image", exact=True)).to_be_hidden()

    page.get_by_label("Data science", exact=True).check()
    expect(page.locator(".eohub-sizes")).to_be_hidden()
    image = page.get_by_label("Image", exact=True)
    expect(image).to_have_value("rocker")  # the default choice
    own = page.get_by_label("Image of your own")
    expect(own).to_be_hidden()
    image.select_option("pangeo")
    expect(page.locator('[data-about-choice="pangeo"]')).to_have_text("Pangeo: Xarray and Dask.")
    page.get_by_label("Memory", exact=True).select_option("4g")
    image.select_option("unlisted-choice")
    expect(own).to_be_visible()
    expect(own).to_have_attribute("title", "An image on quay.io, with a tag.")

    # The browser checks the whole value against validation_regex before sending.
    own.fill("docker.io/evil/miner:latest")
    assert own.evaluate("e => e.validity.patternMismatch") is True
    page.click("#spawn_form button[type=submit]")  # refused by the browser: nothing sent
    own.fill(OWN_IMAGE)
    page.check("input[name=group][value=ocean]")
    page.screenshot(path=str(artifacts / "1-profile-other.png"), full_page=True)

    posted = form.submit()
    assert len(form.posts) == 1
    # KubeSpawner's fields; on "Other..." only the text is sent, as its form does.
    assert posted["profile"] == ["datasci"]
    assert profile_fields(posted) == [
        "profile-option-datasci--image--unlisted-choice",
        "profile-option-datasci--ram",
    ]
    assert "size" not in posted
    options = read_form(posted)
    assert options == {
        "profile": "datasci",
        "image--unlisted-choice": OWN_IMAGE,
        "ram": "4g",
        "group": "ocean",
    }
    assert selection_of(options) == {
        "profile": "datasci",
        "image--unlisted-choice": OWN_IMAGE,
        "ram": "4g",
    }


def test_an_environment_after_a_profile_sends_no_profile_fields(form: SpawnPage) -> None:
    page = form.page
    page.get_by_label("Data science", exact=True).check()
    page.get_by_label("Image", exact=True).select_option("unlisted-choice")
    page.get_by_label("Image of your own").fill(OWN_IMAGE)
    page.check("#eohub-environment-climate-r")
    expect(page.get_by_label("Image", exact=True)).to_be_hidden()
    expect(page.locator(".eohub-sizes")).to_be_visible()
    # The size checked before the profile, which climate-r offers too.
    assert page.locator("input[name=size]:checked").input_value() == "medium"

    posted = form.submit()
    assert profile_fields(posted) == []
    options = read_form(posted)
    assert options == {"profile": "climate-r", "size": "medium", "group": "climate"}


def test_the_last_profile_launch_is_selected_again(page: Page) -> None:
    saved: dict[str, Any] = {"profile": "datasci", "image--unlisted-choice": OWN_IMAGE}
    form = SpawnPage(page, launch_context(**saved))
    expect(page.get_by_label("Data science", exact=True)).to_be_checked()
    expect(page.get_by_label("Image", exact=True)).to_have_value("unlisted-choice")
    expect(page.get_by_label("Image of your own")).to_have_value(OWN_IMAGE)
    expect(page.get_by_label("Memory", exact=True)).to_have_value("8g")
    options = read_form(form.submit())
    assert options == {
        "profile": "datasci",
        "image--unlisted-choice": OWN_IMAGE,
        "ram": "8g",
        "group": "ocean",
    }


def test_without_javascript_a_profile_launch_is_still_valid(
    browser: Browser, artifacts: Path
) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        form = SpawnPage(context.new_page(), launch_context())
        page = form.page
        # Every profile's fields are on the page; none is preselected in the sizes.
        page.get_by_label("Data science", exact=True).check()
        page.get_by_label("Memory", exact=True).select_option("4g")
        page.screenshot(path=str(artifacts / "1-no-javascript.png"), full_page=True)
        posted = form.submit()
        options = read_form(posted)
        assert options == {
            "profile": "datasci",
            "image": "rocker",
            "ram": "4g",
            "group": "climate",
        }
        assert selection_of(options) == {"profile": "datasci", "image": "rocker", "ram": "4g"}
    finally:
        context.close()


def test_a_profile_narrows_the_groups_it_can_be_charged_to(form: SpawnPage) -> None:
    page = form.page
    page.check("input[name=group][value=ocean]")
    page.get_by_label("Tiny", exact=True).check()  # eohub.charge_groups: climate
    expect(page.locator("input[name=group][value=ocean]")).to_be_disabled()
    expect(page.locator("input[name=group][value=climate]")).to_be_checked()
    options = read_form(form.submit())
    assert options == {"profile": "tiny", "group": "climate"}
    assert selection_of(options) == {"profile": "tiny"}
    page.go_back()
    page.check("#eohub-environment-pangeo")  # for everyone: any group pays
    expect(page.locator("input[name=group][value=ocean]")).to_be_enabled()
    # Climate R is granted by climate only: ocean cannot pay for it (the default rule).
    page.check("input[name=group][value=ocean]")
    page.check("#eohub-environment-climate-r")
    expect(page.locator("input[name=group][value=ocean]")).to_be_disabled()
    expect(page.locator("input[name=group][value=climate]")).to_be_checked()


# -- a profile that builds images: "Build from a repository" ------------------------------

BUILD = "#eohub-profile-2-option-0"  # the builder's image option; its name comes and goes
DEMO = "https://github.com/eohub/demo"


def builder_context(**saved_profile: object) -> LaunchContext:
    """Repository rules, no environment that builds, and a profile that does."""
    return LaunchContext(
        kube_config(),
        EVE,
        RULES,
        saved=LaunchRequest(group="ocean") if saved_profile else LaunchRequest(),
        budgets={"climate": allowed(12.0), "ocean": allowed()},
        profiles=profiles_for(EVE.groups, [*PROFILE_LIST, BUILDER]),
        saved_profile=saved_profile,
    )


def repository_launch(ctx: LaunchContext, options: dict[str, Any]) -> str | None:
    """What the spawn builds of ``options``: the repository's name, or None."""
    choices = option_keys({k: v for k, v in options.items() if k != "profile"})
    selection = select_profile(ctx.profiles, options["profile"], choices)
    rest = parse_options({k: v for k, v in options.items() if k not in choices and k != "profile"})
    parts = authorize_profile(ctx.config, EVE, rest, selection, ctx.rules)
    return parts.repo.spec.name if parts.repo else None


def test_a_profile_builds_from_a_repository(page: Page, artifacts: Path) -> None:
    ctx = builder_context()
    form = SpawnPage(page, ctx)
    section = page.locator("#eohub-repo")
    # The default environment builds nothing: no repository section.
    expect(section).to_be_hidden()
    page.get_by_label("Build your own", exact=True).check()
    expect(section).to_be_hidden()  # the list's default image
    page.select_option(BUILD, label="Build from a repository")
    expect(section).to_be_visible()
    # The section moves into the option it stands for; the free text stays hidden.
    expect(page.locator("[data-options-of='2'] #eohub-repo")).to_be_visible()
    expect(page.locator(BUILD + "-unlisted")).to_be_hidden()
    # A repository is needed: the browser refuses an empty one.
    page.click("#spawn_form button[type=submit]")
    assert page.locator("#eohub-repo-url").evaluate("e => e.validity.valueMissing") is True
    page.fill("#eohub-repo-url", DEMO)
    page.fill("#eohub-ref", "main")
    link = page.locator("#eohub-link")
    expect(link).to_have_value(f"{ORIGIN}/hub/eohub/launch/gh/eohub/demo/main")
    page.screenshot(path=str(artifacts / "2-profile-repository.png"), full_page=True)

    posted = form.submit()
    assert len(form.posts) == 1
    assert profile_fields(posted) == []  # neither the list nor the free text
    options = read_form(posted)
    assert options == {"profile": "builder", "repo": DEMO, "ref": "main", "group": "climate"}
    assert repository_launch(ctx, options) == "github.com/eohub/demo"

    # Back to a listed image: the repository is not sent, the list is.
    page.goto(f"{ORIGIN}/hub/spawn-form")  # afresh: no form state restored
    page.get_by_label("Build your own", exact=True).check()
    page.select_option(BUILD, "pangeo")
    expect(section).to_be_hidden()
    posted = form.submit()
    assert profile_fields(posted) == ["profile-option-builder--image"]
    options = read_form(posted)
    assert options == {"profile": "builder", "image": "pangeo", "group": "climate"}
    assert repository_launch(ctx, options) is None


def test_the_last_repository_launch_of_a_profile_is_selected_again(page: Page) -> None:
    # Saved with ocean, which no longer grants the builder (its allowed_groups: climate).
    saved: dict[str, Any] = {"profile": "builder", "provider": "gh", "repo": "eohub/demo"}
    ctx = builder_context(**saved, ref="v1")
    form = SpawnPage(page, ctx)
    expect(page.get_by_label("Build your own", exact=True)).to_be_checked()
    expect(page.locator(BUILD)).to_have_value("")
    expect(page.locator("[data-options-of='2'] #eohub-repo")).to_be_visible()
    expect(page.locator("#eohub-provider")).to_have_value("gh")
    expect(page.locator("#eohub-repo-url")).to_have_value("eohub/demo")
    expect(page.locator("#eohub-ref")).to_have_value("v1")
    expect(page.locator("#eohub-link")).to_have_value(
        f"{ORIGIN}/hub/eohub/launch/gh/eohub/demo/v1"
    )
    options = read_form(form.submit())
    assert options == {
        "profile": "builder",
        "provider": "gh",
        "repo": "eohub/demo",
        "ref": "v1",
        "group": "climate",
    }
    assert repository_launch(ctx, options) == "github.com/eohub/demo"


def test_without_javascript_a_filled_repository_wins(browser: Browser, artifacts: Path) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        ctx = builder_context()
        form = SpawnPage(context.new_page(), ctx)
        page = form.page
        # The section is always shown, and says that a filled repository wins.
        expect(page.locator(".eohub-repo-wins")).to_contain_text(
            "With a profile that builds images (Build your own): when the repository is "
            "filled in, the image is built from it"
        )
        page.get_by_label("Build your own", exact=True).check()
        page.select_option(BUILD, label="Build from a repository")
        page.fill("#eohub-repo-url", DEMO)
        page.screenshot(path=str(artifacts / "2-no-javascript-repository.png"), full_page=True)
        posted = form.submit()
        # The entry and the empty free text are sent empty, and dropped.
        assert posted["profile-option-builder--image"] == [""]
        options = read_form(posted)
        assert options == {"profile": "builder", "repo": DEMO, "group": "climate"}
        assert repository_launch(ctx, options) == "github.com/eohub/demo"

        # A listed image with a filled repository: the repository wins.
        page.goto(f"{ORIGIN}/hub/spawn-form")  # afresh: no form state restored
        page.get_by_label("Build your own", exact=True).check()
        page.select_option(BUILD, "pangeo")
        page.fill("#eohub-repo-url", DEMO)
        options = read_form(form.submit())
        assert options == {
            "profile": "builder",
            "image": "pangeo",
            "repo": DEMO,
            "group": "climate",
        }
        assert repository_launch(ctx, options) == "github.com/eohub/demo"
    finally:
        context.close()


def test_the_section_serves_a_repository_environment_and_a_profile(page: Page) -> None:
    environments = {**ENVIRONMENTS, "binder": {"display_name": "Binder", "repository": True}}
    config = parse_launch_config(
        environments, SIZES, VOLUMES, backend="kube", charge_groups=CHARGE_GROUPS
    )
    ctx = dataclasses.replace(builder_context(), config=config)
    form = SpawnPage(page, ctx)
    home = page.locator("#eohub-repo-home #eohub-repo")
    page.check("#eohub-environment-binder")
    expect(home).to_be_visible()
    page.fill("#eohub-repo-url", DEMO)
    expect(page.locator("#eohub-link")).to_have_value(
        f"{ORIGIN}/hub/eohub/launch/gh/eohub/demo/HEAD?environment=binder"
    )
    page.get_by_label("Build your own", exact=True).check()
    expect(page.locator("#eohub-repo")).to_be_hidden()  # on the list's image
    page.select_option(BUILD, label="Build from a repository")
    expect(page.locator("[data-options-of='2'] #eohub-repo")).to_be_visible()
    expect(page.locator("#eohub-repo-url")).to_have_value(DEMO)  # what was typed stays
    page.check("#eohub-environment-pangeo")  # builds nothing: nothing sent
    expect(page.locator("#eohub-repo")).to_be_hidden()
    page.check("#eohub-environment-binder")
    expect(home).to_be_visible()
    options = read_form(form.submit())
    assert options == {"profile": "binder", "repo": DEMO, "size": "medium", "group": "climate"}
