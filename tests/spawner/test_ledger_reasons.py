"""SessionLedger: the limits a session starts with, and the reason each stop records.

The spawner of ``test_ledger.py`` on a tiny backend whose poll can stop the server
itself, as KubeSpawner's does when the notebook container has ended; the reasons are
seen on their own here, and against the Kubernetes API fake in
``test_kube_lifetimes.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import pytest

import eohub.spawner.ledger as ledger
from eohub.domain.launch.session_limits import SessionLimits
from eohub.spawner.ledger import STATE_KEY, SessionLedger
from tests.spawner.test_ledger import STARTED, Accounting, Spawner, record_start

NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)


class KubeLikeBackend:
    """A backend whose poll stops a server it finds ended, as KubeSpawner's does (it
    deletes a pod whose notebook container ended) when ``stops_in_poll``."""

    status: int | None = None
    stops_in_poll = False
    poll_waits: asyncio.Event | None = None

    async def stop(self, now: bool = False) -> None:
        pass

    async def poll(self) -> int | None:
        if self.poll_waits is not None:
            await self.poll_waits.wait()
        if self.status is not None and self.stops_in_poll:
            await self.stop(now=True)  # type: ignore[call-arg]  # the ledger's stop
        return self.status

    def get_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass


class KubeLikeSpawner(SessionLedger, KubeLikeBackend):
    _log_name = "ada's server"
    gone_reason: str | None = None  # what the backend knows better, if anything
    idle_culler_services: tuple[str, ...] = ("jupyterhub-idle-culler",)

    def __init__(self, accounting: Accounting) -> None:
        template = Spawner(accounting, STARTED)
        for name in ("accounting", "user", "name", "orm_spawner", "user_options", "launch"):
            setattr(self, name, getattr(template, name))
        self.gone_statuses: list[int | None] = []  # what the ledger asked about

    def _gone_reason(self, status: int | None) -> str:
        self.gone_statuses.append(status)
        return self.gone_reason or super()._gone_reason(status)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "utcnow", lambda: NOW)


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The calls to stop attribution; it answers ``user``."""
    calls: list[dict[str, Any]] = []

    def current_stop_reason(*, owner: str, culler_services: Collection[str] = ()) -> str:
        calls.append({"owner": owner, "culler_services": list(culler_services)})
        return "user"

    monkeypatch.setattr(ledger, "current_stop_reason", current_stop_reason)
    return calls


def stops(accounting: Accounting) -> list[str]:
    return [fields["reason"] for kind, fields in accounting.calls if kind == "stop"]


@pytest.mark.parametrize(
    ("limits", "given"),
    [
        (SessionLimits(), {}),
        (SessionLimits(idle_timeout=1800), {"idle_timeout": 1800}),
        (SessionLimits(1800, 8 * 3600), {"idle_timeout": 1800, "max_duration": 8 * 3600}),
    ],
)
async def test_the_start_carries_the_limits_and_the_state_keeps_them(
    limits: SessionLimits, given: dict[str, int]
) -> None:
    accounting = Accounting()
    spawner = Spawner(accounting, STARTED, limits)
    await record_start(spawner)
    (kind, start), *_ = accounting.calls
    assert kind == "start"
    assert {k: start[k] for k in ("idle_timeout", "max_duration") if k in start} == given
    session = spawner.get_state()[STATE_KEY]
    assert session == {"started_at": STARTED.isoformat(), "group": "climate", **given}
    assert SessionLimits.from_dict(session) == limits
    restarted = Spawner(accounting)
    restarted.load_state(spawner.get_state())
    assert restarted.get_state()[STATE_KEY] == session


# (the exit status poll() returned, the reason recorded)
STATUSES = [
    (0, "stopped"),  # a clean exit: File > Shut Down, or the server's own idle shutdown
    (1, "failed"),
    (137, "failed"),  # killed (out of memory)
    (-9, "failed"),  # a local process killed by a signal
    (-15, "failed"),
    (None, "failed"),  # stopped from inside the poll, before it knows: a failure
]


