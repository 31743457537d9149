"""The accounting pages in Chromium, behind a real JupyterHub and its proxy.

One hub serves the module: the drop-ins register the accounting service, the test seeds
it through its REST API (groups with the driver's admin scope, events with the hub
client's token), and people log in through the hub's form and its OAuth dance.
Screenshots go to the artifacts folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Browser, Dialog, Page, expect
from playwright.sync_api import Error as PlaywrightError

from eohub.accounting.scopes import ACCESS, ADMIN
from eohub.domain.accounting.events import start_event_json, stop_event_json
from tests.support.hub import Hub, start_hub
from tests.support.process import free_port

pytestmark = [pytest.mark.browser, pytest.mark.hub]

SERVICE = "/services/eohub-accounting/"
PASSWORD = "pages-pw"
# Names that would run script if a page failed to escape them.
BAD_GROUP = "<img src=x onerror=alert('group')>"
BAD_USER = "<script>alert('user')</script>"
CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"root"}}
c.JupyterHub.spawner_class = "simple"
# The test driver may set up accounting groups and quotas. (root, a hub admin, is an
# accounting admin through drop-in 30's role.)
c.JupyterHub.load_roles.append(
    {{"name": "pages-test-accounting-admin", "scopes": [{ADMIN!r}, {ACCESS!r}],
      "services": ["eohub-test"]}}
)
"""

GROUPS: dict[str, dict[str, Any]] = {
    "climate": {
        "display_name": "Climate modelling",
        "allocation": "month",
        "pis": ["carol"],
        "quotas": {"": {"core_hours": 100}, "*": {"core_hours": 40, "max_servers": 2}},
    },
    "ocean": {"display_name": "Ocean colour", "allocation": "quarter", "pis": ["erin"]},
    BAD_GROUP: {"display_name": BAD_USER, "allocation": "rolling:30", "pis": []},
}
# (user, group, cores, hours) in each of the last four months, and (shorter) this month.
SESSIONS = [
    ("alice", "climate", 2, 10),
    ("bob", "climate", 1, 6),
    ("erin", "ocean", 8, 3),
    (BAD_USER, BAD_GROUP, 4, 5),
]


