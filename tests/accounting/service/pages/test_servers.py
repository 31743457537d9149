"""Members' servers on a PI's page: the ledger's open sessions matched with the hub's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from eohub.accounting.service.pages import views
from eohub.accounting.service.pages.servers import (
    StopResult,
    hub_servers,
    running_servers,
    stop_member_server,
    stop_note,
)
from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI
from eohub.domain.accounting.access import ACCESS, ADMIN, Caller, Kind
from eohub.domain.accounting.events import parse_batch, start_event_json
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.reconcile import HubServer
from eohub.domain.accounting.session_record import SessionRecord
from tests.accounting.service.pages.pages_support import NOW, pages_store

STARTED = NOW - timedelta(hours=2)
ROW = views.session_row(
    SessionRecord(7, "alice", "", "climate", Resources(1000, 0, 0), STARTED), NOW
)


def hub_server(**kwargs: object) -> HubServer:
    fields: dict[str, object] = {"user": "alice", "name": "", "started": STARTED}
    fields.update(kwargs)
    return HubServer(**fields)  # type: ignore[arg-type]


# what the hub lists for alice -> (state, idle seconds)
CASES: list[tuple[dict[str, list[HubServer]] | None, str, float | None]] = [
    (None, "unknown", None),  # the hub was not asked
    ({}, "unknown", None),  # nor about alice
    ({"alice": []}, "gone", None),
    ({"alice": [hub_server(name="lab")]}, "gone", None),  # another server
    # a later life of the same server: the session's is over
    ({"alice": [hub_server(started=NOW - timedelta(minutes=5))]}, "gone", None),
    ({"alice": [hub_server(last_activity=NOW - timedelta(minutes=42))]}, "running", 42 * 60),
    # no activity yet: idle since it started
    ({"alice": [hub_server()]}, "running", 2 * 3600),
    # a hub clock slightly ahead: never a negative idle time
    ({"alice": [hub_server(last_activity=NOW + timedelta(seconds=3))]}, "running", 0),
    # recorded up to a minute before the hub's start (the clocks differ): the same life
    ({"alice": [hub_server(started=STARTED + timedelta(seconds=30))]}, "running", 7170),
]


@pytest.mark.parametrize(("listed", "state", "idle"), CASES)
def test_open_sessions_are_matched_with_the_hubs_servers(
    listed: dict[str, list[HubServer]] | None, state: str, idle: float | None
) -> None:
    (found,) = running_servers([ROW], listed, NOW)
    assert (found.state, found.idle_seconds) == (state, idle)
    assert found.stoppable is (state == "running")


CAROL = Caller("carol", Kind.USER, frozenset({ACCESS}), frozenset({"climate"}))
BOB = Caller("bob", Kind.USER, frozenset({ACCESS}))
ROOT = Caller("root", Kind.USER, frozenset({ACCESS, ADMIN}))


@pytest.fixture
def store(tmp_path: Path) -> AccountingStore:
    return pages_store(tmp_path)


async def test_the_note_after_a_stop_says_who_and_only_to_those_who_may_see(
    store: AccountingStore,
) -> None:
    (running,) = store.sessions(users={"alice"}, open_only=True)
    assert await stop_note(store, CAROL, running.id, "") is None  # nobody stopped it yet
    store.stop_by(running.id, "carol", NOW)
    assert await stop_note(store, CAROL, running.id, StopResult.STOPPING) == (
        "The hub is stopping alice's default server. The ledger records carol as who asked "
        "for the stop."
    )
    expected = "Stopped alice's default server. The ledger records carol as who stopped it."
    assert await stop_note(store, CAROL, running.id, "") == expected
    assert await stop_note(store, ROOT, running.id, "") == expected
    assert await stop_note(store, BOB, running.id, "") is None  # not his group's
    assert await stop_note(store, CAROL, 999, "") is None
    assert await stop_note(store, CAROL, running.id, StopResult.NOT_RUNNING) == (
        "Nothing was stopped: alice's default server was no longer running."
    )
    assert "restarted since" in str(await stop_note(store, CAROL, running.id, "not-current"))


# -- against a stand-in for the hub's REST API ----------------------------------------
# The real hub runs in test_pi_stop_browser.py; these need a hub that answers slowly, or
# lists a server whose start the test chooses.
TOKEN = "pages-test-token"


class FakeHub:
    def __init__(self) -> None:
        self.started = STARTED
        self.delay = 0.0
        self.requests: list[str] = []
        self.stopped: list[str] = []

    def user_model(self, name: str) -> dict[str, object]:
        server = {"started": self.started.isoformat(), "ready": True}
        return {"name": name, "servers": {} if name in self.stopped else {"": server}}


class HubHandler(web.RequestHandler):
    def initialize(self, hub: FakeHub) -> None:
        self.hub = hub

    async def prepare(self) -> None:
        self.hub.requests.append(f"{self.request.method} {self.request.path}")
        await asyncio.sleep(self.hub.delay)


class UsersHandler(HubHandler):
    def get(self) -> None:
        assert self.get_argument("state") == "active"
        users = [self.hub.user_model(n) for n in ("alice", "bob", "zoe")]
        self.finish(json.dumps({"items": users, "_pagination": {"next": None}}))


class UserHandler(HubHandler):
    def get(self, name: str) -> None:
        self.finish(json.dumps(self.hub.user_model(name)))


class ServerHandler(HubHandler):
    def delete(self, name: str) -> None:
        self.hub.stopped.append(name)
        self.set_status(204)


@pytest.fixture
async def fake_hub() -> AsyncIterator[tuple[FakeHub, HubAPI]]:
    fake = FakeHub()
    app = web.Application(
        [
            (r"/hub/api/users", UsersHandler, {"hub": fake}),
            (r"/hub/api/users/([^/]+)", UserHandler, {"hub": fake}),
            (r"/hub/api/users/([^/]+)/server", ServerHandler, {"hub": fake}),
        ]
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield fake, HubAPI(f"http://127.0.0.1:{port}/hub/api", TOKEN)
    finally:
        server.stop()


async def test_the_groups_page_lists_the_hubs_servers_once(
    fake_hub: tuple[FakeHub, HubAPI],
) -> None:
    fake, hub = fake_hub
    listed = await hub_servers(hub, ["alice", "bob", "alice", "nobody"])
    assert listed is not None
    assert {u: [s.name for s in found] for u, found in listed.items()} == {
        "alice": [""],
        "bob": [""],
        "nobody": [],
    }
    assert fake.requests == ["GET /hub/api/users"]  # one listing, not one request each
    fake.requests.clear()
    assert await hub_servers(hub, ["alice"]) is not None
    assert fake.requests == ["GET /hub/api/users/alice"]


async def test_a_slow_hub_leaves_idle_time_unknown(fake_hub: tuple[FakeHub, HubAPI]) -> None:
    fake, hub = fake_hub
    fake.delay = 2.0
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await hub_servers(hub, ["alice", "bob"], within=0.3) is None
    assert loop.time() - began < 1.5
    (found,) = running_servers([ROW], None, NOW)
    assert found.state == "unknown"


async def test_a_stop_names_who_asked_and_leaves_closing_to_the_hub(
    store: AccountingStore, fake_hub: tuple[FakeHub, HubAPI]
) -> None:
    fake, hub = fake_hub
    (running,) = store.sessions(users={"alice"}, open_only=True)
    fake.started = running.started_at
    result = await stop_member_server(store, hub, running, "carol", wait=0.5, poll=0.1)
    assert result is StopResult.STOPPED
    assert fake.stopped == ["alice"]
    after = store.session(running.id)
    assert after is not None
    # Not closed at the service's clock: the hub's own stop event brings the real time.
    assert (after.stopped_at, after.stopped_by, after.stop_requested_at) == (None, "carol", NOW)


async def test_only_the_servers_current_session_may_be_stopped(
    store: AccountingStore, fake_hub: tuple[FakeHub, HubAPI]
) -> None:
    """alice restarted her server within a minute, charged to another group, before the
    first life's stop arrived: two open sessions, and only the newer runs."""
    fake, hub = fake_hub
    store.put_group("ocean", allocation=Allocation.parse("month"), pis={"olga"})
    (old,) = store.sessions(users={"alice"}, open_only=True)
    restarted = old.started_at + timedelta(seconds=30)
    store.ingest(
        parse_batch(
            start_event_json(user="alice", server="", started_at=restarted, group="ocean", cpu=1)
        )
    )
    (new,) = [s for s in store.sessions(users={"alice"}, open_only=True) if s.group == "ocean"]
    fake.started = restarted
    # carol leads climate, the old session's group: the running server is not hers.
    result = await stop_member_server(store, hub, old, "carol", wait=0.2, poll=0.1)
    assert result is StopResult.NOT_CURRENT
    assert fake.stopped == []
    assert store.session(old.id).stopped_by is None  # type: ignore[union-attr]
    result = await stop_member_server(store, hub, new, "olga", wait=0.2, poll=0.1)
    assert result is StopResult.STOPPED
    assert fake.stopped == ["alice"]
