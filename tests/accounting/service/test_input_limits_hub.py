"""Bad input never gives a 500: the real service, behind a real hub, on every database.

Each database gets one hub whose managed accounting service stores there. Every case is
sent as a client would send it, with real tokens: request bodies judged by the OpenAPI
description (valid: 2xx; invalid: 400 and nothing written), query parameters that would
overflow a database, bodies too large or too deep, times in the future, and the largest
servers allowed, running for the longest window the ledger sums.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import Engine, MetaData, func, select

from eohub.adapters.accounting_db import create_engine_for
from eohub.domain.accounting.events import format_time, start_event_json, stop_event_json
from eohub.domain.accounting.ledger import Resources, Usage, session_usage
from eohub.domain.accounting.periods import MAX_ROLLING_DAYS
from eohub.domain.accounting.requests import MAX_BODY_BYTES, MAX_ID
from eohub.domain.accounting.resources import MAX_CPU, MAX_GPUS, MAX_MEMORY_BYTES
from tests.accounting.service.test_openapi import REQUEST_BODIES, spec_valid
from tests.accounting.service_support import ACCOUNTING_CONFIG, Accounting
from tests.support.accounting import empty_database
from tests.support.hub import start_hub

pytestmark = pytest.mark.hub

# A skew other than the default (300 s), to show the setting is the one applied.
SKEW = timedelta(seconds=600)
SERVICE_CONFIG = (
    ACCOUNTING_CONFIG
    + f"""
services = c.JupyterHub.services.get_value([])  # the drop-ins extend the list
for service in services:
    if service["name"] == "eohub-accounting":
        # No reconcile loop: it would close this test's sessions while it compares rows.
        service["command"] = [*service["command"], "--reconcile-interval=0",
                              "--AccountingService.max_clock_skew={int(SKEW.total_seconds())}"]
