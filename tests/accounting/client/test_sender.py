"""The outbox's sender: batches oldest first, backs off, dead-letters, and never gets stuck."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from eohub.accounting.client.outbox import Outbox
from eohub.accounting.client.sender import Delivery, OutboxSender, backoff_delay
from tests.accounting.client.outbox_support import start, stop

T = TypeVar("T")
# The sender logs through its module's logger.
LOG = logging.getLogger("eohub.accounting.client.sender")


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite")


# -- back-off ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "longest"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (9, 60.0), (10_000, 60.0)],
)
def test_back_off_doubles_up_to_the_maximum_with_jitter_in_the_upper_half(
    failures: int, longest: float
) -> None:
    assert backoff_delay(failures, 1.0, 60.0, uniform=lambda a, b: b) == longest
    assert backoff_delay(failures, 1.0, 60.0, uniform=lambda a, b: a) == longest / 2
    assert longest / 2 <= backoff_delay(failures, 1.0, 60.0) <= longest


# -- the sender, against a scripted service ------------------------------------------


class Script:
    """A stand-in for the client's HTTP call: records batches, answers as told."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.replies: list[Delivery | Exception] = []
        self.refuse_user = ""  # events of this user are refused...
        self.name_events = True  # ...naming them, or only the batch
        self.called = asyncio.Event()

    async def __call__(self, events: list[Any]) -> Delivery:
        self.batches.append([e["id"] for e in events])
        self.called.set()
        if self.replies:
            reply = self.replies.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        bad = [i for i, e in enumerate(events) if e["user"] == self.refuse_user]
        if bad and self.name_events:
            return Delivery("rejected", errors={f"events[{i}].user": "is blocked" for i in bad})
        if bad:
            return Delivery("rejected", errors={"events": "something in here is wrong"})
        return Delivery("accepted")

    @property
    def delivered(self) -> list[str]:
        return [i for batch in self.batches for i in batch]


def thread_io(outbox: Outbox) -> Callable[[Callable[[Outbox], T]], Awaitable[T]]:
    def io(call: Callable[[Outbox], T], /) -> Awaitable[T]:
        return asyncio.to_thread(call, outbox)

    return io


def sender_for(outbox: Outbox, script: Script, **settings: Any) -> OutboxSender:
    settings.setdefault("retry_initial_delay", 0.01)
    settings.setdefault("retry_max_delay", 0.05)
    return OutboxSender(io=thread_io(outbox), send=script, **settings)


async def test_the_sender_empties_the_outbox_in_order_in_batches(outbox: Outbox) -> None:
    events = [e for i in range(4) for e in (start(i), stop(i))]
    outbox.put(events)
    script = Script()
    sender = sender_for(outbox, script, batch_size=3)
    assert await sender.flush(5)
    await sender.stop()
    assert [len(b) for b in script.batches] == [3, 3, 2]
    assert script.delivered == [e["id"] for e in events]
    assert outbox.count() == 0


async def test_failed_sends_are_retried_with_back_off_and_logged_once(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, LOG.name)
    outbox.put([start(1)])
    script = Script()
    script.replies = [Delivery("retry", problem="HTTP 503")] * 3
    sender = sender_for(outbox, script)
    assert await sender.flush(5)
    await sender.stop()
    assert len(script.batches) == 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["Accounting events stay queued: HTTP 503"]
    assert "Accounting events delivered after 3 retries" in caplog.messages


async def test_flush_gives_up_after_its_timeout_and_keeps_the_events(outbox: Outbox) -> None:
    outbox.put([start(1)])
    script = Script()
    script.replies = [Delivery("retry", problem="down")] * 10_000
    sender = sender_for(outbox, script)
    assert not await sender.flush(0.2)
    await sender.stop()
    assert outbox.count() == 1


async def test_the_sender_survives_any_exception(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    outbox.put([start(1)])
    script = Script()
    script.replies = [RuntimeError("boom")]
    sender = sender_for(outbox, script)
    assert await sender.flush(5)
    assert sender.running
    await sender.stop()
    assert "Sending accounting events failed; they stay queued" in caplog.messages
    assert script.delivered == [start(1)["id"]] * 2


async def test_named_refusals_are_dead_lettered_and_the_rest_go_on_in_order(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    events = [start(1), start(2, user="mallory"), start(3), stop(2, user="mallory"), stop(1)]
    outbox.put(events)
    script = Script()
    script.refuse_user = "mallory"
    sender = sender_for(outbox, script, batch_size=10)
    assert await sender.flush(5)
    await sender.stop()
    good = [e["id"] for e in events if e["user"] != "mallory"]
    assert script.batches == [[e["id"] for e in events], good]
    dead = outbox.dead_letters()
    assert [d.event for d in dead] == [events[1], events[3]]
    assert all(d.errors == {"user": "is blocked"} for d in dead)
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(logged) == 2
    assert '{"user": "is blocked"}' in logged[0].getMessage()


async def test_an_unnamed_refusal_is_halved_down_to_the_bad_event(outbox: Outbox) -> None:
    events = [start(i) for i in range(8)]
    events[5] = start(5, user="mallory")
    outbox.put(events)
    script = Script()
    script.refuse_user = "mallory"
    script.name_events = False
    sender = sender_for(outbox, script, batch_size=8)
    assert await sender.flush(5)
    await sender.stop()
    ids = [e["id"] for e in events]
    [dead] = outbox.dead_letters()
    assert dead.event == events[5]
    assert dead.errors == {"events": "something in here is wrong"}
    accepted = [b for b in script.batches if ids[5] not in b]
    assert [i for b in accepted for i in b] == ids[:5] + ids[6:]  # still in order
    assert len(script.batches) <= 12  # about log2(8) per round, not one per event


async def test_rows_that_are_no_longer_valid_events_are_dead_lettered_unsent(
    outbox: Outbox,
) -> None:
    broken = dict(start(2), cpu=0)
    outbox.put([start(1), broken, start(3)])
    with sqlite3.connect(outbox.path) as db:
        db.execute("INSERT INTO outbox (event_id, body, queued_at) VALUES ('x', '{oops', 'now')")
    script = Script()
    sender = sender_for(outbox, script)
    assert await sender.flush(5)
    await sender.stop()
    assert script.delivered == [start(1)["id"], start(3)["id"]]
    dead = outbox.dead_letters()
    assert [d.event for d in dead] == [broken, "{oops"]
    assert [d.errors for d in dead] == [
        {"cpu": "must be greater than 0"},
        {"body": "must be a JSON object"},
    ]


@pytest.mark.parametrize("steps", range(4))
async def test_stop_ends_the_sender_even_as_its_back_off_is_cut_short(
    outbox: Outbox, steps: int
) -> None:
    outbox.put([start(1)])
    script = Script()
    script.replies = [Delivery("retry", problem="down")] * 10_000
    sender = sender_for(outbox, script, retry_initial_delay=5, retry_max_delay=5)
    sender.start()
    await script.called.wait()
    await asyncio.sleep(0.05)  # into the 5 s back-off
    assert sender.failures == 1
    # flush() wakes the back-off; a cancel that lands while the wake-up is under way
    # must still end the task (asyncio.wait_for on Python 3.11 swallows it).
    sender._kick.set()
    for _ in range(steps):
        await asyncio.sleep(0)
    async with asyncio.timeout(2):
        await sender.stop()
    assert not sender.running
