"""The XDMoD exports of a real hub whose storage the real sampler measured.

A hub like :mod:`tests.storage.test_storage_hub`'s (drop-ins 30 and 35, the local sampler,
QuotaLocalSpawner). A user whose name is longer than XDMoD's 30 characters logs in,
works in group astro and stops; so does dora; erin, in no group, has a workspace too.
From the service, as an admin fetches them (``api/export/storage.json`` and
``api/export/sacct.txt`` with an accounting admin's token):

- every storage record follows XDMoD's storage schema (:data:`XDMOD_STORAGE_SCHEMA`,
  checked with jsonschema, and ``check_storage``);
- every person with both a finished session and a storage sample has the same user
  name in both files (the join XDMoD makes), the long name cut alike, and the Slurm
  account is the storage PI;
- erin's space, charged to no group, goes to the ``unassigned`` PI.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tests.accounting.service_support import Accounting
from tests.domain.reports.shredder import shred
from tests.domain.reports.test_xdmod_storage import check_storage
from tests.storage.test_storage_hub import (
    LONG,
    eventually,
    next_round,
    start_storage_hub,
    workspace,
)
from tests.storage.test_walk import write
from tests.support.hub import Hub

pytestmark = pytest.mark.hub

U64 = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}
#: The rules of XDMoD's storage usage schema, one record each (written here from
#: https://github.com/ubccr/xdmod/blob/183ad90e4cfe267cd7ad39f0b760a025e879f544/configuration/etl/etl_schemas.d/storage/usage.schema.json):
#: the same draft, properties, bounds and required keys.
XDMOD_STORAGE_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "resource": {"type": "string", "maxLength": 200},
        "mountpoint": {"type": "string", "maxLength": 255},
        "user": {"type": "string", "maxLength": 30},
        "pi": {"type": "string", "maxLength": 30},
        "dt": {"type": "string", "format": "date-time"},
        "file_count": U64,
        "logical_usage": U64,
        "physical_usage": U64,
        "soft_threshold": U64,
        "hard_threshold": U64,
    },
    "required": ["resource", "mountpoint", "user", "pi", "dt", "file_count", "logical_usage"],
}
ASTRO = {"environment": "lab", "size": "small", "group": "astro"}
MIB = 2**20


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_storage_hub(tmp_path_factory.mktemp("storage-hub"))
    yield started
    started.process.stop(timeout=20)


def export(hub: Hub, token: str, name: str) -> str:
    response = Accounting(hub).call("GET", f"api/export/{name}", token)
    assert response.status_code == 200, response.text
    return response.text


def finished_sessions(hub: Hub, token: str) -> dict[str, int]:
    """Each user's sessions that have stopped, as the sessions export lists them."""
    rows = csv.DictReader(io.StringIO(export(hub, token, "sessions.csv")))
    ended: dict[str, int] = {}
    for row in rows:
        if row["stopped_at"]:
            ended[row["user"]] = ended.get(row["user"], 0) + 1
    return ended


def work_in_astro(hub: Hub) -> None:
    """LONG (logging in first, as a new user does) and dora start a server charged to
    astro, leave files in their workspaces and stop; erin keeps a file in hers."""
    hub.login(LONG, "any password")
    for user in (LONG, "dora"):
        hub.spawn(user, options=ASTRO)
        write(workspace(hub, user) / "catalogue" / "stars.fits", 2 * MIB)
    write(workspace(hub, "erin") / "scratch.bin", MIB)
    for user in (LONG, "dora", "erin"):
        next_round(hub, user, at_least=MIB)
    for user in (LONG, "dora"):
        hub.stop(user)


def test_the_storage_export_follows_xdmods_schema_and_joins_the_slurm_export(hub: Hub) -> None:
    work_in_astro(hub)
    token = Accounting(hub).user_token("admin")  # a hub admin: an accounting admin
    ended = eventually(
        lambda: (found := finished_sessions(hub, token)).keys() >= {LONG, "dora"} and found,
        "the stops in the ledger",
        hub,
    )
    storage = json.loads(export(hub, token, "storage.json"))
    jobs = {job.user: job for job in map(shred, export(hub, token, "sacct.txt").splitlines())}

    checker = Draft7Validator.FORMAT_CHECKER
    validator = Draft7Validator(XDMOD_STORAGE_SCHEMA, format_checker=checker)
    for record in storage:
        assert not list(validator.iter_errors(record)), record
        check_storage(record)
    # The schema's date-time format is checked, not only its types.
    assert list(validator.iter_errors({**storage[0], "dt": "2026-13-01 00:00"}))
    latest = {record["user"]: record for record in storage}  # oldest first: the last wins

    # XDMoD joins the realms by user name: every person who worked and stores data is
    # one name in both files, however long their own.
    sampled = {p.name for p in (hub.workdir / "workspaces").iterdir()}
    assert len(latest.keys() & jobs.keys()) == len(sampled & ended.keys()) >= 2
    [long_name] = [name for name in latest if name.startswith(LONG[:20])]
    assert len(long_name) == 30
    assert long_name != LONG[:30]  # cut, and marked as cut, not merely truncated
    assert long_name in jobs
    assert "dora" in jobs
    for name in (long_name, "dora"):
        assert jobs[name].account == jobs[name].group == latest[name]["pi"] == "astro"
        assert latest[name]["logical_usage"] >= 2 * MIB
        assert latest[name]["file_count"] >= 2  # the folder and the file, at least

    # erin's space is charged to no group: the unassigned PI, and no job of hers.
    assert latest["erin"]["pi"] == "unassigned"
    assert "erin" not in jobs
