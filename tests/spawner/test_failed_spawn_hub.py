"""A server that starts but never answers: the hub gives up and stops it, and the ledger
records the session ``failed``, not ``stopped`` (QuotaLocalSpawner in a real JupyterHub
with the real accounting service)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.accounting.service_support import Accounting
from tests.spawner.test_local_hub import (
    ACCOUNTING_GROUPS,
    ENVIRONMENTS,
    closed_sessions,
    hub_config,
    post_spawn,
)
from tests.support.hub import Hub, start_hub

pytestmark = pytest.mark.hub

#: Seconds the hub waits for a started server to answer before it stops it.
HTTP_TIMEOUT = 5
SILENT = {
    "display_name": "Never answers",
    # The process runs (the hub's arguments land in $0 and are ignored) but never
    # listens, as a server stuck before its port opens.
    "command": ["sh", "-c", "exec sleep 600"],
    "sizes": ["small"],
    "max_duration": "2h",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("hub")
    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    environments = {**ENVIRONMENTS, "silent": SILENT}
    config = hub_config(workdir, environments) + f"c.Spawner.http_timeout = {HTTP_TIMEOUT}\n"
    started = start_hub(workdir, config)
    Accounting(started).wait_ready(timeout=60)
    started.ensure_user("alice")
    yield started
    started.process.stop(timeout=20)


def test_a_server_that_never_answers_is_recorded_failed(hub: Hub) -> None:
    accounting = Accounting(hub)
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = post_spawn(hub, "alice", {"environment": "silent"})
    # The hub answers once the spawn failed (within its slow_spawn_timeout), or at once.
    assert response.status_code in (202, 500), response.text
    deadline = time.monotonic() + HTTP_TIMEOUT + 60
    while hub.server("alice") is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert hub.server("alice") is None, hub.process.log_tail()
    assert "never showed up" in hub.process.log_path.read_text(encoding="utf-8")
    token = accounting.user_token("admin")
    closed = closed_sessions(accounting, token, "user=alice", since=before)
    assert [s["end_reason"] for s in closed] == ["failed"], closed
    assert closed[0]["max_duration"] == 2 * 3600
