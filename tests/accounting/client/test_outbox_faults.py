"""Nothing lost, nothing counted twice: the hub's client streams 500 sessions (1000
events) to the real service on PostgreSQL while the service is killed and restarted, the
database connections are cut, and the hub itself "dies" and comes back."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests
from sqlalchemy import Engine, func, select

from eohub.accounting.client.client import AccountingClient
from eohub.adapters.accounting_db.models import Event, Session, UsageTotal
from eohub.domain.accounting.ledger import MS_PER_HOUR
from tests.support.accounting import empty_database
from tests.support.faultproxy import FaultProxy
from tests.support.hub import Hub
from tests.support.process import ServiceProcess, free_port, start_process

SESSIONS = 500
T0 = datetime(2026, 6, 1, tzinfo=UTC)
LOG = logging.getLogger("tests.accounting.faults")

# An external accounting service: the test starts, kills and restarts it itself.
HUB_CONFIG = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
from eohub.accounting.scopes import ACCESS, CUSTOM_SCOPES, INGEST
c.JupyterHub.custom_scopes.update(CUSTOM_SCOPES)
c.JupyterHub.services.extend([
    {{"name": "eohub-accounting", "url": "{service_url}", "api_token": "{service_token}"}},
    {{"name": "eohub-accounting-hub", "api_token": "{client_token}"}},
])
c.JupyterHub.load_roles.append(
    {{"name": "ingest", "scopes": [INGEST, ACCESS], "services": ["eohub-accounting-hub"]}}
)
"""


def _start_service(hub: Hub, url: str, db_url: str, token: str, workdir: Path) -> ServiceProcess:
    env = {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_API_URL": f"{hub.url}/hub/api",
        "JUPYTERHUB_SERVICE_URL": url,
        "JUPYTERHUB_SERVICE_NAME": "eohub-accounting",
        "JUPYTERHUB_CLIENT_ID": "service-eohub-accounting",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/eohub-accounting/oauth_callback",
        "EOHUB_ACCOUNTING_DB_URL": db_url,
    }
    process = start_process(
        "eohub-accounting",
        [sys.executable, "-m", "eohub.accounting", "--reconcile-interval=0"],
        log_path=workdir / f"service-{secrets.token_hex(3)}.log",
        env=env,
        cwd=workdir,
    )

    def ready() -> bool:
        try:
            return (
                requests.get(f"{url}/services/eohub-accounting/api/me", timeout=1).status_code
                == 403
            )
        except requests.RequestException:
            return False

    process.wait_until(ready, timeout=30, what="answering")
    return process


def _through(proxy: FaultProxy, db_url: str) -> str:
    parts = urlsplit(db_url)
    netloc = (f"{parts.username}@" if parts.username else "") + f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class Setup:
    """A hub, and its accounting service on PostgreSQL behind a fault proxy."""

    hub: Hub
    engine: Engine
    proxy: FaultProxy
    db_url: str
    service_url: str
    service_token: str
    client_token: str
    workdir: Path

    def start_service(self) -> ServiceProcess:
        return _start_service(
            self.hub, self.service_url, self.db_url, self.service_token, self.workdir
        )


def service_behind_proxy(
    hub_factory: Callable[..., Hub],
    postgres_url: str,
    fault_proxy_factory: Callable[..., FaultProxy],
    workdir: Path,
) -> Setup:
    """Start a hub and its accounting service (group ``climate``), database behind a proxy."""
    service_token, client_token = secrets.token_hex(16), secrets.token_hex(16)
    service_url = f"http://127.0.0.1:{free_port()}"
    hub = hub_factory(
        HUB_CONFIG.format(
            service_url=service_url, service_token=service_token, client_token=client_token
        ),
        load_dropins=False,
    )
    engine = empty_database(postgres_url)
    pg = urlsplit(postgres_url)
    proxy = fault_proxy_factory(pg.hostname, pg.port or 5432)
    (workdir / "eohub_accounting_config.py").write_text(
        'c.AccountingService.groups = {"climate": {}}\n'
    )
    return Setup(
        hub,
        engine,
        proxy,
        _through(proxy, postgres_url),
        service_url,
        service_token,
        client_token,
        workdir,
    )


async def test_500_sessions_survive_service_kills_connection_cuts_and_a_hub_restart(
    hub_factory: Callable[..., Hub],
    postgres_url: str,
    fault_proxy_factory: Callable[..., FaultProxy],
    tmp_path: Path,
) -> None:
    setup = service_behind_proxy(hub_factory, postgres_url, fault_proxy_factory, tmp_path)
    hub, engine, proxy, db_url = setup.hub, setup.engine, setup.proxy, setup.db_url
    service_url, service_token, client_token = (
        setup.service_url,
        setup.service_token,
        setup.client_token,
    )
    service = setup.start_service()

    outbox = tmp_path / "outbox.sqlite"

    def new_client() -> AccountingClient:
        return AccountingClient(
            url=service_url,
            api_token=client_token,
            outbox_path=str(outbox),
            batch_size=40,
            retry_initial_delay=0.05,
            retry_max_delay=0.5,
            request_timeout=5,
            log=LOG,
        )

    client = new_client()
    await client.start()
    try:
        for i in range(SESSIONS):
            at = T0 + timedelta(minutes=i)
            user = f"user{i % 37}"
            await client.record_start(
                user=user, server="", started_at=at, group="climate", cpu=0.25
            )
            await client.record_stop(
                user=user, server="", started_at=at, stopped_at=at + timedelta(hours=1)
            )
            await asyncio.sleep(0.002)
            if i == 100:
                service.popen.kill()  # SIGKILL: no goodbye
                service.popen.wait()
            elif i == 180:
                service = _start_service(hub, service_url, db_url, service_token, tmp_path)
            elif i == 260:
                assert proxy.cut() > 0  # every database connection of the service dies
            elif i == 340:
                # The hub dies without flushing; a new hub process finds the outbox.
                await client.stop(timeout=0)
                client = new_client()
                await client.start()
            elif i == 420:
                proxy.cut()
        assert await client.flush(timeout=120), f"{await client.pending()} events still pending"
        assert await client.dead_letters() == []
    finally:
        await client.stop()
        service.stop()

    with engine.connect() as c:
        sessions = c.execute(select(func.count()).select_from(Session)).scalar_one()
        closed = c.execute(
            select(func.count()).select_from(Session).where(Session.stopped_at.is_not(None))
        ).scalar_one()
        events = c.execute(select(func.count()).select_from(Event)).scalar_one()
        year_total = c.execute(
            select(UsageTotal.cpu_mcore_ms).where(
                UsageTotal.group == "climate", UsageTotal.user == "", UsageTotal.kind == "year"
            )
        ).scalar_one()
    engine.dispose()
    assert (sessions, closed, events) == (SESSIONS, SESSIONS, 2 * SESSIONS)
    assert year_total == SESSIONS * 250 * MS_PER_HOUR  # 0.25 core-hours each, exactly
