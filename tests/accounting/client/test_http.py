"""One JSON POST to the accounting service: the reply whatever its status, or why none came."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from eohub.accounting.client.http import TEXT_EXCERPT, NoAnswer, Reply, post_json
from tests.support.process import free_port

TOKEN = "hub-token-http-never-in-a-message"


class Echo(RequestHandler):
    """Answers as the path says: JSON, a page, nothing, or late."""

    seen: list[dict[str, Any]]

    def initialize(self, seen: list[dict[str, Any]]) -> None:
        self.seen = seen

    async def post(self, how: str) -> None:
        self.seen.append(
            {
                "body": json.loads(self.request.body),
                "authorization": self.request.headers.get("Authorization"),
                "content_type": self.request.headers.get("Content-Type"),
            }
        )
        if how == "json":
            self.set_status(201)
            self.finish({"accepted": 2})
        elif how == "error":
            self.set_status(422)
            self.finish({"errors": {"events[0].cpu": "bad"}})
        elif how == "page":
            self.set_status(502)
            self.finish("<html>\n  <body>Bad\tGateway</body>\n</html>" + "x" * 500)
        elif how == "empty":
            self.set_status(204)
        elif how == "slow":
            await asyncio.sleep(2)
            self.finish({})


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    port = free_port()
    http = HTTPServer(Application([(r"/api/(\w+)", Echo, {"seen": seen})]))
    http.listen(port, "127.0.0.1")
    yield f"http://127.0.0.1:{port}/api/", seen
    http.stop()
    await http.close_all_connections()


async def test_a_json_reply_is_parsed_whatever_its_status(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, seen = server
    http = AsyncHTTPClient()
    reply = await post_json(http, base + "json", {"events": [1]}, token=TOKEN, seconds=5)
    assert reply == Reply(201, {"accepted": 2})
    refused = await post_json(http, base + "error", {}, token=TOKEN, seconds=5)
    assert refused == Reply(422, {"errors": {"events[0].cpu": "bad"}})
    assert seen[0] == {
        "body": {"events": [1]},
        "authorization": f"token {TOKEN}",
        "content_type": "application/json",
    }


async def test_without_a_token_no_authorization_is_sent(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, seen = server
    await post_json(AsyncHTTPClient(), base + "json", {}, token="", seconds=5)
    assert seen[0]["authorization"] is None


async def test_a_page_that_is_not_json_is_kept_as_an_excerpt_on_one_line(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, _ = server
    reply = await post_json(AsyncHTTPClient(), base + "page", {}, token=TOKEN, seconds=5)
    assert reply.code == 502
    assert reply.body is None
    assert reply.text.startswith("<html> <body>Bad Gateway</body> </html>xxx")
    assert len(reply.text) < TEXT_EXCERPT
    empty = await post_json(AsyncHTTPClient(), base + "empty", {}, token=TOKEN, seconds=5)
    assert empty == Reply(204, None)


async def test_nothing_listening_is_no_answer_naming_the_endpoint_without_credentials() -> None:
    port = free_port()
    url = f"http://user:s3cret@127.0.0.1:{port}/services/x/api/events?q=1"
    with pytest.raises(NoAnswer) as e:
        await post_json(AsyncHTTPClient(), url, {}, token=TOKEN, seconds=5)
    assert e.value.problem == "The accounting service cannot be reached"
    assert str(e.value) == e.value.problem
    assert e.value.detail.startswith(f"POST http://127.0.0.1:{port}/services/x/api/events: ")
    for secret in ("s3cret", TOKEN, "q=1"):
        assert secret not in e.value.detail


async def test_a_slow_service_is_no_answer_within_the_time_given(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    base, _ = server
    with pytest.raises(NoAnswer) as e:
        await post_json(AsyncHTTPClient(), base + "slow", {}, token=TOKEN, seconds=0.2)
    assert e.value.problem == "The accounting service did not answer within 0.2 s"
    assert TOKEN not in e.value.detail
