"""Budget enforcement against a real JupyterHub, travelling in time with the store's clock.

A group with a one core-hour budget runs a one-CPU server; an hour later the budget is
spent. Mode ``stop`` warns, then stops the server through the hub's API once the grace
period is over; ``warn`` only warns; ``off`` does nothing. The last test runs the real
managed service from the drop-in, so its loops and its scopes are tested end to end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from eohub.accounting.service.enforce import EnforcementReport, Enforcer
from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.store import utcnow
from eohub.adapters.hub_api import HubAPI
from eohub.domain.accounting.enforcement import RunningSession
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.reconcile import HubServer
from eohub.domain.accounting.session_record import SessionRecord
from tests.accounting.service.test_lifetimes_hub import FakeHub
from tests.accounting.service.test_reconcile_hub import (
    hub_api,
    record_start,
    session_of,
    spawn,
    start_probe_hub,
    stop_all,
)
from tests.support.accounting import Clock, fresh_store
from tests.support.hub import Hub

GRACE = 600  # seconds


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_probe_hub(tmp_path_factory)
    yield started
    started.process.stop(timeout=20)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
def store(sqlite_url: str, clock: Clock) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, clock)
    # A rolling window, so that moving the clock never starts a new calendar period.
    s.put_group(
        "climate",
        allocation=Allocation.parse("rolling:30"),
        quotas={"": Limits(core_hours=Fraction(1))},
    )
    yield s
    s.engine.dispose()


@pytest.mark.hub
async def test_stop_mode_warns_then_stops_after_the_grace(
    hub: Hub, store: AccountingStore, clock: Clock
) -> None:
    try:
        server = spawn(hub, "sam")
        session = record_start(store, "sam", server, group="climate", cpu=1)
        clock.now = datetime.now(UTC)
        enforcer = Enforcer(store, hub_api(hub), "stop", GRACE, poll_interval=0.2)

        report = await enforcer.run_once()
        assert (report.issued, report.stopped) == ((), ())
        assert enforcer.warnings() == {}

        clock.advance(hours=1, minutes=1)  # the core-hour is spent
        report = await enforcer.run_once()
        [warning] = report.issued
        assert (warning.group, warning.user, warning.sessions) == ("climate", "", (session.id,))
        assert "core-hours budget of group climate is spent" in warning.reason
        assert warning.stop_at == clock.now + timedelta(seconds=GRACE)
        assert enforcer.warnings() == {"climate": (warning,)}
        assert report.stopped == ()

        clock.advance(seconds=GRACE - 60)  # still within the grace period
        report = await enforcer.run_once()
        assert (report.issued, report.stopped) == ((), ())
        assert hub.server("sam") is not None

        stopped_at = clock.advance(seconds=60)
        report = await enforcer.run_once()
        assert report.stopped == (session.id,)
        assert hub.server("sam") is None
        closed = session_of(store, "sam")
        assert (closed.stopped_at, closed.end_reason) == (stopped_at, "budget")

        # Nothing runs on the spent budget any more: the warning is withdrawn.
        clock.advance(minutes=1)
        report = await enforcer.run_once()
        assert [c.warning.group for c in report.cleared] == ["climate"]
        assert enforcer.warnings() == {}
    finally:
        stop_all(hub, ("sam", ""))


@pytest.mark.hub
async def test_warn_mode_never_stops_and_off_does_nothing(
    hub: Hub, store: AccountingStore, clock: Clock
) -> None:
    try:
        server = spawn(hub, "wes", "long")
        session = record_start(store, "wes", server, group="climate", cpu=1)
        clock.now = datetime.now(UTC)
        warn = Enforcer(store, hub_api(hub), "warn", GRACE)
        off = Enforcer(store, hub_api(hub), "off", GRACE)

        clock.advance(hours=2)
        assert await off.run_once() == EnforcementReport()
        report = await warn.run_once()
        [warning] = report.issued
        assert warning.stop_at is None
        assert off.warnings() == {}

        clock.advance(days=3)
        report = await warn.run_once()
        assert (report.issued, report.stopped) == ((), ())
        assert warn.warnings()["climate"][0].first_warned_at == warning.first_warned_at
        assert hub.server("wes", "long") is not None
        assert session_of(store, "wes", "long").stopped_at is None

        # A raised quota makes the budget available again.
        store.put_group("climate", quotas={"": Limits(core_hours=Fraction(1000))})
        report = await warn.run_once()
        assert [c.reason for c in report.cleared] == ["the budget is available again"]
        assert warn.warnings() == {}
        assert session.id in {s.id for s in store.sessions(open_only=True)}
    finally:
        stop_all(hub, ("wes", "long"))


def test_the_managed_service_reconciles_and_enforces(
    hub_factory: Callable[..., Hub], tmp_path: Path
) -> None:
    """The drop-in's service, with its own scopes, closes a lost session and stops a
    server whose budget is spent (grace 0), on a one-second loop."""
    db_url = f"sqlite:///{tmp_path / 'accounting.sqlite'}"
    store = fresh_store(db_url)
    store.clock = utcnow  # the service runs on real time
    store.put_group(
        "tiny",
        allocation=Allocation.parse("rolling:30"),
        quotas={"": Limits(core_hours=Fraction(1, 3600))},  # one core-second
    )
    lost_start = datetime.now(UTC) - timedelta(minutes=10)
    lost = store_start(store, "ghost", lost_start, group="tiny", cpu=0.001)

    hub = hub_factory(
        """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
