"""The session-lifetime worker: idle and max-duration stops, first against a stand-in for
the hub's API (every outcome on a travelling clock), then against a real JupyterHub.

The real hub's tests post start events carrying the limits directly, as the hub's
accounting client sends them; the hub's own single-user servers keep one server active
the way JupyterLab does, through ``POST /hub/api/users/<name>/activity`` with the
server's token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from eohub.accounting.service.lifetimes import LifetimeEnforcer
from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.store import utcnow
from eohub.adapters.hub_api import HubAPI, HubAPIError, StopOutcome
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.reconcile import HubServer
from eohub.domain.accounting.session_record import SessionRecord
from eohub.domain.accounting.stop_reasons import IDLE, MAX_DURATION
from tests.accounting.service.context_support import make_context
from tests.accounting.service.test_reconcile_hub import (
    HUB_CONFIG,
    hub_api,
    hub_time,
    session_of,
    spawn,
    start_probe_hub,
    stop_all,
)
from tests.support.accounting import Clock, fresh_store
from tests.support.hub import Hub, start_hub
from tests.support.process import free_port

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
LOG = "eohub.accounting.service.enforce"  # the stopper logs each stop there


class FakeHub(HubAPI):
    """The hub's API as the worker uses it, in memory; ``down`` makes every call fail.

    ``on_stop`` runs as the hub receives a stop request (to look at the store then);
    ``stop_answer`` is what it answers: STOPPED removes the server at once, STOPPING
    leaves it listed (a stop the hub never finishes in time). ``down_on_stop`` fails the
    stop request alone (the hub went down after the server was checked).
    """

    def __init__(self) -> None:
        super().__init__("http://hub.invalid/hub/api", "unused")
        self.servers: dict[tuple[str, str], HubServer] = {}
        self.calls: list[str] = []
        self.down = False
        self.stop_answer = StopOutcome.STOPPED
        self.down_on_stop = False
        self.on_stop: list[Any] = []

    def run(self, user: str, name: str, started: datetime, active: datetime | None) -> None:
        self.servers[(user, name)] = HubServer(user, name, started, last_activity=active)

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise HubAPIError(f"{what}: the hub did not answer (refused)")

    async def list_servers(self) -> list[HubServer]:
        self._call("list")
        return list(self.servers.values())

    async def server(self, user: str, name: str = "") -> HubServer | None:
        self._call(f"get {user}/{name}")
        return self.servers.get((user, name))

    async def stop_server(self, user: str, name: str = "") -> StopOutcome:
        self._call(f"stop {user}/{name}")
        for hook in self.on_stop:
            hook(user, name)
        if self.down_on_stop:
            raise HubAPIError(f"DELETE {user}/{name}: the hub did not answer (refused)")
        if (user, name) not in self.servers:
            return StopOutcome.GONE
        if self.stop_answer is StopOutcome.STOPPED:
            del self.servers[(user, name)]
        return self.stop_answer


def start(
    store: AccountingStore,
    user: str,
    server: str = "",
    *,
    at: datetime = T0,
    idle: int | None = None,
    max_: int | None = None,
) -> SessionRecord:
    """A start event with the session's limits, as the hub's accounting client sends it."""
    event = start_event_json(
        user=user,
        server=server,
        started_at=at,
        group="climate",
        cpu=1,
        idle_timeout=idle,
        max_duration=max_,
    )
    assert store.ingest(parse_batch(event)).accepted == 1
    return session_of(store, user, server)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def store(sqlite_url: str, clock: Clock) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, clock)
    s.put_group("climate", allocation=Allocation.parse("rolling:30"))
    yield s
    s.engine.dispose()


@pytest.fixture
def fake() -> FakeHub:
    return FakeHub()


def enforcer(store: AccountingStore, hub: HubAPI, **kwargs: Any) -> LifetimeEnforcer:
    return LifetimeEnforcer(store, hub, **{"poll_interval": 0.01, **kwargs})


def reason_when_stopped(store: AccountingStore, session: int, seen: list[str | None]) -> Any:
    def hook(user: str, name: str) -> None:
        found = store.session(session)
        seen.append(found.stop_reason if found else None)

    return hook


# -- against a stand-in for the hub's API ------------------------------------------------


async def test_an_idle_server_is_stopped_once_idle_for_its_limit(
    store: AccountingStore, clock: Clock, fake: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    session = start(store, "ann", "lab", idle=3600)
    fake.run("ann", "lab", T0, active=T0 + timedelta(minutes=10))
    recorded: list[str | None] = []
    fake.on_stop.append(reason_when_stopped(store, session.id, recorded))
    worker = enforcer(store, fake)

    clock.now = T0 + timedelta(minutes=69, seconds=59)
    report = await worker.run_once()
    assert (report.stops, report.issued) == ((), ())

    stopped_at = clock.advance(seconds=1)
    report = await worker.run_once()
    assert [(s.session.id, s.reason, s.detail) for s in report.stops] == [
        (session.id, IDLE, "idle for 1 h (limit 1 h)")
    ]
    assert report.stopped == (session.id,)
    assert recorded == [IDLE]  # the reason was recorded before the hub was asked
    closed = session_of(store, "ann", "lab")
    assert (closed.stopped_at, closed.end_reason) == (stopped_at, IDLE)
    [line] = [r.getMessage() for r in caplog.records if r.name == LOG]
    assert line == (
        f"Stopped server 'lab' of ann (session {session.id}), reason idle: "
        "idle for 1 h (limit 1 h)"
    )

    # The hub's own stop event, when it comes, adds nothing: the stop is counted once.
    late = stop_event_json(
        user="ann", server="lab", started_at=T0, stopped_at=stopped_at, reason="stopped"
    )
    store.ingest(parse_batch(late))
    again = session_of(store, "ann", "lab")
    assert (again.stopped_at, again.end_reason) == (stopped_at, IDLE)
    fake.calls.clear()
    assert await worker.run_once() == type(report)()
    assert fake.calls == []  # nothing carries a limit: the hub is not asked


async def test_a_max_duration_stop_comes_after_its_warning(
    store: AccountingStore, clock: Clock, fake: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    session = start(store, "bob", max_=8 * 3600)
    other = start(store, "cat", idle=86400)
    fake.run("bob", "", T0, active=None)
    fake.run("cat", "", T0, active=None)
    worker = enforcer(store, fake, warning_period=900)
    ends = T0 + timedelta(hours=8)

    clock.now = ends - timedelta(minutes=20)
    assert (await worker.run_once()).issued == ()
    assert worker.warnings() == {}

    clock.now = ends - timedelta(minutes=15)
    report = await worker.run_once()
    [warning] = report.issued
    assert (warning.session, warning.reason, warning.stop_at) == (session.id, MAX_DURATION, ends)
    assert worker.warnings() == {session.id: warning}
    assert worker.warnings_by_user() == {"bob": (warning,)}
    context = make_context(store, lifetimes=worker)
    assert context.lifetime_warnings() == {session.id: warning}
    assert context.lifetime_warnings("bob") == {session.id: warning}
    assert context.lifetime_warnings("cat") == {}
    assert make_context(store).lifetime_warnings() == {}
    warned = [r.getMessage() for r in caplog.records if "maximum duration" in r.getMessage()]
    assert warned == [
        f"Session {session.id} (climate) will be stopped at its maximum duration: The "
        "default server of bob reaches its maximum duration at "
        f"{ends.isoformat(timespec='seconds')} and will be stopped in 15 min."
    ]

    clock.now = ends - timedelta(seconds=1)
    report = await worker.run_once()
    assert (report.issued, report.stops) == ((), ())  # warned once

    clock.now = ends
    report = await worker.run_once()
    assert [(s.session.id, s.reason) for s in report.stops] == [(session.id, MAX_DURATION)]
    closed = session_of(store, "bob")
    assert (closed.stopped_at, closed.end_reason) == (ends, MAX_DURATION)
    assert session_of(store, "cat").stopped_at is None

    clock.advance(minutes=1)
    report = await worker.run_once()
    assert [c.warning.session for c in report.cleared] == [session.id]
    assert worker.warnings() == {}
    assert other.id not in {s.session.id for s in report.stops}


async def test_a_stop_that_fails_is_asked_again_and_recorded_once(
    store: AccountingStore, clock: Clock, fake: FakeHub
) -> None:
    session = start(store, "dan", idle=600)
    fake.run("dan", "", T0, active=None)
    worker = enforcer(store, fake)
    clock.now = T0 + timedelta(minutes=11)

    fake.down_on_stop = True  # the hub restarts between the check and the stop
    report = await worker.run_once()
    assert (report.failed, report.stopped) == ((session.id,), ())
    still = session_of(store, "dan")
    assert (still.stopped_at, still.stop_reason) == (None, IDLE)

    clock.advance(minutes=1)
    fake.down = True
    with pytest.raises(HubAPIError):  # the round cannot list; the loop logs it
        await worker.run_once()

    # Back up, the server still idle: the stop asked for is seen through.
    fake.down = fake.down_on_stop = False
    stopped_at = clock.advance(minutes=1)
    report = await worker.run_once()
    assert [(s.reason, s.detail) for s in report.stops] == [
        (IDLE, "its stop was asked for and is not confirmed yet")
    ]
    assert report.stopped == (session.id,)
    closed = session_of(store, "dan")
    assert (closed.stopped_at, closed.end_reason) == (stopped_at, IDLE)
    assert len(store.sessions(users={"dan"})) == 1


async def test_an_idle_stop_that_failed_is_withdrawn_once_the_user_works_again(
    store: AccountingStore, clock: Clock, fake: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    """The DELETE fails while the hub restarts; the user keeps working through the
    proxy; when the hub is back, the active server is not stopped, and its user's own
    stop later is recorded as theirs, not as ``idle``."""
    caplog.set_level(logging.INFO)
    session = start(store, "dot", idle=600)
    fake.run("dot", "", T0, active=None)
    worker = enforcer(store, fake)
    clock.now = T0 + timedelta(minutes=11)
    fake.down_on_stop = True
    assert (await worker.run_once()).failed == (session.id,)
    assert session_of(store, "dot").stop_reason == IDLE

    fake.down_on_stop = False
    fake.run("dot", "", T0, active=clock.advance(minutes=4))
    clock.advance(seconds=5)
    fake.calls.clear()
    report = await worker.run_once()
    assert (report.stops, report.withdrawn) == ((), (session.id,))
    assert not [c for c in fake.calls if c.startswith("stop")]
    assert ("dot", "") in fake.servers
    assert session_of(store, "dot").stop_reason is None
    assert (
        f"Withdrew the idle stop of server '' of dot (session {session.id}), which the hub "
        "had not confirmed: the server was used since: idle for 5 s (limit 10 min)"
        in caplog.messages
    )
    assert (await worker.run_once()).withdrawn == ()

    stopped_at = clock.advance(minutes=1)
    event = stop_event_json(
        user="dot", server="", started_at=T0, stopped_at=stopped_at, reason="user"
    )
    store.ingest(parse_batch(event))
    assert session_of(store, "dot").end_reason == "user"


async def test_a_server_restarted_soon_after_a_limited_life_is_judged_by_its_own(
    store: AccountingStore, clock: Clock, fake: FakeHub
) -> None:
    """The first life had a 30 s maximum; its stop event has not come in yet when the
    server, restarted 40 s later without limits, is listed: the old life's limits do
    not stop the new one (reconcile closes the old one)."""
    clock.now = T0 + timedelta(seconds=50)
    start(store, "fin", at=T0, max_=30)
    restarted = T0 + timedelta(seconds=40)
    event = start_event_json(user="fin", server="", started_at=restarted, group="climate", cpu=1)
    assert store.ingest(parse_batch(event)).accepted == 1
    assert len(store.sessions(users={"fin"}, open_only=True)) == 2
    fake.run("fin", "", restarted, active=clock.now)
    report = await enforcer(store, fake).run_once()
    assert report.stops == ()
    assert ("fin", "") in fake.servers


async def test_a_warning_period_of_zero_warns_of_nothing(
    store: AccountingStore, clock: Clock, fake: FakeHub, caplog: pytest.LogCaptureFixture
) -> None:
    session = start(store, "gil", max_=3600)
    fake.run("gil", "", T0, active=None)
    worker = enforcer(store, fake, warning_period=0)
    for minutes in (45, 59):
        clock.now = T0 + timedelta(minutes=minutes)
        assert (await worker.run_once()).issued == ()
    clock.now = T0 + timedelta(hours=1)
    report = await worker.run_once()
    assert (report.issued, report.stopped) == ((), (session.id,))
    assert worker.warnings() == {}
    assert not [m for m in caplog.messages if "will be stopped" in m]


async def test_an_unconfirmed_stop_ends_with_its_reason_when_the_hub_reports_it(
    store: AccountingStore, clock: Clock, fake: FakeHub
) -> None:
    session = start(store, "eve", max_=3600)
    fake.run("eve", "", T0, active=None)
    fake.stop_answer = StopOutcome.STOPPING  # the hub is slow to stop it
    worker = enforcer(store, fake, stop_timeout=0.05)
    clock.now = T0 + timedelta(hours=1)

    report = await worker.run_once()
    assert report.pending == (session.id,)
    assert session_of(store, "eve").stopped_at is None

    # The hub's own stop event arrives first, saying only that the hub stopped it.
    real_stop = T0 + timedelta(hours=1, seconds=30)
    event = stop_event_json(
        user="eve", server="", started_at=T0, stopped_at=real_stop, reason="stopped"
    )
    store.ingest(parse_batch(event))
    del fake.servers[("eve", "")]
    closed = session_of(store, "eve")
    assert (closed.stopped_at, closed.end_reason) == (real_stop, MAX_DURATION)

    clock.advance(minutes=1)
    report = await worker.run_once()
    assert report.stops == ()
    assert session_of(store, "eve").end_reason == MAX_DURATION


async def test_servers_the_hub_does_not_list_or_that_are_starting_are_left_alone(
    store: AccountingStore, clock: Clock, fake: FakeHub
) -> None:
    start(store, "fay", idle=60)
    start(store, "gus", idle=60)
    # An older life of hal's server: the server the hub runs started after this session.
    start(store, "hal", idle=60, at=T0)
    fake.servers[("gus", "")] = HubServer("gus", "", T0, ready=False, pending="spawn")
    fake.run("hal", "", T0 + timedelta(hours=1), active=None)
    clock.now = T0 + timedelta(hours=2)
    report = await enforcer(store, fake).run_once()
    assert report.stops == ()
    assert fake.calls == ["list"]
    assert all(s.stopped_at is None for s in store.sessions(open_only=True))


async def test_with_no_limits_the_hub_is_never_asked(
    store: AccountingStore, clock: Clock, fake: FakeHub
) -> None:
    start(store, "ivy")
    fake.run("ivy", "", T0, active=None)
    fake.down = True
    clock.now = T0 + timedelta(days=30)
    report = await enforcer(store, fake).run_once()
    assert (report.stops, fake.calls) == ((), [])


# -- against a real JupyterHub -----------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_probe_hub(tmp_path_factory)
    yield started
    started.process.stop(timeout=20)


def record_with_limits(
    store: AccountingStore,
    user: str,
    server: dict[str, Any],
    *,
    idle: int | None = None,
    max_: int | None = None,
) -> SessionRecord:
    return start(store, user, server["name"], at=hub_time(server["started"]), idle=idle, max_=max_)


def server_token(hub: Hub, user: str, name: str = "") -> str:
    """The token the hub gave the single-user server (it posts its activity with it)."""
    pid = hub.api("GET", f"/users/{user}").json()["servers"][name]["state"]["pid"]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [v for v in environ if v.startswith(b"JUPYTERHUB_API_TOKEN=")]
    return found[0].split(b"=", 1)[1].decode()


def post_activity(hub: Hub, user: str, name: str, token: str) -> None:
    """What jupyterhub-singleuser posts while someone works in JupyterLab."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    response = requests.post(
        f"{hub.url}/hub/api/users/{user}/activity",
        json={"last_activity": now, "servers": {name: {"last_activity": now}}},
        headers={"Authorization": f"token {token}"},
        timeout=10,
    )
    assert response.status_code in (200, 204), response.text


