"""QuotaKubeSpawner start, poll and stop against the in-process Kubernetes API.

The real KubeSpawner machinery runs: its API client, its pod and event reflectors
(list + watch), PVC and pod creation, and deletion. The fake API validates what it is
sent against the official schema, and its kubelet reports events and marks the pod
Running (or, for the timeout test, never does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiException
from tornado.web import HTTPError

from tests.support.kube_api import POD_IP, FakeKubeAPI
from tests.support.kube_spawners import (
    ENVIRONMENTS,
    NAMESPACE,
    STARTED,
    VOLUMES,
    FakeAccounting,
    make_spawner,
)

GIB = 1024**3


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"still not so after {seconds} seconds")


async def start_with_progress(spawner: Any) -> tuple[str, list[dict[str, Any]]]:
    """Start as the hub does: start() and, alongside, the progress stream."""

    async def progress() -> list[dict[str, Any]]:
        return [event async for event in spawner.progress()]

    start = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0)  # the hub asks for progress once the start is under way
    events = asyncio.ensure_future(progress())
    url = await start
    await spawner.start_recorded()  # queued in the background once the server is up
    return url, await events


async def test_start_poll_stop_creates_the_claim_and_pod_and_records_the_session(
    kube: FakeKubeAPI,
) -> None:
    accounting = FakeAccounting()
    spawner = await make_spawner("alice", accounting=accounting, api_url=kube.url)
    await spawner.apply_user_options(spawner, {"volumes": ["scratch"]})

    url, progress = await start_with_progress(spawner)

    assert url == f"http://{POD_IP}:8888"
    assert kube.names("persistentvolumeclaims") == ["workspace-alice"]
    assert kube.names("pods") == [spawner.pod_name]
    sent = kube.created["pods"][0]  # as sent, and accepted by the schema
    assert sent["spec"]["containers"][0]["image"] == ENVIRONMENTS["pangeo"]["image"]
    assert sent["metadata"]["labels"]["eohub.io/group"] == "eo-sci"
    assert kube.rejected == []
    assert kube.get("pods", NAMESPACE, spawner.pod_name)["status"]["phase"] == "Running"
    assert await spawner.poll() is None
    assert accounting.starts == [
        {
            "user": "alice",
            "server": "",
            "started_at": STARTED,
            "group": "eo-sci",
            "cpu": 1.0,
            "memory_bytes": 2 * GIB,
            "gpus": 0,
            "profile": "pangeo",
            "profile_name": "Pangeo",
            "image": ENVIRONMENTS["pangeo"]["image"],
            "max_duration": ENVIRONMENTS["pangeo"]["max_duration"],
        }
    ]

    messages = [event["message"] for event in progress]
    assert messages[:3] == [
        "Launching Pangeo, size small, charged to eo-sci.",
        "Quota check passed: 120.0 core-hours left.",
        f"Starting the image {ENVIRONMENTS['pangeo']['image']}.",
    ]
    pod_events = " | ".join(messages[3:])
    for said in ("Successfully assigned", "Pulling image", "Started container notebook"):
        assert said in pod_events
    # The bar: eohub's steps, then the pod's events within 75-95, never backwards
    # (KubeSpawner's own values start again at 30).
    values = [event["progress"] for event in progress if "progress" in event]
    assert values[:3] == [5, 10, 75]
    assert values == sorted(values)
    assert len(set(values[3:])) >= 3
    assert all(75 <= value <= 95 for value in values[3:])

    await spawner.stop()
    assert kube.names("pods") == []
    assert kube.names("persistentvolumeclaims") == ["workspace-alice"]  # the work stays
    assert await spawner.poll() == 1
    assert len(accounting.stops) == 1
    stop = accounting.stops[0]
    assert (stop["user"], stop["server"], stop["started_at"]) == ("alice", "", STARTED)
    assert stop["reason"] == "stopped"


async def test_a_pod_gone_behind_the_hubs_back_is_recorded_as_stopped_by_poll(
    kube: FakeKubeAPI,
) -> None:
    accounting = FakeAccounting()
    spawner = await make_spawner("bob", accounting=accounting, api_url=kube.url)
    await spawner.apply_user_options(spawner, {"group": "eo-ml"})
    await spawner.start()
    await spawner.start_recorded()
    assert len(accounting.starts) == 1

    kube.delete("pods", NAMESPACE, spawner.pod_name)  # evicted, or deleted by an admin

    async def gone() -> bool:
        return await spawner.poll() is not None

    await eventually(gone)
    assert [s["reason"] for s in accounting.stops] == ["failed"]
    assert await spawner.poll() == 1
    assert len(accounting.stops) == 1  # recorded once, however often the hub polls


async def test_a_pod_that_never_becomes_ready_times_out_cleanly(kube: FakeKubeAPI) -> None:
    kube.kubelet_delay = None
    accounting = FakeAccounting()
    spawner = await make_spawner("alice", accounting=accounting, api_url=kube.url, start_timeout=2)
    spawner.user_options = {"size": "medium"}  # authorized by start() itself

    with pytest.raises(TimeoutError) as raised:
        await spawner.start()

    message = str(raised.value)
    assert "did not become ready within 2 seconds" in message
    assert 'Pulling image "quay.io/eohub/pangeo-notebook:2026.11.1"' in message
    assert "choose a smaller size" in message
    assert accounting.starts == []  # a failed spawn is never charged
    # The hub stops a server that failed to start: the pod goes, nothing is recorded.
    await spawner.stop()
    assert kube.names("pods") == []
    assert accounting.stops == []


async def test_a_pod_breaking_the_restricted_standard_creates_nothing(
    kube: FakeKubeAPI,
) -> None:
    accounting = FakeAccounting()
    spawner = await make_spawner("alice", accounting=accounting, api_url=kube.url, privileged=True)
    await spawner.apply_user_options(spawner, {})

    with pytest.raises(HTTPError) as raised:
        await spawner.start()

    assert raised.value.status_code == 500
    assert "container 'notebook' is privileged" in raised.value.log_message
    assert dict(kube.created) == {}  # not even the workspace claim
    assert accounting.starts == []


async def test_the_fake_api_rejects_what_the_schema_rejects(kube: FakeKubeAPI) -> None:
    spawner = await make_spawner("alice", api_url=kube.url)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad"},
        "spec": {"containers": [{"name": "x", "image": "y", "imagePullPolicy": 3}]},
    }
    with pytest.raises(ApiException) as raised:
        await spawner.api.create_namespaced_pod(NAMESPACE, pod)
    assert raised.value.status == 422
    assert kube.names("pods") == []
    assert len(kube.rejected) == 1


async def test_a_workspace_claim_per_group_is_annotated_with_its_group(kube: FakeKubeAPI) -> None:
    # The storage sampler charges a claim by its own annotation: it never sees the pod's.
    per_group = {**VOLUMES["workspace"], "claim_name": "ws-{username}-{group}"}
    volumes = {**VOLUMES, "workspace": per_group}
    spawner = await make_spawner(
        "bob",
        api_url=kube.url,
        launch_volumes=volumes,
        storage_extra_annotations={"backup": "nightly"},  # the admin's, kept
    )
    await spawner.apply_user_options(spawner, {"group": "eo-ml"})
    await start_with_progress(spawner)
    claim = kube.get("persistentvolumeclaims", NAMESPACE, "ws-bob-eo-ml")
    assert claim is not None
    assert claim["metadata"]["annotations"]["eohub.io/group"] == "eo-ml"
    assert claim["metadata"]["annotations"]["backup"] == "nightly"
    await spawner.stop()


async def test_a_workspace_claim_per_user_names_no_group(kube: FakeKubeAPI) -> None:
    # One claim whatever the group charged: the sampler's group mapping decides.
    spawner = await make_spawner("alice", api_url=kube.url)
    await spawner.apply_user_options(spawner, {})
    await start_with_progress(spawner)
    claim = kube.get("persistentvolumeclaims", NAMESPACE, "workspace-alice")
    assert claim is not None
    assert "eohub.io/group" not in (claim["metadata"].get("annotations") or {})
    await spawner.stop()
