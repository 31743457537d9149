"""A stopping service answers the requests it has begun before it closes the database.

JupyterHub stops a managed service with SIGINT when the hub stops; the hub's client may
have a batch of events in flight then. The batch is applied and answered 200, not cut
off with a 500 that the hub would log as a failure.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select

from eohub.adapters.accounting_db.models import Session
from eohub.domain.accounting.events import start_event_json, stop_event_json
from tests.accounting.client.test_outbox_faults import service_behind_proxy
from tests.support.faultproxy import FaultProxy
from tests.support.hub import Hub

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SESSIONS = 1500  # long sessions: applying them takes a good part of a second


def big_batch() -> list[dict[str, Any]]:
    events = []
    for i in range(SESSIONS):
        user, started = f"user{i % 50}", T0 + timedelta(minutes=i)
        events.append(
            start_event_json(user=user, server=f"s{i}", started_at=started, group="climate", cpu=1)
        )
        stopped = started + timedelta(days=40)
        events.append(
            stop_event_json(user=user, server=f"s{i}", started_at=started, stopped_at=stopped)
        )
    return events


def test_a_batch_under_way_at_sigint_is_applied_and_answered(
    hub_factory: Callable[..., Hub],
    postgres_url: str,
    fault_proxy_factory: Callable[..., FaultProxy],
    tmp_path: Path,
) -> None:
    setup = service_behind_proxy(hub_factory, postgres_url, fault_proxy_factory, tmp_path)
    service = setup.start_service()
    url = f"{setup.service_url}/services/eohub-accounting/api/events"
    answer: dict[str, Any] = {}

    def post() -> None:
        try:
            answer["response"] = requests.post(
                url,
                json={"events": big_batch()},
                headers={"Authorization": f"token {setup.client_token}"},
                timeout=120,
            )
        except requests.RequestException as e:
            answer["error"] = e

    sender = threading.Thread(target=post)
    sender.start()
    # Once the batch is being applied: its transaction is active in PostgreSQL. In the
    # full suite the service has taken more than 20 s to begin applying it (cause not
    # found; alone it begins within a second): wait as long as the sender would.
    deadline = time.monotonic() + 90
    while not _in_progress(setup.engine) and time.monotonic() < deadline:
        assert sender.is_alive(), f"answered before the batch was seen under way: {answer}"
        time.sleep(0.01)
    # The service's log says what it was doing meanwhile, should this fail again.
    assert _in_progress(setup.engine), (
        f"the batch was never seen under way; the service's log:\n{service.log_tail(80)}"
    )
    service.popen.send_signal(signal.SIGINT)  # as JupyterHub stops a managed service
    sender.join(120)
    service.popen.wait(30)
    response = answer.get("response")
    assert response is not None, answer
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2 * SESSIONS
    with setup.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Session)).scalar() == SESSIONS
    log = service.log_tail(400)
    assert "500 POST" not in log, log
    assert "Stopping eohub-accounting" in log


def _in_progress(engine: Any) -> bool:
    """Whether the batch's transaction has begun writing: PostgreSQL gives a transaction
    an id at its first write and keeps it until the end, also while the service plans
    between statements ("idle in transaction"); the service's reads get none."""
    with engine.connect() as connection:
        found = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
        ).scalar()
    return bool(found)