services = c.JupyterHub.services.get_value([])  # the drop-ins extend the list
for service in services:
    if service["name"] == "eohub-accounting":
        service["command"] = [*service["command"], "--reconcile-interval=1",
                              "--AccountingService.reconcile_close_after=0",
                              "--enforcement=stop",
                              "--AccountingService.enforcement_grace_period=0"]
c.JupyterHub.services = services
""",
        env={"EOHUB_ACCOUNTING_DB_URL": db_url},
    )
    try:
        server = spawn(hub, "tom")
        record_start(store, "tom", server, group="tiny", cpu=1)
        deadline = time.monotonic() + 60
        while hub.server("tom") is not None or session_of(store, "tom").stopped_at is None:
            assert time.monotonic() < deadline, (
                "the service did not stop tom's server:\n" + hub.process.log_tail(60)
            )
            time.sleep(0.5)
        assert session_of(store, "tom").end_reason == "budget"
        ghost = session_of(store, "ghost")
        assert (ghost.id, ghost.stopped_at, ghost.end_reason) == (
            lost.id,
            lost_start,
            "reconcile",
        )
    finally:
        stop_all(hub, ("tom", ""))
        store.engine.dispose()


def store_start(
    store: AccountingStore, user: str, at: datetime, *, group: str, cpu: float
) -> SessionRecord:
    event = start_event_json(user=user, server="", started_at=at, group=group, cpu=cpu)
    store.ingest(parse_batch(event))
    return session_of(store, user)


def test_budgets_cover_the_group_once_and_each_member(store: AccountingStore) -> None:
    store.put_group(
        "climate",
        quotas={"": Limits(core_hours=Fraction(1)), "*": Limits(core_hours=Fraction(1, 2))},
    )
    store.put_group("astro", allocation=Allocation.parse("month"))  # no quota rows
    for user, group in (("ann", "climate"), ("ben", "climate"), ("cat", "astro")):
        store_start(store, user, store.clock() - timedelta(minutes=40), group=group, cpu=1)
    enforcer = Enforcer(store, HubAPI("http://127.0.0.1:1/hub/api", "unused"), "stop", 0)
    sessions = [
        RunningSession(r.id, r.user, r.server, r.group, r.started_at)
        for r, _ in store.open_sessions()
    ]
    budgets = {b.key: b for b in enforcer.budgets(sessions)}
    assert sorted(budgets) == [("climate", ""), ("climate", "ann"), ("climate", "ben")]
    assert budgets[("climate", "")].spent is not None  # 2 x 40 min > 1 core-hour
    assert budgets[("climate", "ann")].spent is not None  # 40 min > half a core-hour
    assert "user ann in group climate" in (budgets[("climate", "ann")].spent or "")


async def failed_budget_stop(
    store: AccountingStore, clock: Clock, user: str
) -> tuple[SessionRecord, FakeHub, Enforcer]:
    """A spent budget whose stop failed (the hub went down between the check and the
    stop): the reason was recorded before the hub was asked."""
    session = store_start(store, user, clock() - timedelta(hours=2), group="climate", cpu=1)
    fake = FakeHub()
    fake.run(user, "", session.started_at, active=None)
    seen: list[str | None] = []
    fake.on_stop.append(lambda user, name: seen.append(session_of(store, user).stop_reason))
    fake.down_on_stop = True
    enforcer = Enforcer(store, fake, "stop", 0, poll_interval=0.01)
    report = await enforcer.run_once()
    assert (report.failed, seen) == ((session.id,), ["budget"])
    assert session_of(store, user).stopped_at is None
    fake.down_on_stop = False
    return session, fake, enforcer


async def test_a_budget_stop_records_its_reason_first_and_is_seen_through(
    store: AccountingStore, clock: Clock
) -> None:
    """A stop that failed is asked for again next round while the budget is still spent,
    and is recorded once."""
    session, _, enforcer = await failed_budget_stop(store, clock, "una")
    stopped_at = clock.advance(minutes=1)
    report = await enforcer.run_once()
    assert report.stopped == (session.id,)
    [closed] = store.sessions(users={"una"})
    assert (closed.stopped_at, closed.end_reason) == (stopped_at, "budget")
    assert (await enforcer.run_once()).stopped == ()


async def test_a_budget_stop_is_withdrawn_once_the_budget_is_available(
    store: AccountingStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A raised quota before the hub is back: the server keeps running, and its user's
    own stop later is recorded as theirs, not as ``budget``."""
    caplog.set_level(logging.INFO)
    session, fake, enforcer = await failed_budget_stop(store, clock, "vic")
    store.put_group("climate", quotas={"": Limits(core_hours=Fraction(1000))})
    clock.advance(minutes=1)
    report = await enforcer.run_once()
    assert (report.stopped, report.withdrawn) == ((), (session.id,))
    assert ("vic", "") in fake.servers
    assert session_of(store, "vic").stop_reason is None
    assert (
        f"Withdrew the budget stop of server '' of vic (session {session.id}), which the hub "
        "had not confirmed: the budget it was asked for is available again" in caplog.messages
    )
    assert (await enforcer.run_once()).withdrawn == ()

    stopped_at = clock.advance(minutes=5)
    event = stop_event_json(
        user="vic", server="", started_at=session.started_at, stopped_at=stopped_at, reason="user"
    )
    store.ingest(parse_batch(event))
    assert session_of(store, "vic").end_reason == "user"


async def test_a_budget_stop_the_hub_is_carrying_out_is_not_withdrawn(
    store: AccountingStore, clock: Clock
) -> None:
    session, fake, enforcer = await failed_budget_stop(store, clock, "wyn")
    store.put_group("climate", quotas={"": Limits(core_hours=Fraction(1000))})
    fake.servers[("wyn", "")] = HubServer("wyn", "", session.started_at, pending="stop")
    fake.calls.clear()
    report = await enforcer.run_once()
    assert (report.stopped, report.withdrawn) == ((), ())
    assert session_of(store, "wyn").stop_reason == "budget"
    assert fake.calls == ["get wyn/"]  # looked, and left the hub to finish

    fake.down = True  # the hub cannot say: the request stays until it can
    assert (await enforcer.run_once()).withdrawn == ()
    assert session_of(store, "wyn").stop_reason == "budget"
