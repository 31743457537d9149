"""The README's demo command starts a hub and a directory; a demo user logs in as printed."""

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import CHROMIUM_ARGS, patient, wait_for_hub_handler
from tests.support.demo import start_demo, stop_demo
from tests.support.process import free_port
from tests.support.tools import chromium_path

# The demo starts a real JupyterHub (through demo/run.py, not the harness's start_hub).
pytestmark = pytest.mark.hub


def _accounting_groups(url: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        response = requests.get(
            f"{url}/services/eohub-accounting/api/groups",
            headers={"Authorization": f"token {token}"},
            timeout=10,
        )
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    response.raise_for_status()
    return {g["name"]: g for g in response.json()["groups"]}


def _stored(url: str, token: str, user: str) -> int:
    """The bytes of ``user``'s latest storage sample, once the demo's sampler posted it."""
    deadline = time.monotonic() + 60
    while True:
        response = requests.get(
            f"{url}/services/eohub-accounting/api/storage",
            params={"user": user},
            headers={"Authorization": f"token {token}"},
            timeout=10,
        )
        response.raise_for_status()
        latest = [s for s in response.json()["latest"] if s["user"] == user]
        if latest or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert latest, "the demo's storage sampler posted nothing"
    return int(latest[0]["bytes"])


def test_demo_hub_answers_on_the_printed_url(tmp_path: Path) -> None:
    log_path = tmp_path / "demo.log"
    log_file = log_path.open("w")
    port = free_port()
    # bob's workspace from an earlier run: the storage sampler measures it at its start.
    (tmp_path / "home" / "bob").mkdir(parents=True)
    (tmp_path / "home" / "bob" / "results.nc").write_bytes(b"x" * 200_000)
    demo, text = start_demo(tmp_path, port, log_file)
    try:
        url = re.search(r"eohub demo hub: (http://127\.0\.0\.1:\d+)/", text)
        assert url, text
        assert "alice / alice-pw" in text

        session = requests.Session()
        session.get(f"{url[1]}/hub/login", timeout=10)
        login = session.post(
            f"{url[1]}/hub/login",
            data={"username": "alice", "password": "alice-pw", "_xsrf": session.cookies["_xsrf"]},
            allow_redirects=False,
            timeout=30,
        )
        assert login.status_code == 302
        me = session.get(
            f"{url[1]}/hub/api/user", timeout=10, headers={"X-XSRFToken": session.cookies["_xsrf"]}
        )
        me_json = me.json()
        assert me_json["admin"] is True  # through the demo directory's hub-admins group
        assert "researchers" in me_json["groups"]

        # The accounting service runs with the demo's groups; alice, a hub admin, reads them.
        assert f"usage pages:    {url[1]}/services/eohub-accounting/" in text
        token = session.post(
            f"{url[1]}/hub/api/users/alice/tokens",
            json={"note": "demo test"},
            timeout=10,
            headers={"X-XSRFToken": session.cookies["_xsrf"]},
        ).json()["token"]
        groups = _accounting_groups(url[1], token)
        assert groups["climate"]["pis"] == ["carol"]
        assert groups["researchers"]["allocation"] == "rolling:30"
        assert groups["climate"]["quotas"][""]["storage_bytes"] == 10 * 2**30
        assert _stored(url[1], token, "bob") >= 200_000

        # The launch form offers alice what her groups allow, and a spawn is charged.
        form = session.get(f"{url[1]}/hub/spawn", timeout=30)
        assert form.status_code == 200
        assert "JupyterLab" in form.text
        assert "Climate modelling" not in form.text  # alice is not in climate
        api = {"Authorization": f"token {token}"}
        options = {"environment": "lab", "size": "small", "group": "researchers"}
        spawn = requests.post(
            f"{url[1]}/hub/api/users/alice/server", json=options, headers=api, timeout=90
        )
        assert spawn.status_code in (201, 202), spawn.text
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            server = requests.get(f"{url[1]}/hub/api/users/alice", headers=api, timeout=10)
            if server.json()["servers"].get("", {}).get("ready"):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("alice's demo server did not start")
        stop = requests.delete(f"{url[1]}/hub/api/users/alice/server", headers=api, timeout=60)
        assert stop.status_code in (202, 204)

        # The printed launch link opens the form on the demo repository; a launch clones it.
        link = re.search(r"launch link:\s+(\S+)", text)
        assert link, text
        page = session.get(link[1], timeout=30)
        assert page.status_code == 200, page.text
        assert "eohub-demo.git" in page.text
        assert "trusted list" not in page.text
        repo = re.search(r"/launch/git/([^/]+)/main", link[1])
        assert repo
        options = {
            "environment": "from-repo",
            "repo": unquote(repo[1]),
            "filepath": "intro.ipynb",
            "size": "small",
            "group": "researchers",
        }
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the stop above may still be in progress
            spawn = requests.post(
                f"{url[1]}/hub/api/users/alice/server", json=options, headers=api, timeout=90
            )
            if spawn.status_code != 400 or "is pending" not in spawn.text:
                break
            time.sleep(0.5)
        assert spawn.status_code in (201, 202), spawn.text
        clone = tmp_path / "home" / "alice" / "eohub-demo"
        deadline = time.monotonic() + 90
        while not (clone / "intro.ipynb").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert (clone / "intro.ipynb").exists()
        requests.delete(f"{url[1]}/hub/api/users/alice/server", headers=api, timeout=60)
    finally:
        stop_demo(demo)
        log_file.close()
    # Waiting for the hub asked the proxy's API: no 404 from the proxy while it started
    # (each would fetch the hub's error page, or fail to while the hub is not up yet).
    log = log_path.read_text(errors="replace")
    assert "Failed to get custom error page" not in log
    assert "/hub/error/404?url=%2Fhub%2Fapi" not in log, log[:3000]
    # The demo directory stops with the demo.
    slapd_pid = int(re.search(r"slapd, pid (\d+)", text)[1])  # type: ignore[index]
    deadline = time.monotonic() + 10
    while Path(f"/proc/{slapd_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{slapd_pid}").exists()


def test_launch_links_keep_working_across_demo_restarts(tmp_path: Path) -> None:
    port = free_port()
    links, commits = [], []
    with (tmp_path / "demo.log").open("w") as log_file:
        for _ in range(2):
            demo, text = start_demo(tmp_path, port, log_file)
            try:
                link = re.search(r"launch link:\s+(\S+)", text)
                assert link, text
                links.append(link[1])
                commits.append(_demo_commit(tmp_path))
                url = re.search(r"eohub demo hub: (http://127\.0\.0\.1:\d+)/", text)
                assert url, text
                session = requests.Session()
                session.get(f"{url[1]}/hub/login", timeout=10)
                session.post(
                    f"{url[1]}/hub/login",
                    data={"username": "bob", "password": "bob-pw"}
                    | {"_xsrf": session.cookies["_xsrf"]},
                    timeout=30,
                )
                # The first run's link, opened on this run: the form names the repository.
                page = session.get(links[0], timeout=30)
                assert page.status_code == 200, page.text
                assert "eohub-demo.git" in page.text
            finally:
                stop_demo(demo)
    assert links[0] == links[1]
    # The same files give the same commit on every run: earlier clones still match.
    assert commits[0] == commits[1]


def _demo_commit(state: Path) -> str:
    bare = state / "git" / "eohub-demo.git"
    return subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.browser
def test_demo_with_oidc_json_logs_and_a_portal(
    tmp_path: Path, browser: Browser, artifacts: Path
) -> None:
    """``python demo/run.py --with-oidc --json-logs --portal``: both logins on one page,
    the hub inside the printed portal's iframe, and a stderr of JSON lines only."""
    state, log_path = tmp_path / "demo", tmp_path / "demo.log"
    with log_path.open("w") as log_file:
        demo, text = start_demo(
            state, free_port(), log_file, "--with-oidc", "--json-logs", "--portal"
        )
        try:
            hub = re.search(r"eohub demo hub: (http://127\.0\.0\.1:\d+)/", text)
            portal = re.search(r"portal:\s+(http://localhost:\d+)/", text)
            assert hub, text
            assert portal, text
            assert f"proxy's and servers' text logs in {state / 'logs'}/" in text
            secrets = _demo_secrets(state)
            secrets += _sign_in_with_both(browser, hub[1], artifacts)
            secrets += _the_portal_frames_the_hub(browser, hub[1], portal[1], tmp_path, artifacts)
            # Stopped while a service still imports, Python would print its traceback of
            # KeyboardInterrupt as text: stop once both services logged (JSON).
            _wait_for_loggers(log_path, {"eohub.accounting.app", "eohub.storage.app"})
        finally:
            stop_demo(demo)
    lines = log_path.read_text().splitlines()
    assert len(lines) > 50  # the hub's start, the logins, the API calls, the stop
    not_json = [line for line in lines if not _json_object(line)]
    assert not_json == [], "\n".join(not_json[:20])
    assert all(len(secret) >= 6 for secret in secrets)
    leaks = [
        line.replace(secret, "<SECRET>")[:300]
        for line in lines
        for secret in secrets
        if secret in line
    ]
    assert leaks == [], "\n".join(leaks[:20])
    # The proxy's own text log went to its file, beside the hub's JSON.
    assert "[ConfigProxy]" in (state / "logs" / "proxy.log").read_text()


def _wait_for_loggers(log_path: Path, loggers: set[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        seen = {
            json.loads(line).get("logger")
            for line in log_path.read_text().splitlines()
            if _json_object(line)
        }
        if loggers <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert loggers <= seen, seen


def _json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _demo_secrets(state: Path) -> list[str]:
    """The secrets demo/run.py gave the hub: the OIDC client's, the proxy's token..."""
    provider = json.loads((state / "oidc" / "oidc-provider.json").read_text())
    hub_pid = (state / "jupyterhub.pid").read_text().strip()
    environ = dict(
        entry.split("=", 1)
        for entry in Path(f"/proc/{hub_pid}/environ").read_text().split("\0")
        if "=" in entry
    )
    names = ("CONFIGPROXY_AUTH_TOKEN", "JUPYTERHUB_CRYPT_KEY", "EOHUB_DEMO_LDAP_SERVICE_PASSWORD")
    return [
        "bob-pw",
        "alice-pw",
        provider["clients"][0]["client_secret"],
        environ["EOHUB_DEMO_OIDC_CLIENT_SECRET"],
        *(environ[name] for name in names),
        (state / "jupyterhub_cookie_secret").read_text().strip(),
        (state / "eohub-accounting-hub.token").read_text().strip(),
    ]


def _form_login(page: Page, hub: str, user: str) -> None:
    page.goto(f"{hub}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", f"{user}-pw")
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"{re.escape(hub)}/hub/(?!login).*"))


def _api_token(page: Page, hub: str) -> str:
    """A new API token of the logged-in user, from the hub's token page."""
    page.goto(f"{hub}/hub/token")
    wait_for_hub_handler(page, "#request-token-form", "submit")
    page.fill("#token-note", "demo test")
    page.click("#request-token-form button[type=submit]")
    expect(page.locator("#token-result")).not_to_be_empty()
    return page.locator("#token-result").inner_text().strip()


def _sign_in_with_both(browser: Browser, hub: str, artifacts: Path) -> list[str]:
    """olga through the provider, alice with the form; the tokens and cookies used."""
    used: list[str] = []
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.goto(f"{hub}/hub/login")
    expect(page.locator("#username_input")).to_be_visible()
    expect(page.locator("#password_input")).to_be_visible()
    button = page.locator("#eohub-oidc-login-button")
    expect(button).to_have_text("Sign in with the demo identity provider")
    page.screenshot(path=str(artifacts / "1-login-page.png"))
    button.click()
    page.fill("input[name=login]", "olga")
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    if page.locator("button[type=submit]").count():  # the provider's consent page
        page.click("button[type=submit]")
    page.wait_for_url(f"{hub}/hub/**")
    page.goto(f"{hub}/hub/home")
    expect(page.locator("#start")).to_be_visible()
    expect(page.locator("body")).to_contain_text("olga")
    page.screenshot(path=str(artifacts / "2-olga-home.png"))
    used += [c["value"] for c in context.cookies() if len(c["value"]) >= 6]
    context.close()

    # alice, a hub admin, reads olga's auth_state: the provider's tokens must not be logged.
    context = browser.new_context()
    page = context.new_page()
    _form_login(page, hub, "alice")
    token = _api_token(page, hub)
    used += [token, *(c["value"] for c in context.cookies() if len(c["value"]) >= 6)]
    context.close()
    olga = requests.get(
        f"{hub}/hub/api/users/olga", headers={"Authorization": f"token {token}"}, timeout=10
    ).json()
    assert "researchers" in olga["groups"]
    auth_state = olga["auth_state"]
    used += [
        auth_state[k] for k in ("access_token", "id_token", "refresh_token") if auth_state.get(k)
    ]
    assert len(used) >= 5, list(auth_state)
    return used


def _the_portal_frames_the_hub(
    browser: Browser, hub: str, portal: str, tmp_path: Path, artifacts: Path
) -> list[str]:
    """bob logs in with the form inside the portal's frame, and uses an API token."""
    profile = tmp_path / "chromium-profile"
    (profile / "Default").mkdir(parents=True)
    # Chrome's default for a regular profile: third-party cookies allowed (Playwright's
    # own contexts block them, as Incognito windows do: docs/how-to/embedding.md).
    preferences = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    context = browser.browser_type.launch_persistent_context(
        str(profile),
        executable_path=chromium_path(),
        args=CHROMIUM_ARGS,
        viewport={"width": 1200, "height": 900},
        timeout=30_000,
    )
    patient(context)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(portal)
        expect(page.locator("a[target=_top]")).to_have_attribute("href", f"{hub}/hub/login")
        frame = page.frame(name="hub")
        assert frame is not None, [f.name for f in page.frames]
        # Not logged in yet: the hub's login page, inside the frame.
        expect(frame.locator("#eohub-oidc-login-button")).to_be_visible(timeout=30_000)
        frame.fill("#username_input", "bob")
        frame.fill("#password_input", "bob-pw")
        frame.click("#login_submit")
        expect(frame.locator("#start")).to_be_visible(timeout=30_000)
        expect(frame.locator("body")).to_contain_text("bob")
        page.screenshot(path=str(artifacts / "3-portal.png"), full_page=True)
        token = _api_token(page, hub)  # top-level, with the cookies the frame got
        me = requests.get(
            f"{hub}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=10
        )
        assert me.json()["name"] == "bob"
        return [token, *(c["value"] for c in context.cookies() if len(c["value"]) >= 6)]
    finally:
        context.close()