@pytest.mark.parametrize(("status", "reason"), STATUSES)
def test_the_reason_of_a_server_gone_follows_its_exit_status(
    status: int | None, reason: str
) -> None:
    assert KubeLikeSpawner(Accounting())._gone_reason(status) == reason


# (id, the backend's poll stops the server, its exit status, what the backend knows
#  better, recorded, the status the ledger asked the reason of)
GONE: list[tuple[str, bool, int, str | None, str, int | None]] = [
    ("poll finds it crashed", False, 137, None, "failed", 137),
    ("poll finds it exited cleanly", False, 0, None, "stopped", 0),
    ("poll finds it gone, the backend knows why", False, 0, "max_duration", "max_duration", 0),
    # The backend's stop comes before its poll returns a status: the backend's own
    # _gone_reason reads it (QuotaKubeSpawner reads the pod's container status).
    ("the backend stops it from inside its poll", True, 137, None, "failed", None),
    (
        "the backend stops a pod past its deadline in its poll",
        True,
        0,
        "max_duration",
        "max_duration",
        None,
    ),
    ("the backend stops a cleanly ended pod in its poll", True, 0, "stopped", "stopped", None),
]


@pytest.mark.parametrize(
    ("stops_in_poll", "status", "gone_reason", "recorded", "asked_about"),
    [c[1:] for c in GONE],
    ids=[c[0] for c in GONE],
)
async def test_a_server_found_gone_is_recorded_with_the_polls_reason(
    asked: list[dict[str, Any]],
    stops_in_poll: bool,
    status: int,
    gone_reason: str | None,
    recorded: str,
    asked_about: int | None,
) -> None:
    accounting = Accounting()
    spawner = KubeLikeSpawner(accounting)
    spawner.stops_in_poll, spawner.gone_reason = stops_in_poll, gone_reason
    await record_start(spawner)
    assert await spawner.poll() is None
    spawner.status = status
    assert await spawner.poll() == status
    assert await spawner.poll() == status
    assert stops(accounting) == [recorded]  # once, however often the hub polls
    assert set(spawner.gone_statuses) == {asked_about}
    assert asked == []  # nobody asked for it
    # The hub's own stop of a server found gone: nothing more to record.
    await spawner.stop()
    assert stops(accounting) == [recorded]


async def test_a_stop_while_the_spawn_is_pending_is_a_failure(
    asked: list[dict[str, Any]],
) -> None:
    accounting = Accounting()
    spawner = Spawner(accounting, STARTED)
    await record_start(spawner)
    # The hub waits for the server to answer, gives up, and stops it.
    spawner._spawn_future = asyncio.get_running_loop().create_future()  # type: ignore[attr-defined]
    await spawner.stop()
    assert stops(accounting) == ["failed"]
    assert asked == []


async def test_any_other_stop_records_who_asked_for_it(asked: list[dict[str, Any]]) -> None:
    accounting = Accounting()
    spawner = KubeLikeSpawner(accounting)
    spawner.idle_culler_services = ("cull-idle", "jupyterhub-idle-culler")
    await record_start(spawner)
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    spawner._spawn_future = done  # type: ignore[attr-defined]  # the spawn finished
    await spawner.stop()
    assert stops(accounting) == ["user"]
    assert asked == [{"owner": "ada", "culler_services": ["cull-idle", "jupyterhub-idle-culler"]}]


async def test_a_stop_in_another_task_during_a_poll_is_not_the_polls(
    asked: list[dict[str, Any]],
) -> None:
    accounting = Accounting()
    spawner = KubeLikeSpawner(accounting)
    spawner.stops_in_poll = True
    await record_start(spawner)
    spawner.poll_waits = asyncio.Event()
    poll = asyncio.ensure_future(spawner.poll())
    await asyncio.sleep(0.01)  # the poll is under way...
    await spawner.stop()  # ...when the hub stops the server, for a request
    spawner.poll_waits.set()
    assert await poll is None
    assert stops(accounting) == ["user"]