def months_back(t: datetime, n: int) -> datetime:
    index = t.year * 12 + t.month - 1 - n
    return datetime(index // 12, index % 12 + 1, 3, 9, tzinfo=UTC)


def seed(hub: Hub) -> None:
    base = f"{hub.url}{SERVICE}api/"
    driver = {"Authorization": f"token {hub.token}"}
    for name, body in GROUPS.items():
        r = requests.put(
            base + "groups/" + quote(name, safe=""), json=body, headers=driver, timeout=30
        )
        assert r.status_code in (200, 201), r.text
    now = datetime.now(UTC)
    # This month's sessions fit between its start and now, however early in it we are.
    this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    room = (now - this_month) / 3
    periods = [(months_back(now, n), 1.0) for n in range(1, 5)]
    periods.append((this_month + room, min(1.0, room / timedelta(hours=10))))
    events = []
    for started, scale in periods:
        for user, group, cores, hours in SESSIONS:
            stopped = started + timedelta(hours=hours * scale)
            events.append(
                start_event_json(
                    user=user,
                    server="",
                    started_at=started,
                    group=group,
                    cpu=cores,
                    memory_bytes=2**31,
                )
            )
            events.append(
                stop_event_json(user=user, server="", started_at=started, stopped_at=stopped)
            )
    token = (hub.workdir / "eohub-accounting-hub.token").read_text().strip()
    r = requests.post(
        base + "events",
        json={"events": events},
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(events)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    hub = start_hub(tmp_path_factory.mktemp("hub"), CONFIG)

    def service_answers() -> bool:
        try:
            r = requests.get(
                f"{hub.url}{SERVICE}api/me",
                headers={"Authorization": f"token {hub.token}"},
                timeout=2,
            )
        except requests.RequestException:
            return False
        return r.status_code == 200

    try:
        hub.process.wait_until(service_answers, timeout=60, what="starting eohub-accounting")
        seed(hub)
        yield hub
    finally:
        hub.process.stop(timeout=20)


def log_in(browser: Browser, hub: Hub, name: str, path: str = "usage") -> Page:
    """A new browser context logged in as ``name``, on the service page ``path``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", fail_on_dialog)
    page.goto(f"{hub.url}/hub/login?next={quote(SERVICE + path)}")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    # The first visit asks the user to let the service identify them.
    authorize = f"{hub.url}/hub/api/oauth2/authorize"
    page.wait_for_url(lambda url: url.startswith((authorize, hub.url + SERVICE)))
    if page.url.startswith(authorize):
        page.click("button[type=submit]")
    try:
        page.wait_for_url(f"{hub.url}{SERVICE}{path}*")
    except PlaywrightError:
        text = page.locator("body").inner_text()[:500]
        raise AssertionError(f"login of {name} ended on {page.url}:\n{text}") from None
    return page


def fail_on_dialog(dialog: Dialog) -> None:
    message = dialog.message
    dialog.dismiss()
    raise AssertionError(f"a page ran injected script: alert({message!r})")


def chart_data(page: Page) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(page.locator("#chart-data").text_content() or "{}")
    return data


def shoot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_anonymous_visitors_are_sent_to_the_hub_to_log_in(hub: Hub) -> None:
    r = requests.get(f"{hub.url}{SERVICE}usage", allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert "/hub/api/oauth2/authorize" in r.headers["Location"]
    root = requests.get(f"{hub.url}{SERVICE}", allow_redirects=False, timeout=30)
    assert root.headers["Location"] == f"{SERVICE}usage"


def test_a_user_sees_only_their_own_usage(hub: Hub, browser: Browser, artifacts: Path) -> None:
    page = log_in(browser, hub, "alice")
    expect(page.locator("h1")).to_have_text("My usage")
    # The hub's look: its stylesheet, its logo and a way home.
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != "Times New Roman"
    expect(page.locator("nav.navbar a[href='/hub/home']").first).to_be_visible()
    expect(page.locator("nav.navbar")).not_to_contain_text("All groups")

    sessions = page.locator("#sessions tbody tr")
    expect(sessions).to_have_count(5)
    expect(page.locator("#sessions")).to_contain_text("Climate modelling")
    body = page.locator("main").inner_text()
    for other in ("bob", "erin", "ocean", "alert"):
        assert other not in body
    data = chart_data(page)["usage"]
    assert [s["name"] for s in data["series"]] == ["climate"]
    assert 4 * 2 * 10 < sum(data["series"][0]["core_hours"]) <= 5 * 2 * 10 + 0.01
    bars = page.locator("#usage-chart svg rect.bar")
    assert bars.count() >= 4
    assert float(bars.first.get_attribute("height") or 0) > 0
    expect(page.locator("#usage-chart svg title").first).to_have_text(
        "Your core-hours per month, by group"
    )
    expect(page.locator(".budget[data-group='climate']")).to_contain_text(
        "Your share of Climate modelling's budget"
    )
    shoot(page, artifacts, "alice-usage")

    page.click("text=Last 31 days")
    expect(page.locator("#history-heading")).to_contain_text("per day")
    shoot(page, artifacts, "alice-usage-days")


def test_the_first_visit_asks_no_consent(hub: Hub, browser: Browser, artifacts: Path) -> None:
    """The hub's own service: its OAuth login shows no "Authorize access" page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    shown: list[str] = []
    page.on("framenavigated", lambda frame: shown.append(frame.url))
    page.goto(f"{hub.url}/hub/login?next={quote(SERVICE + 'usage')}")
    page.fill("#username_input", "frank")  # never logged in before
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(f"{hub.url}{SERVICE}usage*")
    expect(page.locator("h1")).to_have_text("My usage")
    assert not [url for url in shown if "/oauth2/authorize" in url], shown
    shoot(page, artifacts, "frank-first-visit")
    context.close()


def test_the_hubs_services_menu_says_usage(hub: Hub, browser: Browser, artifacts: Path) -> None:
    page = log_in(browser, hub, "alice")
    page.goto(f"{hub.url}/hub/home")
    page.get_by_role("button", name="Services").or_(page.locator("a", has_text="Services")).click()
    item = page.locator(".dropdown-menu a.dropdown-item", has_text="Usage")
    expect(item).to_be_visible()
    assert item.get_attribute("href") == SERVICE
    expect(page.locator(".dropdown-menu")).not_to_contain_text("eohub-accounting")
    shoot(page, artifacts, "services-menu")
    item.click()
    page.wait_for_url(f"{hub.url}{SERVICE}usage*")


def test_a_new_user_sees_empty_pages(hub: Hub, browser: Browser, artifacts: Path) -> None:
    page = log_in(browser, hub, "dave")
    expect(page.locator("#usage-chart svg text.empty")).to_have_text("No usage in this range")
    expect(page.locator("#usage-chart svg rect.bar")).to_have_count(0)
    expect(page.locator("#sessions-heading + p")).to_have_text("No sessions.")
    shoot(page, artifacts, "dave-usage")

    page.goto(f"{hub.url}{SERVICE}groups")
    expect(page.locator("#not-a-pi")).to_contain_text("You are not a PI of any group")
    shoot(page, artifacts, "dave-groups")
    response = page.goto(f"{hub.url}{SERVICE}groups?group=climate")
    assert response is not None
    assert response.status == 403


def test_the_all_page_is_forbidden_to_non_admins(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    page = log_in(browser, hub, "alice")
    response = page.goto(f"{hub.url}{SERVICE}all")
    assert response is not None
    assert response.status == 403
    assert response.headers["content-type"].startswith("text/html")
    expect(page.locator("h1")).to_have_text("403 : Forbidden")
    expect(page.locator("main")).to_contain_text("for accounting admins")
    assert "Traceback" not in page.content()
    shoot(page, artifacts, "alice-all-403")


def test_a_pi_sees_their_groups_members(hub: Hub, browser: Browser, artifacts: Path) -> None:
    page = log_in(browser, hub, "carol", "groups")
    expect(page.locator("nav.navbar")).to_contain_text("My groups")
    report = page.locator("section.group-report[data-group='climate']")
    expect(report).to_have_count(1)
    expect(page.locator("section.group-report")).to_have_count(1)
    members = report.locator("table.members th.member")
    expect(members).to_have_text(["alice", "bob"])
    expect(report.locator("table.quotas")).to_contain_text("Each member")
    # The burn-down: budget left, the even pace and the limit, with data points.
    burn = report.locator("svg").first
    expect(burn.locator("title").first).to_contain_text(
        "Core-hours left in Climate modelling's budget"
    )
    left = burn.locator("path.line-left")
    assert int(left.get_attribute("data-points") or 0) >= 2
    expect(burn.locator("path.line-limit")).to_have_count(1)
    expect(burn.locator("path.line-pace")).to_have_count(1)
    data = chart_data(page)["groups"]["climate"]
    assert data["burn_down"]["limit_core_hours"] == 100
    assert {s["name"] for s in data["usage"]["series"]} == {"alice", "bob"}
    assert report.locator("svg rect.bar").count() >= 8
    assert "erin" not in page.locator("main").inner_text()
    shoot(page, artifacts, "carol-groups")
    # The hub's dark theme (darkmode.js follows the system setting) reaches the charts.
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
    shoot(page, artifacts, "carol-groups-dark")

    response = page.goto(f"{hub.url}{SERVICE}groups?group=ocean")
    assert response is not None
    assert response.status == 403


def test_an_admin_sees_every_group_escaped(hub: Hub, browser: Browser, artifacts: Path) -> None:
    page = log_in(browser, hub, "root", "all")
    expect(page.locator("h1")).to_have_text("All groups")
    groups = page.locator("#groups tbody th.group")
    expect(groups).to_have_count(3)
    for name in ("climate", "ocean", BAD_GROUP):
        expect(page.locator("#groups")).to_contain_text(name)
    users = page.locator("#top-users th.user")
    # erin 8 x 3 h, then the others 4 x 5 h and 2 x 10 h (ties by name), and bob.
    expect(users).to_have_text(["erin", BAD_USER, "alice", "bob"])
    # Bars in the chart, and the chart's numbers as a table too.
    assert page.locator("#all-chart svg rect.bar").count() >= 12
    expect(page.locator("#all-chart figcaption")).to_contain_text(BAD_GROUP)
    export = page.locator("#exports a").first.get_attribute("href") or ""
    assert export.startswith(f"{SERVICE}api/export/sessions.csv?from=")
    assert "&to=" in export
    shoot(page, artifacts, "root-all")

    # The raw HTML has the names escaped, in text, attributes, SVG titles and JSON.
    raw = page.request.get(f"{hub.url}{SERVICE}all").text()
    assert BAD_USER not in raw
    assert BAD_GROUP not in raw
    assert "&lt;script&gt;alert(" in raw
    assert "<script>alert" not in raw

    # An admin may open any group's report from here.
    page.locator("#groups a", has_text=BAD_GROUP).click()
    expect(page.locator("h1")).to_have_text("Group report")
    expect(page.locator("section.group-report h2")).to_contain_text(BAD_GROUP)
    expect(page.locator("table.members")).to_contain_text(BAD_USER)
    shoot(page, artifacts, "root-bad-group")


ODD_QUERIES = [
    "all?from=yesterday&to=2026-13-45",
    "all?from=2030-01-01&to=2020-01-01",
    "all?from=2025-01-01&to=2025-01-20",
    "all?from=2000-01-01&to=2199-12-31",
    "usage?period=fortnight&before=-1",
    "usage?before=99999999999999999999999",
    "groups?period=year",
    "groups?group=" + quote("no\x01such"),
    "groups?group=nosuchgroup",
]


def test_odd_query_parameters_never_break_a_page(hub: Hub, browser: Browser) -> None:
    page = log_in(browser, hub, "root", "all")
    for query in ODD_QUERIES:
        response = page.goto(f"{hub.url}{SERVICE}{query}")
        assert response is not None
        assert response.status in (200, 404), f"{query}: {response.status}"
        assert response.headers["content-type"].startswith("text/html")
        assert "Traceback" not in page.content()


PUT_OCEAN = """async ([url, token, body]) => {
    const headers = {"Content-Type": "application/json"};
    if (token) headers["X-XSRFToken"] = token;
    const r = await fetch(url, {method: "PUT", headers, body: JSON.stringify(body)});
    return r.status;
}"""


EVIL = "<!DOCTYPE html><html><body><p>Win a prize</p></body></html>"
FORGE = """([url, enctype]) => {
    const form = document.createElement("form");
    form.method = "post";
    form.enctype = enctype;
    form.action = url;
    const field = document.createElement("input");
    field.name = "display_name";
    field.value = "forged";
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
}"""


def ocean(hub: Hub) -> dict[str, Any]:
    r = requests.get(
        f"{hub.url}{SERVICE}api/groups/ocean",
        headers={"Authorization": f"token {hub.token}"},
        timeout=10,
    )
    r.raise_for_status()
    group: dict[str, Any] = r.json()
    return group


def test_the_pages_forms_work_and_forged_requests_change_nothing(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    page = log_in(browser, hub, "root", "all")
    # The date-range form still works.
    page.fill("#from", "2025-01-01")
    page.fill("#to", "2025-02-01")
    page.click("form[aria-label='Date range'] button[type=submit]")
    page.wait_for_url("**/all?from=2025-01-01&to=2025-02-01")
    expect(page.locator("h1")).to_have_text("All groups")
    expect(page.locator("#from")).to_have_value("2025-01-01")

    # A script of the page changes a group with the page's XSRF token, not without it.
    token = page.locator("meta[name=eohub-xsrf]").get_attribute("content")
    assert token
    url = f"{hub.url}{SERVICE}api/groups/ocean"
    before = ocean(hub)
    assert page.evaluate(PUT_OCEAN, [url, None, {"display_name": "Ocean via script"}]) == 403
    assert ocean(hub) == before
    assert page.evaluate(PUT_OCEAN, [url, token, {"display_name": "Ocean colour"}]) == 200

    # Another origin on the same site (so the browser sends the cookie) posts forms to
    # the API in each encoding a form can use, and fetches without CORS: all refused,
    # for want of the XSRF token.
    before = ocean(hub)
    evil = f"http://127.0.0.1:{free_port()}/"
    page.context.route(
        evil + "**", lambda route: route.fulfill(content_type="text/html", body=EVIL)
    )
    for enctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        page.goto(evil)
        with page.expect_response(lambda r: r.url == url) as answer:
            page.evaluate(FORGE, [url, enctype])
        assert answer.value.status == 403, enctype
        assert "_xsrf" in answer.value.text(), enctype
    page.goto(evil)
    page.evaluate(
        """async (url) => { await fetch(url, {method: "POST", mode: "no-cors",
        credentials: "include", headers: {"Content-Type": "text/plain"},
        body: JSON.stringify({display_name: "forged"})}).catch(() => null); }""",
        url,
    )
    assert ocean(hub) == before
    shoot(page, artifacts, "forged-forms")
