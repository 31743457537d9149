"""Repository launches with QuotaKubeSpawner: the registry, BinderHub, and the pod's image.

Real parts: the spawner and KubeSpawner's machinery against the in-process Kubernetes
API (tests/support/kube_api.py), ``git ls-remote`` against git's http-backend, a real
registry (docker-registry, tests/support/registry.py) that the spawner asks for the
image, and a BinderHub stand-in replaying BinderHub's build event streams.

Covered: an image already in the registry launches without a build; a missing one is
built (a build-only request for the commit, with the token) and its phases reach the
spawn progress; a failed, misnamed or stalled build fails the start with the reason
and creates nothing in the cluster. The pod's image is always exactly
:func:`eohub.domain.repos.images.repo_image_name` of the resolved commit.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest
from jupyterhub.utils import iterate_until
from tornado.web import HTTPError

from eohub.domain.repos.images import repo_image_name
from eohub.spawner.repo_launches import RepoLaunches
from tests.support.binderhub_standin import BinderHubStandIn, build_path
from tests.support.git_server import Repo
from tests.support.kube_api import POD_IP, FakeKubeAPI
from tests.support.kube_spawners import ENVIRONMENTS, FakeAccounting, make_spawner
from tests.support.registry import Registry
from tests.support.repo_services import NamingBinderHub

TOKEN = "binderhub-test-token"
REPO_NAME = "127.0.0.1/demo"  # host and path, as policy patterns and messages name it
REPO_ENVIRONMENTS = {
    **ENVIRONMENTS,
    "from-repo": {
        "display_name": "Build from a repository",
        "repository": True,
        "sizes": ["small"],
        "allowed_groups": ["eo-sci"],
    },
}


def image_prefix(registry: Registry) -> str:
    return f"{registry.host}/binder/r2d-"


def repo_launches(registry: Registry, binderhub_url: str, **traits: Any) -> RepoLaunches:
    """The hub's c.RepoLaunches: images in the test registry, builds by the stand-in."""
    settings: dict[str, Any] = {
        "allow_http": True,
        "allow_private_hosts": True,
        "image_prefix": image_prefix(registry),
        "registry_url": registry.url,
        "binderhub_url": binderhub_url,
        "binderhub_token": TOKEN,
        "build_timeout": 30.0,
        "build_idle_timeout": 10.0,
        **traits,
    }
    return RepoLaunches(**settings)


def expected_image(launches: RepoLaunches, url: str, commit: str) -> str:
    rules = launches.rules()
    spec = rules.providers.from_fields("git", url)
    return repo_image_name(rules.providers, spec, commit, launches.image_prefix)


def in_registry(image: str) -> tuple[str, str]:
    """``(repository, tag)`` of a full image name in the test registry."""
    repository, _, tag = image.partition("/")[2].rpartition(":")
    return repository, tag


async def launch(
    launches: RepoLaunches, kube: FakeKubeAPI, url: str, ref: str
) -> tuple[Any, FakeAccounting]:
    """A spawner of alice with her repository launch applied, as the hub does first."""
    accounting = FakeAccounting()
    spawner = await make_spawner(
        "alice",
        accounting=accounting,
        api_url=kube.url,
        launch_environments=REPO_ENVIRONMENTS,
        repo_launches=launches,
    )
    options = {"environment": "from-repo", "repo": url, "ref": ref, "filepath": "README.md"}
    await spawner.apply_user_options(spawner, options)
    return spawner, accounting


async def start_following(spawner: Any) -> tuple[Any, list[str]]:
    """Start as the hub does, following the progress until the start ends.

    The result of start() (its URL, or the exception it raised) and the messages; the
    progress events are kept in ``spawner.seen_progress``.
    """
    start = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0)  # the hub asks for progress once the start is under way
    events = [e async for e in iterate_until(start, spawner.progress())]
    spawner.seen_progress = events
    messages = [e["message"] for e in events if "message" in e]
    try:
        url = await start
    except Exception as e:
        return e, messages
    await spawner.start_recorded()  # queued in the background once the server is up
    return url, messages


