"""The permissive charging rule in a real hub: ``charged_group_must_grant = False``.

The hub of ``test_launch_browser.py`` (eohub's LDAPAuthenticator on slapd,
QuotaLocalSpawner, the accounting service from the drop-ins, here on SQLite), with the
admin's switch turned off. The launches that hub refuses with the default rule (carol
charging staff for the climate group's lab and the climate group's share) start here,
and the share's ``{group}`` path names the group charged.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.spawner.test_launch_browser import (
    ACCOUNTING_GROUPS,
    STAFF_WITH_CLIMATES_SHARE,
    hub_config,
    stop_if_running,
)
from tests.support.hub import Hub
from tests.support.repo_services import start_repo_hub
from tests.support.slapd import Directory

pytestmark = pytest.mark.hub

PERMISSIVE = "\nc.QuotaLocalSpawner.charged_group_must_grant = False\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("permissive")
    for folder in ("common-data", "eo-archive", "groups/climate", "groups/staff", "hub"):
        (root / folder).mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def hub(directory: Directory, root: Path) -> Iterator[Hub]:
    started = start_repo_hub(
        root / "hub", hub_config(directory, root) + PERMISSIVE, ACCOUNTING_GROUPS
    )
    yield started
    started.process.stop(timeout=20)


def test_a_group_may_pay_for_what_another_group_of_the_user_grants(hub: Hub, root: Path) -> None:
    hub.login("carol", "carol-pw")  # climate (which grants the lab and share) and staff
    # Both launches the default rule refuses (test_launch_browser.py), in one.
    options = {**STAFF_WITH_CLIMATES_SHARE, "environment": "climate-lab", "size": "small"}
    try:
        server = hub.spawn("carol", options=options)  # fails on a 400; waits until ready
        chosen = server["user_options"]
        assert {k: chosen[k] for k in ("environment", "size", "group", "volumes")} == {
            "environment": "climate-lab",
            "size": "small",
            "group": "staff",
            "volumes": ["group-share"],
        }
        # {group} names the group charged, though staff is not allowed on the share.
        share = root / "workspaces" / "carol" / "group"
        assert share.resolve() == (root / "groups" / "staff").resolve()
    finally:
        stop_if_running(hub, "carol")
