"""The reconcile loop against a real JupyterHub: dead servers, unknown servers, clean stops.

The loop talks to the hub with a token holding exactly the scopes the accounting drop-in
grants its service (``jupyterhub_config.d/30-eohub-accounting.py``), so these tests also
prove those scopes are enough.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from eohub.accounting.service.reconcile import Reconciler
from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI, HubAPIError, StopOutcome
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.session_record import SessionRecord
from tests.support.accounting import Clock, fresh_store
from tests.support.hub import Hub, start_hub
from tests.support.process import free_port

pytestmark = pytest.mark.hub

# The reconcile worker logs through its module's logger.
LOG = logging.getLogger("eohub.accounting.service.reconcile")
# The scopes the accounting drop-in gives its service.
SERVICE_SCOPES = ["list:users", "read:users:name", "read:servers", "servers"]
PROBE_TOKEN = secrets.token_hex(32)

HUB_CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.allow_named_servers = True
# The hub polls its servers every second, so it notices a killed one at once.
c.Spawner.poll_interval = 1
c.Spawner.poll_jitter = 0
c.JupyterHub.services.append({{"name": "accounting-probe", "api_token": {PROBE_TOKEN!r}}})
c.JupyterHub.load_roles.append({{
    "name": "accounting-probe",
    "scopes": {SERVICE_SCOPES!r},
    "services": ["accounting-probe"],
}})
"""


def start_probe_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """A hub with named servers, fast polling, and the accounting service's scopes."""
    return start_hub(tmp_path_factory.mktemp("hub"), HUB_CONFIG, load_dropins=False)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_probe_hub(tmp_path_factory)
    yield started
    started.process.stop(timeout=20)


def hub_api(hub: Hub, **kwargs: Any) -> HubAPI:
    return HubAPI(f"{hub.url}/hub/api", PROBE_TOKEN, **kwargs)


@pytest.fixture
def clock() -> Clock:
    # Real time, as the hub's start times are; tests set it again after their spawns and
    # then move it forward.
    return Clock(datetime.now(UTC))


@pytest.fixture
def store(sqlite_url: str, clock: Clock) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, clock)
    s.put_group("climate", allocation=Allocation.parse("rolling:30"))
    s.put_group("unassigned", allocation=Allocation.parse("rolling:30"))
    s.put_group(
        "budgeted",
        allocation=Allocation.parse("rolling:30"),
        quotas={"": Limits(core_hours=Fraction(1))},
    )
    yield s
    s.engine.dispose()


