"""BuildStream: what tornado's callbacks hand over becomes status, headers and events."""

from __future__ import annotations

import asyncio

import pytest

from eohub.adapters.binderhub_stream import ERROR_BODY_LIMIT, BuildStream, StreamStalled

STREAM_HEADERS = ["HTTP/1.1 200 OK\r\n", "Content-Type: text/event-stream; charset=UTF-8\r\n"]


def fed(headers: list[str]) -> BuildStream:
    stream = BuildStream(asyncio.new_event_loop())
    for line in headers:
        stream.on_header(line)
    stream.loop.close()
    return stream


@pytest.mark.parametrize(
    ("headers", "status", "reason", "content_type", "location", "streaming"),
    [
        (STREAM_HEADERS, 200, "OK", "text/event-stream; charset=utf-8", "", True),
        (["HTTP/2 403 Forbidden\r\n", "content-type: text/html\r\n"], 403, "Forbidden",
         "text/html", "", False),
        (["HTTP/1.1 302 Found\r\n", "Location: /hub/login?next=x\r\n"], 302, "Found", "",
         "/hub/login?next=x", False),
        (["HTTP/1.0 204\r\n"], 204, "", "", "", False),
        # Headers before a status line are not taken for one.
        (["garbage\r\n", "HTTP/1.1 200 OK\r\n", "Content-Type: text/event-stream\r\n"], 200,
         "OK", "text/event-stream", "", True),
        (["HTTP/1.1 500 Oops\r\n", "Content-Type: text/event-stream\r\n"], 500, "Oops",
         "text/event-stream", "", False),
    ],
)  # fmt: skip
def test_the_status_line_and_headers_are_read(
    headers: list[str],
    status: int,
    reason: str,
    content_type: str,
    location: str,
    streaming: bool,
) -> None:
    stream = fed(headers)
    assert (stream.status, stream.reason) == (status, reason)
    assert (stream.content_type, stream.location) == (content_type, location)
    assert stream.streaming is streaming


def test_an_error_body_is_kept_up_to_its_bound() -> None:
    stream = fed(["HTTP/1.1 400 Bad Request\r\n", "Content-Type: text/html\r\n"])
    stream.on_chunk(b"x" * (ERROR_BODY_LIMIT - 10))
    stream.on_chunk(b"y" * 100)
    assert len(stream.body) == ERROR_BODY_LIMIT
    assert stream.final_events() == []


async def test_events_arrive_in_order_then_the_end() -> None:
    stream = BuildStream(asyncio.get_running_loop())
    for line in STREAM_HEADERS:
        stream.on_header(line)
    stream.on_chunk(b'data: {"phase": "building", "message": "Step 1"}\n\n')
    stream.on_chunk(b'data: {"phase": "ready", "imageName": "r/x:1"}\r\n\r')
    stream.end()
    first = await stream.next_event(1.0)
    assert first is not None
    assert first.phase == "building"
    assert await stream.next_event(1.0) is None
    # A lone CR may be half a CRLF until the stream ends: then it closes the last event.
    (last,) = stream.final_events()
    assert last.image_name == "r/x:1"
    stream.close()


async def test_silence_beyond_the_idle_timeout_stalls() -> None:
    stream = BuildStream(asyncio.get_running_loop())
    with pytest.raises(StreamStalled):
        await stream.next_event(0.05)
    stream.close()


async def test_an_unparsable_stream_ends_with_the_reason() -> None:
    stream = BuildStream(asyncio.get_running_loop())
    for line in STREAM_HEADERS:
        stream.on_header(line)
    stream.on_chunk(b"data: " + b"x" * (1 << 24))
    assert stream.broken
    assert await stream.next_event(1.0) is None
    stream.close()
