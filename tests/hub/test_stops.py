"""The home page's stopped servers: why each last stopped, asked of accounting, bounded.

Tables for the pure parts (the service's answer, the newest session per server, the
rows); then the questions against a real loopback HTTP server that plays the service's
``GET api/sessions`` and can hang or refuse the hub's token, with the hub's real
:class:`AccountingClient` (its URL, token and timeouts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler
from traitlets.config import Config

from eohub.accounting.client.client import AccountingClient
from eohub.accounting.client.session_reader import (
    SessionEnd,
    SessionsUnavailable,
    session_ends,
)
from eohub.hub.home import HomePage
from eohub.hub.stops import (
    NOT_RECORDED,
    StoppedRow,
    StopQuestions,
    last_ends,
    stopped_candidates,
    stopped_rows,
)
from eohub.spawner.ledger import LAST_OPTIONS_KEY
from eohub.spawner.local import QuotaLocalSpawner
from eohub.spawner.repo_launches import RepoLaunches
from tests.support.process import free_port

NOW = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
TOKEN = "hub-token-3e1d-never-logged"
PREFIX = "/services/eohub-accounting/"
STOPS_LOG = "eohub.hub.stops"


def session(server: str, stopped: str | None, reason: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "user": "ada",
        "server": server,
        "started_at": "2026-12-06T09:00:00.000000Z",
        "stopped_at": stopped,
        "end_reason": reason,
        **extra,
    }


@pytest.mark.parametrize(
    ("body", "ends"),
    [
        ({"sessions": []}, []),
        (
            {
                "sessions": [
                    session("", "2026-12-06T16:00:00.000000Z", "idle", idle_timeout=3600),
                    session("gpu", None, None),
                    # Legacy names are read as today's.
                    session("old", "2026-12-06T10:00:00Z", "culled"),
                ]
            },
            [
                SessionEnd("", NOW - timedelta(hours=2), "idle", idle_timeout=3600),
                SessionEnd("gpu", None, ""),
                SessionEnd("old", NOW - timedelta(hours=8), "idle"),
            ],
        ),
        # Sessions that cannot be read are skipped, not a failure of the page.
        (
            {"sessions": [session("x", "yesterday", "user"), {"server": 3}, "junk"]},
            [],
        ),
    ],
)
def test_the_services_sessions_are_read(body: Any, ends: list[SessionEnd]) -> None:
    assert session_ends(body) == ends


@pytest.mark.parametrize("body", [None, [], {"sessions": "none"}, {"message": "no"}])
def test_an_answer_that_is_not_a_list_of_sessions_is_unavailable(body: Any) -> None:
    with pytest.raises(SessionsUnavailable):
        session_ends(body)


def test_the_newest_session_of_each_server_says_why_it_stopped() -> None:
    newest, older = SessionEnd("", NOW, "idle"), SessionEnd("", NOW - timedelta(days=1), "user")
    gpu = SessionEnd("gpu", None, "")
    assert last_ends([newest, gpu, older]) == {"": newest, "gpu": gpu}


def orm(name: str, state: dict[str, Any] | None, server: Any = None) -> SimpleNamespace:
    """JupyterHub's database row of a server that is not loaded."""
    return SimpleNamespace(name=name, state=state, server=server)


def wrapper(name: str, state: dict[str, Any], active: bool) -> SimpleNamespace:
    """JupyterHub's Spawner of a loaded server."""
    record = SimpleNamespace(state=state)
    return SimpleNamespace(name=name, active=active, orm_spawner=record, server=None)


LAUNCHED = {LAST_OPTIONS_KEY: {"environment": "lab"}}


def test_the_stopped_servers_and_whether_eohub_launched_them() -> None:
    spawners = [
        wrapper("", LAUNCHED, active=False),
        wrapper("running", LAUNCHED, active=True),
        orm("gpu", LAUNCHED),
        orm("theirs", {}),
        orm("no-state", None),
        orm("up", LAUNCHED, server=object()),  # running, not loaded yet
    ]
    assert stopped_candidates(spawners) == [
        ("", True),
        ("gpu", True),
        ("theirs", False),
        ("no-state", False),
    ]


CANDIDATES = [("", True), ("gpu", True), ("theirs", False), ("quiet", True)]


