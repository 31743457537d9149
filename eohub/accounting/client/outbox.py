"""The hub's durable outbox of accounting events, and the sender that empties it.

:class:`~eohub.accounting.client.client.AccountingClient` commits every event to the
:class:`Outbox` (one SQLite file) before ``record_start``/``record_stop`` return, and an
:class:`OutboxSender` task sends the rows oldest first through the client's HTTP call.
A row leaves the outbox only when the service has confirmed it, or when the service
rejected it for good; then it moves to the ``dead_letters`` table with the service's
field errors, where an admin can read it and requeue it.

Durability: WAL journal with ``synchronous=FULL``. In WAL mode ``NORMAL`` already
survives a killed hub, but the last commits may roll back when the machine or the
Kubernetes node loses power; ``FULL`` syncs the WAL on every commit. The events of
concurrent spawns share one commit (:mod:`.outbox_thread`), so even a class starting at
once costs a few fsyncs, and a lost start would leave a running server uncharged.

Every call is one short transaction, so two :class:`Outbox` objects on one file (two
clients in one hub, or a hub restarting while the old one still exits) wait for each
other's locks instead of failing. Row ids are ``AUTOINCREMENT`` so they are never
reused: a row id read by one object can never name another object's newer event.

:class:`Outbox` methods block (an fsync per write); the client runs them on one worker
thread, so the hub's event loop never waits on the disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

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
        return len(self.put_new(events))

    def put_new(self, events: Iterable[Mapping[str, Any]]) -> set[str]:
        """:meth:`put`, returning the ids of the events that were new."""
        now = _now()
        rows = []
        for event in events:
            event_id = event.get("id")
            if not isinstance(event_id, str) or not event_id:
                raise ValueError("an outbox event needs a non-empty string 'id'")
            rows.append((event_id, json.dumps(event, separators=(",", ":")), now))
        new: set[str] = set()
        if not rows:
            return new
        with self._transaction() as db:
            for row in rows:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO outbox (event_id, body, queued_at) VALUES (?, ?, ?)",
                    row,
                )
                if inserted.rowcount:
                    new.add(row[0])
        return new

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
