"""The launch form in headless Chromium: who pays, in whose words, and when Start cannot work.

The form is built from the launch policy and accounting's answers (``build_form``),
rendered by eohub's template and served inside a page shaped as JupyterHub's spawn.html
(its ``<form id="spawn_form">`` and Start button after the fragment, its Bootstrap), from
an origin the browser intercepts. ``test_launch_browser.py`` drives the form through a
real hub; here the answers accounting would give (display names, limits, refusals) and
the spawner's facts (a server limit, a backend that cannot enforce read-only) are set
directly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from jupyterhub._data import DATA_FILES_PATH
from playwright.sync_api import Page, Route, expect

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.options import LaunchRequest, parse_options
from eohub.domain.launch.policy import Member, authorize
from eohub.spawner.form.render import render
from eohub.spawner.form.running import RunningServerView
from eohub.spawner.form.view import READ_ONLY_NOT_ENFORCED, build_form

pytestmark = pytest.mark.browser

ORIGIN = "http://eohub.test"
BOOTSTRAP = Path(DATA_FILES_PATH) / "static/components/bootstrap/dist/css/bootstrap.min.css"
SIZES = {
    "small": {"display_name": "Small", "cpu": 1, "memory": "2G"},
    "large": {"display_name": "Large", "cpu": 8, "memory": "32G"},
}
ENVIRONMENTS = {
    "lab": {"display_name": "JupyterLab", "command": ["jupyterhub-singleuser"], "default": True},
    "climate-lab": {
        "display_name": "Climate lab",
        "command": ["jupyterhub-singleuser"],
        "allowed_groups": ["climate"],
    },
}
VOLUMES = {
    "home": {
        "kind": "workspace",
        "display_name": "Your workspace",
        "mount_path": "/home/jovyan",
        "local_path": "/srv/{username}",
    },
    "reference": {
        "kind": "host_path",
        "display_name": "Reference data",
        "path": "/srv/reference",
        "mount_path": "/data/reference",
        "read_only": True,
        "optional": True,
    },
    "climate-share": {
        "kind": "host_path",
        "display_name": "Climate share",
        "path": "/srv/groups/{group}",
        "mount_path": "/data/group",
        "allowed_groups": ["climate"],
    },
}
CONFIG = parse_launch_config(ENVIRONMENTS, SIZES, VOLUMES, backend="local")
BOB = Member("bob", frozenset({"climate", "researchers"}))
SPENT = "The core-hours budget of group researchers is spent: 10 of 10 used this period."


def answer(
    left: float | None, limit: float | None, name: str, *, refusal: str = ""
) -> QuotaAnswer:
    return QuotaAnswer(
        not refusal,
        refusal or "Within quota.",
        {"core_hours": left},
        display_name=name,
        budget_limit={"core_hours": limit},
    )


FUNDED = {
    "climate": answer(200.0, 200.0, "Climate research"),
    "researchers": answer(24.0, 40.0, "Researchers"),
}


class SpawnPage:
    """Serves one form as JupyterHub's spawn page and keeps what the browser posts."""

    def __init__(self, page: Page, fragment: str) -> None:
        self.page = page
        self.posts: list[dict[str, list[str]]] = []
        html = f"""<!doctype html><html><head><meta charset="utf-8"><title>Spawn</title>
<link rel="stylesheet" href="/static/bootstrap.min.css"></head>
<body><div class="container"><h1>Server Options</h1>
<form id="spawn_form" method="post" action="/hub/spawn">{fragment}
<br><button type="submit" class="btn btn-jupyter form-control">Start</button></form>
</div></body></html>"""
        page.route(
            f"{ORIGIN}/hub/spawn-form", lambda r: r.fulfill(body=html, content_type="text/html")
        )
        page.route(f"{ORIGIN}/static/bootstrap.min.css", lambda r: r.fulfill(path=BOOTSTRAP))
        page.route(f"{ORIGIN}/hub/spawn", self._post)
        page.goto(f"{ORIGIN}/hub/spawn-form")

    def _post(self, route: Route) -> None:
        self.posts.append(parse_qs(route.request.post_data or "", keep_blank_values=True))
        route.fulfill(body="<p id=posted>posted</p>", content_type="text/html")

    def submit(self) -> dict[str, Any]:
        self.page.click("#spawn_form button[type=submit]")
        expect(self.page.locator("#posted")).to_be_visible()
        posted = self.posts[-1]
        return {k: v if k == "volumes" else v[0] for k, v in posted.items() if k != "urlpath"}


