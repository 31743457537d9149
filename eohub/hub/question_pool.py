"""The home pages' questions to the accounting service: few at once, each asked once.

The home pages share one client, and so one pool of connections, with the spawns; a
pool here keeps the pages' share small however many pages, servers or users there are:

- a question still in flight, from this page or another, is shared rather than asked
  again (by its key);
- at most ``slots`` questions are asked at once: another waits for a slot, and no longer
  than its page does, so a slow service builds no queue of page questions;
- a question that got no slot by its deadline answers the pool's ``fallback``.

The budget questions (:mod:`eohub.hub.budgets`) and the stop reasons
(:mod:`eohub.hub.stops`) each keep one.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class QuestionPool(ABC, Generic[K, V]):
    """Questions in flight by key ``K``, answering ``V``, and their slots (one set per
    event loop). A subclass says how a question is answered (:meth:`_answer`) and may
    say why one went unasked (:meth:`_no_slot`) or rebuild its own loop-bound parts
    (:meth:`_new_loop`)."""

    def __init__(self, slots: int, fallback: V) -> None:
        self.slots = slots
        self.fallback = fallback
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = asyncio.Semaphore(slots)
        self._in_flight: dict[K, asyncio.Future[V]] = {}

    @property
    def in_flight(self) -> int:
        """Questions asked or waiting for a slot now."""
        return len(self._in_flight)

    def _pooled(self, key: K, deadline: float) -> asyncio.Future[V]:
        """The answer for ``key``: the question in flight, else a new one that waits for
        a free slot until ``deadline`` (the loop's clock) and answers the fallback if none
        came. The caller must not cancel it: other pages may share it."""
        self._bind()
        found = self._in_flight.get(key)
        if found is not None:
            return found
        task = asyncio.ensure_future(self._ask(key, deadline))
        self._in_flight[key] = task
        task.add_done_callback(lambda done: self._done(key, done))
        return task

    @abstractmethod
    async def _answer(self, key: K) -> V:
        """The answer to ``key``'s question, asked in a slot; it answers its own failures."""

    def _no_slot(self, key: K) -> None:
        """No slot came free for ``key`` by its deadline."""

    def _new_loop(self) -> None:
        """The pool now serves another event loop."""

    def _bind(self) -> None:
        # Each loop (each test, each hub process) gets its own slots: an asyncio
        # semaphore and futures belong to the loop they were first used in.
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._free = asyncio.Semaphore(self.slots)
            self._new_loop()
            self._in_flight = {}

    async def _ask(self, key: K, deadline: float) -> V:
        try:
            async with asyncio.timeout_at(deadline):
                await self._free.acquire()
        except TimeoutError:
            self._no_slot(key)
            return self.fallback
        try:
            return await self._answer(key)
        finally:
            self._free.release()

    def _done(self, key: K, task: asyncio.Future[V]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # None: _answer answers its own failures


__all__ = ["QuestionPool"]
