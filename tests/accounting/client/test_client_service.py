"""The hub's client against the real service on PostgreSQL: what each answer does.

A 4xx is a verdict a resend cannot change: the batch is dead-lettered at once with the
service's status and message, and never sent again. A 503 means only "database
unavailable": the events wait, are retried, and are delivered once it is back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from eohub.accounting.client.client import AccountingClient
from eohub.adapters.accounting_db.models import Session
from eohub.domain.accounting.events import start_event_json
from tests.accounting.client.test_outbox_faults import service_behind_proxy
from tests.support.faultproxy import FaultProxy
from tests.support.hub import Hub

T0 = datetime(2026, 6, 1, tzinfo=UTC)
LOG = logging.getLogger("tests.accounting.client_service")


async def test_4xx_is_dead_lettered_at_once_and_503_is_retried_until_delivered(
    hub_factory: Callable[..., Hub],
    postgres_url: str,
    fault_proxy_factory: Callable[..., FaultProxy],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    setup = service_behind_proxy(hub_factory, postgres_url, fault_proxy_factory, tmp_path)
    engine, proxy, service_url, client_token = (
        setup.engine,
        setup.proxy,
        setup.service_url,
        setup.client_token,
    )
    service = setup.start_service()
    pg = urlsplit(postgres_url)
    clients: list[AccountingClient] = []
    revived: FaultProxy | None = None

    def client(name: str, **traits: object) -> AccountingClient:
        settings: dict[str, object] = {
            "url": service_url,
            "api_token": client_token,
            "outbox_path": str(tmp_path / f"{name}.sqlite"),
            "retry_initial_delay": 0.05,
            "retry_max_delay": 0.3,
            "request_timeout": 5,
        }
        made = AccountingClient(**(settings | traits), log=LOG)
        clients.append(made)
        return made

    try:
        # 400 with the service's field errors: an unknown group.
        hub_client = client("hub")
        await hub_client.start()
        unknown = await hub_client.record_start(
            user="alice", server="", started_at=T0, group="nope", cpu=1
        )
        assert await hub_client.flush(10)
        [dead] = await hub_client.dead_letters()
        assert dead.event["id"] == unknown
        assert "unknown group 'nope'" in dead.errors["group"]

        # 403: a token the service refuses. 404: a URL that is not the service's API.
        for name, traits, status in (
            ("stale", {"api_token": secrets.token_hex(16)}, "403"),
            ("misrouted", {"url": f"{service_url}/services/elsewhere/"}, "404"),
        ):
            other = client(name, **traits)
            await other.start()
            await other.record_start(user="bob", server="", started_at=T0, group="climate", cpu=1)
            assert await other.flush(10), name  # dead-lettered at once, not retried
            [refused] = await other.dead_letters()
            assert (refused.errors["status"], bool(refused.errors["message"])) == (status, True)
            assert await other.pending() == 0

        # 503: the database is unreachable; the events wait and are retried.
        port = proxy.port
        proxy.stop()
        started = T0 + timedelta(hours=1)
        await hub_client.record_start(
            user="carol", server="", started_at=started, group="climate", cpu=2
        )
        await hub_client.record_stop(
            user="carol", server="", started_at=started, stopped_at=started + timedelta(hours=3)
        )
        assert not await hub_client.flush(1.5)
        assert await hub_client.pending() == 2
        assert len(await hub_client.dead_letters()) == 1  # only the unknown group's
        direct = await asyncio.to_thread(
            requests.post,
            f"{service_url}/services/eohub-accounting/api/events",
            json=start_event_json(user="dan", server="", started_at=T0, group="climate", cpu=1),
            headers={"Authorization": f"token {client_token}"},
            timeout=10,
        )
        assert direct.status_code == 503
        assert "database is unavailable" in direct.json()["message"]
        retries = [m for m in caplog.messages if "HTTP 503 (database unavailable)" in m]
        assert retries, caplog.messages

        # The database is back, at the same address.
        revived = FaultProxy(pg.hostname or "127.0.0.1", pg.port or 5432, port=port).start()
        assert await hub_client.flush(30)
        assert len(await hub_client.dead_letters()) == 1
    finally:
        for made in clients:
            await made.stop(timeout=0)
        service.stop()
        if revived is not None:
            revived.stop()

    with engine.connect() as c:
        rows = c.execute(select(Session.user, Session.stopped_at)).all()
    engine.dispose()
    assert rows == [("carol", started + timedelta(hours=3))]