c.JupyterHub.services = services
"""
)


@dataclass
class Service:
    accounting: Accounting
    engine: Engine
    database: str
    ingest: str  # the hub's client token: custom:eohub-accounting:ingest
    admin: str  # a hub admin's token: the accounting admin role of drop-in 30

    def send(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        token = self.admin if method in ("GET", "PUT") else self.ingest
        if body is not None:
            kwargs["data"] = json.dumps(body).encode()
        response = self.accounting.call(method, path, token, **kwargs)
        assert response.status_code < 500, self.failure(response)
        return response

    def failure(self, response: requests.Response) -> str:
        return (
            f"{self.database}: {response.request.method} {response.url[:200]} -> "
            f"{response.status_code} {response.text[:500]}\n"
            + self.accounting.hub.process.log_tail(30)
        )

    def snapshot(self) -> dict[str, list[str]]:
        """Every row of every table, to show a refused request wrote nothing."""
        metadata = MetaData()
        metadata.reflect(self.engine)
        with self.engine.connect() as connection:
            return {
                name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
                for name, table in metadata.tables.items()
            }

    def count(self, table: str) -> int:
        metadata = MetaData()
        metadata.reflect(self.engine, only=[table])
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(metadata.tables[table])
                ).scalar_one()
            )


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'accounting.sqlite'}"
    else:
        url = request.getfixturevalue(
            {"postgresql": "postgres_url", "mariadb": "mariadb_url"}[request.param]
        )
    empty_database(url).dispose()  # the server databases are shared by the session
    hub = start_hub(
        tmp_path_factory.mktemp("hub"), SERVICE_CONFIG, env={"EOHUB_ACCOUNTING_DB_URL": url}
    )
    engine = create_engine_for(url)
    try:
        accounting = Accounting(hub)
        accounting.wait_ready()
        yield Service(
            accounting, engine, request.param, accounting.hub_token, accounting.user_token("admin")
        )
    finally:
        engine.dispose()
        hub.process.stop(timeout=20)


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "valid"), REQUEST_BODIES, ids=[c[0] for c in REQUEST_BODIES]
)
def test_the_service_judges_request_bodies_as_the_spec_does(
    service: Service, name: str, method: str, path: str, body: Any, valid: bool
) -> None:
    assert spec_valid(method, path, body) is valid  # the table is the spec's answer
    service.send("PUT", "api/groups/climate", {})  # what the events are charged to
    before = service.snapshot()
    response = service.send(method, path, body)
    if valid:
        assert response.status_code in (200, 201), service.failure(response)
        return
    assert response.status_code == 400, service.failure(response)
    assert response.json()["errors"], response.text
    assert service.snapshot() == before, f"{name}: a refused request wrote rows"


QUERIES: list[tuple[str, str | None]] = [
    (f"api/sessions?before={10**26}", "before"),
    (f"api/sessions?limit={10**30}", "limit"),
    (f"api/sessions?before={MAX_ID + 1}", "before"),
    (f"api/sessions?before={MAX_ID}", None),  # the largest id the columns hold
    ("api/sessions?before=-1", "before"),
    ("api/sessions?before=0x10", "before"),
    ("api/sessions?limit=0", "limit"),
    ("api/sessions?limit=500", None),
    ("api/sessions?limit=501", "limit"),
    ("api/sessions?open=yes", "open"),
    ("api/sessions?open=true", None),
    ("api/usage?from=9999-12-31", "from"),
    ("api/usage?to=9999-12-31T23:59:59Z", "to"),
    ("api/usage?from=0001-01-01", "from"),
    ("api/usage?from=2026-02-30", "from"),
    ("api/usage?from=2026-01-01%2012:00:00Z", "from"),
    ("api/usage?period=year&from=2000-01-01&to=2200-12-31", None),  # the whole range
    ("api/usage?period=day&from=2200-12-31", "to"),  # after the default "to"
    ("api/usage?period=decade", "period"),
    ("api/usage?by=everyone", "by"),
    ("api/export/sessions.csv?from=9999-12-31", "from"),
    ("api/export/usage.csv?to=1900-01-01", "to"),
    ("api/export/sessions.csv?from=2026-02-01&to=2026-01-01", "to"),
    ("api/export/sessions.csv?from=2000-01-01&to=2200-12-31", None),
]


@pytest.mark.parametrize(("query", "field"), QUERIES)
def test_query_parameters_are_range_checked_before_sql(
    service: Service, query: str, field: str | None
) -> None:
    response = service.send("GET", query)
    if field is None:
        assert response.status_code == 200, service.failure(response)
        return
    assert response.status_code == 400, service.failure(response)
    assert field in response.json()["errors"], response.text


def test_bodies_too_large_or_too_deep_are_refused_before_parsing(service: Service) -> None:
    before = service.snapshot()
    bodies: list[tuple[bytes, int]] = [
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b"[" * 2**20, 400),  # 1 MiB deep, never closed
        (b'{"events": [' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"]}", 400),
        (b'{"events": [{"cpu": NaN}]}', 400),
        (b'{"events": [{"gpus": ' + b"9" * 5000 + b"}]}", 400),
        ('{"events": [{"user": "zoë"}]}'.encode("latin-1"), 400),
        (b" " * (MAX_BODY_BYTES + 1), 413),
    ]
    for body, status in bodies:
        response = service.send("POST", "api/events", data=body)
        assert response.status_code == status, service.failure(response)
        assert response.json()["status"] == status
        if status == 400:
            assert set(response.json()["errors"]) == {"body"}, response.text
    assert service.snapshot() == before


def test_a_body_declared_far_too_large_is_refused_before_it_is_read(service: Service) -> None:
    # Straight to the service, as the hub's proxy forwards: its URL is in the hub's log.
    log = (service.accounting.hub.workdir / "jupyterhub.log").read_text()
    found = re.search(r"Starting managed service eohub-accounting at (\S+)", log)
    assert found, log[-2000:]
    url = urlsplit(found[1])
    head = (
        "POST /services/eohub-accounting/api/events HTTP/1.1\r\n"
        f"Host: {url.netloc}\r\nAuthorization: token {service.ingest}\r\n"
        "Content-Type: application/json\r\nContent-Length: 67108864\r\n\r\n"
    )
    # 64 MiB: past the service's bound, within Tornado's default of 100 MB, which would
    # wait for all of it (and this read would time out).
    with socket.create_connection((url.hostname, url.port), timeout=20) as connection:
        connection.sendall(head.encode() + b"[" * 1000)
        reply = connection.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert service.send("GET", "api/me").status_code == 200


def test_times_beyond_the_clock_skew_are_refused(service: Service) -> None:
    service.send("PUT", "api/groups/climate", {})
    now = datetime.now(UTC).replace(microsecond=0)
    soon = now + SKEW - timedelta(minutes=2)  # beyond the default 300 s, within 600
    late = now + SKEW + timedelta(minutes=10)
    ahead = start_event_json(user="skew", server="", started_at=soon, group="climate", cpu=1)
    assert service.send("POST", "api/events", ahead).status_code == 200
    before = service.snapshot()
    refused: list[tuple[str, Any, str]] = [
        (
            "api/events",
            {
                "events": [
                    start_event_json(
                        user="skew", server="b", started_at=late, group="climate", cpu=1
                    )
                ]
            },
            "events[0].started_at",
        ),
        (
            "api/events",
            stop_event_json(user="skew", server="", started_at=soon, stopped_at=late),
            "stopped_at",
        ),
        (
            "api/storage",
            {"samples": [{"user": "skew", "bytes": 1, "measured_at": format_time(late)}]},
            "samples[0].measured_at",
        ),
    ]
    for path, body, field in refused:
        response = service.send("POST", path, body)
        assert response.status_code == 400, service.failure(response)
        assert "future" in response.json()["errors"][field], response.text
    assert service.snapshot() == before


def test_the_largest_servers_over_the_longest_window_are_stored(service: Service) -> None:
    """Six servers of the largest size, each running for the longest window the ledger
    sums (a rolling allocation of MAX_ROLLING_DAYS), and one for a leap year: stored,
    reported and checked on every database, with exact totals."""
    now = datetime.now(UTC).replace(microsecond=0)
    service.send(
        "PUT",
        "api/groups/huge",
        {"allocation": f"rolling:{MAX_ROLLING_DAYS}", "quotas": {"": {"core_hours": 1e9}}},
    )
    service.send("PUT", "api/groups/yearly", {"allocation": "year"})
    stop = now - timedelta(minutes=1)
    runs = [
        ("huge", f"big{i}", stop - timedelta(days=MAX_ROLLING_DAYS) + timedelta(hours=1 + i))
        for i in range(6)
    ]
    runs.append(("yearly", "year", stop - timedelta(days=366)))
    events = []
    for group, user, start in runs:
        events.append(
            start_event_json(
                user=user,
                server="",
                started_at=start,
                group=group,
                cpu=MAX_CPU,
                memory_bytes=MAX_MEMORY_BYTES,
                gpus=MAX_GPUS,
            )
        )
        events.append(stop_event_json(user=user, server="", started_at=start, stopped_at=stop))
    response = service.send("POST", "api/events", {"events": events})
    assert response.status_code == 200, service.failure(response)
    assert response.json()["accepted"] == len(events)
    assert service.count("sessions") >= len(runs)

    resources = Resources.from_cpu(MAX_CPU, MAX_MEMORY_BYTES, MAX_GPUS)
    for group in ("huge", "yearly"):
        expected = sum(
            (session_usage(resources, start, stop) for g, _, start in runs if g == group),
            Usage(),
        )
        response = service.send(
            "GET",
            f"api/usage?period=year&group={group}&from={(now - timedelta(days=3700)):%Y-%m-%d}",
        )
        assert response.status_code == 200, service.failure(response)
        rows = response.json()["usage"]
        for unit, exact in expected.as_hours().items():
            assert sum(r[unit] for r in rows) == pytest.approx(exact, rel=1e-9), (group, unit)

    # The quota check sums the window's day buckets in SQL: six such servers still fit.
    response = service.send(
        "POST", "api/quota/check", {"user": "big0", "group": "huge", "cpu": MAX_CPU}
    )
    assert response.status_code == 200, service.failure(response)
    assert response.json()["allowed"] is False  # 6 x 4096 cores x 10 years > 1e9 core-hours
    response = service.send("GET", "api/sessions?group=huge&limit=500")
    assert response.status_code == 200, service.failure(response)
    assert len(response.json()["sessions"]) == 6
