"""A hub that shuts down stops its users' servers before the accounting service.

On Ctrl-C or SIGTERM JupyterHub stops its managed services first, then the servers;
drop-in 30 turns that round (``eohub.spawner.accounting.stop_servers_before_services``),
so each server's stop reaches the ledger with the time the server really stopped. When
the service is gone already (killed, or stopped on its own), the stops wait in the hub's
outbox and are delivered, with that same time, when the hub next starts; the service's
reconcile loop, running meanwhile, does not close those sessions at an earlier time.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import create_engine, select

from eohub.accounting.client.outbox import Outbox
from eohub.adapters.accounting_db.models import Session
from tests.accounting.service_support import Accounting
from tests.spawner.test_local_hub import hub_config, post_spawn, wait_ready
from tests.support.hub import Hub, start_hub

pytestmark = pytest.mark.hub

SERVICE_CONFIG = """
c.AccountingService.groups = {"climate": {"allocation": "month"}, "astro": {}, "broke": {}}
# Reconcile every 2 s: it sees the servers run, and runs again as the next hub starts.
c.AccountingService.reconcile_interval = 2
"""


def start(workdir: Path) -> Hub:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "eohub_accounting_config.py").write_text(SERVICE_CONFIG)
    hub = start_hub(workdir, hub_config(workdir))
    Accounting(hub).wait_ready(timeout=60)
    return hub


def sessions(workdir: Path) -> list[Session]:
    engine = create_engine(f"sqlite:///{workdir / 'eohub-accounting.sqlite'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Session).order_by(Session.user)).all()
        return [Session(**row._mapping) for row in rows]
    finally:
        engine.dispose()


def run_two_servers(hub: Hub) -> None:
    for user, group in (("alice", "climate"), ("carol", "astro")):
        hub.ensure_user(user)
        options = {"environment": "lab", "size": "small", "group": group}
        if group == "astro":
            options = {"environment": "astro-lab", "size": "small", "group": "astro"}
        response = post_spawn(hub, user, options)
        assert response.status_code in (201, 202), response.text
        wait_ready(hub, user)
    # Both starts delivered, and reconcile has seen both servers run.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = sessions(hub.workdir)
        if len(rows) == 2 and all(r.last_seen_at is not None for r in rows):
            return
        time.sleep(0.5)
    raise AssertionError(f"sessions not recorded: {sessions(hub.workdir)}")


def signal_and_wait(
    hub: Hub, signum: signal.Signals = signal.SIGTERM
) -> tuple[datetime, datetime]:
    """Stop the hub with ``signum``; the span until it has exited.

    SIGTERM goes to the hub's process alone, as Kubernetes or systemd sends it. SIGINT
    goes to the hub's process group, as Ctrl-C in a terminal sends it to the foreground
    group (the harness starts the hub as a group leader; JupyterHub starts its services,
    proxy and servers in sessions of their own, so they are not signalled).
    """
    began = datetime.now(UTC)
    if signum == signal.SIGINT:
        os.killpg(hub.process.pid, signum)
    else:
        os.kill(hub.process.pid, signum)
    hub.process.popen.wait(60)
    ended = datetime.now(UTC)
    hub.process.stop()  # whatever it left behind
    return began, ended


def service_process(workdir: Path) -> psutil.Process:
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = process.info["cmdline"] or []
        if "eohub.accounting" in cmdline and process.info["cwd"] == str(workdir):
            return process
    raise AssertionError("the accounting service's process was not found")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "hub"


# JupyterHub handles both the same way (app.py's init_signal).
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_stops_servers_first_and_the_ledger_has_their_stop_times(
    workdir: Path, signum: signal.Signals
) -> None:
    hub = start(workdir)
    try:
        run_two_servers(hub)
        began, ended = signal_and_wait(hub, signum)
    finally:
        hub.process.stop()
    log = (workdir / "jupyterhub.log").read_text()
    rows = sessions(workdir)
    assert [r.user for r in rows] == ["alice", "carol"]
    for row in rows:
        assert row.end_reason == "shutdown", (row.end_reason, log[-3000:])
        assert row.stopped_at is not None
        assert began - timedelta(seconds=1) <= row.stopped_at <= ended, (row.stopped_at, began)
    outbox = Outbox(workdir / "eohub-accounting-outbox.sqlite")
    assert outbox.count() == 0
    outbox.close()
    assert log.index("Stopping 2 servers before the hub's services") < log.index(
        "Stopping eohub-accounting"
    )
    assert "Traceback" not in log


def test_stops_wait_in_the_outbox_when_the_service_is_gone_and_keep_their_time(
    workdir: Path,
) -> None:
    hub = start(workdir)
    try:
        run_two_servers(hub)
        service_process(workdir).kill()
        time.sleep(1)  # a reconcile round would be due; the service is gone
        began, ended = signal_and_wait(hub)
    finally:
        hub.process.stop()
    assert all(r.stopped_at is None for r in sessions(workdir))
    outbox = Outbox(workdir / "eohub-accounting-outbox.sqlite")
    assert outbox.count() == 2  # the two stops, for the next start
    outbox.close()

    again = start(workdir)  # reconcile runs at once, and sees neither server
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = sessions(workdir)
            if all(r.end_reason == "shutdown" for r in rows):
                break
            time.sleep(0.5)
        time.sleep(3)  # one more reconcile round: it changes nothing
        rows = sessions(workdir)
    finally:
        again.process.stop(timeout=20)
    log = (workdir / "jupyterhub.log").read_text()
    for row in rows:
        assert row.end_reason == "shutdown", (row, log[-3000:])
        assert row.stopped_at is not None
        assert began - timedelta(seconds=1) <= row.stopped_at <= ended, (row.stopped_at, began)
    assert "Reconcile closed session" not in log
