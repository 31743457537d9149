"""The home page's rows on real spawners: budget questions kept few, rows read together.

Real QuotaLocalSpawners, rebuilt from their state as after a hub restart, and a real
AccountingClient asking a loopback server that plays the accounting service
(tests/accounting/client/client_support.py), which counts the questions and can hang.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from traitlets.config import Config

from eohub.accounting.client.client import AccountingClient
from eohub.hub.budgets import HOME_CHECKS, QUESTIONS
from eohub.hub.home import HomePage
from eohub.spawner.ledger import LAST_OPTIONS_KEY, STATE_KEY
from eohub.spawner.local import QuotaLocalSpawner
from eohub.spawner.repo_launches import RepoLaunches
from tests.accounting.client.client_support import LOG, TOKEN, FakeService

SIZES = {
    "small": {"display_name": "Small", "cpu": 1, "memory": "2G"},
    "big": {"display_name": "Big", "cpu": 4, "memory": "8G"},
}
ENVIRONMENTS = {"lab": {"display_name": "Lab", "default": True}}
HOME_LOG = "eohub.hub.home"


class PageUser:
    """JupyterHub's ``User`` as the home page uses it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.groups: list[Any] = []
        self.spawners: list[QuotaLocalSpawner] = []

    def all_spawners(self, include_default: bool = True) -> list[QuotaLocalSpawner]:
        return list(self.spawners)

    def server_url(self, name: str) -> str:
        return f"/user/{self.name}/{name}/" if name else f"/user/{self.name}/"


def running(
    user: PageUser,
    name: str,
    accounting: AccountingClient,
    options: dict[str, Any] | None,
    config: Config | None = None,
) -> QuotaLocalSpawner:
    """A running server of ``user``'s after a hub restart: ``options`` started it (None:
    eohub did not, its state holds no session)."""
    if config is None:
        config = Config()
        config.QuotaLocalSpawner.launch_environments = ENVIRONMENTS
        config.QuotaLocalSpawner.launch_sizes = SIZES
    server = orm.Server(
        proto="http", ip="127.0.0.1", port=8888, base_url=user.server_url(name), cookie_name="c"
    )
    started = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    record = SimpleNamespace(name=name, user_options=None, server=server, started=started)
    spawner = QuotaLocalSpawner(
        config=config,
        user=user,
        orm_spawner=record,
        accounting=accounting,
        repo_launches=RepoLaunches(config=config),
    )
    if options is not None:
        group = options.get("group", "climate")
        spawner.load_state(
            {
                STATE_KEY: {"started_at": started.isoformat(), "group": group},
                LAST_OPTIONS_KEY: options,
            }
        )
    user.spawners.append(spawner)
    return spawner


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def accounting(service: FakeService, tmp_path: Path) -> AsyncIterator[AccountingClient]:
    """The hub's client, its quota checks sharing 5 connections."""
    settings = {
        "url": service.url,
        "api_token": TOKEN,
        "outbox_path": str(tmp_path / "outbox.sqlite"),
        "quota_timeout": 3.0,
        "quota_max_connections": HOME_CHECKS + 1,
    }
    client = AccountingClient(config=Config({"AccountingClient": settings}), log=LOG)
    yield client
    await client.stop(timeout=0)


def small(group: str) -> dict[str, Any]:
    return {"environment": "lab", "size": "small", "group": group}


async def test_the_page_asks_once_per_group_and_size(
    service: FakeService, accounting: AccountingClient
) -> None:
    ada = PageUser("ada")
    running(ada, "", accounting, small("climate"))
    running(ada, "second", accounting, small("climate"))
    running(ada, "third", accounting, {**small("climate"), "size": "big"})
    running(ada, "staff", accounting, small("staff"))
    running(ada, "not-ours", accounting, None)  # no eohub session: no row
    rows = await HomePage(ada).servers()
    assert [r.name for r in rows] == ["", "second", "third", "staff"]
    assert all(r.budget.startswith("12.5 core-hours left") for r in rows)
    asked = sorted((q["group"], q["cpu"]) for q in service.quota_requests)
    assert asked == [("climate", 1), ("climate", 4), ("staff", 1)]


