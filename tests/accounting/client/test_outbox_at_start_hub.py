"""Events a previous run of the hub left in its outbox are sent when the hub starts.

Not at the next server start or stop, which may be hours away: drop-in 30 starts the
hub's client with the hub (``eohub.spawner.accounting.start_with_the_hub``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from eohub.accounting.client.outbox import Outbox
from eohub.adapters.accounting_db.models import Session
from eohub.domain.accounting.events import start_event_json, stop_event_json
from eohub.spawner.accounting import start_with_the_hub
from tests.accounting.service_support import Accounting
from tests.support.hub import start_hub

pytestmark = pytest.mark.hub

T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)


def test_a_restarted_hub_sends_what_its_last_run_left_without_a_new_event(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "hub"
    workdir.mkdir()
    (workdir / "eohub_accounting_config.py").write_text(
        'c.AccountingService.groups = {"climate": {}}\n'
    )
    # What the last run queued, and could not send before it stopped.
    left = Outbox(workdir / "eohub-accounting-outbox.sqlite")
    for i in range(3):
        started = T0 + timedelta(hours=i)
        left.put(
            [
                start_event_json(
                    user=f"u{i}", server="", started_at=started, group="climate", cpu=1
                ),
                stop_event_json(
                    user=f"u{i}",
                    server="",
                    started_at=started,
                    stopped_at=started + timedelta(hours=1),
                ),
            ]
        )
    left.close()
    db_url = f"sqlite:///{workdir / 'accounting.sqlite'}"
    hub = start_hub(
        workdir,
        'c.JupyterHub.authenticator_class = "dummy"\nc.Authenticator.allow_all = True\n',
        env={"EOHUB_ACCOUNTING_DB_URL": db_url},
    )
    try:
        Accounting(hub).wait_ready(timeout=60)
        engine = create_engine(db_url)
        deadline = time.monotonic() + 60
        sessions = 0
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                sessions = connection.execute(select(func.count()).select_from(Session)).scalar()
            if sessions == 3:
                break
            time.sleep(0.5)
        engine.dispose()
        assert sessions == 3, hub.process.log_tail()
        outbox = Outbox(workdir / "eohub-accounting-outbox.sqlite")
        deadline = time.monotonic() + 10
        while outbox.count() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert outbox.count() == 0
        outbox.close()
    finally:
        hub.process.stop(timeout=20)


def test_outside_a_running_hub_nothing_is_started() -> None:
    assert start_with_the_hub() is False  # a config check, or a test: no event loop