def form_page(page: Page, answers: dict[str, QuotaAnswer], **kwargs: Any) -> SpawnPage:
    form = build_form(CONFIG, BOB, LaunchRequest(), [], answers, **kwargs)
    return SpawnPage(page, render(form))


def test_only_the_groups_that_grant_the_environment_pay_for_it(
    page: Page, artifacts: Path
) -> None:
    form = form_page(page, FUNDED)
    climate = page.locator("input[name=group][value=climate]")
    researchers = page.locator("input[name=group][value=researchers]")
    # Display names, one number format, "left of" the limit, English possessives.
    expect(page.locator(".eohub-groups")).to_contain_text("Climate research")
    expect(page.locator(".eohub-groups")).to_contain_text("200 core-hours left of 200")
    expect(page.locator(".eohub-groups")).to_contain_text("24 core-hours left of 40")
    page.check("input[name=group][value=researchers]")
    expect(page.locator("[data-size=small]")).to_contain_text(
        "about 24 hours on Researchers' budget"
    )
    # Researchers do not grant the climate share: it is not shown for them.
    expect(page.locator(".eohub-mounted").get_by_text("Climate share")).to_be_hidden()
    page.screenshot(path=str(artifacts / "1-researchers-pay-for-jupyterlab.png"), full_page=True)

    page.check("#eohub-environment-climate-lab")
    expect(researchers).to_be_disabled()
    expect(climate).to_be_checked()
    expect(page.locator("[data-size=small]")).to_contain_text(
        "about 200 hours on Climate research's budget"
    )
    expect(page.locator(".eohub-mounted").get_by_text("Climate share")).to_be_visible()
    page.screenshot(path=str(artifacts / "2-only-climate-pays-for-its-lab.png"), full_page=True)
    options = form.submit()
    assert options == {"environment": "climate-lab", "group": "climate", "size": "small"}
    launch = authorize(CONFIG, BOB, parse_options(options), None)
    assert [v.name for v in launch.volumes] == ["home", "climate-share"]

    page.go_back()
    page.check("#eohub-environment-lab")
    expect(researchers).to_be_enabled()


def test_start_is_disabled_with_the_reason_when_the_group_is_refused(
    page: Page, artifacts: Path
) -> None:
    answers = {**FUNDED, "researchers": answer(0.0, 10.0, "Researchers", refusal=SPENT)}
    form_page(page, answers)
    start = page.locator("#spawn_form button[type=submit]")
    reason = page.locator("#eohub-start-reason")
    # The form preselects a group that can start: climate.
    expect(page.locator("input[name=group][value=climate]")).to_be_checked()
    expect(start).to_be_enabled()
    expect(reason).to_be_hidden()
    page.check("input[name=group][value=researchers]")
    expect(start).to_be_disabled()
    expect(reason).to_have_text(f"Start is disabled: {SPENT}")
    page.screenshot(path=str(artifacts / "1-start-disabled-quota.png"), full_page=True)
    page.check("input[name=group][value=climate]")
    expect(start).to_be_enabled()
    expect(reason).to_be_hidden()


def test_start_is_disabled_when_no_size_fits(page: Page) -> None:
    answers = {**FUNDED, "researchers": answer(0.5, 40.0, "Researchers")}
    form_page(page, answers)
    page.check("input[name=group][value=researchers]")
    expect(page.locator("#spawn_form button[type=submit]")).to_be_disabled()
    expect(page.locator("#eohub-start-reason")).to_have_text(
        "Start is disabled: no size of this environment fits the budget left of group Researchers."
    )


def test_start_is_disabled_at_the_server_limit(page: Page, artifacts: Path) -> None:
    limit = "You already have the maximum of 2 named servers: delete one on the hub's home page"
    form_page(page, FUNDED, start_blocked=f"{limit} before you start another.")
    expect(page.locator("#spawn_form button[type=submit]")).to_be_disabled()
    expect(page.locator("#eohub-start-reason")).to_contain_text(limit)
    page.screenshot(path=str(artifacts / "1-start-disabled-server-limit.png"), full_page=True)