async def test_home_pages_never_take_the_spawns_quota_connections(
    service: FakeService, accounting: AccountingClient
) -> None:
    """A hung service: however many pages and servers, the pages hold HOME_CHECKS of the
    hub's quota-check connections; a spawn's check still gets one and its answer."""
    service.hang = True
    users = [PageUser(name) for name in ("ada", "bob", "cyd")]
    for user in users:
        for group in ("climate", "staff", "eo-ml"):
            running(user, group, accounting, small(group))
    pages = [HomePage(user, budget_wait=0.3) for user in users]
    began = time.monotonic()
    answered = await asyncio.gather(*(page.servers() for page in pages))
    assert time.monotonic() - began < 1.0
    assert all(r.budget == "budget unknown" and r.known for rows in answered for r in rows)
    await asyncio.sleep(0.1)
    assert service.requests == HOME_CHECKS
    # A reload asks nothing new while the same questions are in flight.
    await HomePage(users[0], budget_wait=0.3).servers()
    assert service.requests == HOME_CHECKS
    assert QUESTIONS.in_flight <= HOME_CHECKS

    service.hang = False  # for the spawn's question: the pages' stay hung
    began = time.monotonic()
    answer = await accounting.check_quota(user="dan", group="climate", cpu=1, server="")
    assert (answer.allowed, answer.decided_by) == (True, "service")
    assert time.monotonic() - began < 0.5


async def test_a_server_whose_state_is_garbage_gets_jupyterhubs_part_only(
    service: FakeService, accounting: AccountingClient, caplog: pytest.LogCaptureFixture
) -> None:
    ada = PageUser("ada")
    running(ada, "", accounting, small("climate"))
    running(ada, "broken", accounting, {**small("climate"), "size": "gone", "gpus": math.inf})
    running(ada, "last", accounting, small("staff"))
    with caplog.at_level(logging.INFO, logger=HOME_LOG):
        rows = await HomePage(ada).servers()
    assert [(r.name, r.known) for r in rows] == [("", True), ("broken", False), ("last", True)]
    broken = rows[1]
    assert (broken.label, broken.url) == ("broken", "/user/ada/broken/")
    assert broken.running  # JupyterHub's start time
    assert (broken.environment, broken.budget, broken.ends, broken.idle) == ("", "", "", "")
    assert rows[2].budget.startswith("12.5 core-hours left")
    lines = [r for r in caplog.records if r.name == HOME_LOG]
    assert len(lines) == 1
    assert "cannot read the launch of" in lines[0].getMessage()
    assert "broken" in lines[0].getMessage()
    assert lines[0].exc_info is None  # one line, no traceback


class HungFile:
    """A launch config file whose read hangs (a FIFO nobody writes: a hung NFS mount)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)

    def release(self) -> int:
        """Answer every reader blocked on the file; how many there were."""
        readers = 0
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno == errno.ENXIO:  # nobody is reading it
                    return readers
                raise
            os.write(fd, b"{}\n")
            os.close(fd)
            readers += 1
            time.sleep(0.05)  # the reader takes its answer before the next open


@pytest.fixture
def hung_file(tmp_path: Path) -> Iterator[HungFile]:
    hung = HungFile(tmp_path / "launch.yaml")
    yield hung
    hung.release()  # no thread stays blocked after the test


async def test_a_config_that_cannot_be_read_in_time_does_not_hold_the_page(
    service: FakeService,
    accounting: AccountingClient,
    hung_file: HungFile,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config()
    config.QuotaLocalSpawner.launch_config_file = str(hung_file.path)
    config.QuotaLocalSpawner.launch_environments = ENVIRONMENTS
    config.QuotaLocalSpawner.launch_sizes = SIZES
    ada = PageUser("ada")
    for name in ("", "second"):
        running(ada, name, accounting, small("climate"), config)
    ticks = 0

    async def tick() -> None:  # the hub's loop keeps serving while the file hangs
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.02)

    ticker = asyncio.ensure_future(tick())
    began = time.monotonic()
    with caplog.at_level(logging.INFO, logger=HOME_LOG):
        rows = await HomePage(ada, budget_wait=0.4).servers()
    took = time.monotonic() - began
    ticker.cancel()
    assert took < 1.0
    assert ticks >= 10
    assert [(r.name, r.known) for r in rows] == [("", False), ("second", False)]
    assert service.quota_requests == []
    assert "could not read the launch of" in caplog.text
    await asyncio.sleep(0.1)
    assert hung_file.release() == 1  # the config is read once per page, not per server


async def test_a_bad_launch_config_gives_each_row_jupyterhubs_part(
    service: FakeService,
    accounting: AccountingClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The config was edited into something invalid since the servers started."""
    bad = tmp_path / "launch.yaml"
    bad.write_text("environments: [unclosed\n")
    config = Config()
    config.QuotaLocalSpawner.launch_config_file = str(bad)
    ada = PageUser("ada")
    for name in ("", "second"):
        running(ada, name, accounting, small("climate"), config)
    with caplog.at_level(logging.INFO, logger=HOME_LOG):
        rows = await HomePage(ada).servers()
    assert [(r.name, r.known) for r in rows] == [("", False), ("second", False)]
    lines = [r.getMessage() for r in caplog.records if r.name == HOME_LOG]
    assert len(lines) == 2, lines
    assert all("is not valid YAML" in line for line in lines)
    assert service.quota_requests == []