@pytest.mark.parametrize(
    ("ends", "rows"),
    [
        # Accounting did not answer: eohub's servers say "unknown".
        (
            None,
            [
                StoppedRow("", "My Server", "unknown", False, ""),
                StoppedRow("gpu", "gpu", "unknown", False, ""),
                StoppedRow("quiet", "quiet", "unknown", False, ""),
            ],
        ),
        # It answered: the servers it has sessions of, with why and when.
        (
            {
                "": SessionEnd("", NOW - timedelta(hours=2), "max_duration", max_duration=28800),
                "gpu": SessionEnd("gpu", None, ""),
                "theirs": SessionEnd("theirs", NOW - timedelta(minutes=5), "user"),
            },
            [
                StoppedRow(
                    "",
                    "My Server",
                    "Reached its maximum duration (8 hours)",
                    True,
                    "2 h ago",
                    "max_duration",
                ),
                StoppedRow("gpu", "gpu", NOT_RECORDED, True, ""),
                StoppedRow("theirs", "theirs", "Stopped by its user", True, "5 min ago", "user"),
            ],
        ),
        (
            {"": SessionEnd("", NOW - timedelta(seconds=30), "")},
            [StoppedRow("", "My Server", "unknown", True, "under 1 min ago", "unknown")],
        ),
    ],
)
def test_a_row_per_stopped_server(ends: Any, rows: list[StoppedRow]) -> None:
    assert stopped_rows(CANDIDATES, ends, NOW) == rows


@pytest.mark.parametrize(
    ("reason", "enforced"),
    [("idle", True), ("max_duration", True), ("budget", True), ("user", False), ("", False)],
)
def test_stops_by_a_limit_or_a_budget_are_highlighted(reason: str, enforced: bool) -> None:
    assert StoppedRow("", "My Server", "", True, "", reason).enforced is enforced


# -- asking the service ----------------------------------------------------------------


