"""The hub's durable outbox of accounting events, and the sender that empties it.

:class:`~eohub.accounting.client.AccountingClient` commits every event to the
:class:`Outbox` (one SQLite file) before ``record_start``/``record_stop`` return, and an
:class:`OutboxSender` task sends the rows oldest first through the client's HTTP call.
A row leaves the outbox only when the service has confirmed it, or when the service
rejected it for good; then it moves to the ``dead_letters`` table with the service's
field errors, where an admin can read it and requeue it.

Durability: WAL journal with ``synchronous=FULL``. In WAL mode ``NORMAL`` already
survives a killed hub, but the last commits may roll back when the machine or the
Kubernetes node loses power; ``FULL`` syncs the WAL on every commit. Starts and stops
are a few per second at most, so one fsync each costs nothing that matters, and a lost
start would leave a running server uncharged.

Every call is one short transaction, so two :class:`Outbox` objects on one file (two
clients in one hub, or a hub restarting while the old one still exits) wait for each
other's locks instead of failing. Row ids are ``AUTOINCREMENT`` so they are never
reused: a row id read by one object can never name another object's newer event.

:class:`Outbox` methods block (an fsync per write); the client runs them on one worker
thread, so the hub's event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from eohub.domain.accounting_events import EventError, parse_event

T = TypeVar("T")

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        body TEXT NOT NULL,
        queued_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS ix_outbox_event_id ON outbox (event_id)",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        body TEXT NOT NULL,
        errors TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        failed_at TEXT NOT NULL
    )""",
)


class OutboxError(RuntimeError):
    """The outbox file cannot be opened, read or written; the message names the file."""


@dataclass(frozen=True)
class DeadLetter:
    """An event the service rejected for good, with the field errors it gave."""

    rowid: int
    event: Any
    errors: dict[str, str]
    queued_at: str
    failed_at: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _decode(body: str) -> Any:
    # A row that is no longer JSON comes back as its text, so the sender can dead-letter
    # it instead of failing on it forever.
    try:
        return json.loads(body)
    except ValueError:
        return body


