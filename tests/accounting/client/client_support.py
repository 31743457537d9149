"""A real HTTP server on loopback that plays the accounting service for the client tests."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from eohub.accounting.client.client import AccountingClient
from eohub.domain.accounting.events import start_event_json, stop_event_json
from tests.support.process import free_port

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
        self.quota_purposes: list[str] = []  # the ?purpose= of each check ("" for none)
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
        self.service.quota_purposes.append(self.get_query_argument("purpose", ""))
        self.finish(self.service.quota_reply)


#: make_client's type: url and traits in, a started-later AccountingClient out.
MakeClient = Callable[..., AccountingClient]


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
