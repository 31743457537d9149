"""Repository launches end to end in headless Chromium, with QuotaLocalSpawner.

Real parts only: JupyterHub with configurable-http-proxy and the accounting service
(from the drop-ins), the DummyAuthenticator's login page, QuotaLocalSpawner (servers
run as the hub's user, ``switch_user = False``), git's http-backend serving the
repository on loopback (so the hub allows ``http`` and private hosts), and JupyterLab.

Covered: a launch link to an untrusted repository goes through the login to the
prefilled form (repository fields, the repository environment, the warning, the
shareable link and badges with absolute URLs, the copy button) and starts nothing;
Start clones the resolved commit, the progress page shows it, and JupyterLab opens the
file. Typing a repository updates the launch link as one types; the plain environment
hides and disables the repository fields. A crafted ``/hub/spawn?repo=...`` link starts
nothing and says why.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.spawner.test_local_hub import ACCOUNTING_GROUPS, SIZES
from tests.support.git_server import Repo
from tests.support.hub import Hub
from tests.support.repo_services import head_of, local_repo_hub_config, start_repo_hub

pytestmark = [pytest.mark.browser, pytest.mark.hub]

ENVIRONMENTS = {
    "lab": {"display_name": "JupyterLab", "sizes": ["small"], "default": True},
    "from-repo": {
        "display_name": "Build from a repository",
        "repository": True,
        "sizes": ["small"],
        "allowed_groups": ["climate"],
    },
}
# The spawn-pending page replaces itself with the server once it is ready; this keeps
# what its progress log showed, for the test to read afterwards (same origin, same tab).
RECORD_PROGRESS = """
if (location.pathname.includes("/hub/spawn-pending/")) {
  new MutationObserver(function () {
    var log = document.getElementById("progress-log");
    if (!log) { return; }
    var shown = Array.prototype.map.call(
      log.querySelectorAll(".progress-log-event"), function (e) { return e.textContent; });
    sessionStorage.setItem("eohub-progress-log", JSON.stringify(shown));
  }).observe(document, {childList: true, subtree: true, characterData: true});
}
"""
REPO_NAME = "127.0.0.1/demo"  # host and path, as policy patterns and messages name it


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    config = local_repo_hub_config(
        workdir,
        environments=ENVIRONMENTS,
        sizes=SIZES,
        groups={"climate": ["alice", "carol", "dave"]},
        repo_settings='c.RepoLaunches.trusted_repos = ["127.0.0.1*/trusted"]',
    )
    started = start_repo_hub(workdir, config, ACCOUNTING_GROUPS)
    yield started
    started.process.stop(timeout=20)


@pytest.fixture
def context(browser: Browser, hub: Hub) -> Iterator[BrowserContext]:
    """A fresh context that may use the clipboard on the hub's origin."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub.url)
    yield context
    context.close()


def submit_login(page: Page, username: str) -> None:
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "any password")  # the DummyAuthenticator's
    page.click("button[type=submit], input[type=submit]")


