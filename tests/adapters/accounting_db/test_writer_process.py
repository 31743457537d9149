"""The store's writer process: the service's writes, in a child of their own.

Real child processes on a real SQLite file and on PostgreSQL: writes come back with
their results in the order sent, bad input with its fields, an unreachable database as
"unavailable", and a child that dies is replaced without losing the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.errors import DatabaseUnavailable, database_unavailable
from eohub.adapters.accounting_db.writer_process import (
    WRITER_NICENESS,
    WriterProcess,
    in_memory_sqlite,
)
from eohub.domain.accounting.events import EventError, start_event_json, stop_event_json
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import Limits
from tests.support.accounting import fresh_store

STARTED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = datetime.now(UTC)
LIMITS = {"now": NOW, "max_clock_skew": timedelta(minutes=5)}


def body(*events: dict[str, object]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


START = start_event_json(
    user="alice", server="", started_at=STARTED, group="climate", cpu=2, memory_bytes=2**30
)
STOP = stop_event_json(
    user="alice", server="", started_at=STARTED, stopped_at=STARTED + timedelta(hours=3)
)


@pytest.fixture(params=["sqlite", "psycopg", "psycopg2"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AccountingStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'eohub.sqlite'}"
    else:  # PostgreSQL through this driver
        url = request.getfixturevalue("postgres_urls")[request.param]
    made = fresh_store(url)
    made.put_group("climate", allocation=Allocation.parse("month"))
    with_process = AccountingStore(made.engine, writer_process=WriterProcess(url))
    yield with_process
    with_process.close()
    made.engine.dispose()


def test_writes_run_in_a_child_at_a_lower_priority_in_the_order_sent(
    store: AccountingStore,
) -> None:
    process = store._executors.writer_process
    assert process is not None
    child = process.pid()
    assert child != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, child) == min(
        os.getpriority(os.PRIO_PROCESS, 0) + WRITER_NICENESS, 19
    )

    async def both() -> list[object]:
        # Sent at once; the stop must not be applied before its start.
        return list(
            await asyncio.gather(
                store.write(store.ingest_body, body(START), **LIMITS),
                store.write(store.ingest_body, body(STOP), **LIMITS),
            )
        )

    (started, count_a), (stopped, count_b) = asyncio.run(both())  # type: ignore[misc]
    assert (started.accepted, stopped.accepted, count_a, count_b) == (1, 1, 1, 1)
    [session] = store.sessions()
    assert session.stopped_at is not None
    assert session.usage(NOW).as_hours()["core_hours"] == 6.0


def test_bad_input_comes_back_with_its_fields_and_writes_nothing(store: AccountingStore) -> None:
    bad = body({**START, "group": "nobody"})
    with pytest.raises(EventError) as refused:
        asyncio.run(store.write(store.ingest_body, bad, **LIMITS))
    assert refused.value.errors == {
        "events[0].group": "unknown group 'nobody'; an admin must define it first"
    }
    with pytest.raises(EventError) as not_json:
        asyncio.run(store.write(store.ingest_body, b"{", **LIMITS))
    assert set(not_json.value.errors) == {"body"}
    assert store.sessions() == []


def test_a_group_changed_through_the_child_is_seen_by_quota_checks_at_once(
    store: AccountingStore,
) -> None:
    request = Resources.from_cpu(1)
    assert store.check_quota("alice", "climate", request).allowed
    spent = {"": Limits(max_servers=0)}
    asyncio.run(store.write(store.put_group, "climate", quotas=spent))  # type: ignore[arg-type]
    assert not store.check_quota("alice", "climate", request).allowed


def long_batch(count: int) -> bytes:
    """``count`` sessions of 60 days: a second or more of work for the child."""
    events: list[dict[str, object]] = []
    for i in range(count):
        at = STARTED - timedelta(days=70, minutes=i)
        events.append(
            start_event_json(user=f"u{i}", server="", started_at=at, group="climate", cpu=1)
        )
        events.append(
            stop_event_json(
                user=f"u{i}", server="", started_at=at, stopped_at=at + timedelta(days=60)
            )
        )
    return body(*events)


def test_a_child_killed_mid_write_is_replaced_and_the_write_reported_unavailable(
    store: AccountingStore,
) -> None:
    process = store._executors.writer_process
    assert process is not None
    first = process.pid()

    async def killed_meanwhile() -> None:
        task = asyncio.ensure_future(store.write(store.ingest_body, long_batch(2500), **LIMITS))
        await asyncio.sleep(0.3)
        assert not task.done()
        os.kill(first, signal.SIGKILL)
        await task

    with pytest.raises(DatabaseUnavailable) as unavailable:
        asyncio.run(killed_meanwhile())
    assert database_unavailable(unavailable.value)  # the client sends it again
    assert store.sessions() == []  # its transaction never committed
    result, _ = asyncio.run(store.write(store.ingest_body, body(START), **LIMITS))
    assert result.accepted == 1
    assert process.pid() != first


def test_a_child_that_died_idle_is_replaced(store: AccountingStore) -> None:
    process = store._executors.writer_process
    assert process is not None
    first = process.pid()
    os.kill(first, signal.SIGKILL)
    # The pool learns of the death on its own thread: a write sent before that is
    # answered "unavailable" (the client sends it again), never lost or half done.
    for _ in range(2):
        with contextlib.suppress(DatabaseUnavailable):
            asyncio.run(store.write(store.ingest_body, body(START), **LIMITS))
    assert len(store.sessions()) == 1
    assert process.pid() != first


def test_an_unreachable_database_is_unavailable_not_a_failure(tmp_path: Path) -> None:
    made = fresh_store(f"sqlite:///{tmp_path / 'eohub.sqlite'}")
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2"
    store = AccountingStore(made.engine, writer_process=WriterProcess(dead))
    try:
        with pytest.raises(DatabaseUnavailable):
            asyncio.run(store.write(store.ingest_body, body(START), **LIMITS))
    finally:
        store.close()
        made.engine.dispose()


def test_only_the_stores_own_methods_cross(store: AccountingStore) -> None:
    with pytest.raises(TypeError):
        asyncio.run(store.write(len, "abc"))


@pytest.mark.parametrize(
    ("url", "in_memory"),
    [
        ("sqlite://", True),
        ("sqlite:///:memory:", True),
        ("sqlite:///file:ledger?mode=memory&cache=shared&uri=true", True),
        ("sqlite:///eohub.sqlite", False),
        ("sqlite:////var/lib/eohub/eohub.sqlite", False),
        ("postgresql+psycopg://eohub@db/eohub", False),
    ],
)
def test_an_in_memory_sqlite_database_is_recognised(url: str, in_memory: bool) -> None:
    # Its child would open a database of its own: the service writes in-process then.
    assert in_memory_sqlite(url) is in_memory


def test_the_child_ends_when_the_service_is_killed(tmp_path: Path) -> None:
    # A service killed outright (SIGKILL: no chance to stop its child) leaves no orphan
    # holding a database connection and the service's output.
    script = tmp_path / "service.py"
    script.write_text(
        "import sys, time\n"
        "from eohub.adapters.accounting_db.writer_process import WriterProcess\n"
        "if __name__ == '__main__':\n"
        f"    process = WriterProcess('sqlite:///{tmp_path / 'eohub.sqlite'}')\n"
        "    print(process.pid(), flush=True)\n"
        "    time.sleep(600)\n"
    )
    service = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert service.stdout is not None
    child = int(service.stdout.readline())
    service.kill()
    service.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the writer process outlived the service")
