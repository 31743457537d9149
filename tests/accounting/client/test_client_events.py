"""AccountingClient's events: order, retries, outages, dead letters and the outbox.

Against the same loopback fake of the service as test_client.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from eohub.accounting.client.outbox import Outbox
from eohub.domain.accounting.events import EventError, start_event_json
from tests.accounting.client.client_support import (
    CLIENT_LOGS,
    T0,
    TOKEN,
    FakeService,
    MakeClient,
    down_url,
    event_id,
    start_kwargs,
    stop_kwargs,
)
from tests.support.tools import REPO_ROOT

# -- events --------------------------------------------------------------------------


async def test_events_are_delivered_in_the_order_recorded(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(service.url, batch_size=3)
    await client.start()
    expected = []
    for i in range(5):
        expected.append(await client.record_start(**start_kwargs(i)))
        expected.append(await client.record_stop(**stop_kwargs(i)))
    assert expected[:2] == [event_id("start", 0), event_id("stop", 0)]
    assert await client.flush(5)
    assert service.delivered == expected
    assert all(len(batch) <= 3 for batch in service.batches)
    assert await client.pending() == 0
    stored = service.stored[expected[0]]
    assert (stored["cpu"], stored["memory_bytes"], stored["group"]) == (2, 4 * 1024**3, "climate")


async def test_a_bad_event_is_refused_at_record_time_and_never_queued(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(service.url)
    with pytest.raises(ValueError, match="cpu: must be greater than 0"):
        await client.record_start(**start_kwargs(1, cpu=0))
    with pytest.raises(ValueError, match="stopped_at: is before started_at"):
        await client.record_stop(**(stop_kwargs(1) | {"stopped_at": T0 - timedelta(hours=1)}))
    with pytest.raises(EventError) as refused:
        await client.record_start(**start_kwargs(1, user="eve\x00", gpus=-1))
    assert set(refused.value.errors) == {"user", "gpus"}
    assert await client.pending() == 0
    assert await client.flush(1)
    assert service.batches == []


async def test_server_errors_are_retried_until_the_service_takes_the_events(
    service: FakeService, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service.statuses = [500, 503, 502]
    client = make_client(service.url)
    ids = [await client.record_start(**start_kwargs(i)) for i in range(3)]
    assert await client.flush(5)
    assert service.delivered == ids
    retries = [m for m in caplog.messages if m.startswith("Accounting events stay queued")]
    assert retries[0] == (
        "Accounting events stay queued: the accounting service answered HTTP 500 (failing)"
    )
    assert "HTTP 503 (database unavailable)" in " ".join(retries)
    warnings = [
        r
        for r in caplog.records
        if r.name.startswith(CLIENT_LOGS) and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 1  # one per outage, not one per retry


async def test_an_outage_delays_events_and_loses_none(
    service: FakeService, make_client: MakeClient
) -> None:
    await service.stop()
    client = make_client(service.url, batch_size=4)
    await client.start()
    ids = []
    for i in range(10):
        ids.append(await client.record_start(**start_kwargs(i)))
        ids.append(await client.record_stop(**stop_kwargs(i)))
    assert not await client.flush(0.3)
    assert await client.pending() == 20
    service.start()
    assert await client.flush(5)
    assert service.delivered == ids
    assert service.duplicates == 0


async def test_a_batch_stored_but_never_confirmed_is_resent_and_counted_once(
    service: FakeService, make_client: MakeClient
) -> None:
    service.store_then_hang = True  # the hub never hears that the batch was stored
    client = make_client(service.url)
    await client.start()
    ids = [await client.record_start(**start_kwargs(i)) for i in range(3)]
    assert await client.flush(5)
    assert service.delivered == ids
    assert service.duplicates >= 1
    assert len(service.stored) == 3


async def test_the_same_event_recorded_twice_is_sent_once_or_deduplicated(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(service.url)
    first = await client.record_start(**start_kwargs(1))
    again = await client.record_start(**start_kwargs(1, cpu=4))  # same session, same key
    assert first == again
    assert await client.flush(5)
    assert service.delivered == [first]
    assert service.stored[first]["cpu"] == 2


async def test_refused_events_become_dead_letters_and_the_rest_get_through(
    service: FakeService, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    service.refuse_user = "mallory"
    client = make_client(service.url)
    # Queued before the client runs, so that they go in one batch.
    outbox = Outbox(client.outbox_path)
    events = [
        start_event_json(**start_kwargs(1)),
        start_event_json(**start_kwargs(2, user="mallory")),
        start_event_json(**start_kwargs(3)),
    ]
    outbox.put(events)
    outbox.close()
    await client.start()
    assert await client.flush(5)
    assert service.delivered == [events[0]["id"], events[2]["id"]]
    [dead] = await client.dead_letters()
    assert dead.event == events[1]
    assert dead.errors == {"user": "is not allowed here"}
    assert any(
        "refused for good" in r.getMessage() and "is not allowed here" in r.getMessage()
        for r in caplog.records
        if r.name.startswith(CLIENT_LOGS) and r.levelno == logging.ERROR
    )

    # Once the service accepts them again, an admin requeues them.
    service.refuse_user = ""
    assert await client.requeue_dead_letters() == 1
    assert await client.flush(5)
    assert service.delivered == [events[0]["id"], events[2]["id"], events[1]["id"]]
    assert await client.dead_letters() == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 422])
async def test_a_4xx_is_dead_lettered_at_once_with_its_reason_and_never_retried(
    service: FakeService, make_client: MakeClient, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    service.statuses = [status]
    client = make_client(service.url)
    event = await client.record_start(**start_kwargs(1))
    assert await client.flush(5)
    [dead] = await client.dead_letters()
    assert dead.event["id"] == event
    assert dead.errors["status"] == str(status)
    assert dead.errors["message"]  # the service's own words, e.g. "Not Found"
    assert service.requests == 1  # sent once, never again
    assert service.delivered == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(str(status) in m and "dead letter" in m for m in errors), errors
    # After the fix, an admin sends them again.
    assert await client.requeue_dead_letters() == 1
    assert await client.flush(5)
    assert service.delivered == [event]


async def test_a_proxy_page_is_dead_lettered_whole_and_logged_once(
    service: FakeService, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    service.html = True
    service.statuses = [404, 404]
    client = make_client(service.url, batch_size=3)
    outbox = Outbox(client.outbox_path)
    outbox.put([start_event_json(**start_kwargs(i)) for i in range(6)])
    outbox.close()
    await client.start()
    assert await client.flush(5)
    assert service.requests == 2  # two batches, each refused whole, neither retried
    dead = await client.dead_letters()
    assert len(dead) == 6
    assert dead[0].errors["status"] == "404"
    assert "check c.AccountingClient.url" in dead[0].errors["message"]
    assert "404: Not Found" in dead[0].errors["message"]  # what answered instead
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # one per cause, not one per batch or event
    assert "requeue" in errors[0]


async def test_a_413_sends_halves_down_to_the_event_too_large(
    service: FakeService, make_client: MakeClient
) -> None:
    service.statuses = [413, 413]  # the batch of 4, then its older half
    client = make_client(service.url, batch_size=4)
    outbox = Outbox(client.outbox_path)
    events = [start_event_json(**start_kwargs(i)) for i in range(4)]
    outbox.put(events)
    outbox.close()
    await client.start()
    assert await client.flush(5)
    # The halves 2 then 1 were sent; 1 event was accepted, then the rest.
    assert service.delivered == [e["id"] for e in events]
    assert await client.dead_letters() == []


async def test_a_refused_token_is_logged_once_and_its_events_wait_as_dead_letters(
    service: FakeService, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(service.url, api_token="stale-token")
    first = await client.record_start(**start_kwargs(1))
    assert await client.flush(5)
    second = await client.record_stop(**stop_kwargs(1))
    assert await client.flush(5)
    assert service.requests == 2  # each refused once, neither retried
    errors = [
        m.getMessage()
        for m in caplog.records
        if m.name.startswith(CLIENT_LOGS) and m.levelno >= 40
    ]
    token_errors = [m for m in errors if "refused the hub's token (HTTP 403)" in m]
    assert len(token_errors) == 1
    assert "EOHUB_ACCOUNTING_HUB_TOKEN" in token_errors[0]
    assert len(errors) == 2  # and one saying where the events went
    assert [d.event["id"] for d in await client.dead_letters()] == [first, second]

    await client.stop(timeout=0)
    fixed = make_client(service.url)
    await fixed.start()
    assert await fixed.requeue_dead_letters() == 2
    assert await fixed.flush(5)
    assert service.delivered == [first, second]


async def test_stop_keeps_what_it_could_not_send_for_the_next_client(
    service: FakeService, make_client: MakeClient
) -> None:
    await service.stop()
    client = make_client(service.url)
    await client.start()
    started = await client.record_start(**start_kwargs(1))
    began = time.monotonic()
    assert not await client.stop(timeout=0.2)
    assert time.monotonic() - began < 1
    # A stop recorded while the hub shuts down still reaches the outbox.
    stopped = await client.record_stop(**stop_kwargs(1))
    assert await client.pending() == 2
    with pytest.raises(RuntimeError, match="after stop"):
        await client.flush(1)

    service.start()
    successor = make_client(service.url)
    await successor.start()
    assert await successor.flush(5)
    assert service.delivered == [started, stopped]


KILLED_HUB = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from traitlets.config import Config
from eohub.accounting.client.client import AccountingClient

async def main() -> None:
    url, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = {"url": url, "outbox_path": path, "api_token": "x", "retry_max_delay": 0.1}
    client = AccountingClient(config=Config({"AccountingClient": settings}))
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    for i in range(count):
        await client.record_start(
            user="alice", server="", started_at=t0 + timedelta(minutes=i), group="climate",
            cpu=2, memory_bytes=4 * 1024**3,
        )
    print("recorded", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_killed_hub_loses_no_event(
    service: FakeService, make_client: MakeClient, tmp_path: Path
) -> None:
    path = tmp_path / "killed-hub-outbox.sqlite"
    hub = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_HUB,
        down_url(),
        str(path),
        "25",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert hub.stdout is not None
    try:
        line = await asyncio.wait_for(hub.stdout.readline(), 30)
        assert line == b"recorded\n"
    finally:
        hub.send_signal(signal.SIGKILL)
        await hub.wait()
    assert hub.returncode == -signal.SIGKILL
    assert path.with_name(path.name + "-wal").exists()  # killed before SQLite could tidy up

    restarted = make_client(service.url, outbox_path=str(path))
    await restarted.start()
    assert await restarted.flush(5)
    assert service.delivered == [event_id("start", i) for i in range(25)]


async def test_the_token_never_reaches_the_logs(
    service: FakeService, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(service.url, quota_failure_policy="closed")
    await client.start()
    await client.check_quota(user="alice", group="climate", cpu=1)
    service.statuses = [401, 500]
    await client.record_start(**start_kwargs(1))
    assert await client.flush(5)
    service.hang = True
    await client.check_quota(user="alice", group="climate", cpu=1)
    await client.record_stop(**stop_kwargs(1))
    assert not await client.flush(0.7)
    await service.stop()
    await client.check_quota(user="alice", group="climate", cpu=1)
    assert len(caplog.records) > 5
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + str(record.exc_text or "")
        assert TOKEN not in text
        assert TOKEN[:12] not in text
