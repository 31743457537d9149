"""QuotaKubeSpawner and session limits, against the in-process Kubernetes API.

eohub's accounting service stops a server at its ``max_duration``; the pod's
``activeDeadlineSeconds`` is only a backstop beyond it. A pod the cluster ends at that
deadline is recorded ``max_duration``, a pod whose server crashed ``failed``, one whose
server exited cleanly (File > Shut Down, or its own idle shutdown) ``stopped``, whether
KubeSpawner deletes the ended pod from its poll (``delete_stopped_pods``) or not.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.kube_api import FakeKubeAPI, now_text
from tests.support.kube_spawners import ENVIRONMENTS, NAMESPACE, FakeAccounting, make_spawner

HOUR = 3600
DAY = 86400
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


async def started(
    kube: FakeKubeAPI, username: str, options: dict[str, Any], **traits: Any
) -> tuple[Any, FakeAccounting]:
    accounting = FakeAccounting()
    spawner = await make_spawner(username, accounting=accounting, api_url=kube.url, **traits)
    await spawner.apply_user_options(spawner, options)
    await spawner.start()
    await spawner.start_recorded()
    return spawner, accounting


def end_pod(kube: FakeKubeAPI, spawner: Any, exit_code: int, reason: str | None) -> None:
    """What the kubelet reports once the notebook container ended: by itself (a clean
    exit, or a crash), or killed at the pod's deadline (``reason`` DeadlineExceeded)."""
    pod = kube.get("pods", NAMESPACE, spawner.pod_name)
    assert pod is not None
    status = pod["status"]
    clean = exit_code == 0 and reason is None
    status["phase"] = "Succeeded" if clean else "Failed"
    status["conditions"] = [{"type": "Ready", "status": "False"}]
    if reason is not None:
        status |= {"reason": reason, "message": DEADLINE_MESSAGE}
    for container in status["containerStatuses"]:
        started_at = container["state"]["running"]["startedAt"]
        why = "Completed" if exit_code == 0 else "Error"
        ended = {"exitCode": exit_code, "reason": why, "startedAt": started_at}
        container |= {"ready": False, "started": False}
        container["state"] = {"terminated": {**ended, "finishedAt": now_text()[:19] + "Z"}}
    kube.modify("pods", pod)  # a watch event, as the API server sends


async def polled_gone(spawner: Any, seconds: float = 5) -> int:
    for _ in range(int(seconds / 0.05)):
        status = await spawner.poll()
        if status is not None:
            return int(status)
        await asyncio.sleep(0.05)
    pytest.fail(f"the pod still looks alive after {seconds} seconds")


def deadline(kube: FakeKubeAPI) -> int | None:
    (pod,) = kube.created["pods"]
    value: int | None = pod["spec"].get("activeDeadlineSeconds")
    return value


# (id, user, options, spawner settings, the pod's deadline, the limits in the start event)
BACKSTOPS: list[tuple[str, str, dict[str, Any], dict[str, Any], int | None, dict[str, int]]] = [
    ("environment's max_duration", "alice", {}, {}, 8 * HOUR + 600, {"max_duration": 8 * HOUR}),
    (
        "a backstop of 0",
        "alice",
        {},
        {"deadline_backstop": 0},
        8 * HOUR,
        {"max_duration": 8 * HOUR},
    ),
    ("no max_duration, no deadline", "bob", {"environment": "gpu-ml"}, {}, None, {}),
    (
        "the hub's limits for the group charged",
        "bob",
        {"environment": "gpu-ml", "group": "eo-ml"},
        {
            "session_limits": {
                "idle_timeout": "1h",
                "max_duration": "1d",
                "groups": {"eo-ml": {"max_duration": "2d"}},
            },
            "deadline_backstop": 300,
        },
        2 * DAY + 300,
        {"idle_timeout": HOUR, "max_duration": 2 * DAY},
    ),
    (
        "an environment that lifts the hub's max_duration",
        "alice",
        {},
        {
            "launch_environments": {
                **ENVIRONMENTS,
                "pangeo": {**ENVIRONMENTS["pangeo"], "max_duration": 0, "idle_timeout": "2h"},
            },
            "session_limits": {"max_duration": "1d"},
        },
        None,
        {"idle_timeout": 2 * HOUR},
    ),
]


@pytest.mark.parametrize(
    ("username", "options", "traits", "expected", "limits"),
    [c[1:] for c in BACKSTOPS],
    ids=[c[0] for c in BACKSTOPS],
)
async def test_the_deadline_is_a_backstop_beyond_the_enforced_limit(
    kube: FakeKubeAPI,
    username: str,
    options: dict[str, Any],
    traits: dict[str, Any],
    expected: int | None,
    limits: dict[str, int],
) -> None:
    admin = {"terminationGracePeriodSeconds": 5}
    spawner, accounting = await started(kube, username, options, extra_pod_config=admin, **traits)
    assert deadline(kube) == expected
    assert kube.created["pods"][0]["spec"]["terminationGracePeriodSeconds"] == 5  # the admin's
    assert kube.rejected == []
    (start,) = accounting.starts
    assert {k: start[k] for k in ("idle_timeout", "max_duration") if k in start} == limits
    assert spawner.launch.limits.as_dict() == limits
    await spawner.stop()


async def test_the_next_launch_does_not_keep_the_previous_deadline(kube: FakeKubeAPI) -> None:
    spawner, _ = await started(kube, "bob", {"group": "eo-sci"})  # pangeo: 8 hours
    await spawner.stop()
    spawner.clear_state()
    await spawner.apply_user_options(spawner, {"environment": "gpu-ml", "group": "eo-ml"})
    assert "activeDeadlineSeconds" not in spawner.extra_pod_config


# (id, the container's exit code, the pod's status.reason, delete_stopped_pods, recorded)
ENDINGS = [
    ("killed at the deadline", 137, "DeadlineExceeded", True, "max_duration"),
    ("killed at the deadline, pod kept", 137, "DeadlineExceeded", False, "max_duration"),
    ("killed at the deadline after a clean exit", 0, "DeadlineExceeded", True, "max_duration"),
    ("crashed", 1, None, True, "failed"),
    ("crashed, pod kept", 1, None, False, "failed"),
    # JupyterLab's File > Shut Down, or jupyter-server's own shutdown_no_activity_timeout.
    ("exited cleanly", 0, None, True, "stopped"),
    ("exited cleanly, pod kept", 0, None, False, "stopped"),
]


@pytest.mark.parametrize(
    ("exit_code", "reason", "delete_stopped_pods", "recorded"),
    [c[1:] for c in ENDINGS],
    ids=[c[0] for c in ENDINGS],
)
async def test_a_pod_that_ended_is_recorded_with_why(
    kube: FakeKubeAPI,
    exit_code: int,
    reason: str | None,
    delete_stopped_pods: bool,
    recorded: str,
) -> None:
    spawner, accounting = await started(kube, "alice", {}, delete_stopped_pods=delete_stopped_pods)
    assert await spawner.poll() is None

    end_pod(kube, spawner, exit_code, reason)

    assert await polled_gone(spawner) == exit_code
    assert [s["reason"] for s in accounting.stops] == [recorded]
    stop = accounting.stops[0]
    assert (stop["user"], stop["server"]) == ("alice", "")
    assert kube.names("pods") == ([] if delete_stopped_pods else [spawner.pod_name])
    # The hub polls on, then stops the server it found gone (User.stop polls first).
    assert await spawner.poll() is not None
    assert len(accounting.stops) == 1  # recorded once
