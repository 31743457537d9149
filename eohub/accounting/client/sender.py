"""Sending the outbox: the background task that delivers queued events to the service.

:class:`OutboxSender` sends the oldest events first, in batches, and acts on what the
service answered (:class:`Delivery`): delete what was stored, dead-letter what was
refused for good, retry after :func:`backoff_delay` when there was no verdict. The queue
itself is :class:`~eohub.accounting.client.outbox.Outbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from eohub.accounting.client.outbox import Outbox
from eohub.domain.accounting.events import EventError, parse_event
from eohub.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Delivery:
    """What became of one batch sent to the service.

    ``accepted``: stored (or already known); delete the rows. ``rejected``: refused
    for good, with the service's ``errors`` (``{"events[3].cpu": "..."}``); unnamed
    errors send the batch in halves down to the one bad event. ``refused``: a 4xx that
    judges no event in particular (a refused token, a wrong URL): every row of the batch
    becomes a dead letter with ``errors`` (status and message), logged once. ``retry``:
    no verdict (down, slow, failing); ``problem`` says why, for the log.
    """

    outcome: Literal["accepted", "rejected", "refused", "retry"]
    errors: dict[str, str] = field(default_factory=dict)
    problem: str = ""


class OutboxIO(Protocol):
    """Runs a call on the outbox off the event loop, e.g. on the client's worker thread."""

    def __call__(self, call: Callable[[Outbox], T], /) -> Awaitable[T]: ...


SendBatch = Callable[[list[Any]], Awaitable[Delivery]]
# A batch error names its event as ``events[3].cpu``.
_EVENT_FIELD = re.compile(r"^events\[(\d+)\](?:\.(.+))?$")


