"""AbortableHTTPClient: a streaming request that abort() cuts off; a fetch's problem, read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tornado import web
from tornado.httpclient import HTTPRequest, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from eohub.adapters.abortable_http import AbortableHTTPClient, fetch_problem, observe


class Endless(web.RequestHandler):
    """Streams a line every few milliseconds until the client goes away."""

    closed: asyncio.Event

    async def get(self) -> None:
        try:
            while True:
                self.write("line\n")
                await self.flush()
                await asyncio.sleep(0.01)
        except Exception:
            Endless.closed.set()


@pytest.fixture
async def endless() -> AsyncIterator[str]:
    Endless.closed = asyncio.Event()
    sock, port = bind_unused_port()
    server = HTTPServer(web.Application([(r"/stream", Endless)]))
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{port}/stream"
    finally:
        server.stop()


async def test_abort_cuts_off_a_streaming_request(endless: str) -> None:
    client = AbortableHTTPClient(force_instance=True)
    lines: list[bytes] = []
    got_some = asyncio.Event()

    def on_chunk(chunk: bytes) -> None:
        lines.append(chunk)
        got_some.set()

    fetch = asyncio.ensure_future(
        client.fetch(HTTPRequest(endless, streaming_callback=on_chunk, request_timeout=60))
    )
    try:
        await asyncio.wait_for(got_some.wait(), 10)
        client.abort()
        await asyncio.wait_for(asyncio.wait([fetch]), 10)
        await asyncio.wait_for(Endless.closed.wait(), 10)  # the server saw it go
    finally:
        client.close()
    assert lines
    assert fetch_problem(fetch) is not None
    observe(fetch)


async def test_a_client_aborted_before_it_connects_closes_the_new_connection(
    endless: str,
) -> None:
    client = AbortableHTTPClient(force_instance=True)
    client.abort()
    try:
        fetch = asyncio.ensure_future(client.fetch(endless, raise_error=False))
        await asyncio.wait_for(asyncio.wait([fetch]), 10)
    finally:
        client.close()
    assert fetch_problem(fetch) is not None


def finished(
    result: HTTPResponse | None = None, error: BaseException | None = None
) -> asyncio.Future[HTTPResponse]:
    future: asyncio.Future[HTTPResponse] = asyncio.get_running_loop().create_future()
    if error is not None:
        future.set_exception(error)
    elif result is not None:
        future.set_result(result)
    return future


async def test_fetch_problem_reads_why_a_fetch_broke_off() -> None:
    refused = ConnectionRefusedError("refused")
    pending = finished()
    assert fetch_problem(pending) is None
    broken = finished(error=refused)
    assert fetch_problem(broken) is refused
    cancelled = finished()
    cancelled.cancel()
    assert fetch_problem(cancelled) is None
    observe(cancelled)  # a cancelled fetch has nothing to see
    request = HTTPRequest("http://127.0.0.1/")
    ok = finished(HTTPResponse(request, 200))
    assert fetch_problem(ok) is None
    reset = ConnectionResetError("reset")
    no_answer = finished(HTTPResponse(request, 599, error=reset))
    assert fetch_problem(no_answer) is reset


async def test_observe_marks_an_error_as_seen(caplog: pytest.LogCaptureFixture) -> None:
    broken = finished(error=RuntimeError("never read"))
    observe(broken)
    del broken
    import gc

    gc.collect()
    await asyncio.sleep(0)
    assert "exception was never retrieved" not in caplog.text