def pod_images(kube: FakeKubeAPI) -> list[str]:
    return [c["image"] for pod in kube.created["pods"] for c in pod["spec"]["containers"]]


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}


async def test_an_image_in_the_registry_launches_without_a_build(
    kube: FakeKubeAPI, served: tuple[str, Repo], registry: Registry
) -> None:
    url, repo = served
    async with NamingBinderHub(token=TOKEN, prefix=image_prefix(registry)) as binderhub:
        launches = repo_launches(registry, binderhub.url)
        image = expected_image(launches, url, repo.main)
        registry.push_image(*in_registry(image))
        spawner, accounting = await launch(launches, kube, url, "main")
        result, messages = await start_following(spawner)

    assert result == f"http://{POD_IP}:8888"
    assert binderhub.requests == []
    assert image.startswith(f"{registry.host}/binder/r2d-http-3a-2f-2f127-2e0-2e0-2e1-3a")
    assert image.endswith(f":{repo.main}")
    assert pod_images(kube) == [image]
    assert kube.rejected == []
    repository, tag = in_registry(image)
    assert registry.served("HEAD", f"/v2/{repository}/manifests/{tag}") == [200]
    # repo2docker images start in the repository, so the file is at the root.
    assert env_of(kube.created["pods"][0])["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/README.md"
    assert messages[2:5] == [
        f"Repository {REPO_NAME} at main: commit {repo.main[:12]}.",
        f"Found the image of commit {repo.main[:12]}: launching.",
        f"Starting the image {image}.",
    ]
    assert [s["image"] for s in accounting.starts] == [image]
    await spawner.stop()
    assert kube.names("pods") == []


async def test_a_missing_image_is_built_for_the_commit_and_its_progress_shown(
    kube: FakeKubeAPI, served: tuple[str, Repo], registry: Registry
) -> None:
    url, repo = served
    async with NamingBinderHub(token=TOKEN, prefix=image_prefix(registry)) as binderhub:
        launches = repo_launches(registry, binderhub.url)
        image = expected_image(launches, url, repo.dev)
        spawner, accounting = await launch(launches, kube, url, "dev")
        result, messages = await start_following(spawner)

    assert result == f"http://{POD_IP}:8888"
    repository, tag = in_registry(image)
    assert registry.served("HEAD", f"/v2/{repository}/manifests/{tag}") == [404]
    # One build-only request, for the commit rather than the branch, with the token.
    [request] = binderhub.requests
    assert request.path == build_path(binderhub.url, "git", f"{quote(url, safe='')}/{repo.dev}")
    assert request.query == {"build_only": ["true"]}
    assert request.authorization == f"token {TOKEN}"
    assert request.accept == "text/event-stream"
    assert pod_images(kube) == [image]
    assert [s["image"] for s in accounting.starts] == [image]

    relayed = messages[messages.index(f"Building {REPO_NAME} at commit {repo.dev[:12]}.") :]
    expected = [
        "waiting: Waiting for build to start...",
        "fetching: Cloning into '/tmp/repo2dockern6amo21f'...",
        "building: Step 1/3 : FROM docker.io/library/buildpack-deps:jammy",
        "building: Successfully built 4abce9060522",
        "pushing: Pushing image (0 of 2 layers pushed)",
        "pushing: Pushing image (2 of 2 layers pushed)",
        "ready: Done! Image built",
        f"Starting the image {image}.",
    ]
    assert [m for m in relayed if m in expected] == expected
    # The bar: quota, resolve, each build phase rising within 30-70, then the start.
    value = {e["message"]: e["progress"] for e in spawner.seen_progress if "message" in e}
    assert [value[m] for m in expected] == [30, 34, 41, 47, 60, 61, 70, 75]
    values = [e["progress"] for e in spawner.seen_progress if "progress" in e]
    assert values[:3] == [5, 10, 20]
    assert values == sorted(values)
    await spawner.stop()


def message_of(error: HTTPError) -> str:
    """What the spawn page and the REST API show of a failed spawn."""
    message: str = error.jupyterhub_message  # type: ignore[attr-defined]
    return message


async def refused_start(spawner: Any) -> tuple[HTTPError, list[str]]:
    result, messages = await start_following(spawner)
    assert isinstance(result, HTTPError), result
    assert result.status_code == 400
    return result, messages


async def test_a_failed_build_fails_the_start_with_the_log_tail_and_creates_nothing(
    kube: FakeKubeAPI, served: tuple[str, Repo], registry: Registry
) -> None:
    url, _ = served
    async with NamingBinderHub(token=TOKEN, scenario="fail") as binderhub:
        launches = repo_launches(registry, binderhub.url)
        spawner, accounting = await launch(launches, kube, url, "dev")
        error, messages = await refused_start(spawner)
        # BinderHub keeps a failed stream open; eohub hangs up.
        await binderhub.wait_for(disconnects=1, active=0)

    text = message_of(error)
    assert text.startswith(f"The repository launch failed: the build of git/{quote(url, safe='')}")
    assert "failed: The command '/bin/sh -c ${KERNEL_PYTHON_PREFIX}/bin/pip install" in text
    assert text.endswith(
        "Last lines of the build log:\n"
        "Waiting for build to start...\n"
        "Using PythonBuildPack builder\n"
        "Step 2/3 : RUN pip install -r requirements.txt\n"
        "ERROR: Could not find a version that satisfies the requirement x\n"
        "ERROR: No matching distribution found for nosuchpkg"
    )
    assert messages[-1].startswith("Repository launch failed: the build of git/")
    assert dict(kube.created) == {}  # no pod, not even the workspace claim
    assert accounting.starts == []


async def test_an_image_of_another_name_from_the_builder_is_refused(
    kube: FakeKubeAPI, served: tuple[str, Repo], registry: Registry
) -> None:
    url, repo = served
    # This builder names images after another commit than the one asked for.
    async with BinderHubStandIn(
        token=TOKEN, scenario="cached", prefix=image_prefix(registry)
    ) as binderhub:
        launches = repo_launches(registry, binderhub.url)
        image = expected_image(launches, url, repo.dev)
        spawner, accounting = await launch(launches, kube, url, "dev")
        error, messages = await refused_start(spawner)

    assert len(binderhub.requests) == 1
    assert f"but eohub expected {image!r}; the image is not used" in message_of(error)
    assert messages[-1].startswith("Repository launch failed: BinderHub built ")
    assert dict(kube.created) == {}
    assert accounting.starts == []


@pytest.mark.parametrize(
    ("scenario", "traits", "words"),
    [
        ("stall", {"build_idle_timeout": 1.0}, "stalled: BinderHub sent nothing for 1 s"),
        ("stall-alive", {"build_timeout": 1.5}, "did not finish within 1.5 s"),
    ],
)
async def test_a_stalled_build_times_out_and_creates_nothing(
    kube: FakeKubeAPI,
    served: tuple[str, Repo],
    registry: Registry,
    scenario: str,
    traits: dict[str, float],
    words: str,
) -> None:
    url, _ = served
    async with NamingBinderHub(
        token=TOKEN, scenario=scenario, keepalive_interval=0.2
    ) as binderhub:
        launches = repo_launches(registry, binderhub.url, **traits)
        spawner, accounting = await launch(launches, kube, url, "dev")
        error, messages = await refused_start(spawner)
        await binderhub.wait_for(disconnects=1, active=0)

    assert words in message_of(error)
    assert "waiting: Waiting for build to start..." in messages
    assert words in messages[-1]
    assert dict(kube.created) == {}
    assert accounting.starts == []
