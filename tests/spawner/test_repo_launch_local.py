"""Repository launches with QuotaLocalSpawner in a real JupyterHub, over real git.

The repositories are served by git's own http-backend on loopback (so the hub allows
``http`` and private hosts, as a test network needs). Covered: a launch clones the
resolved commit into the workspace and opens the file asked for; refusals (a crafted
``/hub/spawn?...`` link, an unknown ref, a denied repository, repository fields with a
plain environment) start nothing; launch links show the prefilled form, warn for
untrusted repositories, and never start a server by themselves.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.spawner.test_local_hub import ACCOUNTING_GROUPS, SIZES, wait_ready
from tests.support.git_server import Repo, git_http_server, make_repo
from tests.support.hub import Hub
from tests.support.repo_services import head_of, local_repo_hub_config, start_repo_hub

pytestmark = pytest.mark.hub

ENVIRONMENTS = {
    "lab": {"display_name": "JupyterLab", "sizes": ["small"], "default": True},
    "from-repo": {
        "display_name": "Build from a repository",
        "repository": True,
        "sizes": ["small", "medium"],
        "allowed_groups": ["climate"],
    },
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Repo]]:
    root = tmp_path_factory.mktemp("git")
    repo = make_repo(root, "demo.git")
    make_repo(root, "trusted.git")
    make_repo(root, "denied.git")
    with git_http_server(root) as url:
        yield url, repo


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    config = local_repo_hub_config(
        workdir,
        environments=ENVIRONMENTS,
        sizes=SIZES,
        groups={"climate": ["alice"], "astro": ["bob"]},
        repo_settings=(
            'c.RepoLaunches.denied_repos = ["*/denied"]\n'
            'c.RepoLaunches.trusted_repos = ["127.0.0.1*/trusted"]'
        ),
    )
    started = start_repo_hub(workdir, config, ACCOUNTING_GROUPS)
    for name in ("alice", "bob"):
        started.ensure_user(name)
    yield started
    started.process.stop(timeout=20)


def post_spawn(hub: Hub, user: str, options: Any) -> requests.Response:
    return hub.api("POST", f"/users/{user}/server", data=json.dumps(options))


def test_a_repository_launch_clones_the_commit_and_opens_the_file(
    hub: Hub, served: tuple[str, Repo]
) -> None:
    url, repo = served
    options = {
        "environment": "from-repo",
        "repo": f"{url}/demo.git",
        "ref": "v1",
        "filepath": "README.md",
    }
    response = post_spawn(hub, "alice", options)
    assert response.status_code in (201, 202), response.text
    server = wait_ready(hub, "alice")
    clone = hub.workdir / "home" / "alice" / "demo"
    assert head_of(clone) == repo.v1
    assert (clone / "README.md").read_text() == "first\n"
    stored = server["user_options"]
    assert {k: stored[k] for k in ("provider", "repo", "ref", "filepath")} == {
        "provider": "git",
        "repo": f"{url}/demo.git",
        "ref": "v1",
        "filepath": "README.md",
    }
    # The server opens the file in the clone.
    opened = hub.login("alice", "any").get(f"{hub.url}/user/alice/", timeout=30)
    assert opened.url.split("?")[0].endswith("/user/alice/lab/tree/demo/README.md"), opened.url
    hub.stop("alice")

    # Another commit of the same repository never touches the first clone.
    response = post_spawn(hub, "alice", {**options, "ref": "main"})
    assert response.status_code in (201, 202), response.text
    wait_ready(hub, "alice")
    assert head_of(clone) == repo.v1
    assert head_of(clone.with_name(f"demo-{repo.main[:7]}")) == repo.main
    hub.stop("alice")


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        (
            {"environment": "from-repo", "repo": "{url}/demo.git", "ref": "nope"},
            "ref",
            "not a branch",
        ),
        ({"environment": "from-repo", "repo": "{url}/missing.git"}, "repo", "no repository"),
        ({"environment": "from-repo", "repo": "{url}/denied.git"}, "repo", "not allowed"),
        ({"environment": "from-repo"}, "repo", "name the repository"),
        ({"environment": "lab", "repo": "{url}/demo.git"}, "repo", "only for environments"),
        ({"environment": "from-repo", "repo": "file:///etc"}, "repo", ""),
        (
            {"environment": "from-repo", "repo": "{url}/demo.git", "ref": "--upload-pack=x"},
            "ref",
            "",
        ),
    ],
)
def test_refused_repository_launches_start_nothing(
    hub: Hub, served: tuple[str, Repo], options: dict[str, str], field: str, words: str
) -> None:
    url, _ = served
    filled = {k: v.replace("{url}", url) for k, v in options.items()}
    response = post_spawn(hub, "alice", filled)
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert f"{field}:" in message
    assert words in message
    assert hub.server("alice") is None


def test_a_group_without_the_repository_environment_cannot_launch_one(
    hub: Hub, served: tuple[str, Repo]
) -> None:
    url, _ = served
    response = post_spawn(hub, "bob", {"environment": "from-repo", "repo": f"{url}/demo.git"})
    assert response.status_code == 400, response.text
    assert "environment:" in response.json()["message"]
    assert hub.server("bob") is None


def test_a_crafted_spawn_link_with_a_repository_starts_nothing(
    hub: Hub, served: tuple[str, Repo]
) -> None:
    url, _ = served
    session = hub.login("alice", "any")
    crafted = f"{hub.url}/hub/spawn?environment=from-repo&repo={quote(url + '/demo.git')}"
    response = session.get(crafted)
    assert "review it and click Start" in response.text
    time.sleep(1)
    assert hub.server("alice") is None


def launch_link(hub: Hub, url: str, name: str, query: str = "") -> str:
    spec = f"{quote(url + '/' + name, safe='')}/main"
    return f"{hub.url}/hub/eohub/launch/git/{spec}" + (f"?{query}" if query else "")


def test_a_launch_link_shows_the_prefilled_form_and_starts_nothing(
    hub: Hub, served: tuple[str, Repo]
) -> None:
    url, _ = served
    session = hub.login("alice", "any")
    response = session.get(launch_link(hub, url, "demo.git", "filepath=README.md&size=medium"))
    assert response.status_code == 200, response.text
    page = response.text
    assert re.search(r'name="repo"[^>]*value="' + re.escape(f"{url}/demo.git"), page)
    assert 'value="README.md"' in page
    assert "not on this hub&#39;s trusted list" in page
    assert re.search(r'value="from-repo"\s[^>]*checked', page)
    assert "_xsrf=" in page
    assert "/hub/spawn/alice" in page
    time.sleep(1)
    assert hub.server("alice") is None

    trusted = session.get(launch_link(hub, url, "trusted.git"))
    assert trusted.status_code == 200
    assert "trusted list" not in trusted.text


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("git/{denied}/main", 403, "not allowed"),
        ("git/file%3A%2F%2F%2Fetc/main", 400, "not valid"),
        ("nope/x/y", 400, "not a provider"),
        ("git/{demo}/main?image=evil", 400, "takes only"),
        ("git/{demo}/main?environment=lab", 403, "only for environments"),
    ],
)
def test_bad_launch_links_get_a_clear_page(
    hub: Hub, served: tuple[str, Repo], path: str, status: int, words: str
) -> None:
    url, _ = served
    session = hub.login("alice", "any")
    filled = path.format(
        denied=quote(url + "/denied.git", safe=""), demo=quote(url + "/demo.git", safe="")
    )
    response = session.get(f"{hub.url}/hub/eohub/launch/{filled}")
    assert response.status_code == status, response.text
    assert words in response.text


def test_a_launch_link_needs_a_login_and_the_badge_does_not(hub: Hub) -> None:
    response = requests.get(
        f"{hub.url}/hub/eohub/launch/gh/org/repo/main", allow_redirects=False, timeout=10
    )
    assert response.status_code == 302
    assert "/hub/login" in response.headers["Location"]
    badge = requests.get(f"{hub.url}/hub/eohub/badge.svg", timeout=10)
    assert badge.status_code == 200
    assert badge.headers["Content-Type"] == "image/svg+xml"