def backoff_delay(
    failures: int,
    initial: float,
    maximum: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row.

    The ceiling doubles from ``initial`` up to ``maximum``; the delay is a random point
    in its upper half, so hubs that lost the service together do not retry in step.
    """
    ceiling = min(maximum, initial * 2 ** min(max(failures, 1) - 1, 62))
    return uniform(ceiling / 2, ceiling)


class OutboxSender:
    """A background task that sends the outbox oldest first, in batches, until empty.

    It sleeps until :meth:`notify` says events were queued. A failed send is retried
    after :func:`backoff_delay`; any exception is logged and retried the same way, so
    the task lives until :meth:`stop`. Events are deleted only after the service
    accepted them, so a send cut short sends them again; the service's idempotency
    keys make that harmless.
    """

    def __init__(
        self,
        *,
        io: OutboxIO,
        send: SendBatch,
        batch_size: int = 500,
        retry_initial_delay: float = 1.0,
        retry_max_delay: float = 300.0,
    ) -> None:
        self._io = io
        self._send = send
        self.batch_size = batch_size
        self.retry_initial_delay = retry_initial_delay
        self.retry_max_delay = retry_max_delay
        self.failures = 0  # failed passes in a row
        self._refusals_logged: set[str] = set()  # causes of refused batches, logged once
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # events were queued
        self._kick = asyncio.Event()  # flush(): retry now, even during a back-off
        self._progress = asyncio.Event()  # a pass ended, whatever its outcome

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task (in the running event loop) unless it runs already."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="eohub-accounting-sender")

    def notify(self) -> None:
        """Events were queued: send them, unless the sender is backing off."""
        self._wake.set()

    # Not asyncio.timeout(): running out of time is an answer (False), not an error.
    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Send now; wait until the outbox is empty (True) or ``timeout`` passes (False)."""
        self.start()
        self._kick.set()
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._progress.clear()
            if await self._io(Outbox.count) == 0:
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._progress.wait()

    async def stop(self) -> None:
        """Cancel the task; a batch in flight is sent again after the next start."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait(), not `await task`: a cancel of our caller must reach our caller,
            # not be taken for the task's own end.
            await asyncio.wait([task])

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                emptied = await self._drain()
            except Exception:
                # Whatever broke (the disk, a bug), the events are still in the outbox.
                log.exception("Sending accounting events failed; they stay queued")
                emptied = False
            self._progress.set()
            if emptied:
                if self.failures:
                    log.info(
                        "Accounting events delivered after {retries} retries",
                        retries=self.failures,
                    )
                self.failures = 0
                await self._wake.wait()
                continue
            self.failures += 1
            delay = backoff_delay(self.failures, self.retry_initial_delay, self.retry_max_delay)
            self._kick.clear()
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for swallows a
            # cancel that arrives as the wait ends, and stop() would wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._kick.wait()

    async def _drain(self) -> bool:
        """Send batches until the outbox is empty (True) or a send fails (False)."""
        while True:
            rows = await self._io(lambda o: o.peek(self.batch_size))
            if not rows:
                return True
            if not await self._deliver(rows):
                return False

    async def _deliver(self, rows: list[tuple[int, Any]]) -> bool:
        """Send ``rows`` once; True if the outbox changed, False to back off.

        After a rejection the drain loop peeks again, so the events that remain go
        next, still oldest first.
        """
        # Rows from another eohub version, or edited by hand, are checked again: the
        # service would refuse them anyway, and they must not hold up the others.
        invalid: dict[int, dict[str, str]] = {}
        for rowid, event in rows:
            try:
                parse_event(event)
            except EventError as e:
                invalid[rowid] = e.errors
        if invalid:
            await self._dead_letter(invalid, rows)
            return True
        delivery = await self._send([event for _, event in rows])
        if delivery.outcome == "accepted":
            sent = [rowid for rowid, _ in rows]
            await self._io(lambda o: o.delete(sent))
            self._refusals_logged.clear()  # the next refusal is news again
            return True
        if delivery.outcome == "rejected":
            return await self._rejected(rows, delivery.errors)
        if delivery.outcome == "refused":
            await self._refused(rows, delivery)
            return True
        # The first failure in a row is worth a warning; the retries after it are noise.
        level = logging.WARNING if self.failures == 0 else logging.DEBUG
        log.log(level, "Accounting events stay queued: {problem}", problem=delivery.problem)
        return False

    async def _rejected(self, rows: list[tuple[int, Any]], errors: dict[str, str]) -> bool:
        named: dict[int, dict[str, str]] = {}
        for key, message in errors.items():
            match = _EVENT_FIELD.match(key)
            if match and int(match[1]) < len(rows):
                named.setdefault(rows[int(match[1])][0], {})[match[2] or "event"] = message
        if named:
            await self._dead_letter(named, rows)
            return True
        if len(rows) == 1:
            await self._dead_letter({rows[0][0]: errors or {"event": "refused"}}, rows)
            return True
        # The service did not say which event it refused. Send the older half alone:
        # it goes through or is halved again, down to the one bad event. That costs
        # about log2(batch) requests per bad event, and keeps the order.
        log.warning(
            "The accounting service refused {count} events without naming one, sending "
            "halves: {errors}",
            count=len(rows),
            errors=json.dumps(errors, sort_keys=True),
        )
        return await self._deliver(rows[: len(rows) // 2])

    async def _refused(self, rows: list[tuple[int, Any]], delivery: Delivery) -> None:
        """Dead-letter a whole batch: one error per cause, not one per event."""
        reasons = delivery.errors or {"event": "refused"}
        await self._io(lambda o: o.dead_letter({rowid: reasons for rowid, _ in rows}))
        level = logging.DEBUG if delivery.problem in self._refusals_logged else logging.ERROR
        self._refusals_logged.add(delivery.problem)
        log.log(
            level,
            "{count} accounting events refused for good, kept as dead letters {first} to "
            "{last} (fix the cause, then AccountingClient.requeue_dead_letters() sends them "
            "again): {problem}",
            count=len(rows),
            first=rows[0][0],
            last=rows[-1][0],
            problem=delivery.problem,
        )

    async def _dead_letter(
        self, errors: dict[int, dict[str, str]], rows: list[tuple[int, Any]]
    ) -> None:
        await self._io(lambda o: o.dead_letter(errors))
        events = dict(rows)
        for rowid, fields in errors.items():
            event = events.get(rowid)
            log.error(
                "Accounting event {event} refused for good, kept as dead letter {rowid}: {errors}",
                event=event.get("id") if isinstance(event, dict) else None,
                rowid=rowid,
                errors=json.dumps(fields, sort_keys=True),
            )
