"""BinderHub's answer to a build request, as it arrives: status, headers, then events.

:class:`BuildStream` is fed by tornado's ``header_callback`` and ``streaming_callback``
of one streamed GET (:mod:`eohub.adapters.binderhub_build` sends it) and hands the
``text/event-stream`` events it parses to the coroutine that follows the build, one at
a time, with a limit on silence. An answer that is not an event stream (an error page,
a redirect) is kept, up to a bound, for the error message.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from eohub.domain.repos.build_events import BuildEvent, EventStreamError, EventStreamParser

ERROR_BODY_LIMIT = 64 * 1024
_STATUS_LINE = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})\s*(.*)")


class StreamStalled(Exception):
    """BinderHub sent nothing, not even a keep-alive, for the idle timeout."""


class BuildStream:
    """What the HTTP callbacks saw, read by the coroutine that follows the build."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.last_activity = loop.time()
        self.status: int | None = None
        self.reason = ""
        self.content_type = ""
        self.location = ""
        self.body = bytearray()
        #: Why the event stream could not be parsed on ("" while it can).
        self.broken = ""
        self._parser = EventStreamParser()
        # None marks the end of the answer, whether complete or broken.
        self._queue: asyncio.Queue[BuildEvent | None] = asyncio.Queue()
        self._getter: asyncio.Future[BuildEvent | None] | None = None

    @property
    def streaming(self) -> bool:
        return (
            self.status is not None
            and 200 <= self.status < 300
            and self.content_type.startswith("text/event-stream")
        )

    def on_header(self, line: str) -> None:
        """tornado's ``header_callback``: the status line, then one header per call."""
        self.last_activity = self.loop.time()
        if self.status is None:
            match = _STATUS_LINE.match(line.strip())
            if match:
                self.status, self.reason = int(match.group(1)), match.group(2)
            return
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            self.content_type = value.strip().lower()
        elif name.strip().lower() == "location":
            self.location = value.strip()

    def on_chunk(self, chunk: bytes) -> None:
        """tornado's ``streaming_callback``: events from a stream, else the error body."""
        self.last_activity = self.loop.time()
        if not self.streaming:
            room = ERROR_BODY_LIMIT - len(self.body)
            self.body.extend(chunk[: max(room, 0)])
            return
        if self.broken:
            return
        try:
            events = self._parser.feed(chunk)
        except EventStreamError as e:
            self.broken = str(e)
            self._queue.put_nowait(None)
            return
        for event in events:
            self._queue.put_nowait(event)

    def end(self, _fetch: Any = None) -> None:
        """The answer is over (a done callback of the fetch)."""
        self._queue.put_nowait(None)

    async def next_event(self, idle_timeout: float) -> BuildEvent | None:
        """The next event, or None once the answer ended.

        Raises :class:`StreamStalled` when nothing arrived for ``idle_timeout`` seconds.
        """
        while True:
            if self._getter is None:
                self._getter = asyncio.ensure_future(self._queue.get())
            remaining = self.last_activity + idle_timeout - self.loop.time()
            if remaining <= 0:
                raise StreamStalled
            await asyncio.wait({self._getter}, timeout=remaining)
            if self._getter.done():
                event, self._getter = self._getter.result(), None
                return event

    def final_events(self) -> list[BuildEvent]:
        """The events completed by the very last bytes of a stream that ended whole."""
        return self._parser.close() if self.streaming else []

    def close(self) -> None:
        if self._getter is not None:
            self._getter.cancel()
