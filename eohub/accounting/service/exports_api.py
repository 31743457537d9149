"""``GET {prefix}api/export/<name>``: exports streamed to the browser or a script.

The store's iterators are synchronous and an export may read a million rows, so the
export runs in a worker thread and hands the handler chunks of text through a queue;
the event loop keeps serving quota checks meanwhile.
"""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from typing import TextIO, cast

from tornado import web
from tornado.iostream import StreamClosedError

from eohub.accounting.exports.config import EXPORTS, XDMoDExport, run_export
from eohub.accounting.service.api import QueryMixin
from eohub.domain.accounting.access import EXPORT_OPS
from eohub.domain.accounting.events import EventError
from eohub.domain.accounting.periods import PeriodKind, next_period_start, period_start

CHUNK = 256 * 1024


class ExportCancelled(Exception):
    """The client went away; the export thread stops at its next chunk."""


class _QueueWriter(io.TextIOBase):
    """A text stream whose writes reach the event loop's queue in large chunks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
        self.loop = loop
        self.queue = queue
        self.buffer: list[str] = []
        self.size = 0
        self.cancelled = False

    def write(self, text: str) -> int:
        self.buffer.append(text)
        self.size += len(text)
        if self.size >= CHUNK:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.cancelled:
            raise ExportCancelled
        if self.buffer:
            chunk = "".join(self.buffer)
            self.buffer, self.size = [], 0
            asyncio.run_coroutine_threadsafe(self.queue.put(chunk), self.loop).result()


class ExportHandler(QueryMixin):
    async def get(self, name: str) -> None:
        caller = self.caller
        assert caller is not None
        if name not in EXPORTS:
            raise web.HTTPError(404, f"No export {name!r}; there are {', '.join(EXPORTS)}.")
        op = EXPORT_OPS[name]
        self.authorise(op)
        # A PI exports exactly their groups' rows, one group per file.
        selection = self.select(op, group=self.name_argument("group"))
        if selection.groups is not None and len(selection.groups) != 1:
            led = ", ".join(sorted(selection.groups))
            raise EventError({"group": f"choose one of your groups: {led}"})
        group = next(iter(selection.groups)) if selection.groups is not None else None
        now = self.service.store.clock()
        this_month = period_start(PeriodKind.MONTH, now)
        last_month = period_start(PeriodKind.MONTH, this_month - timedelta(days=1))
        start = self.time_argument("from", last_month)
        end = self.time_argument("to", next_period_start(PeriodKind.MONTH, this_month))
        if end <= start:
            raise EventError({"to": "must be after from"})
        settings = XDMoDExport(parent=self.service)
        stem = f"eohub-{start:%Y%m%d}-{end:%Y%m%d}"
        self.set_header("Content-Type", EXPORTS[name])
        self.set_header("Content-Disposition", f'attachment; filename="{stem}-{name}"')
        self.set_header("Cache-Control", "no-store")

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=8)
        writer = _QueueWriter(loop, queue)

        def produce() -> int:
            try:
                written = run_export(
                    name,
                    self.service.store,
                    settings,
                    cast(TextIO, writer),
                    start,
                    end,
                    group=group,
                )
                writer.flush()
                return written
            finally:
                asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

        task = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while (chunk := await queue.get()) is not None:
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            writer.cancelled = True
            while await queue.get() is not None:  # let the thread finish its last put
                pass
        try:
            written = await task
        except ExportCancelled:
            self.service.log.info("Export %s cancelled: the client went away", name)
            return
        self.service.log.info("Export %s (%d rows) for %s", name, written, caller.name)
        self.finish()