def test_a_read_only_volume_says_when_read_only_is_not_enforced(
    page: Page, artifacts: Path
) -> None:
    form_page(page, FUNDED, enforces_read_only=False)
    about = page.locator("#eohub-volume-reference-about")
    expect(about).to_contain_text("at /data/reference, read-only")
    expect(about).to_contain_text(f"({READ_ONLY_NOT_ENFORCED})")
    page.screenshot(path=str(artifacts / "1-read-only-not-enforced.png"), full_page=True)


def test_read_only_goes_unqualified_where_it_is_enforced(page: Page) -> None:
    form_page(page, FUNDED)
    expect(page.locator("#eohub-volume-reference-about")).to_contain_text("read-only")
    expect(page.locator(".eohub-read-only-note")).to_have_count(0)


def test_without_an_answer_a_group_is_named_by_its_id(page: Page) -> None:
    form_page(page, {})
    groups = page.locator(".eohub-groups")
    expect(groups).to_contain_text("climate")
    expect(groups).to_contain_text("researchers")
    expect(groups).to_contain_text("budget unknown")


#: Hub-wide limits, a group's override, and each environment's own limits.
LIMITED = parse_launch_config(
    {
        "lab": {**ENVIRONMENTS["lab"], "idle_timeout": "2h"},
        "climate-lab": {
            **ENVIRONMENTS["climate-lab"],
            "max_duration": "8h",
            "group_limits": {"climate": {"max_duration": "2d"}},
        },
    },
    SIZES,
    VOLUMES,
    backend="local",
    session_limits={"max_duration": "24h", "groups": {"researchers": {"max_duration": "12h"}}},
)


def test_the_limits_of_the_chosen_environment_and_group_in_plain_words(
    page: Page, artifacts: Path
) -> None:
    running = (
        RunningServerView(
            "",
            "My Server",
            "/user/bob/",
            "Climate lab",
            "ends in 10 min (at most 8 hours); idle 3 min",
            True,
        ),
        RunningServerView(
            "notes",
            "notes",
            "/user/bob/notes/",
            "JupyterLab",
            "ends in 20 h 05 min (at most 24 hours); idle 12 min (stops after 2 hours idle)",
            False,
        ),
    )
    form = build_form(LIMITED, BOB, LaunchRequest(), [], FUNDED, running=running)
    SpawnPage(page, render(form))
    # The user's running servers come first, with the time they have left.
    servers = page.locator(".eohub-running")
    expect(servers).to_contain_text("My Server (Climate lab): ends in 10 min (at most 8 hours)")
    expect(servers).to_contain_text("notes (JupyterLab): ends in 20 h 05 min")
    expect(page.locator("#eohub-running-default .eohub-clock")).to_have_class(
        re.compile("text-danger")
    )
    lab = page.locator("label[for=eohub-environment-lab] .eohub-limits:visible")
    climate_lab = page.locator("label[for=eohub-environment-climate-lab] .eohub-limits:visible")
    # climate is preselected: the hub's 24 hours, lab's own idle limit.
    expect(page.locator("input[name=group][value=climate]")).to_be_checked()
    expect(lab).to_have_text("Stops after 2 hours idle, at most 24 hours.")
    expect(climate_lab).to_have_text("Runs at most 2 days.")
    page.screenshot(path=str(artifacts / "1-limits-climate.png"), full_page=True)
    # Researchers get the hub's 12 hours; climate-lab's own 8 hours still win.
    page.check("input[name=group][value=researchers]")
    expect(lab).to_have_text("Stops after 2 hours idle, at most 12 hours.")
    expect(climate_lab).to_have_text("Runs at most 8 hours.")
    page.screenshot(path=str(artifacts / "2-limits-researchers.png"), full_page=True)
    # Choosing climate-lab narrows the groups to climate, and its words follow.
    page.check("#eohub-environment-climate-lab")
    expect(page.locator("input[name=group][value=climate]")).to_be_checked()
    expect(climate_lab).to_have_text("Runs at most 2 days.")
