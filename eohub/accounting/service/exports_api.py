"""``GET {prefix}api/export/<name>``: exports streamed to the browser or a script.

The store's iterators are synchronous and an export may read a million rows, so the
export runs in a worker thread and hands the handler chunks of text through a queue;
the event loop keeps serving quota checks meanwhile.
"""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timedelta
from typing import TextIO, cast

from tornado import web
from tornado.iostream import StreamClosedError

from eohub.accounting.exports.config import EXPORTS, run_export
from eohub.accounting.service.api import QueryMixin
from eohub.domain.accounting.access import EXPORT_OPS
from eohub.domain.accounting.events import EventError
from eohub.domain.accounting.periods import PeriodKind, next_period_start, period_start
from eohub.logs import get_logger

log = get_logger(__name__)

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
        group = self.export_group(name)
        start, end = self.export_range()
        stem = f"eohub-{start:%Y%m%d}-{end:%Y%m%d}"
        self.set_header("Content-Type", EXPORTS[name])
        self.set_header("Content-Disposition", f'attachment; filename="{stem}-{name}"')
        self.set_header("Cache-Control", "no-store")
        try:
            written = await self.stream(name, start, end, group)
        except ExportCancelled:
            log.info("Export {name} cancelled: the client went away", name=name)
            return
        log.info(
            "Export {name} ({rows} rows) for {caller}", name=name, rows=written, caller=caller.name
        )
        self.finish()

    def export_group(self, name: str) -> str | None:
        """The one group the caller exports (a PI's), or None for every group; else 403."""
        op = EXPORT_OPS[name]
        self.authorise(op)
        # A PI exports exactly their groups' rows, one group per file.
        selection = self.select(op, group=self.name_argument("group"))
        if selection.groups is not None and len(selection.groups) != 1:
            led = ", ".join(sorted(selection.groups))
            raise EventError({"group": f"choose one of your groups: {led}"})
        return next(iter(selection.groups)) if selection.groups is not None else None

    def export_range(self) -> tuple[datetime, datetime]:
        """``from`` and ``to``; by default last month and this one."""
        this_month = period_start(PeriodKind.MONTH, self.context.clock())
        last_month = period_start(PeriodKind.MONTH, this_month - timedelta(days=1))
        start = self.time_argument("from", last_month)
        end = self.time_argument("to", next_period_start(PeriodKind.MONTH, this_month))
        if end <= start:
            raise EventError({"to": "must be after from"})
        return start, end

    async def stream(self, name: str, start: datetime, end: datetime, group: str | None) -> int:
        """Write the export in a worker thread, sending its chunks as they come.

        Returns the rows written; raises :class:`ExportCancelled` when the client went
        away before the end.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=8)
        writer = _QueueWriter(loop, queue)
        context = self.context

        def produce() -> int:
            try:
                written = run_export(
                    name,
                    context.store,
                    context.exports,
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
        return await task
