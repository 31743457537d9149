"""The service context: built once by the application, frozen, and all handlers see of it."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from eohub.accounting.service.context import CONTEXT_SETTING, InFlight, LoopSettings
from eohub.accounting.service.handlers import APIHandler
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.enforcement import Mode
from tests.accounting.service.context_support import make_context
from tests.support.accounting import Clock, fresh_store

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, Clock(NOW))
    yield s
    s.engine.dispose()


def test_the_context_is_frozen(store: AccountingStore) -> None:
    context = make_context(store)
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.enforcer = None  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.loops.reconcile_interval = 0  # type: ignore[misc]


def test_input_times_are_checked_against_the_contexts_clock(store: AccountingStore) -> None:
    assert make_context(store).clock_limits() == {
        "now": NOW,
        "max_clock_skew": timedelta(minutes=5),
    }


def test_a_handler_finds_the_context_in_the_application_settings(
    store: AccountingStore,
) -> None:
    context = make_context(store)
    application = web.Application([], **{CONTEXT_SETTING: context})
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/api/me", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "127.0.0.1"}),
        connection=mock.Mock(),
    )
    handler = APIHandler(application, request)
    assert handler.context is context
    assert not hasattr(handler, "service")


@pytest.mark.parametrize(
    ("loops", "any_on", "interval"),
    [
        (LoopSettings(), True, 60),  # reconcile on by default
        (LoopSettings(reconcile_interval=0), True, 60),  # session limits on by default
        (LoopSettings(reconcile_interval=0, session_limits=False), False, 60),
        (LoopSettings(reconcile_interval=0, enforcement=Mode.WARN), True, 60),
        (
            LoopSettings(reconcile_interval=0, enforcement=Mode.STOP, enforcement_interval=5),
            True,
            5,
        ),
        (LoopSettings(reconcile_interval=7, enforcement=Mode.STOP), True, 7),
    ],
)
def test_which_loops_run_and_how_often(loops: LoopSettings, any_on: bool, interval: int) -> None:
    assert (loops.any_on, loops.interval) == (any_on, interval)


def test_the_service_package_loads_without_the_application() -> None:
    code = (
        "import sys\n"
        "import eohub.accounting.service.routes, eohub.accounting.service.workers\n"
        "assert 'eohub.accounting.app' not in sys.modules, 'the app was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr


async def test_in_flight_requests_are_waited_for_with_a_limit() -> None:
    in_flight = InFlight()
    assert await in_flight.drained(0.01)
    in_flight.begin()
    in_flight.begin()
    assert not await in_flight.drained(0.01)
    in_flight.end()
    assert in_flight.count == 1
    asyncio.get_running_loop().call_later(0.02, in_flight.end)
    assert await in_flight.drained(5)
    in_flight.end()  # one end too many never goes below nothing
    assert in_flight.count == 0
