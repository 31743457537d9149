"""docs/tutorials/demo-hub.md, followed step by step in Chromium against the real demo.

The demo is started as the README says (demo/run.py, through tests.support.demo); each
step checks what the tutorial tells the reader they will see, and leaves a screenshot.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.demo import start_demo, stop_demo
from tests.support.process import free_port
from tests.support.tools import REPO_ROOT

pytestmark = pytest.mark.hub

TUTORIAL = REPO_ROOT / "docs/tutorials/demo-hub.md"
START = "#spawn_form button[type=submit]"


class Demo:
    def __init__(self, url: str, printed: str, state: Path) -> None:
        self.url, self.printed, self.state = url, printed, state


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    state = tmp_path_factory.mktemp("demo")
    log: IO[str] = (state / "demo.log").open("w")
    process, printed = start_demo(state, free_port(), log)
    try:
        url = re.search(r"eohub demo hub: (http://127\.0\.0\.1:\d+)/", printed)
        assert url, printed + (state / "demo.log").read_text()[-3000:]
        yield Demo(url[1], printed, state)
    finally:
        stop_demo(process)
        log.close()


def log_in(browser: Browser, demo: Demo, name: str) -> Page:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(f"{demo.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", f"{name}-pw")
    page.click("#login_submit")
    return page


def limits_line(page: Page, environment: str) -> Locator:
    """The session-limits line the form shows under ``environment`` for the chosen group."""
    return page.locator(f"#eohub-environment-{environment}-about .eohub-limits:visible")


def shoot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_the_tutorial_says_what_the_demo_prints(demo: Demo) -> None:
    text = TUTORIAL.read_text()
    for line in ("eohub demo hub:", "usage pages:", "launch link:", "bob / bob-pw"):
        assert line in demo.printed
        assert line in text


def test_the_tutorial_steps_as_a_reader_takes_them(
    demo: Demo, browser: Browser, artifacts: Path
) -> None:
    # 2. The launch form: bob's environments, his two groups with their budgets.
    bob = log_in(browser, demo, "bob")
    bob.wait_for_url(re.compile(r".*/hub/spawn.*"))
    for name in ("JupyterLab", "Climate modelling", "From a git repository"):
        expect(bob.locator("#spawn_form")).to_contain_text(name)
    groups = bob.locator(".eohub-groups")
    expect(groups).to_contain_text("All researchers")
    expect(groups).to_contain_text("50 core-hours left of 50")
    expect(groups).to_contain_text("200 core-hours left of 200")
    expect(bob.locator("#spawn_form")).to_contain_text("read-only is not enforced on this machine")
    # Each environment's session limits, in the words the tutorial quotes.
    expect(limits_line(bob, "lab")).to_have_text("Stops after 2 hours idle, at most 12 hours.")
    assert "Stops after 2 hours idle, at most 12 hours." in TUTORIAL.read_text()
    bob.check("input[name=environment][value=climate-lab]")
    expect(bob.locator("input[name=group][value=researchers]")).to_be_disabled()
    expect(limits_line(bob, "climate-lab")).to_have_text(
        "Stops after 2 hours idle, at most 24 hours."
    )
    shoot(bob, artifacts, "2-form-climate-greys-researchers")
    bob.check("input[name=environment][value=lab]")
    bob.check("input[name=group][value=researchers]")
    bob.check("input[name=size][value=small]")
    bob.click(START)
    bob.wait_for_url(re.compile(r".*/user/bob/.*"), timeout=90_000)

    # 3. The home page lists the server; a named server on the same budget is refused.
    bob.goto(f"{demo.url}/hub/home")
    running = bob.locator("text=Your running servers")
    expect(running).to_be_visible()
    expect(bob.locator("body")).to_contain_text("All researchers")
    server = bob.locator("tr.eohub-server-row[data-server-name='']")
    expect(server.locator(".eohub-ends-in")).to_have_text(re.compile(r"^ends in 11 h 5\d min$"))
    expect(server.locator(".eohub-maximum")).to_have_text("at most 12 hours")
    expect(server.locator(".eohub-idle-limit")).to_have_text("stops after 2 hours idle")
    expect(bob.get_by_role("link", name="Usage")).to_be_visible()
    shoot(bob, artifacts, "3-home")
    bob.goto(f"{demo.url}/hub/spawn/bob/climate")
    bob.check("input[name=environment][value=lab]")
    bob.check("input[name=group][value=researchers]")
    expect(bob.locator(START)).to_be_disabled()
    expect(bob.locator("#eohub-start-reason")).to_contain_text("1 of at most 1 server at once")
    shoot(bob, artifacts, "3-start-disabled")
    bob.check("input[name=environment][value=climate-lab]")
    expect(bob.locator("input[name=group][value=climate]")).to_be_checked()
    expect(bob.locator(START)).to_be_enabled()
    bob.click(START)
    bob.wait_for_url(re.compile(r".*/user/bob/climate/.*"), timeout=90_000)

    # 4. bob's usage, through Services -> Usage, with nothing to confirm on the way.
    bob.goto(f"{demo.url}/hub/home")
    bob.get_by_role("button", name="Services").click()
    bob.get_by_role("link", name="Usage").first.click()
    bob.wait_for_url(re.compile(r".*/services/eohub-accounting/.*"))
    expect(bob.locator("h1")).to_have_text("My usage")
    expect(bob.locator("main")).to_contain_text("Climate modelling")
    expect(bob.locator("main")).to_contain_text("All researchers")
    shoot(bob, artifacts, "4-bob-usage")
    carol = log_in(browser, demo, "carol")
    carol.goto(f"{demo.url}/services/eohub-accounting/groups")
    row = carol.locator("table.running tr", has_text="bob")
    expect(row).to_contain_text("climate")
    expect(row.locator("td.idle")).not_to_be_empty()
    shoot(carol, artifacts, "4-carol-groups")
    row.locator("a.stop").click()
    expect(carol.locator("h1")).to_have_text("Stop bob's server climate?")
    carol.get_by_role("button", name="Stop the server").click()
    expect(carol.locator("main .alert-info").first).to_contain_text(
        "The ledger records carol as who stopped it."
    )
    shoot(carol, artifacts, "4-carol-stopped")
    # The stop reaches the ledger through the hub's outbox, maybe after this page is
    # drawn: bob reloads as a person would.
    bob.goto(f"{demo.url}/services/eohub-accounting/usage")
    deadline = time.monotonic() + 60
    while "Stopped by carol" not in (bob.locator("#sessions").text_content() or ""):
        assert time.monotonic() < deadline, "carol's stop never reached bob's usage page"
        time.sleep(0.5)
        bob.reload()
    expect(bob.locator("#sessions")).to_contain_text("Stopped by carol")

    # 5. The launch link, with bob's default server running: the page offers a way on.
    link = re.search(r"launch link:\s+(\S+)", demo.printed)
    assert link, demo.printed
    bob.goto(link[1])
    expect(bob.locator("#eohub-stop-and-launch")).to_be_visible()
    expect(bob.locator("#eohub-launch-new-server")).to_be_visible()
    shoot(bob, artifacts, "5-link-running")
    bob.click("#eohub-stop-and-launch")
    repo = bob.locator("input[name=repo]")
    expect(repo).to_have_value(re.compile(r".*eohub-demo\.git"), timeout=90_000)
    shoot(bob, artifacts, "5-link-form")
    bob.click(START)
    bob.wait_for_url(re.compile(r".*/user/bob/.*intro\.ipynb.*"), timeout=120_000)
    assert (demo.state / "home" / "bob" / "eohub-demo" / "intro.ipynb").exists()
