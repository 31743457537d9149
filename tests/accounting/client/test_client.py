"""AccountingClient against a real HTTP server on loopback that plays the service.

The fake speaks the service's wire format and can be told to fail, hang or go away; the
end-to-end fault tests against the real service live with the service.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler
from traitlets import TraitError
from traitlets.config import Config

from eohub.accounting.client.client import DEFAULT_URL, AccountingClient, QuotaAnswer
from eohub.accounting.client.outbox import Outbox
from eohub.domain.accounting.events import EventError, start_event_json, stop_event_json
from tests.support.process import free_port
from tests.support.tools import REPO_ROOT

TOKEN = "hub-token-7f3a9c1e-never-logged"
PREFIX = "/services/eohub-accounting/"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LOG = logging.getLogger("tests.accounting.client")
# Where the client's own lines come from (they reach LOG, the hub's logger, through
# eohub.logs.attach).
CLIENT_LOGS = "eohub.accounting.client."


class FakeService:
    """The accounting service's two hub-facing endpoints, with faults on demand."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests = 0
        self.batches: list[list[str]] = []  # event ids of every batch received
        self.stored: dict[str, dict[str, Any]] = {}  # in arrival order
        self.duplicates = 0
        self.quota_requests: list[dict[str, Any]] = []
        self.quota_reply: dict[str, Any] = {
            "allowed": True,
            "reason": "Within quota.",
            "budget_left": {"core_hours": 12.5, "gpu_hours": None, "memory_gib_hours": 40},
        }
        self.statuses: list[int] = []  # answer the next requests with these statuses
        self.hang = False  # answer nothing until the service stops
        self.store_then_hang = False  # store the batch, then never confirm it
        self.refuse_user = ""  # a 400 naming each event of this user
        self.html = False  # answer errors with an HTML page, as a misrouted proxy would
        self._release = asyncio.Event()
        self._server: HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def start(self) -> None:
        app = Application(
            [
                (PREFIX + "api/events", EventsHandler, {"service": self}),
                (PREFIX + "api/quota/check", QuotaHandler, {"service": self}),
            ]
        )
        self._server = HTTPServer(app)
        self._server.listen(self.port, "127.0.0.1")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            # Hanging requests end now, or closing their connections would wait for them.
            hanging, self._release = self._release, asyncio.Event()
            hanging.set()
            await self._server.close_all_connections()
            self._server = None

    async def wait_released(self) -> None:
        await self._release.wait()

    @property
    def delivered(self) -> list[str]:
        return list(self.stored)


class FakeHandler(RequestHandler):
    service: FakeService

    def initialize(self, service: FakeService) -> None:
        self.service = service

    async def prepare(self) -> None:
        self.service.requests += 1
        if self.request.headers.get("Authorization") != f"token {TOKEN}":
            self.send_error(403)
            return
        if self.service.statuses:
            self.send_error(self.service.statuses.pop(0))
            return
        if self.service.hang:
            await self.service.wait_released()
            self.send_error(503)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.service.html:
            self.set_header("Content-Type", "text/html")
            self.finish(f"<html><body><h1>{status_code}: {self._reason}</h1></body></html>")
            return
        self.finish({"message": self._reason})


class EventsHandler(FakeHandler):
    async def post(self) -> None:
        events = json.loads(self.request.body)["events"]
        self.service.batches.append([e["id"] for e in events])
        bad = [i for i, e in enumerate(events) if e["user"] == self.service.refuse_user]
        if bad:
            self.set_status(400)
            errors = {f"events[{i}].user": "is not allowed here" for i in bad}
            self.finish({"errors": errors, "message": "Invalid events"})
            return
        accepted = 0
        for event in events:
            if event["id"] in self.service.stored:
                self.service.duplicates += 1
            else:
                self.service.stored[event["id"]] = event
                accepted += 1
        if self.service.store_then_hang:
            self.service.store_then_hang = False
            await self.service.wait_released()
        self.finish({"accepted": accepted, "duplicates": len(events) - accepted})


class QuotaHandler(FakeHandler):
    def post(self) -> None:
        self.service.quota_requests.append(json.loads(self.request.body))
        self.finish(self.service.quota_reply)


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    fake.start()
    yield fake
    await fake.stop()


MakeClient = Callable[..., AccountingClient]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """Clients with test-sized timeouts, sharing one outbox file; stopped after the test."""
    clients: list[AccountingClient] = []

    def make(url: str, **traits: Any) -> AccountingClient:
        settings: dict[str, Any] = {
            "url": url,
            "api_token": TOKEN,
            "outbox_path": str(tmp_path / "outbox.sqlite"),
            "quota_timeout": 0.3,
            "request_timeout": 0.5,
            "retry_initial_delay": 0.02,
            "retry_max_delay": 0.1,
        }
        # The hub passes itself as parent, and the client logs to the hub's logger.
        client = AccountingClient(config=Config({"AccountingClient": settings | traits}), log=LOG)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.stop(timeout=0)


def down_url() -> str:
    """Where nothing listens."""
    return f"http://127.0.0.1:{free_port()}{PREFIX}"


def start_kwargs(i: int, user: str = "alice", **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "user": user,
        "server": "",
        "started_at": T0 + timedelta(minutes=i),
        "group": "climate",
        "cpu": 2,
        "memory_bytes": 4 * 1024**3,
    }
    return kwargs | overrides