@pytest.mark.hub
async def test_an_idle_server_is_stopped_and_an_active_one_kept(hub: Hub, sqlite_url: str) -> None:
    store = fresh_store(sqlite_url)
    store.clock = utcnow  # the hub's activity times are real
    store.put_group("climate", allocation=Allocation.parse("rolling:30"))
    try:
        idle = spawn(hub, "ida", "lab")
        busy = spawn(hub, "ida", "busy")
        idle_session = record_with_limits(store, "ida", idle, idle=4)
        busy_session = record_with_limits(store, "ida", busy, idle=4)
        token = server_token(hub, "ida", "busy")
        worker = LifetimeEnforcer(store, hub_api(hub), poll_interval=0.2)
        deadline = time.monotonic() + 60
        while session_of(store, "ida", "lab").stopped_at is None:
            assert time.monotonic() < deadline, hub.process.log_tail(40)
            post_activity(hub, "ida", "busy", token)
            report = await worker.run_once()
            assert busy_session.id not in {s.session.id for s in report.stops}
            await asyncio.sleep(1)
        assert hub.server("ida", "lab") is None
        assert session_of(store, "ida", "lab").end_reason == IDLE
        assert session_of(store, "ida", "busy").stopped_at is None
        assert hub.server("ida", "busy") is not None
        assert idle_session.id != busy_session.id
    finally:
        stop_all(hub, ("ida", "lab"), ("ida", "busy"))
        store.engine.dispose()