class Service:
    """``GET api/sessions`` of the accounting service, with faults on demand."""

    def __init__(self) -> None:
        self.port = free_port()
        self.asked: list[dict[str, str]] = []
        self.sessions: list[dict[str, Any]] = []
        self.status = 200
        self.hang = False
        self.release = asyncio.Event()
        self.server: HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def start(self) -> None:
        app = Application([(PREFIX + "api/sessions", SessionsHandler, {"service": self})])
        self.server = HTTPServer(app)
        self.server.listen(self.port, "127.0.0.1")

    async def stop(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.release.set()
        await self.server.close_all_connections()


class SessionsHandler(RequestHandler):
    def initialize(self, service: Service) -> None:
        self.service = service

    async def get(self) -> None:
        self.service.asked.append({k: self.get_query_argument(k) for k in ("user", "limit")})
        if self.request.headers.get("Authorization") != f"token {TOKEN}":
            self.send_error(403)
            return
        if self.service.hang:
            await self.service.release.wait()
        if self.service.status != 200:
            self.send_error(self.service.status)
            return
        self.finish({"sessions": self.service.sessions, "next_before": None})


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    started = Service()
    started.start()
    yield started
    await started.stop()


def client(url: str, tmp_path: Path, **settings: Any) -> AccountingClient:
    traits = {
        "url": url,
        "api_token": TOKEN,
        "outbox_path": str(tmp_path / "outbox.sqlite"),
        "quota_timeout": 3.0,
        **settings,
    }
    return AccountingClient(config=Config({"AccountingClient": traits}))


def deadline(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


async def test_the_last_stop_of_each_server(service: Service, tmp_path: Path) -> None:
    service.sessions = [
        session("", "2026-12-06T16:00:00Z", "idle"),
        session("", "2026-12-05T16:00:00Z", "user"),
    ]
    questions = StopQuestions(lookback=20)
    ends = await questions.ask(client(service.url, tmp_path), "ada", deadline(2))
    assert ends == {"": SessionEnd("", NOW - timedelta(hours=2), "idle")}
    assert service.asked == [{"user": "ada", "limit": "20"}]


async def test_a_refused_token_is_unknown_and_logged_once(
    service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    questions = StopQuestions()
    refused = client(service.url, tmp_path, api_token="wrong")
    with caplog.at_level(logging.INFO, logger=STOPS_LOG):
        for _ in range(3):
            assert await questions.ask(refused, "ada", deadline(2)) is None
    lines = [r for r in caplog.records if r.name == STOPS_LOG]
    assert len(lines) == 1
    assert "may not read sessions" in lines[0].getMessage()
    assert lines[0].levelno == logging.WARNING
    assert "wrong" not in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("status", [500, 503])
async def test_a_failing_service_is_unknown(service: Service, tmp_path: Path, status: int) -> None:
    service.status = status
    assert await StopQuestions().ask(client(service.url, tmp_path), "ada", deadline(2)) is None


async def test_a_stopped_service_is_unknown_at_once(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}{PREFIX}"
    began = time.monotonic()
    assert await StopQuestions().ask(client(down, tmp_path), "ada", deadline(2)) is None
    assert time.monotonic() - began < 1


async def test_a_hung_service_holds_a_few_slots_and_pages_share_questions(
    service: Service, tmp_path: Path
) -> None:
    """However many pages ask, at most ``slots`` reads are in flight; a page's question
    that finds no free slot in time answers unknown; a reload shares the read in flight."""
    service.hang = True
    hub = client(service.url, tmp_path, quota_timeout=5.0)
    questions = StopQuestions(slots=2)
    users = ["ada", "bob", "cyd", "dan"]
    asked = [questions.ask(hub, user, deadline(0.3)) for user in users]
    again = questions.ask(hub, "ada", deadline(0.3))
    assert again is asked[0]
    began = time.monotonic()
    done, pending = await asyncio.wait(asked, timeout=0.5)
    assert time.monotonic() - began < 1.0  # the wait, not the reads' hang
    # The two without a slot gave up at their deadline; two reads still hang.
    assert [t.result() for t in done] == [None, None]
    assert len(pending) == 2
    assert len(service.asked) == 2
    assert questions.in_flight == 2
    service.release.set()
    await asyncio.wait(pending, timeout=5)
    assert questions.in_flight == 0


# -- on the home page --------------------------------------------------------------------


class PageUser:
    """JupyterHub's ``User`` as the home page uses it."""

    def __init__(self, name: str, *spawners: Any) -> None:
        self.name = name
        self.groups: list[Any] = []
        self.spawners = list(spawners)

    def all_spawners(self, include_default: bool = True) -> list[Any]:
        return list(self.spawners)

    def server_url(self, name: str) -> str:
        return f"/user/{self.name}/{name}/" if name else f"/user/{self.name}/"


def stopped_spawner(name: str, accounting: AccountingClient) -> Any:
    """A stopped server of eohub's that a launch started once (its state keeps it)."""
    config = Config()
    record = SimpleNamespace(name=name, user_options=None, server=None, started=None, state={})
    spawner = QuotaLocalSpawner(
        config=config,
        user=SimpleNamespace(name="ada", groups=[]),
        orm_spawner=record,
        accounting=accounting,
        repo_launches=RepoLaunches(config=config),
    )
    record.state = {LAST_OPTIONS_KEY: {"environment": "lab"}}
    return spawner


async def test_the_home_page_says_why_each_stopped_server_stopped(
    service: Service, tmp_path: Path
) -> None:
    hub = client(service.url, tmp_path)
    service.sessions = [session("", "2026-12-06T16:00:00Z", "idle", idle_timeout=7200)]
    page = HomePage(PageUser("ada", stopped_spawner("", hub)), stop_questions=StopQuestions())
    assert await page.servers() == []
    (row,) = await page.stopped()
    assert (row.label, row.reason, row.known) == (
        "My Server",
        "Stopped after being idle for its limit (2 hours)",
        True,
    )
    assert len(service.asked) == 1  # asked once, while the running rows were built

    # A hung service: the page waits no longer than its budget_wait, and says unknown.
    service.hang = True
    page = HomePage(
        PageUser("ada", stopped_spawner("", hub)),
        budget_wait=0.3,
        stop_questions=StopQuestions(),
    )
    began = time.monotonic()
    (row,) = await page.stopped()
    assert time.monotonic() - began < 1.0  # the budget_wait, not the hang
    assert (row.reason, row.known) == ("unknown", False)
