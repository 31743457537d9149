"""The service's background loops: which run, against which hub, and that they never end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from eohub.accounting.service.context import LoopSettings
from eohub.accounting.service.enforce import Enforcer
from eohub.accounting.service.lifetimes import LifetimeEnforcer
from eohub.accounting.service.workers import connect_hub, run_periodically, start_workers
from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI, HubAPIError
from eohub.domain.accounting.enforcement import Mode
from tests.accounting.service.context_support import make_context
from tests.support.accounting import Clock, fresh_store

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, Clock(NOW))
    yield s
    s.engine.dispose()


def test_with_every_loop_off_the_hub_api_serves_the_pages_and_nothing_enforces(
    store: AccountingStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    loops_off = LoopSettings(reconcile_interval=0, session_limits=False)
    hub, enforcer, lifetimes = connect_hub(store, loops_off)
    assert hub is not None  # the PIs' pages ask it for idle times and stop servers
    assert (enforcer, lifetimes) == (None, None)
    assert start_workers(make_context(store, hub=hub, loops=loops_off)) == []


def test_with_every_loop_off_and_no_hub_nothing_is_logged(
    store: AccountingStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_URL", raising=False)
    loops_off = LoopSettings(reconcile_interval=0, session_limits=False)
    assert connect_hub(store, loops_off) == (None, None, None)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


SESSION_LIMITS_OFF = "AccountingService.session_limits_enforcement = False"
RECONCILE_OFF = "AccountingService.reconcile_interval = 0"
BUDGETS_OFF = "AccountingService.enforcement = 'off'"


@pytest.mark.parametrize(
    ("loops", "what", "settings"),
    [
        (
            LoopSettings(),  # the defaults
            "Session limits (idle limits, maximum durations) and reconcile",
            [SESSION_LIMITS_OFF, RECONCILE_OFF],
        ),
        (
            LoopSettings(reconcile_interval=0),
            "Session limits (idle limits, maximum durations)",
            [SESSION_LIMITS_OFF],
        ),
        (
            LoopSettings(enforcement=Mode.STOP),
            "Session limits (idle limits, maximum durations), reconcile and budget enforcement",
            [SESSION_LIMITS_OFF, RECONCILE_OFF, BUDGETS_OFF],
        ),
        (LoopSettings(session_limits=False), "Reconcile", [RECONCILE_OFF]),
        (
            LoopSettings(reconcile_interval=0, session_limits=False, enforcement=Mode.WARN),
            "Budget enforcement",
            [BUDGETS_OFF],
        ),
    ],
)
def test_without_the_hubs_address_the_loops_say_what_cannot_run_once(
    store: AccountingStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    loops: LoopSettings,
    what: str,
    settings: list[str],
) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_URL", raising=False)
    caplog.set_level(logging.INFO)
    assert connect_hub(store, loops) == (None, None, None)
    assert start_workers(make_context(store, loops=loops)) == []
    (record,) = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert record.levelno == logging.ERROR  # what the admin has on goes unenforced
    assert record.getMessage() == (
        f"{what} cannot run without the hub's API (no hub API URL: set JUPYTERHUB_API_URL). "
        "The hub sets JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN for a service it runs; "
        f"set both for one it does not, or turn off what needs them ({', '.join(settings)})."
    )


def test_the_enforcer_exists_before_any_loop_starts(
    store: AccountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    loops = LoopSettings(enforcement=Mode.WARN, grace_period=30, max_duration_warning=120)
    hub, enforcer, lifetimes = connect_hub(store, loops)
    assert hub is not None
    assert enforcer is not None
    assert (enforcer.hub, enforcer.mode, enforcer.grace) == (hub, Mode.WARN, timedelta(30 / 86400))
    assert enforcer.warnings() == {}
    assert lifetimes is not None
    assert (lifetimes.hub, lifetimes.warning_period) == (hub, timedelta(minutes=2))
    assert lifetimes.warnings() == {}


async def test_session_limits_are_enforced_with_budget_enforcement_and_reconcile_off(
    store: AccountingStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    caplog.set_level(logging.INFO)
    loops = LoopSettings(reconcile_interval=0, enforcement=Mode.OFF, enforcement_interval=5)
    hub, enforcer, lifetimes = connect_hub(store, loops)
    assert lifetimes is not None
    context = make_context(store, loops=loops, hub=hub, enforcer=enforcer, lifetimes=lifetimes)
    tasks = start_workers(context)
    try:
        assert [t.get_name() for t in tasks] == ["eohub-accounting-loop"]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert "Every 5 s: session limits (hub API http://127.0.0.1:9/hub/api)" in caplog.messages


async def test_the_loop_survives_failing_rounds(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    three_rounds = asyncio.Event()

    async def unreachable() -> None:
        calls.append("hub")
        raise HubAPIError("GET http://hub/hub/api/users: the hub did not answer")

    async def broken() -> None:
        calls.append("bug")
        if len(calls) >= 6:
            three_rounds.set()
        raise RuntimeError("a bug")

    task = asyncio.create_task(
        run_periodically([("reconcile", unreachable), ("enforcement", broken)], 0.01)
    )
    await asyncio.wait_for(three_rounds.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls[:4] == ["hub", "bug", "hub", "bug"]
    messages = [r.getMessage() for r in caplog.records]
    assert "The reconcile round could not reach the hub: GET" in messages[0]
    assert messages[1] == "The enforcement round failed"


async def test_the_loops_the_settings_turn_on_run_as_one_task(
    store: AccountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    hub = HubAPI("http://127.0.0.1:9/hub/api", "unused")
    loops = LoopSettings(reconcile_interval=3600, enforcement=Mode.WARN)
    enforcer = Enforcer(store, hub, Mode.WARN, 60)
    lifetimes = LifetimeEnforcer(store, hub)
    context = make_context(store, loops=loops, hub=hub, enforcer=enforcer, lifetimes=lifetimes)
    tasks = start_workers(context)
    try:
        assert [t.get_name() for t in tasks] == ["eohub-accounting-loop"]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert (
        "Every 3600 s: reconcile then enforcement then session limits "
        "(hub API http://127.0.0.1:9/hub/api)" in caplog.messages
    )


def test_no_loop_runs_without_a_hub_or_with_every_loop_off(store: AccountingStore) -> None:
    hub = HubAPI("http://127.0.0.1:9/hub/api", "unused")
    assert start_workers(make_context(store, hub=None)) == []
    off = LoopSettings(reconcile_interval=0, session_limits=False)
    assert start_workers(make_context(store, hub=hub, loops=off)) == []