@pytest.mark.hub
async def test_a_max_duration_stop_follows_its_warning(
    hub: Hub, store: AccountingStore, clock: Clock
) -> None:
    try:
        server = spawn(hub, "max")
        session = record_with_limits(store, "max", server, max_=3600)
        started = session.started_at
        worker = LifetimeEnforcer(store, hub_api(hub), warning_period=600, poll_interval=0.2)

        clock.now = started + timedelta(minutes=49)
        assert (await worker.run_once()).issued == ()
        clock.now = started + timedelta(minutes=50)
        report = await worker.run_once()
        assert [(w.session, w.stop_at) for w in report.issued] == [
            (session.id, started + timedelta(hours=1))
        ]
        assert hub.server("max") is not None

        clock.now = started + timedelta(hours=1)
        report = await worker.run_once()
        assert report.stopped == (session.id,)
        assert hub.server("max") is None
        closed = session_of(store, "max")
        assert (closed.stopped_at, closed.end_reason) == (clock.now, MAX_DURATION)
    finally:
        stop_all(hub, ("max", ""))


class HubThatStopsBeforeTheStop(HubAPI):
    """The hub's API, where the hub goes down once a stop has found its server running:
    the reason is recorded, and the stop request itself fails."""

    def __init__(self, hub: Hub, **kwargs: Any) -> None:
        probe = hub_api(hub)
        super().__init__(probe.url, probe._token, **kwargs)
        self.hub = hub
        self.armed = True

    async def server(self, user: str, name: str = "") -> HubServer | None:
        found = await super().server(user, name)
        if self.armed:
            self.armed = False
            await asyncio.to_thread(self.hub.process.stop, 20)
        return found


