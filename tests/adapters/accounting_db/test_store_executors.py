"""StoreExecutors: writes in order on a nicer thread or in a writer process, reads apart.

``test_store_threads.py`` checks the same through a real store under load.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from eohub.adapters.accounting_db.errors import DatabaseUnavailable
from eohub.adapters.accounting_db.store_executors import (
    LONG_WORK_NICENESS,
    SERVICE_SWITCH_INTERVAL,
    StoreExecutors,
    run_on,
    share_the_interpreter,
)


class WriterProcess:
    """Answers what the store's own method would, or a dead process."""

    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.sent: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.replaced: list[BaseException] = []
        self.closed = False

    def submit(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        self.sent.append((method, args, kwargs))
        future: Future[Any] = Future()
        if self.broken:
            future.set_exception(BrokenProcessPool("the child died"))
        else:
            future.set_result(f"{method} in the child")
        return future

    def replace_if_broken(self, pool_error: BaseException) -> None:
        self.replaced.append(pool_error)

    def close(self) -> None:
        self.closed = True


class Store:
    def ingest(self, batch: str, *, single: bool = False) -> str:
        return f"{batch} here"


def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.fixture
def executors() -> Iterator[StoreExecutors]:
    found = StoreExecutors()
    yield found
    found.close()


async def test_writes_run_on_a_nicer_thread_than_reads(executors: StoreExecutors) -> None:
    here = niceness()
    writer = await executors.write(Store(), niceness, (), {})
    reader = await run_on(executors.readers, niceness, (), {})
    quota = await run_on(executors.quota, niceness, (), {})
    assert writer == min(here + LONG_WORK_NICENESS, 19)
    assert reader == quota == here


async def test_run_on_passes_arguments(executors: StoreExecutors) -> None:
    store = Store()
    assert await run_on(executors.readers, store.ingest, ("b",), {"single": True}) == "b here"
    assert await executors.write(store, store.ingest, ("b",), {}) == "b here"


async def test_a_writer_process_runs_the_stores_own_method_by_name() -> None:
    process = WriterProcess()
    store = Store()
    executors = StoreExecutors(process)
    try:
        answer = await executors.write(store, store.ingest, ("b",), {"single": True})
        with pytest.raises(TypeError, match="the store's own methods"):
            await executors.write(store, niceness, (), {})
    finally:
        executors.close()
    assert answer == "ingest in the child"
    assert process.sent == [("ingest", ("b",), {"single": True})]
    assert process.closed


async def test_a_dead_writer_process_is_replaced_and_the_write_is_unavailable() -> None:
    process = WriterProcess(broken=True)
    store = Store()
    executors = StoreExecutors(process)
    try:
        with pytest.raises(DatabaseUnavailable, match="send it again"):
            await executors.write(store, store.ingest, ("b",), {})
    finally:
        executors.close()
    assert [type(e) for e in process.replaced] == [BrokenProcessPool]


def test_share_the_interpreter_sets_a_short_switch_interval() -> None:
    before = sys.getswitchinterval()
    try:
        share_the_interpreter()
        assert sys.getswitchinterval() == pytest.approx(SERVICE_SWITCH_INTERVAL)
    finally:
        sys.setswitchinterval(before)
