"""The service context: built once by the application, frozen, and all handlers see of it."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from eohub.accounting.app import AccountingService
from eohub.accounting.exports.config import XDMoDExport
from eohub.accounting.service.context import CONTEXT_SETTING, LoopSettings, ServiceContext
from eohub.accounting.service.handlers import APIHandler
from eohub.accounting.service.metrics import Metrics
from eohub.accounting.service.workers import connect_hub, start_workers
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.enforcement import Mode
from tests.support.accounting import Clock, fresh_store

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, Clock(NOW))
    yield s
    s.engine.dispose()


def make_context(store: AccountingStore, **changes: object) -> ServiceContext:
    context = ServiceContext(
        store=store,
        clock=store.clock,
        metrics=Metrics(store),
        prefix="/services/eohub-accounting/",
        max_clock_skew=timedelta(minutes=5),
        exports=XDMoDExport(),
    )
    return dataclasses.replace(context, **changes)  # type: ignore[arg-type]


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
        (LoopSettings(reconcile_interval=0), False, 60),
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


def test_no_hub_api_is_made_when_every_loop_is_off(
    store: AccountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    assert connect_hub(store, LoopSettings(reconcile_interval=0)) == (None, None)


def test_without_the_hubs_address_the_loops_are_off_and_say_so(
    store: AccountingStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_URL", raising=False)
    assert connect_hub(store, LoopSettings()) == (None, None)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage().startswith("Reconcile and enforcement are off: no hub API URL")
    assert start_workers(make_context(store)) == []


def test_the_enforcer_exists_before_any_loop_starts(
    store: AccountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    hub, enforcer = connect_hub(store, LoopSettings(enforcement=Mode.WARN, grace_period=30))
    assert hub is not None
    assert enforcer is not None
    assert (enforcer.hub, enforcer.mode, enforcer.grace) == (hub, Mode.WARN, timedelta(30 / 86400))
    assert enforcer.warnings() == {}


def test_the_application_builds_one_context_from_its_traits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    service = AccountingService(
        db_url="sqlite://",
        writer_process=False,
        service_prefix="/services/acct/",
        max_clock_skew=90,
        enforcement="STOP",
        reconcile_interval=0,
        enforcement_interval=15,
        authenticate_metrics=False,
    )
    service.init_store()
    try:
        context = service.build_context()
        assert context.store is service.store
        assert (context.prefix, context.max_clock_skew) == ("/services/acct/", timedelta(0, 90))
        assert context.authenticate_metrics is False
        assert (context.loops.enforcement, context.loops.interval) == (Mode.STOP, 15)
        assert context.enforcer is not None
        assert context.enforcer.store is service.store
        app = service.make_app(context)
        assert app.settings[CONTEXT_SETTING] is context
        assert "eohub_service" not in app.settings
    finally:
        service.store.close()
        service.engine.dispose()


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
