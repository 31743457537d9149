"""A service context on a real store, as the application builds it, and handlers to test."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from unittest import mock

from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.web import RequestHandler

from eohub.accounting.exports.config import XDMoDExport
from eohub.accounting.service.context import ServiceContext
from eohub.accounting.service.metrics import Metrics
from eohub.adapters.accounting_db import AccountingStore


def make_context(store: AccountingStore, **changes: object) -> ServiceContext:
    context = ServiceContext(
        store=store,
        metrics=Metrics(store),
        prefix="/services/eohub-accounting/",
        max_clock_skew=timedelta(minutes=5),
        exports=XDMoDExport(),
    )
    return dataclasses.replace(context, **changes)  # type: ignore[arg-type]


def make_handler(
    cls: type[RequestHandler],
    uri: str = "/",
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    **settings: Any,
) -> Any:
    """A handler of ``cls`` for one request, on no connection: its ``finish`` records.

    The texts it would send are in ``handler.finished``; nothing reaches a socket.
    """
    application = web.Application([], **settings)
    request = HTTPServerRequest(
        headers=HTTPHeaders({"Host": "127.0.0.1", **(headers or {})}),
        body=body,
        start_line=RequestStartLine(method, uri, "HTTP/1.1"),
        connection=mock.Mock(),
    )
    handler = cls(application, request)
    finished: list[Any] = []
    handler.finished = finished
    handler.finish = lambda chunk=None: finished.append(chunk)
    return handler
