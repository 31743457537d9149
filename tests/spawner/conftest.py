"""Fixtures shared by the spawner tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubespawner import KubeSpawner

from tests.support.git_server import Repo, git_http_server, make_repo
from tests.support.kube_api import FakeKubeAPI, fake_kubeconfig
from tests.support.registry import Registry, start_registry


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[FakeKubeAPI]:
    """The in-process Kubernetes API, with its kubelet, and a kubeconfig pointing at it."""
    async with FakeKubeAPI(kubelet_delay=0.2) as api:
        with fake_kubeconfig(tmp_path, api.url):
            try:
                yield api
            finally:
                # Reflectors are shared by every KubeSpawner of the process; they must
                # not outlive this test's API (and event loop).
                await KubeSpawner._stop_all_reflectors()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Repo]]:
    """The URL of a repository served by git http-backend, and its commits."""
    root = tmp_path_factory.mktemp("git")
    repo = make_repo(root, "demo.git")
    with git_http_server(root) as url:
        yield f"{url}/demo.git", repo


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A real registry (docker-registry) on loopback."""
    with start_registry(tmp_path_factory.mktemp("registry")) as started:
        yield started