class Outbox:
    """Events waiting to be sent to the accounting service, oldest first.

    Parameters
    ----------
    path
        The SQLite file; created (mode 0600, it holds user names) with its tables if
        missing. It must be on a local file system: WAL does not work over NFS.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            # Autocommit mode: each method opens its own explicit transaction.
            self._db = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
        except (OSError, sqlite3.Error) as e:
            raise OutboxError(f"cannot open the accounting outbox {self.path}: {e}") from e
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        with self._transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"the accounting outbox {self.path} has schema version {version}, "
                    f"written by a newer eohub (this one knows {SCHEMA_VERSION}): "
                    "upgrade eohub in the hub image, or move the file aside"
                )
            if version < SCHEMA_VERSION:
                # Statement by statement: executescript() would commit the transaction.
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        with self._transaction(begin=False) as db:
            # journal_mode cannot change inside a transaction. A file system without
            # shared memory keeps the rollback journal: slower, equally durable.
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")

    @contextlib.contextmanager
    def _transaction(self, begin: bool = True) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                if begin:
                    # IMMEDIATE takes the write lock up front, so two objects on one file
                    # queue on busy_timeout instead of deadlocking on a lock upgrade.
                    self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                if self._db.in_transaction:
                    self._db.execute("COMMIT")
            except sqlite3.Error as e:
                raise OutboxError(f"accounting outbox {self.path}: {e}") from e

    def put(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Queue events in one committed transaction; return how many were new.

        An event whose ``id`` is already queued is skipped: the service keeps the first
        event of an id too, so the copy could change nothing.
        """
        now = _now()
        rows = []
        for event in events:
            event_id = event.get("id")
            if not isinstance(event_id, str) or not event_id:
                raise ValueError("an outbox event needs a non-empty string 'id'")
            rows.append((event_id, json.dumps(event, separators=(",", ":")), now))
        if not rows:
            return 0
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, body, queued_at) VALUES (?, ?, ?)", rows
            )
            return db.total_changes - before

    def peek(self, limit: int) -> list[tuple[int, Any]]:
        """The oldest ``limit`` events as ``(rowid, event)``; they stay queued."""
        with self._transaction(begin=False) as db:
            found = db.execute(
                "SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [(int(rowid), _decode(body)) for rowid, body in found]

    def delete(self, rowids: Iterable[int]) -> int:
        """Remove sent events; return how many were still there."""
        ids = [(int(r),) for r in rowids]
        if not ids:
            return 0
        with self._transaction() as db:
            before = db.total_changes
            db.executemany("DELETE FROM outbox WHERE seq = ?", ids)
            return db.total_changes - before

    def dead_letter(self, errors: Mapping[int, Mapping[str, str]]) -> int:
        """Move the events ``{rowid: field errors}`` to the dead letters, in one commit.

        Returns how many moved; rows another object already sent or moved are skipped.
        """
        if not errors:
            return 0
        now = _now()
        rows = [(json.dumps(dict(errs)), now, int(rowid)) for rowid, errs in errors.items()]
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR REPLACE INTO dead_letters"
                " (seq, event_id, body, errors, queued_at, failed_at)"
                " SELECT seq, event_id, body, ?, queued_at, ? FROM outbox WHERE seq = ?",
                rows,
            )
            moved = db.total_changes - before
            db.executemany("DELETE FROM outbox WHERE seq = ?", [(r[2],) for r in rows])
            return moved

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` rejected events with their errors."""
        with self._transaction(begin=False) as db:
            found = db.execute(
                "SELECT seq, body, errors, queued_at, failed_at FROM dead_letters"
                " ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            DeadLetter(int(rowid), _decode(body), dict(json.loads(errs)), queued, failed)
            for rowid, body, errs, queued, failed in found
        ]

    def requeue_dead_letters(self, rowids: Iterable[int] | None = None) -> int:
        """Put dead letters (all, or those ``rowids``) back in the outbox, as the newest.

        For after the cause is fixed, e.g. a service upgrade that accepts them again.
        Returns how many were requeued; one whose id is queued again already is dropped.
        """
        now = _now()
        with self._transaction() as db:
            if rowids is None:
                chosen = [int(r) for (r,) in db.execute("SELECT seq FROM dead_letters")]
            else:
                chosen = [int(r) for r in rowids]
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO outbox (event_id, body, queued_at)"
                " SELECT event_id, body, ? FROM dead_letters WHERE seq = ?",
                [(now, r) for r in chosen],
            )
            requeued = db.total_changes - before
            db.executemany("DELETE FROM dead_letters WHERE seq = ?", [(r,) for r in chosen])
            return requeued

    def count(self) -> int:
        """How many events wait to be sent."""
        with self._transaction(begin=False) as db:
            return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def dead_letter_count(self) -> int:
        """How many rejected events wait for an admin."""
        with self._transaction(begin=False) as db:
            return int(db.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    def close(self) -> None:
        """Close the file; the WAL is checkpointed into it when the last user closes."""
        with self._lock:
            self._db.close()


# -- sending -------------------------------------------------------------------------


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
        log: logging.Logger | logging.LoggerAdapter[Any],
        batch_size: int = 500,
        retry_initial_delay: float = 1.0,
        retry_max_delay: float = 300.0,
    ) -> None:
        self._io = io
        self._send = send
        self.log = log
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
                self.log.exception("Sending accounting events failed; they stay queued")
                emptied = False
            self._progress.set()
            if emptied:
                if self.failures:
                    self.log.info("Accounting events delivered after %d retries", self.failures)
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
        self.log.log(level, "Accounting events stay queued: %s", delivery.problem)
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
        self.log.warning(
            "The accounting service refused %d events without naming one, sending halves: %s",
            len(rows),
            json.dumps(errors, sort_keys=True),
        )
        return await self._deliver(rows[: len(rows) // 2])

    async def _refused(self, rows: list[tuple[int, Any]], delivery: Delivery) -> None:
        """Dead-letter a whole batch: one error per cause, not one per event."""
        reasons = delivery.errors or {"event": "refused"}
        await self._io(lambda o: o.dead_letter({rowid: reasons for rowid, _ in rows}))
        level = logging.DEBUG if delivery.problem in self._refusals_logged else logging.ERROR
        self._refusals_logged.add(delivery.problem)
        self.log.log(
            level,
            "%d accounting events refused for good, kept as dead letters %d to %d (fix the "
            "cause, then AccountingClient.requeue_dead_letters() sends them again): %s",
            len(rows),
            rows[0][0],
            rows[-1][0],
            delivery.problem,
        )

    async def _dead_letter(
        self, errors: dict[int, dict[str, str]], rows: list[tuple[int, Any]]
    ) -> None:
        await self._io(lambda o: o.dead_letter(errors))
        events = dict(rows)
        for rowid, fields in errors.items():
            event = events.get(rowid)
            self.log.error(
                "Accounting event %s refused for good, kept as dead letter %d: %s",
                event.get("id") if isinstance(event, dict) else None,
                rowid,
                json.dumps(fields, sort_keys=True),
            )
