"""Storage quotas through the real service behind a real JupyterHub: samples with file
counts posted as a sampler posts them, quota checks that warn, then refuse once the
grace (set by the service's config) has ended, and a quota raised through the groups API
that lets servers start again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from eohub.adapters.accounting_db import AccountingStore, create_engine_for
from eohub.adapters.accounting_db.models import Group
from eohub.domain.accounting.events import format_time
from eohub.domain.accounting.storage_quota import time_text
from tests.accounting.service_support import Accounting
from tests.support.hub import Hub

pytestmark = pytest.mark.hub

GIB = 2**30
HOUR = timedelta(hours=1)
# One hour of grace, warnings from half the quota.
CONFIG = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
services = c.JupyterHub.services.get_value([])  # the drop-ins extend the list
for service in services:
    if service["name"] == "eohub-accounting":
        service["command"] = [*service["command"], "--AccountingService.storage_grace=3600",
                              "--AccountingService.storage_warning_fraction=0.5"]
c.JupyterHub.services = services
"""
# (user, group, GiB, files, hours ago); every group's quota is 10 GiB.
SAMPLES = [
    ("alice", "climate", 6, 1000, 3),
    ("bob", "climate", 6, 20, 2),  # climate over since 2 h ago: its grace has ended
    ("carol", "ocean", 11, 5, 0.5),  # ocean over since 30 min ago: in its grace
    ("dave", "geo", 6, 0, 1),  # geo at 60%: near
    ("erin", "", 500, 7, 1),  # charged to no group: counts toward none
]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'accounting.sqlite'}"


@pytest.fixture
def accounting(hub_factory: Callable[..., Hub], db_url: str) -> Accounting:
    service = Accounting(hub_factory(CONFIG, env={"EOHUB_ACCOUNTING_DB_URL": db_url}))
    service.wait_ready()
    admin = service.user_token("admin")
    for name in ("climate", "ocean", "geo"):
        body = {"quotas": {"": {"storage_bytes": 10 * GIB}}}
        r = service.call("PUT", f"api/groups/{name}", admin, json=body)
        assert r.status_code in (200, 201), r.text
    return service


def post_samples(accounting: Accounting, samples: list[dict[str, Any]]) -> Any:
    return accounting.call("POST", "api/storage", accounting.hub_token, json={"samples": samples})


def check(accounting: Accounting, user: str, group: str) -> dict[str, Any]:
    body = {"user": user, "group": group, "cpu": 1}
    r = accounting.call("POST", "api/quota/check", accounting.hub_token, json=body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def over_since(db_url: str) -> dict[str, datetime | None]:
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(select(Group.name, Group.storage_over_since)).all())
    finally:
        engine.dispose()


def test_storage_warns_then_refuses_and_a_raised_quota_lets_servers_start(
    accounting: Accounting, db_url: str
) -> None:
    # Taken when the test runs, not when the module is imported: ocean's grace, which
    # the test sees still running, ends 30 minutes after this.
    now = datetime.now(UTC).replace(microsecond=0)
    sent = [
        {
            "user": user,
            "group": group,
            "bytes": gib * GIB,
            "measured_at": format_time(now - hours * HOUR),
            "file_count": files,
        }
        for user, group, gib, files, hours in SAMPLES
    ]
    # A bad file count is a 400 naming it, and writes nothing of the batch.
    bad = post_samples(accounting, [*sent, {**sent[0], "file_count": -1}])
    assert bad.status_code == 400, bad.text
    assert bad.json()["errors"] == {
        "samples[5].file_count": "must be a whole number from 0 to 9223372036854775807"
    }
    assert over_since(db_url) == {"climate": None, "geo": None, "ocean": None}
    r = post_samples(accounting, sent)
    assert (r.status_code, r.json()) == (200, {"accepted": 5, "duplicates": 0})

    engine = create_engine_for(db_url)
    try:
        stored = list(AccountingStore(engine).iter_storage(now - 4 * HOUR, now + HOUR))
    finally:
        engine.dispose()
    assert sorted((s.user, s.group, s.file_count) for s in stored) == [
        ("alice", "climate", 1000),
        ("bob", "climate", 20),
        ("carol", "ocean", 5),
        ("dave", "geo", 0),
        ("erin", "", 7),
    ]
    assert over_since(db_url) == {"climate": now - 2 * HOUR, "geo": None, "ocean": now - HOUR / 2}

    refused = check(accounting, "alice", "climate")
    assert not refused["allowed"]
    assert refused["reason"] == (
        f"Group climate stores 12.0 GiB, over its storage quota of 10 GiB since "
        f"{time_text(now - 2 * HOUR)} (grace of 1 hour ended). Free some space to start "
        "servers charged to it; running servers are not stopped."
    )
    assert refused["warnings"] == []
    assert refused["standing"]["group"]["storage_over"] is True

    grace = check(accounting, "carol", "ocean")
    assert grace["allowed"]
    assert grace["warnings"] == [
        f"Group ocean stores 11.0 GiB, over its storage quota of 10 GiB since "
        f"{time_text(now - HOUR / 2)}. New servers charged to it will be refused from "
        f"{time_text(now + HOUR / 2)} unless space is freed."
    ]
    assert grace["standing"]["group"]["storage"] == {
        "bytes": 11 * GIB,
        "limit": 10 * GIB,
        "over_since": format_time(now - HOUR / 2),
        "refused_from": format_time(now + HOUR / 2),
        "state": "grace",
    }

    near = check(accounting, "dave", "geo")
    assert (near["allowed"], near["warnings"]) == (
        True,
        ["Group geo stores 6.0 GiB, 60% of its storage quota of 10 GiB."],
    )

    # The admin raises climate's quota through the groups API: over no more.
    admin = accounting.user_token("admin")
    body = {"quotas": {"": {"storage_bytes": 20 * GIB}}}
    accounting.call("PUT", "api/groups/climate", admin, json=body).raise_for_status()
    assert over_since(db_url)["climate"] is None
    again = check(accounting, "alice", "climate")
    assert (again["allowed"], again["warnings"]) == (
        True,
        ["Group climate stores 12.0 GiB, 60% of its storage quota of 20 GiB."],
    )
