"""The hub API client against a tiny local Tornado server that answers as JupyterHub does.

``tests/accounting/service/test_reconcile_hub.py`` runs it against a real hub.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from eohub.adapters.hub_api import HubAPI, HubAPIError, StopOutcome, servers_of

TOKEN = "service-token-never-shown"
STARTED = "2026-04-01T10:00:00.000000Z"


def user_model(name: str, **servers: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "servers": servers}


class FakeHub:
    """What the handlers answer, and what they were asked."""

    def __init__(self) -> None:
        self.users = [
            user_model("ada", **{"": {"started": STARTED, "ready": True}}),
            user_model("bob", gpu={"started": STARTED, "pending": "spawn"}),
            user_model("carl", **{"": {"started": STARTED, "ready": True}}),
        ]
        self.requests: list[tuple[str, str]] = []
        self.answer: Callable[[web.RequestHandler], bool] | None = None


class Handler(web.RequestHandler):
    def initialize(self, hub: FakeHub) -> None:
        self.hub = hub

    def prepare(self) -> None:
        request = self.request
        self.hub.requests.append((request.method or "", request.uri or ""))
        if self.request.headers.get("Authorization") != f"token {TOKEN}":
            self.send_error(403)
        elif self.hub.answer is not None and self.hub.answer(self):
            self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish({"message": f"refused with {status_code}"})


class Users(Handler):
    def get(self) -> None:
        offset = int(self.get_argument("offset"))
        limit = int(self.get_argument("limit"))
        items = self.hub.users[offset : offset + limit]
        following = offset + limit
        more = {"offset": following} if following < len(self.hub.users) else None
        self.finish(json.dumps({"items": items, "_pagination": {"next": more}}))


class User(Handler):
    def get(self, name: str) -> None:
        found = [u for u in self.hub.users if u["name"] == name]
        if not found:
            raise web.HTTPError(404)
        self.finish(found[0])


class Server(Handler):
    def delete(self, name: str, server: str = "") -> None:
        self.set_status({"ada": 204, "bob": 202}.get(name, 404))
        self.finish()


@pytest.fixture
async def hub() -> AsyncIterator[tuple[FakeHub, str]]:
    fake = FakeHub()
    app = web.Application(
        [
            (r"/hub/api/users", Users, {"hub": fake}),
            (r"/hub/api/users/([^/]+)", User, {"hub": fake}),
            (r"/hub/api/users/([^/]+)/server", Server, {"hub": fake}),
            (r"/hub/api/users/([^/]+)/servers/([^/]+)", Server, {"hub": fake}),
        ]
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield fake, f"http://127.0.0.1:{port}/hub/api/"
    finally:
        server.stop()


async def test_servers_are_listed_page_by_page(hub: tuple[FakeHub, str]) -> None:
    fake, url = hub
    servers = await HubAPI(url, TOKEN, page_size=2).list_servers()
    assert [(s.user, s.name, s.ready, s.pending) for s in servers] == [
        ("ada", "", True, None),
        ("bob", "gpu", False, "spawn"),
        ("carl", "", True, None),
    ]
    assert servers[0].started == datetime(2026, 4, 1, 10, tzinfo=UTC)
    assert [uri for _, uri in fake.requests] == [
        "/hub/api/users?state=active&offset=0&limit=2",
        "/hub/api/users?state=active&offset=2&limit=2",
    ]


async def test_one_server_and_stops(hub: tuple[FakeHub, str]) -> None:
    fake, url = hub
    api = HubAPI(url, TOKEN)
    found = await api.server("bob", "gpu")
    assert found is not None
    assert found.pending == "spawn"
    assert await api.server("bob") is None  # no default server
    assert await api.server("nobody") is None  # 404
    assert await api.stop_server("ada") == StopOutcome.STOPPED
    assert await api.stop_server("bob", "gpu") == StopOutcome.STOPPING
    assert await api.stop_server("a/b", "x y") == StopOutcome.GONE
    assert fake.requests[-1] == ("DELETE", "/hub/api/users/a%2Fb/servers/x%20y")


async def test_one_users_servers_with_their_last_activity(hub: tuple[FakeHub, str]) -> None:
    fake, url = hub
    fake.users.append(
        user_model(
            "dee",
            **{
                "": {"started": STARTED, "ready": True, "last_activity": "2026-04-01T11:30:00Z"},
                "old": {"started": STARTED, "stopped": True},
            },
        )
    )
    api = HubAPI(url, TOKEN)
    (server,) = await api.user_servers("dee")
    assert (server.user, server.name) == ("dee", "")
    assert server.last_activity == datetime(2026, 4, 1, 11, 30, tzinfo=UTC)
    assert await api.user_servers("nobody") == []  # 404: no such user
    assert fake.requests[-2:] == [("GET", "/hub/api/users/dee"), ("GET", "/hub/api/users/nobody")]


async def test_errors_name_the_request_but_never_the_token(hub: tuple[FakeHub, str]) -> None:
    _, url = hub
    api = HubAPI(url, "wrong-token")
    with pytest.raises(HubAPIError) as refused:
        await api.list_servers()
    assert refused.value.status == 403
    assert str(refused.value) == f"GET {url.rstrip('/')}/users: HTTP 403 refused with 403"
    assert "wrong-token" not in repr(api) + str(refused.value)


def pages_that_do_not_move(handler: web.RequestHandler) -> bool:
    handler.write({"items": [], "_pagination": {"next": {"offset": 0}}})
    return True


def not_a_page(handler: web.RequestHandler) -> bool:
    handler.write(json.dumps({"users": []}))
    return True


def not_json(handler: web.RequestHandler) -> bool:
    handler.write("<html>")
    return True


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (pages_that_do_not_move, "the next page does not move forward"),
        (not_a_page, "the answer is not a page of users"),
        (not_json, "the answer is not JSON"),
    ],
)
async def test_bad_answers_are_hub_api_errors(
    hub: tuple[FakeHub, str], answer: Callable[[web.RequestHandler], bool], words: str
) -> None:
    fake, url = hub
    fake.answer = answer
    with pytest.raises(HubAPIError, match=words):
        await HubAPI(url, TOKEN).list_servers()


async def test_a_hub_that_does_not_answer() -> None:
    sock, port = bind_unused_port()
    sock.close()
    with pytest.raises(HubAPIError, match="the hub did not answer") as refused:
        await HubAPI(f"http://127.0.0.1:{port}/hub/api", TOKEN).list_servers()
    assert refused.value.status is None


@pytest.mark.parametrize(
    ("url", "token", "kwargs", "words"),
    [
        ("", TOKEN, {}, "no hub API URL"),
        ("http://hub/api", "", {}, "no hub API token"),
    ],
)
def test_settings_are_required(url: str, token: str, kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(HubAPIError, match=words):
        HubAPI(url, token, **kwargs)


@pytest.mark.parametrize("kwargs", [{"concurrency": 0}, {"page_size": 0}])
def test_limits_must_be_positive(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HubAPI("http://hub/api", TOKEN, **kwargs)


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://hub:8081/hub/api/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    assert repr(HubAPI.from_env()) == "HubAPI('http://hub:8081/hub/api')"


@pytest.mark.parametrize(
    ("model", "found"),
    [
        ({"name": "ada", "servers": {"": {"started": "2026-04-01T10:00:00"}}}, [("ada", "")]),
        ({"name": "ada", "servers": {"x": {"stopped": True}}}, []),
        ({"name": "ada", "servers": {"x": "not a model"}}, []),
        ({"name": "ada"}, []),
        ({"servers": {"": {}}}, []),
        ({"name": "ada", "servers": {"b": {}, "a": {}}}, [("ada", "a"), ("ada", "b")]),
    ],
)
def test_servers_of(model: dict[str, Any], found: list[tuple[str, str]]) -> None:
    assert [(s.user, s.name) for s in servers_of(model)] == found


@pytest.mark.parametrize(
    ("server", "started", "options"),
    [
        ({"started": "2026-04-01T10:00:00"}, datetime(2026, 4, 1, 10, tzinfo=UTC), {}),
        ({"started": "2026-04-01T12:00:00+02:00"}, datetime(2026, 4, 1, 10, tzinfo=UTC), {}),
        ({"started": "not a time", "user_options": ["x"]}, None, {}),
        ({"started": None, "user_options": {"group": "g"}}, None, {"group": "g"}),
    ],
)
def test_servers_of_reads_times_as_utc_and_options_as_a_dict(
    server: dict[str, Any], started: datetime | None, options: dict[str, Any]
) -> None:
    (found,) = servers_of({"name": "ada", "servers": {"": server}})
    assert (found.started, found.user_options) == (started, options)
