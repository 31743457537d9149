"""An HTTP client for one long streaming request that the caller can cut off at any time.

tornado's clients end a request only when it completes or times out. A build stream
(:mod:`eohub.adapters.binderhub_build`) must be closed the moment eohub gives up on it
(a failure event, a stalled build, a cancelled spawn), so that the server stops its
work: this client remembers the sockets it opens and :meth:`AbortableHTTPClient.abort`
closes them. It relies on tornado's ``SimpleAsyncHTTPClient.tcp_client`` attribute.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado.httpclient import HTTPResponse
from tornado.iostream import IOStream
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from tornado.tcpclient import TCPClient


class _TrackingTCPClient(TCPClient):
    """A TCPClient that remembers its streams, so a request can be cut off at any time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.streams: list[IOStream] = []
        self.aborted = False

    async def connect(self, *args: Any, **kwargs: Any) -> IOStream:
        stream = await super().connect(*args, **kwargs)
        self.streams.append(stream)
        if self.aborted:  # cut off while it was still connecting
            stream.close()
        return stream

    def abort(self) -> None:
        self.aborted = True
        for stream in self.streams:
            stream.close()


class AbortableHTTPClient(SimpleAsyncHTTPClient):
    """A private HTTP client (``force_instance=True``) whose connection :meth:`abort` closes."""

    def initialize(self, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(**kwargs)
        self.tcp_client.close()
        self.tracker = _TrackingTCPClient(resolver=self.resolver)
        self.tcp_client = self.tracker

    def abort(self) -> None:
        self.tracker.abort()


def observe(fetch: asyncio.Future[HTTPResponse]) -> None:
    """Mark a fetch's error as seen: it is read through :func:`fetch_problem`, or not needed."""
    if not fetch.cancelled():
        fetch.exception()


def fetch_problem(fetch: asyncio.Future[HTTPResponse]) -> BaseException | None:
    """Why a finished fetch broke off (connection refused, reset...), if it did."""
    if not fetch.done() or fetch.cancelled():
        return None
    error = fetch.exception()
    if error is None and fetch.result().code == 599:
        error = fetch.result().error
    return error


__all__ = ["AbortableHTTPClient", "fetch_problem", "observe"]
