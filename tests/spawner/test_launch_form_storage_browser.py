"""Accounting's storage warnings on the launch form, in headless Chromium.

The form is served as JupyterHub's spawn page (``SpawnPage`` of the grants test): the
warnings accounting gave with each group's quota answer stand in an alert just above
Start while that group is chosen, follow the group choice, and never disable Start (a
refusal does, as before).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.options import LaunchRequest
from eohub.spawner.form.render import render
from eohub.spawner.form.view import build_form
from tests.spawner.test_launch_form_grants_browser import BOB, CONFIG, SPENT, SpawnPage

pytestmark = pytest.mark.browser

GRACE = (
    "Group climate stores 12.0 GiB, over its storage quota of 10 GiB since 2026-12-06 "
    "10:00 UTC. New servers charged to it will be refused from 2026-12-09 10:00 UTC unless "
    "space is freed."
)
NEAR = "Group researchers stores 9.5 GiB, 95% of its storage quota of 10 GiB."


def answer(*warnings: str, refusal: str = "") -> QuotaAnswer:
    return QuotaAnswer(
        not refusal,
        refusal or "Within quota.",
        {"core_hours": 100.0},
        budget_limit={"core_hours": 200.0},
        warnings=warnings,
    )


def form_page(page: Page, answers: dict[str, QuotaAnswer]) -> SpawnPage:
    form = build_form(CONFIG, BOB, LaunchRequest(), [], answers)
    return SpawnPage(page, render(form))


def test_the_chosen_groups_warning_follows_the_choice(page: Page, artifacts: Path) -> None:
    form = form_page(page, {"climate": answer(GRACE), "researchers": answer(NEAR)})
    start = page.locator("#spawn_form button[type=submit]")
    grace = page.locator(".eohub-group-warnings").filter(has_text="over its storage quota")
    near = page.locator(".eohub-group-warnings").filter(has_text="95% of its storage quota")
    expect(page.locator("input[name=group][value=climate]")).to_be_checked()
    expect(grace).to_be_visible()
    expect(near).to_be_hidden()
    expect(start).to_be_enabled()  # a warning never keeps a server from starting
    # Just above Start, below every field.
    box, button = grace.bounding_box(), start.bounding_box()
    assert box is not None
    assert button is not None
    assert 0 <= button["y"] - (box["y"] + box["height"]) < 80
    page.screenshot(path=str(artifacts / "1-grace-warning-above-start.png"), full_page=True)

    page.check("input[name=group][value=researchers]")
    expect(grace).to_be_hidden()
    expect(near).to_be_visible()
    expect(near).to_have_text(NEAR)
    page.screenshot(path=str(artifacts / "2-near-warning-other-group.png"), full_page=True)

    page.check("input[name=group][value=climate]")
    expect(grace).to_be_visible()
    expect(near).to_be_hidden()
    assert form.submit()["group"] == "climate"


def test_a_refused_group_disables_start_and_a_warned_one_does_not(
    page: Page, artifacts: Path
) -> None:
    form_page(page, {"climate": answer(GRACE), "researchers": answer(refusal=SPENT)})
    start = page.locator("#spawn_form button[type=submit]")
    page.check("input[name=group][value=researchers]")
    expect(start).to_be_disabled()
    expect(page.locator("#eohub-start-reason")).to_have_text(f"Start is disabled: {SPENT}")
    expect(page.locator(".eohub-group-warnings")).to_be_hidden()
    page.check("input[name=group][value=climate]")
    expect(start).to_be_enabled()
    expect(page.locator(".eohub-group-warnings")).to_have_text(GRACE)
    page.screenshot(path=str(artifacts / "1-warned-group-may-start.png"), full_page=True)