def log_in(page: Page, hub: Hub, username: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    submit_login(page, username)
    page.wait_for_url(re.compile(r".*/hub/(?!login).*"))


def launch_link(hub: Hub, url: str, ref: str, query: str = "") -> str:
    link = f"{hub.url}/hub/eohub/launch/git/{quote(url, safe='')}/{quote(ref, safe='')}"
    return f"{link}?{query}" if query else link


def badge_snippets(hub: Hub, link: str) -> tuple[str, str]:
    badge = f"{hub.url}/hub/eohub/badge.svg"
    markdown = f"[![Launch on eohub]({badge})]({link})"
    html = f'<a href="{link.replace("&", "&amp;")}"><img src="{badge}" alt="Launch on eohub"></a>'
    return markdown, html


def expect_share_box(page: Page, hub: Hub, link: str) -> None:
    markdown, html = badge_snippets(hub, link)
    expect(page.locator("#eohub-link")).to_have_value(link)
    expect(page.locator("#eohub-badge-md")).to_have_value(markdown)
    expect(page.locator("#eohub-badge-html")).to_have_value(html)


def stop_if_running(hub: Hub, username: str) -> None:
    if hub.server(username) is not None:
        hub.stop(username)


def check_the_prefilled_form(
    page: Page, hub: Hub, url: str, context: BrowserContext, artifacts: Path
) -> None:
    """The launch link's form: the repository filled in, the warning, the share box."""
    expect(page.locator("#eohub-environment-from-repo")).to_be_checked()
    expect(page.locator("#eohub-repo")).to_be_visible()
    expect(page.locator("#eohub-provider")).to_have_value("git")
    expect(page.locator("#eohub-repo-url")).to_have_value(url)
    expect(page.locator("#eohub-ref")).to_have_value("main")
    expect(page.locator("#eohub-filepath")).to_have_value("README.md")
    expect(page.locator(".eohub-untrusted")).to_contain_text("not on this hub's trusted list")
    link = launch_link(hub, url, "main", "environment=from-repo&filepath=README.md")
    expect_share_box(page, hub, link)
    page.screenshot(path=str(artifacts / "1-launch-link-form.png"), full_page=True)

    copy = page.locator("button[data-copy=eohub-link]")
    expect(copy).to_have_text("Copy launch link")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == link
    # The badge the snippets show is served without a login.
    badge = context.request.get(f"{hub.url}/hub/eohub/badge.svg")
    assert badge.status == 200
    assert badge.headers["content-type"] == "image/svg+xml"


def check_the_launched_clone(page: Page, hub: Hub, url: str, repo: Repo) -> None:
    """What the progress page showed, the clone, and the server's options."""
    shown = json.loads(page.evaluate("sessionStorage.getItem('eohub-progress-log')"))
    commit = repo.main[:12]
    for said in (
        f"Repository {REPO_NAME} at main: commit {commit}.",
        f"Cloning {REPO_NAME} at commit {commit} into demo/.",
        "No image is built on this single-machine hub",
    ):
        assert any(said in line for line in shown), shown

    clone = hub.workdir / "home" / "alice" / "demo"
    assert head_of(clone) == repo.main
    assert (clone / "README.md").read_text() == "second\n"
    server = hub.server("alice")
    assert server is not None
    assert server["ready"]
    options = server["user_options"]
    assert {k: options.get(k) for k in ("environment", "repo", "ref", "filepath")} == {
        "environment": "from-repo",
        "repo": url,
        "ref": "main",
        "filepath": "README.md",
    }


def test_a_launch_link_logs_in_prefills_the_form_and_starts_only_on_start(
    hub: Hub, served: tuple[str, Repo], context: BrowserContext, artifacts: Path
) -> None:
    url, repo = served
    page = context.new_page()
    page.add_init_script(RECORD_PROGRESS)
    try:
        # (a) The link, before logging in: the login page, then back to the link.
        page.goto(launch_link(hub, url, "main", "filepath=README.md"))
        page.wait_for_url(re.compile(r".*/hub/login\?next=.*"))
        submit_login(page, "alice")
        page.wait_for_url(re.compile(r".*/hub/eohub/launch/git/.*"))
        expect(page.locator("#eohub-launch")).to_be_visible()
        check_the_prefilled_form(page, hub, url, context, artifacts)

        # (b) Nothing started by opening the link.
        time.sleep(1)
        assert hub.server("alice") is None

        # (c) Start.
        page.click("#spawn_form button[type=submit]")

        # (e) JupyterLab opens the file in the clone.
        page.wait_for_url(re.compile(r".*/user/alice/lab/tree/demo/README\.md.*"), timeout=90_000)
        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="README.md")
        expect(tab).to_be_visible(timeout=60_000)
        expect(page.locator(".jp-FileEditor .cm-content")).to_contain_text(
            "second", timeout=30_000
        )
        page.screenshot(path=str(artifacts / "3-jupyterlab.png"))

        # (d) What the progress page showed on the way, and the clone.
        check_the_launched_clone(page, hub, url, repo)
    finally:
        page.close()
        stop_if_running(hub, "alice")