def stop_kwargs(i: int, user: str = "alice") -> dict[str, Any]:
    at = T0 + timedelta(minutes=i)
    return {"user": user, "server": "", "started_at": at, "stopped_at": at + timedelta(hours=1)}


def event_id(kind: str, i: int, user: str = "alice") -> str:
    if kind == "start":
        return str(start_event_json(**start_kwargs(i, user))["id"])
    return str(stop_event_json(**stop_kwargs(i, user))["id"])


# -- configuration -------------------------------------------------------------------


def test_url_and_token_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EOHUB_ACCOUNTING_URL", raising=False)
    monkeypatch.delenv("EOHUB_ACCOUNTING_HUB_TOKEN", raising=False)
    client = AccountingClient()
    assert (client.url, client.api_token) == (DEFAULT_URL, "")
    assert DEFAULT_URL == "http://127.0.0.1:10101/services/eohub-accounting/"
    assert client.quota_failure_policy == "open"
    # The variable names where the service listens, as the config drop-in reads it.
    monkeypatch.setenv("EOHUB_ACCOUNTING_URL", "http://accounting:10101")
    monkeypatch.setenv("EOHUB_ACCOUNTING_HUB_TOKEN", "from-env")
    client = AccountingClient()
    assert client.url == "http://accounting:10101/services/eohub-accounting/"
    assert client.api_token == "from-env"


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://acc:10101", "http://acc:10101/services/eohub-accounting/"),
        ("http://acc:10101/", "http://acc:10101/services/eohub-accounting/"),
        (
            "http://acc:10101/services/eohub-accounting",
            "http://acc:10101/services/eohub-accounting/",
        ),
        ("https://hub.example.org/jhub/services/eohub-accounting/", None),
    ],
)
def test_a_url_without_a_path_gets_the_service_prefix(given: str, used: str | None) -> None:
    assert AccountingClient(url=given).url == (used or given)


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("url", "ftp://host/", "http:// or https://"),
        ("url", "http://host/x?token=1", "without a query"),
        ("batch_size", 0, "from 1 to 5000"),
        ("batch_size", 5001, "from 1 to 5000"),
        ("quota_timeout", 0, "quota_timeout must be above 0"),
        ("quota_failure_policy", "maybe", r"any of \['open', 'closed'\]"),
    ],
)
def test_bad_settings_fail_with_the_trait_named(trait: str, value: Any, message: str) -> None:
    with pytest.raises(TraitError, match=message):
        AccountingClient(**{trait: value})


# -- quota checks --------------------------------------------------------------------


async def test_a_quota_check_returns_the_service_answer(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(service.url)
    answer = await client.check_quota(
        user="alice", group="climate", cpu=2, memory_bytes=1024**3, gpus=1
    )
    assert answer == QuotaAnswer(
        True,
        "Within quota.",
        {"core_hours": 12.5, "gpu_hours": None, "memory_gib_hours": 40.0},
        "service",
    )
    assert service.quota_requests == [
        {"user": "alice", "group": "climate", "cpu": 2, "memory_bytes": 1024**3, "gpus": 1}
    ]


async def test_a_denial_is_passed_on_with_its_reason(
    service: FakeService, make_client: MakeClient
) -> None:
    service.quota_reply = {
        "allowed": False,
        "reason": "The core-hours budget of group climate is spent.",
        "budget_left": {"core_hours": 0.0, "gpu_hours": None, "memory_gib_hours": None},
    }
    answer = await make_client(service.url).check_quota(user="alice", group="climate", cpu=1)
    assert not answer.allowed
    assert answer.source == "service"
    assert answer.reason == "The core-hours budget of group climate is spent."


async def test_a_bad_quota_request_is_refused_without_asking(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(service.url, quota_failure_policy="open")
    with pytest.raises(ValueError, match="cpu") as refused:
        await client.check_quota(user="alice", group="climate", cpu=0)
    assert isinstance(refused.value, EventError)
    assert service.quota_requests == []


@pytest.mark.parametrize("policy", ["open", "closed"])
@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("hang", "The accounting service did not answer within 0.3 s"),
        ("down", "The accounting service cannot be reached"),
        ("500", "The accounting service failed"),
        ("token", "The accounting service refused the hub's token"),
        ("garbage", "The accounting service sent an answer eohub cannot read"),
    ],
)
async def test_a_quota_check_the_service_cannot_answer_follows_the_policy(
    service: FakeService, make_client: MakeClient, policy: str, fault: str, problem: str
) -> None:
    client = make_client(service.url, quota_failure_policy=policy)
    if fault == "hang":
        service.hang = True
    elif fault == "down":
        await service.stop()
    elif fault == "500":
        service.statuses = [500]
    elif fault == "token":
        client.api_token = "not-the-token"
    else:
        service.quota_reply = {"allowed": "yes", "reason": "?"}
    began = time.monotonic()
    answer = await client.check_quota(user="alice", group="climate", cpu=1)
    assert time.monotonic() - began < 1.5
    assert answer.allowed is (policy == "open")
    assert answer.source == f"fail-{policy}"
    assert answer.budget_left == {}
    if policy == "open":
        assert answer.reason == f"{problem}; starting anyway (fail-open)."
    else:
        assert answer.reason.startswith(f"{problem}, so the quota cannot be checked")
        assert "Try again in a few minutes" in answer.reason


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
