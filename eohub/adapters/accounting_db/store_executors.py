"""Where the store's blocking calls run, so that the service's event loop never does.

- Writes run one at a time, in the order sent, in the store's writer process when it
  has one (the service: :mod:`.writer_process`), else on one writer thread at a lower
  CPU priority (scripts, tests, or ``AccountingService.writer_process = False``).
- Reads (reports, session lists, pages) run on ``READ_THREADS`` reader threads.
- Quota checks run on ``QUOTA_THREADS`` threads of their own, so that a user starting a
  server never waits behind a long report. They only read, and every database here lets
  readers go on while a writer works (SQLite in WAL mode).

:func:`~eohub.adapters.accounting_db.schema.create_engine_for` sizes the connection
pool to these threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from eohub.adapters.accounting_db.errors import DatabaseUnavailable
from eohub.adapters.accounting_db.schema import QUOTA_THREADS, READ_THREADS

T = TypeVar("T")

# Seconds a CPU-bound thread may hold the GIL while another waits (CPython: 0.005).
SERVICE_SWITCH_INTERVAL = 0.001
# Added to the writer thread's niceness, where the store has no writer process.
LONG_WORK_NICENESS = 10


def share_the_interpreter() -> None:
    """Let short work (the event loop, quota checks) interleave with long work finely.

    A report of a year by user is seconds of Python on a reader thread. Every time the
    loop or a quota thread needs the interpreter back it waits up to the switch interval,
    and one request needs it several times: CPython's default 5 ms added tens of ms to a
    quota check meanwhile, 1 ms about 40 % less. It is process-wide, so the service calls
    it once at start-up; a library never should.
    """
    sys.setswitchinterval(SERVICE_SWITCH_INTERVAL)


def _yield_the_cpu() -> None:
    """Run the calling thread at a lower CPU priority (Linux: per thread; else nothing).

    When the machine's cores are all busy, the kernel then prefers the event loop and the
    quota threads, which need the CPU for a millisecond at a time.
    """
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + LONG_WORK_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


class SeparateWriter(Protocol):
    """What the store needs of a writer in another process
    (:class:`~eohub.adapters.accounting_db.writer_process.WriterProcess`).

    A protocol, so that this module and the store need not import the writer process,
    which itself builds a store in its child.
    """

    def submit(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        """Run ``store.<method>(*args, **kwargs)`` in the other process."""
        ...

    def replace_if_broken(self, pool_error: BaseException) -> None:
        """After a write failed with ``pool_error``: start a new process if it died."""
        ...

    def close(self) -> None:
        """Let the process finish the writes sent, then end it."""
        ...


class StoreExecutors:
    """The writer (process or thread), reader and quota threads of one store.

    Threads start on first use, so a store that only runs scripts makes none.
    """

    def __init__(self, writer_process: SeparateWriter | None = None) -> None:
        self.writer_process = writer_process
        self.writer = ThreadPoolExecutor(
            1, thread_name_prefix="eohub-db-write", initializer=_yield_the_cpu
        )
        self.readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="eohub-db-read")
        self.quota = ThreadPoolExecutor(QUOTA_THREADS, thread_name_prefix="eohub-db-quota")

    async def write(self, owner: object, call: Callable[..., T], args: Any, kwargs: Any) -> T:
        """Run ``call``, a method of ``owner``, after the writes sent before it.

        In the writer process the child's own store runs the method of that name, so only
        ``owner``'s own methods may be sent. A child that died answers
        :class:`DatabaseUnavailable` (the write rolled back: send it again).
        """
        process = self.writer_process
        if process is None:
            return await run_on(self.writer, call, args, kwargs)
        method = getattr(call, "__name__", "")
        if getattr(owner, method, None) != call:
            raise TypeError(f"the writer process runs the store's own methods, not {call!r}")
        try:
            result: T = await asyncio.wrap_future(process.submit(method, args, kwargs))
        except BrokenProcessPool as e:
            process.replace_if_broken(e)
            raise DatabaseUnavailable("the writer process stopped; send it again") from None
        return result

    def close(self) -> None:
        """Let the threads (and the writer process) end once their work is done."""
        for executor in (self.writer, self.readers, self.quota):
            executor.shutdown(wait=False)
        if self.writer_process is not None:
            self.writer_process.close()


async def run_on(
    executor: ThreadPoolExecutor, call: Callable[..., T], args: Any, kwargs: Any
) -> T:
    """``call(*args, **kwargs)`` on one of ``executor``'s threads."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(call, *args, **kwargs))


__all__ = [
    "LONG_WORK_NICENESS",
    "SERVICE_SWITCH_INTERVAL",
    "SeparateWriter",
    "StoreExecutors",
    "run_on",
    "share_the_interpreter",
]