def hub_time(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def record_start(
    store: AccountingStore, user: str, server: dict[str, Any], *, group: str, cpu: float = 1
) -> SessionRecord:
    """Record a server's start as the hub's accounting client does."""
    event = start_event_json(
        user=user,
        server=server["name"],
        started_at=hub_time(server["started"]),
        group=group,
        cpu=cpu,
    )
    assert store.ingest(parse_batch(event)).accepted == 1
    return session_of(store, user, server["name"])


def session_of(store: AccountingStore, user: str, server: str = "") -> SessionRecord:
    found = [s for s in store.sessions(users={user}) if s.server == server]
    assert len(found) == 1, found
    return found[0]


def wait_until_gone(hub: Hub, user: str, name: str = "", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while hub.server(user, name) is not None:
        assert time.monotonic() < deadline, f"the hub still lists {user}/{name}"
        time.sleep(0.2)


def spawn(hub: Hub, user: str, name: str = "", **options: object) -> dict[str, Any]:
    hub.ensure_user(user)
    return hub.spawn(user, name, options=options)


def stop_all(hub: Hub, *servers: tuple[str, str]) -> None:
    for user, name in servers:
        if hub.server(user, name) is not None:
            hub.stop(user, name)


async def test_a_killed_server_is_closed_when_last_seen(
    hub: Hub, store: AccountingStore, clock: Clock
) -> None:
    server = spawn(hub, "kim", "lab")
    session = record_start(store, "kim", server, group="climate")
    reconciler = Reconciler(store, hub_api(hub), open_after=0, close_after=0)
    clock.now = datetime.now(UTC)  # after the spawn

    report = await reconciler.run_once()
    assert session.id in report.touched
    assert not [c for c in report.closed if c.session.user == "kim"]
    seen = clock.now
    assert dict(store.open_sessions())[session] == seen

    # Kill the single-user server behind the hub's back; the hub's poll notices.
    state = hub.api("GET", "/users/kim").json()["servers"]["lab"]["state"]
    os.kill(state["pid"], signal.SIGKILL)
    wait_until_gone(hub, "kim", "lab")

    clock.advance(minutes=5)
    report = await reconciler.run_once()
    assert [(c.session.id, c.stopped_at) for c in report.closed] == [(session.id, seen)]
    assert "no longer lists" in report.closed[0].reason
    closed = session_of(store, "kim", "lab")
    assert (closed.stopped_at, closed.end_reason) == (seen, "reconcile")

    # Nothing more to do next time.
    clock.advance(minutes=1)
    again = await reconciler.run_once()
    assert not [c for c in again.closed if c.session.user == "kim"]

    # Should the hub's own stop event arrive after all, it replaces the estimate.
    real_stop = seen + timedelta(seconds=90)
    late = stop_event_json(
        user="kim", server="lab", started_at=session.started_at, stopped_at=real_stop
    )
    assert store.ingest(parse_batch(late)).corrected == 1
    corrected = session_of(store, "kim", "lab")
    assert (corrected.stopped_at, corrected.end_reason) == (real_stop, "stopped")


async def test_a_server_without_a_session_is_opened(
    hub: Hub, store: AccountingStore, clock: Clock
) -> None:
    try:
        chosen = spawn(hub, "uma", group="climate", cpu=2, mem="1G")
        plain = spawn(hub, "uma", "plain")
        clock.now = datetime.now(UTC)
        reconciler = Reconciler(
            store, hub_api(hub), fallback_group="unassigned", default_cpu=0.5, open_after=60
        )

        # Younger than open_after: the hub's own start event may still be on its way.
        report = await reconciler.run_once()
        assert not [s for s in report.opened if s.user == "uma"]
        assert {s.server.name for s in report.skipped if s.server.user == "uma"} == {"", "plain"}

        clock.advance(minutes=2)
        report = await reconciler.run_once()
        assert sorted((s.server, s.group, s.cpu) for s in report.opened if s.user == "uma") == [
            ("", "climate", 2.0),
            ("plain", "unassigned", 0.5),
        ]
        opened = session_of(store, "uma", "")
        assert opened.started_at == hub_time(chosen["started"])
        assert (opened.group, opened.resources.millicores) == ("climate", 2000)
        assert opened.resources.memory_bytes == 1024**3
        assert session_of(store, "uma", "plain").started_at == hub_time(plain["started"])

        # Opened once: the next round only sees them running.
        clock.advance(minutes=1)
        again = await reconciler.run_once()
        assert not [s for s in again.opened if s.user == "uma"]
        ids = {s.id for s in store.sessions(users={"uma"})}
        assert ids <= set(again.touched)
    finally:
        stop_all(hub, ("uma", ""), ("uma", "plain"))


async def test_a_server_without_a_known_group_is_only_logged(
    hub: Hub, store: AccountingStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        spawn(hub, "vic", group="astro")
        clock.now = datetime.now(UTC)
        reconciler = Reconciler(store, hub_api(hub), open_after=0, close_after=0)
        with caplog.at_level(logging.DEBUG, logger=LOG.name):
            first = await reconciler.run_once()
            await reconciler.run_once()
        skipped = [s for s in first.skipped if s.server.user == "vic"]
        assert "'astro', which accounting does not know" in skipped[0].reason
        assert store.sessions(users={"vic"}) == []
        # Warned once per server, not every round.
        warned = [
            r for r in caplog.records if r.levelno == logging.WARNING and "vic" in r.getMessage()
        ]
        assert len(warned) == 1
    finally:
        stop_all(hub, ("vic", ""))


async def test_a_server_stopped_normally_needs_nothing(
    hub: Hub, store: AccountingStore, clock: Clock
) -> None:
    server = spawn(hub, "nia")
    clock.now = datetime.now(UTC)
    session = record_start(store, "nia", server, group="climate")
    reconciler = Reconciler(store, hub_api(hub), open_after=0, close_after=0)
    await reconciler.run_once()

    hub.stop("nia")
    stopped_at = clock.advance(seconds=30)
    stop = stop_event_json(
        user="nia", server="", started_at=session.started_at, stopped_at=stopped_at
    )
    store.ingest(parse_batch(stop))

    clock.advance(minutes=1)
    report = await reconciler.run_once()
    assert not [c for c in report.closed if c.session.user == "nia"]
    assert not [s for s in report.opened if s.user == "nia"]
    assert not [s for s in report.skipped if s.server.user == "nia"]
    after = session_of(store, "nia")
    assert (after.stopped_at, after.end_reason) == (stopped_at, "stopped")


async def test_hub_api_pages_stops_and_translates_errors(hub: Hub) -> None:
    try:
        spawn(hub, "pia")
        spawn(hub, "quinn", "one")
        api = hub_api(hub, page_size=1)  # one user per page: the pages must be followed
        listed = {(s.user, s.name): s for s in await api.list_servers()}
        assert {("pia", ""), ("quinn", "one")} <= listed.keys()
        pia = listed[("pia", "")]
        assert pia.ready
        assert pia.pending is None
        assert pia.started is not None
        assert pia.started <= datetime.now(UTC)

        assert await api.server("pia") == pia
        assert await api.server("pia", "other") is None
        assert await api.server("nobody") is None

        assert await api.stop_server("quinn", "one") in (StopOutcome.STOPPED, StopOutcome.STOPPING)
        wait_until_gone(hub, "quinn", "one")
        assert await api.stop_server("quinn", "never-started") is StopOutcome.GONE
        assert await api.stop_server("nobody") is StopOutcome.GONE
    finally:
        stop_all(hub, ("pia", ""), ("quinn", "one"))

    wrong = "0" * 64
    with pytest.raises(HubAPIError) as refused:
        await HubAPI(f"{hub.url}/hub/api", wrong).list_servers()
    assert refused.value.status == 403
    assert wrong not in str(refused.value)

    with pytest.raises(HubAPIError, match="did not answer") as down:
        await HubAPI(f"http://127.0.0.1:{free_port()}/hub/api", PROBE_TOKEN).list_servers()
    assert down.value.status is None
    assert PROBE_TOKEN not in str(down.value)

    with pytest.raises(HubAPIError, match="JUPYTERHUB_API_TOKEN"):
        HubAPI(f"{hub.url}/hub/api", "")
