"""The routes beyond the JSON API, and the metrics handler they serve."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from tornado import web

from eohub.accounting.service.context import CONTEXT_SETTING
from eohub.accounting.service.exports_api import ExportHandler
from eohub.accounting.service.pages.handlers import page_routes
from eohub.accounting.service.routes import MetricsHandler, extra_routes
from eohub.adapters.accounting_db import AccountingStore
from tests.accounting.service.context_support import make_context, make_handler
from tests.support.accounting import Clock, fresh_store

PREFIX = "/services/eohub-accounting/"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, Clock(datetime(2026, 3, 1, tzinfo=UTC)))
    yield s
    s.engine.dispose()


def test_metrics_exports_and_pages_are_routed_under_the_prefix() -> None:
    routes = extra_routes(PREFIX)
    assert routes[:2] == [
        (PREFIX + "metrics", MetricsHandler),
        (PREFIX + r"api/export/([^/]+)", ExportHandler),
    ]
    assert routes[2:] == page_routes(PREFIX)


async def test_open_metrics_answer_anyone_in_prometheus_text(store: AccountingStore) -> None:
    context = make_context(store, authenticate_metrics=False)
    handler = make_handler(MetricsHandler, PREFIX + "metrics", **{CONTEXT_SETTING: context})
    await handler.get()
    (text,) = handler.finished
    assert b"eohub_accounting_open_sessions 0.0" in text
    assert handler._headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


async def test_authenticated_metrics_refuse_an_anonymous_caller(store: AccountingStore) -> None:
    context = make_context(store)
    assert context.authenticate_metrics
    handler = make_handler(MetricsHandler, PREFIX + "metrics", **{CONTEXT_SETTING: context})
    with pytest.raises(web.HTTPError) as e:
        await handler.get()
    assert e.value.status_code == 403
    assert handler.finished == []


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (web.HTTPError(403, "No %s.", "scope"), 403, "403: No scope.\n"),
        (web.HTTPError(403), 403, "403: Forbidden\n"),
        (web.HTTPError(500, "secret %s", "detail"), 500, "500: Internal Server Error\n"),
        (RuntimeError("secret detail"), 500, "500: Internal Server Error\n"),
    ],
)
def test_metrics_errors_are_plain_text(error: Exception, status: int, text: str) -> None:
    handler = make_handler(MetricsHandler, PREFIX + "metrics")
    handler.set_status(status)
    handler.write_error(status, exc_info=(type(error), error, None))
    assert handler.finished == [text]
    assert handler._headers["Content-Type"] == "text/plain; charset=utf-8"
