"""A hub started with eohub's drop-ins and a demo-like config logs no spurious warning.

Like the demo: QuotaLocalSpawner with ``switch_user = False``, charge groups, the
accounting service from drop-in 30, and eohub's launch links and spawn route from
drop-in 00 (in JupyterHub's deprecated ``extra_handlers``, which the hub's log then
explains at INFO); the harness waits for the hub through the proxy's API, as the demo
does.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from eohub.spawner.form.hub_routes import EXTRA_HANDLERS_EXPLAINED
from tests.accounting.service_support import Accounting
from tests.spawner.test_local_hub import ACCOUNTING_GROUPS, hub_config
from tests.support.hub import start_hub

pytestmark = pytest.mark.hub

SPURIOUS = (
    "not recognized",  # a setting on a class that lacks it (switch_user, say)
    "404 GET",  # readiness polls before the hub's route exists
    "Failed to get custom error page",
    "Traceback",
    "is deprecated",
)


def test_the_start_up_log_has_no_spurious_warning(tmp_path: Path) -> None:
    workdir = tmp_path / "hub"
    workdir.mkdir()
    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
    )
    hub = start_hub(workdir, hub_config(workdir))
    try:
        Accounting(hub).wait_ready(timeout=60)
        time.sleep(2)  # the hub's accounting client starts a moment after the hub
        # Drop-in 00 installed eohub's pages: the launch badge answers.
        badge = requests.get(f"{hub.url}/hub/eohub/badge.svg", timeout=10)
        assert badge.status_code == 200, badge.text[:500]
    finally:
        hub.process.stop(timeout=20)
    log = (workdir / "jupyterhub.log").read_text()
    for text in SPURIOUS:
        assert text not in log, f"{text!r} in the start-up log:\n{log}"
    assert not re.search(r"^\[E ", log, re.M), log
    assert re.search(r"^\[I .*" + re.escape(EXTRA_HANDLERS_EXPLAINED), log, re.M), log
