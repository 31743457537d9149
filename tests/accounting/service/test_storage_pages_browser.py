"""The Storage sections of the usage pages in Chromium, behind a real JupyterHub.

The drop-ins register the accounting service; the test sets up groups through its REST
API and posts samples with the hub client's ingest token, as a sampler would. The group
climate (PI carol) went over its storage quota a day ago: its members and its PI see
the grace warning, with the date from which new servers will be refused. alice is
measured at two roots (home and scratch): her figure is their sum, each listed; frank's
sample of nine days ago no longer counts (the service counts samples for 7 days).
Screenshots go to the artifacts folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from eohub.domain.accounting.events import format_time
from tests.accounting.service.pages.test_browser import log_in, shoot
from tests.accounting.service_support import Accounting
from tests.support.hub import Hub, start_hub

pytestmark = [pytest.mark.browser, pytest.mark.hub]

CONFIG = """
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "pages-pw"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"root"}
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.load_groups = {"climate": {"users": ["alice", "bob"]}}
"""
GIB = 2**30
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
DAY = timedelta(days=1)
HOME, SCRATCH = "/export/home", "/export/scratch"
# (user, group, source, GiB, files, days ago): climate's quota is 10 GiB; "" is no group.
SAMPLES = [
    *(("alice", "climate", HOME, 2 + d / 4, 1000 + d, 28 - d) for d in range(0, 27, 3)),
    ("alice", "climate", HOME, 6, 1000, 1),
    ("alice", "climate", SCRATCH, 1.5, 234, 1),
    ("alice", "", HOME, 0.75, 0, 5),
    ("bob", "climate", "pvc:hub/claim-bob", 3, 210, 10),
    ("bob", "climate", "pvc:hub/claim-bob", 4.5, 250, 2),
    ("carol", "ocean", "", 1, 5, 3),
    ("frank", "climate", HOME, 3, 30, 9),
]


def climate_over_since() -> datetime:
    """The newest sample that put climate over its quota: alice's of a day ago."""
    return NOW - DAY


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    hub = start_hub(tmp_path_factory.mktemp("hub"), CONFIG)
    try:
        service = Accounting(hub)
        service.wait_ready(timeout=60)
        root = service.user_token("root")
        groups: dict[str, dict[str, Any]] = {
            "climate": {
                "display_name": "Climate modelling",
                "pis": ["carol"],
                "quotas": {"": {"storage_bytes": 10 * GIB}},
            },
            "ocean": {"pis": ["erin"]},
        }
        for name, body in groups.items():
            r = service.call("PUT", f"api/groups/{name}", root, json=body)
            assert r.status_code in (200, 201), r.text
        samples = [
            {
                "user": user,
                "group": group,
                "bytes": int(gib * GIB),
                "file_count": files,
                "measured_at": format_time(NOW - days * DAY),
                "source": source,
            }
            for user, group, source, gib, files, days in SAMPLES
        ]
        r = service.call("POST", "api/storage", service.hub_token, json={"samples": samples})
        assert r.status_code == 200, r.text
        yield hub
    finally:
        hub.process.stop(timeout=20)


def grace_words() -> str:
    since = climate_over_since()
    return (
        f"Group climate stores 12.0 GiB, over its storage quota of 10 GiB since "
        f"{since:%Y-%m-%d %H:%M} UTC. New servers charged to it will be refused from "
        f"{since + 3 * DAY:%Y-%m-%d %H:%M} UTC unless space is freed."
    )


def test_a_member_sees_their_storage_and_the_groups_warning(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    page = log_in(browser, hub, "alice", "usage?period=month")
    expect(page.get_by_role("alert").filter(has_text="storage quota")).to_have_text(grace_words())
    section = page.locator("#storage")
    expect(section.locator("h2")).to_have_text("Storage")
    rows = section.locator("#storage-latest tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Climate modelling")
    expect(rows.nth(0)).to_contain_text("7.5 GiB")
    expect(rows.nth(0)).to_contain_text("1,234")
    expect(rows.nth(0)).to_contain_text("12.0 GiB of 10 GiB")
    expect(rows.nth(0).locator(".storage-sources li")).to_have_text(
        [f"{HOME} 6.0 GiB", f"{SCRATCH} 1.5 GiB"]
    )
    expect(rows.nth(1)).to_contain_text("no group")
    expect(rows.nth(1)).to_contain_text("768.0 MiB")
    expect(rows.nth(1)).to_contain_text("not counted")
    expect(section.locator("svg path.line")).to_have_count(3)  # total, climate, no group
    expect(section.locator(".legend")).to_contain_text("Total")
    assert "bob" not in section.inner_text()
    data = json.loads(page.locator("#chart-data").text_content() or "{}")["storage"]
    assert [s["name"] for s in data["series"]] == ["Total", "Climate modelling", "no group"]
    assert data["series"][0]["bytes"][-1] == int(8.25 * GIB)
    section.scroll_into_view_if_needed()
    shoot(page, artifacts, "1-my-usage-storage")


def test_a_pi_sees_the_groups_storage_against_its_quota(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    page = log_in(browser, hub, "carol", "groups")
    report = page.locator("section.group-report[data-group=climate]")
    expect(report.get_by_role("alert").filter(has_text="storage quota")).to_have_text(
        grace_words()
    )
    storage = report.locator(".storage")
    expect(storage.locator(".storage-total")).to_contain_text("12.0 GiB of 10 GiB")
    expect(storage.locator(".storage-total .progress-bar")).to_have_class(
        "progress-bar bg-warning"
    )
    members = storage.locator(".storage-members tbody tr")
    expect(members).to_have_count(2)
    expect(members.nth(0)).to_contain_text("alice")
    expect(members.nth(0)).to_contain_text("62%")  # 7.5 of 12 GiB
    expect(members.nth(1)).to_contain_text("bob")
    expect(members.nth(1)).to_contain_text("250")
    expect(members.nth(0).locator(".storage-sources li")).to_have_count(2)
    expect(members.nth(1).locator(".storage-sources")).to_have_text("pvc:hub/claim-bob 4.5 GiB")
    expect(storage.locator(".storage-members caption")).to_contain_text(
        "A measurement older than 7 days no longer counts."
    )
    # The storage lines take the palette from the stylesheet: no inline styles.
    assert storage.locator("style").count() == 0
    colour = storage.locator("path.line-series-0").evaluate("e => getComputedStyle(e).stroke")
    assert colour == "rgb(0, 114, 178)"
    legend = storage.locator(".legend")
    for name in ("Total", "alice", "bob", "Quota"):
        expect(legend).to_contain_text(name)
    # carol's own storage is in ocean: not part of climate's; frank's no longer counts.
    assert "carol" not in storage.inner_text()
    assert "frank" not in storage.inner_text()
    storage.scroll_into_view_if_needed()
    shoot(page, artifacts, "1-group-storage")


def test_nothing_measured_is_said_plainly(hub: Hub, browser: Browser, artifacts: Path) -> None:
    page = log_in(browser, hub, "dave")
    expect(page.locator("#storage .storage-empty")).to_have_text(
        "No storage samples yet: see the storage how-tos."
    )
    shoot(page, artifacts, "1-no-storage-yet")
