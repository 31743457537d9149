"""The store's writes in a child process of their own, at a lower CPU priority.

Applying a batch of long sessions is seconds of Python arithmetic (the running totals
of every period each session meets). On a thread of the service, that work holds the
interpreter lock most of the time, and every quota check, answered by the same process,
waits for the lock at each of its steps: its p99 rose from about 4 ms to 20-30 ms while
a batch was applied (``benchmarks/accounting.py``, ``quota_check_p99_during_ingest_ms``).
In a child process the writes have an interpreter of their own, and the kernel prefers
the service's threads when the cores are busy.

The child runs one write at a time, in the order they were sent, as the writer thread
did: two resends of one batch, or a reconcile close and the real stop, never race. It
runs the same :class:`~eohub.adapters.accounting_db.store.AccountingStore` method by name
on a store of its own over the same database. Errors come back as the service answers
them: :class:`~eohub.domain.accounting.events.EventError` with its fields,
:class:`DatabaseUnavailable` for anything :func:`.errors.database_unavailable` says, and
:class:`WriteFailed` (a bug: the service answers 500) for the rest. A child that dies is
replaced, and the write it was doing is reported unavailable, so the client sends it
again: it rolled back, or (killed between its commit and its answer) it is applied once
more, which events and storage samples, idempotent, shrug off.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy.engine import make_url

from eohub.adapters.accounting_db.errors import DatabaseUnavailable, database_unavailable
from eohub.adapters.accounting_db.schema import create_engine_for
from eohub.adapters.accounting_db.store import AccountingStore
from eohub.domain.accounting.events import EventError
from eohub.logs import get_logger

log = get_logger(__name__)

# The child's niceness, added to the service's own (Linux, and other Unix systems).
WRITER_NICENESS = 10
# Seconds between two starts of a child that died.
REPLACE_INTERVAL = 5.0
# How often the child checks that the service that started it still runs.
PARENT_CHECK_SECONDS = 1.0


class WriteFailed(RuntimeError):
    """A write failed in the child for a reason that is not the caller's (a bug)."""


# The child's own store, made once by _start_child.
_child_store: AccountingStore | None = None


def _start_child(db_url: str, niceness: int) -> None:
    global _child_store
    with contextlib.suppress(OSError):
        os.nice(niceness)
    # Ctrl-C in a terminal reaches the whole process group: the service stops the
    # child when it stops, after the writes sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _log_like_the_service()
    _child_store = AccountingStore(create_engine_for(db_url))
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="eohub-writer-watch", daemon=True
    ).start()


def _log_like_the_service() -> None:
    """The child's few lines (failures) in the service's format: JSON lines when
    ``$EOHUB_LOG_FORMAT=json`` (see :mod:`eohub.json_logs`), else a text prefix."""
    # Here, not at the top: the writer's module is imported by every process that
    # uses the store, which need not load the hub's logging setup.
    from eohub.json_logs import LOG_FORMAT_ENV

    if os.environ.get(LOG_FORMAT_ENV, "").strip().lower() == "json":
        from eohub.json_logs import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        return
    logging.basicConfig(
        level=logging.INFO, format="[AccountingService writer %(levelname)s] %(message)s"
    )


def _exit_with_parent(parent: int) -> None:
    """End the child when the service is gone (killed, say, before it could stop it).

    An orphan would hold a database connection, and the service's output streams, for
    good. A write it was doing rolls back with the connection; nobody awaits its answer.
    """
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _call_in_child(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    assert _child_store is not None, "the writer process was not started"
    try:
        return getattr(_child_store, method)(*args, **kwargs)
    except EventError:
        raise
    except Exception as e:
        # Database and driver errors do not always survive pickling; their meaning does.
        if database_unavailable(e):
            raise DatabaseUnavailable(type(e).__name__) from None
        log.exception("The accounting writer process failed in {method}", method=method)
        raise WriteFailed(f"{method}: {type(e).__name__}") from None


def in_memory_sqlite(db_url: str) -> bool:
    """Whether ``db_url`` is an SQLite database that lives in one process's memory."""
    url = make_url(db_url)
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in str(url)
    )


def _ping() -> int:
    return os.getpid()


class WriterProcess:
    """One child process that runs the store's writes, one at a time, in order."""

    def __init__(self, db_url: str, *, niceness: int = WRITER_NICENESS) -> None:
        self.db_url = db_url
        self.niceness = niceness
        self._lock = threading.Lock()
        self._last_replaced = -REPLACE_INTERVAL
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # "spawn": the service has threads, and a forked child would inherit their locks.
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_child,
            initargs=(self.db_url, self.niceness),
        )

    def submit(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        """Run ``store.<method>(*args, **kwargs)`` in the child; the future of its result."""
        with self._lock:
            try:
                return self._pool.submit(_call_in_child, method, args, kwargs)
            except BrokenProcessPool:
                self._replace_broken()  # or, too soon after the last, still broken: raises
                return self._pool.submit(_call_in_child, method, args, kwargs)

    def replace_if_broken(self, pool_error: BaseException) -> None:
        """After a write failed with ``pool_error``: start a new child if it died."""
        if isinstance(pool_error, BrokenProcessPool):
            with self._lock:
                self._replace_broken()

    def _replace_broken(self) -> None:
        if not self._pool._broken:  # replaced already
            return
        # A child that keeps dying (say at start-up) is not restarted more often than
        # this: the writes meanwhile are answered "unavailable", and the client retries.
        if time.monotonic() - self._last_replaced < REPLACE_INTERVAL:
            return
        log.error("The accounting writer process stopped; starting a new one")
        self._last_replaced = time.monotonic()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def pid(self) -> int:
        """The child's process id (it starts now if it had not yet)."""
        return int(self._pool.submit(_ping).result())

    def close(self) -> None:
        """Let the child finish the writes sent, then end it."""
        self._pool.shutdown(wait=True)


__all__ = [
    "WRITER_NICENESS",
    "DatabaseUnavailable",
    "WriteFailed",
    "WriterProcess",
    "in_memory_sqlite",
]
