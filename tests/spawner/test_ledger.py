"""SessionLedger: a spawner's starts and stops queued with accounting, kept in its state.

A tiny backend stands in for the spawner classes, so each rule is seen on its own;
``test_local_hub.py`` and ``test_kube_lifecycle.py`` run the ledger in real spawners.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

import eohub.spawner.ledger as ledger
from eohub.domain.accounting.ledger import Resources
from eohub.domain.launch.session_limits import NO_LIMITS, SessionLimits
from eohub.spawner.ledger import LAST_OPTIONS_KEY, STATE_KEY, SessionLedger

NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)
STARTED = datetime(2026, 4, 1, 10, tzinfo=UTC)


class Accounting:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def record_start(self, **fields: Any) -> None:
        self.calls.append(("start", fields))
        if self.error is not None:
            raise self.error

    async def record_stop(self, **fields: Any) -> None:
        self.calls.append(("stop", fields))
        if self.error is not None:
            raise self.error


class Backend:
    """The spawner methods the ledger wraps."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.polls_while_stopping: list[int | None] = []

    async def stop(self, now: bool = False) -> None:
        self.polls_while_stopping.append(await self.poll())  # type: ignore[attr-defined]

    async def poll(self) -> int | None:
        return self.status

    def get_state(self) -> dict[str, Any]:
        return {"backend": 1}

    def load_state(self, state: dict[str, Any]) -> None:
        pass


class Spawner(SessionLedger, Backend):
    _log_name = "ada's server"

    def __init__(
        self,
        accounting: Accounting,
        started: datetime | None = None,
        limits: SessionLimits = NO_LIMITS,
    ) -> None:
        super().__init__()
        self.accounting = accounting
        self.user = SimpleNamespace(name="ada")
        self.name = "gpu"
        self.orm_spawner = SimpleNamespace(started=started)
        self.user_options = {"size": "small"}
        self.launch = SimpleNamespace(  # type: ignore[assignment]
            size=SimpleNamespace(charged=Resources(500, 2**30, 1)),
            group="climate",
            environment=SimpleNamespace(name="lab", display_name="Lab", image="jupyter/base"),
            repo=None,
            limits=limits,
        )


async def record_start(spawner: SessionLedger) -> None:
    """What start() does once the backend started the server, waited for."""
    spawner._begin_start_record()
    await spawner.start_recorded()


@pytest.fixture(autouse=True)
def now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "utcnow", lambda: NOW)


async def test_a_start_then_a_stop_are_one_session() -> None:
    accounting = Accounting()
    spawner = Spawner(accounting, STARTED)
    await record_start(spawner)
    assert spawner.get_state() == {
        "backend": 1,
        STATE_KEY: {"started_at": STARTED.isoformat(), "group": "climate"},
        LAST_OPTIONS_KEY: {"size": "small"},
    }
    spawner.status = 0  # the backend polls while it stops: that is no crash
    await spawner.stop()
    await spawner.stop()  # nothing left to record
    assert spawner.polls_while_stopping == [0, 0]
    assert [(kind, f.get("reason")) for kind, f in accounting.calls] == [
        ("start", None),
        ("stop", "stopped"),
    ]
    start, stop = (fields for _, fields in accounting.calls)
    assert start == {
        "user": "ada",
        "server": "gpu",
        "started_at": STARTED,
        "group": "climate",
        "cpu": 0.5,
        "memory_bytes": 2**30,
        "gpus": 1,
        "profile": "lab",
        "image": "jupyter/base",
        "profile_name": "Lab",
    }
    assert (stop["started_at"], stop["stopped_at"]) == (STARTED, NOW)
    assert STATE_KEY not in spawner.get_state()


async def test_a_poll_that_finds_the_server_gone_records_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    accounting = Accounting()
    spawner = Spawner(accounting, STARTED)
    await record_start(spawner)
    assert await spawner.poll() is None  # running
    spawner.status = -9
    with caplog.at_level(logging.WARNING, logger="eohub.spawner.ledger"):
        assert await spawner.poll() == -9
        assert await spawner.poll() == -9
    assert [f.get("reason") for _, f in accounting.calls] == [None, "failed"]
    # Said once, with the status: the hub does not log it for a server dying at start.
    assert caplog.text.count("was found gone with exit status -9; its session ends failed") == 1
    assert [r.levelname for r in caplog.records if "found gone" in r.getMessage()] == ["WARNING"]


async def test_a_clean_exit_found_by_a_poll_is_logged_as_information(
    caplog: pytest.LogCaptureFixture,
) -> None:
    accounting = Accounting()
    spawner = Spawner(accounting, STARTED)
    await record_start(spawner)
    spawner.status = 0  # JupyterLab's File > Shut Down
    with caplog.at_level(logging.INFO, logger="eohub.spawner.ledger"):
        assert await spawner.poll() == 0
    found = [r for r in caplog.records if "found gone" in r.getMessage()]
    assert [r.levelname for r in found] == ["INFO"]
    assert found[0].getMessage().endswith("exit status 0; its session ends stopped")


async def test_a_restarted_hub_stops_the_session_from_the_state() -> None:
    accounting = Accounting()
    before = Spawner(accounting, STARTED)
    await record_start(before)
    after = Spawner(accounting)
    after.load_state(before.get_state())
    await after.stop()
    assert accounting.calls[-1][1]["started_at"] == STARTED
    after.load_state({STATE_KEY: "not a session", LAST_OPTIONS_KEY: ["x"]})
    assert after.get_state() == {"backend": 1}


@pytest.mark.parametrize(
    ("started", "key"),
    [
        (STARTED, STARTED),
        (STARTED.replace(tzinfo=None), STARTED),  # the hub's database keeps naive UTC
        (None, NOW),
    ],
)
def test_the_session_key_is_the_hubs_start_time(started: datetime | None, key: datetime) -> None:
    spawner = Spawner(Accounting(), started)
    assert spawner._started_at() == key
    spawner.orm_spawner.started = datetime(2000, 1, 1, tzinfo=UTC)
    assert spawner._started_at() == key  # the same for the whole spawn


async def test_an_accounting_outage_is_logged_and_the_session_still_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawner = Spawner(Accounting(RuntimeError("outbox full")), STARTED)
    with caplog.at_level(logging.ERROR, logger="eohub.spawner.ledger"):
        await record_start(spawner)
        assert spawner._session is not None
        await spawner.stop()
    assert spawner._session is None
    assert "Could not queue the accounting start of ada's server" in caplog.text
    assert "Could not queue the accounting stop of ada's server" in caplog.text


class SlowDisk(Accounting):
    """The outbox's disk sync takes a while: the start is queued once ``synced`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.synced = asyncio.Event()

    async def record_start(self, **fields: Any) -> None:
        await self.synced.wait()
        await super().record_start(**fields)


async def test_the_start_is_queued_off_the_spawn_path_and_always_before_its_stop() -> None:
    accounting = SlowDisk()
    spawner = Spawner(accounting, STARTED)
    spawner._begin_start_record()  # what start() does once the server is up
    # The spawn goes on at once; the state already holds the session, for a restart.
    assert spawner.get_state()[STATE_KEY]["started_at"] == STARTED.isoformat()
    stopping = asyncio.ensure_future(spawner.stop())
    await asyncio.sleep(0.01)
    assert accounting.calls == []  # the stop waits for its start
    accounting.synced.set()
    await stopping
    assert [kind for kind, _ in accounting.calls] == ["start", "stop"]
