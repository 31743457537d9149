"""Fixtures shared by the spawner tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubespawner import KubeSpawner

from tests.support.kube_api import FakeKubeAPI, fake_kubeconfig


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
