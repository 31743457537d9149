"""The outbox on its own worker thread, with the events of concurrent spawns committed together.

Every :class:`~eohub.accounting.client.outbox.Outbox` call blocks on the disk, so all of
them run on one worker thread, one at a time, and never on the hub's event loop. When a
class starts its servers at once, the starts recorded while one commit is syncing wait for
the next one, together: one fsync per batch instead of one per server, and each caller
still returns only once its own event is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from eohub.accounting.client.outbox import Outbox

T = TypeVar("T")


class OutboxThread:
    """The outbox file at ``path()``, opened on first use; see the module docstring."""

    def __init__(self, path: Callable[[], str]) -> None:
        self._path = path
        self._outbox: Outbox | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._open_lock = asyncio.Lock()
        self._waiting: list[tuple[Mapping[str, Any], asyncio.Future[bool]]] = []
        self._committing: asyncio.Task[None] | None = None

    async def open(self) -> tuple[Outbox, ThreadPoolExecutor]:
        """Open the file (raising OutboxError if it cannot be used)."""
        async with self._open_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="eohub-outbox")
            if self._outbox is None:
                self._outbox = await asyncio.get_running_loop().run_in_executor(
                    self._executor, Outbox, self._path()
                )
            return self._outbox, self._executor

    async def run(self, call: Callable[[Outbox], T], /) -> T:
        """``call(outbox)`` on the worker thread."""
        outbox, executor = await self.open()
        return await asyncio.get_running_loop().run_in_executor(executor, call, outbox)

    async def put(self, event: Mapping[str, Any]) -> bool:
        """Commit ``event``; True if it was new. Raises what the commit raised."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_waiting())
            self._committing.add_done_callback(self._cancel_waiting)
        return await done

    def _cancel_waiting(self, task: asyncio.Task[None]) -> None:
        """A commit task cancelled (even before it ran) cancels the callers it left."""
        if task.cancelled() or task.exception() is not None:
            for _, done in self._waiting:
                if not done.done():
                    done.cancel()
            self._waiting = []

    async def _commit_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                new = await self.run(_put_new([event for event, _ in batch]))
            except BaseException as e:
                # Each caller gets the failure; a cancel cancels them, and ends the task.
                for _, done in batch:
                    if not done.done():
                        if isinstance(e, Exception):
                            done.set_exception(e)
                        else:
                            done.cancel()
                if not isinstance(e, Exception):
                    raise
                continue
            for event, done in batch:
                if not done.done():
                    done.set_result(event["id"] in new)

    async def close(self) -> None:
        """Finish the commits under way, then close the file; :meth:`open` opens it again."""
        if self._committing is not None:
            await asyncio.gather(self._committing, return_exceptions=True)
        async with self._open_lock:
            outbox, self._outbox = self._outbox, None
            executor, self._executor = self._executor, None
            if outbox is not None and executor is not None:
                await asyncio.get_running_loop().run_in_executor(executor, outbox.close)
            if executor is not None:
                executor.shutdown(wait=False)


def _put_new(events: list[Mapping[str, Any]]) -> Callable[[Outbox], set[str]]:
    return lambda outbox: outbox.put_new(events)


__all__ = ["OutboxThread"]
