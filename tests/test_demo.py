"""The README's demo command starts a hub and a directory; a demo user logs in as printed."""

import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from tests.support.demo import start_demo, stop_demo
from tests.support.process import free_port

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


def test_demo_hub_answers_on_the_printed_url(tmp_path: Path) -> None:
    log_path = tmp_path / "demo.log"
    log_file = log_path.open("w")
    port = free_port()
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