@pytest.mark.hub
async def test_a_stop_asked_while_the_hub_restarts_is_retried_and_recorded_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    # The servers outlive the hub, and reach the restarted hub where they reached the
    # first: its API keeps its port.
    config = HUB_CONFIG + (
        f"c.JupyterHub.cleanup_servers = False\nc.JupyterHub.hub_port = {free_port()}\n"
    )
    port = free_port()
    hub = start_hub(tmp_path / "hub", config, load_dropins=False, port=port)
    store = fresh_store(sqlite_url)
    store.clock = utcnow
    store.put_group("climate", allocation=Allocation.parse("rolling:30"))
    pid = 0
    try:
        server = spawn(hub, "rex")
        pid = hub.api("GET", "/users/rex").json()["servers"][""]["state"]["pid"]
        session = record_with_limits(store, "rex", server, idle=1)
        await asyncio.sleep(2)
        api = HubThatStopsBeforeTheStop(hub)
        worker = LifetimeEnforcer(store, api, poll_interval=0.2)

        report = await worker.run_once()
        assert report.failed == (session.id,)
        asked = session_of(store, "rex")
        assert (asked.stopped_at, asked.stop_reason) == (None, IDLE)
        with pytest.raises(HubAPIError):
            await worker.run_once()  # the hub is still down: this round fails

        hub = start_hub(tmp_path / "hub", config, load_dropins=False, port=port)
        assert hub.server("rex") is not None, hub.process.log_tail(40)
        report = await worker.run_once()
        assert report.stopped == (session.id,)
        assert hub.server("rex") is None
        [closed] = store.sessions(users={"rex"})
        assert (closed.id, closed.end_reason) == (session.id, IDLE)
        assert (await worker.run_once()).stops == ()
    finally:
        if hub.process.running():
            stop_all(hub, ("rex", ""))
        hub.process.stop(timeout=20)
        if pid:  # it outlives a hub that stops without stopping it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        store.engine.dispose()