def test_typing_a_repository_updates_the_launch_link_as_one_types(
    hub: Hub, served: tuple[str, Repo], context: BrowserContext, artifacts: Path
) -> None:
    url, _ = served
    page = context.new_page()
    log_in(page, hub, "carol")
    page.goto(f"{hub.url}/hub/spawn")
    section = page.locator("#eohub-repo")
    fields = ["#eohub-provider", "#eohub-repo-url", "#eohub-ref", "#eohub-filepath"]

    # The plain environment: the section is hidden, its inputs are not sent.
    expect(page.locator("#eohub-environment-lab")).to_be_checked()
    expect(section).to_be_hidden()
    for field in fields:
        expect(page.locator(field)).to_be_disabled()

    page.check("#eohub-environment-from-repo")
    expect(section).to_be_visible()
    for field in fields:
        expect(page.locator(field)).to_be_enabled()
    expect(page.locator("#eohub-link")).to_have_value("")

    page.fill("#eohub-repo-url", url)
    expect_share_box(page, hub, launch_link(hub, url, "HEAD", "environment=from-repo"))
    page.fill("#eohub-ref", "dev")
    page.fill("#eohub-filepath", "notes/intro.ipynb")
    query = "environment=from-repo&filepath=notes%2Fintro.ipynb"
    link = launch_link(hub, url, "dev", query)
    expect_share_box(page, hub, link)
    # A GitHub URL is read as the gh provider's owner/name, as the hub reads it.
    page.fill("#eohub-repo-url", "https://github.com/pangeo-data/pangeo-tutorial.git")
    expect(page.locator("#eohub-link")).to_have_value(
        f"{hub.url}/hub/eohub/launch/gh/pangeo-data/pangeo-tutorial/dev?{query}"
    )
    page.fill("#eohub-repo-url", url)
    expect(page.locator("#eohub-link")).to_have_value(link)
    page.click(".eohub-share summary")
    page.screenshot(path=str(artifacts / "1-typed-repository.png"), full_page=True)

    # "Copied" holds only until the link changes.
    copy = page.locator("button[data-copy=eohub-badge-md]")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == badge_snippets(hub, link)[0]
    page.fill("#eohub-ref", "main")
    expect(copy).to_have_text("Copy")
    page.fill("#eohub-ref", "dev")

    page.check("#eohub-environment-lab")
    expect(section).to_be_hidden()
    for field in fields:
        expect(page.locator(field)).to_be_disabled()

    # The typed link opens the same launch, filled in, on the hub that parses it.
    page.goto(link)
    expect(page.locator("#eohub-environment-from-repo")).to_be_checked()
    expect(page.locator("#eohub-repo-url")).to_have_value(url)
    expect(page.locator("#eohub-ref")).to_have_value("dev")
    expect(page.locator("#eohub-filepath")).to_have_value("notes/intro.ipynb")
    expect_share_box(page, hub, link)
    assert hub.server("carol") is None


def test_a_crafted_spawn_link_with_a_repository_starts_nothing(
    hub: Hub, served: tuple[str, Repo], context: BrowserContext, artifacts: Path
) -> None:
    url, _ = served
    page = context.new_page()
    log_in(page, hub, "dave")
    crafted = f"{hub.url}/hub/spawn?environment=from-repo&repo={quote(url, safe='')}"
    page.goto(crafted)
    expect(page.locator("body")).to_contain_text(
        "A repository launch starts only after you review it and click Start"
    )
    page.screenshot(path=str(artifacts / "1-crafted-link.png"), full_page=True)
    time.sleep(1)
    assert hub.server("dave") is None
