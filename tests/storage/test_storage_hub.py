"""Storage, end to end, as a hub admin turns it on and people meet it.

A real JupyterHub with configurable-http-proxy runs eohub's drop-ins: the accounting
service (30) and, with ``EOHUB_STORAGE_SAMPLER=local``, the storage sampler as a managed
service (35), which finds the workspaces in the spawner's own launch config file (named
in the sampler's config file, as docs/how-to/storage-one-machine.md says for a launch
config set after the drop-ins) and charges each user to their hub group. Servers are
QuotaLocalSpawner processes, each in its ``workspace`` volume. Nothing posts samples but
the sampler, every 2 seconds here.

Group climate (PI carol) may store 1 GiB, with a grace of 90 seconds. The story:

1. bob starts a server while climate is within its quota;
2. alice's workspace gets a 1.5 GiB file (allocated with ``posix_fallocate``: real
   blocks, as ``du`` counts them, without writing them) and the next round puts climate
   over: in its grace, the launch form (cyd's, alice's) shows the warning above Start,
   alice's launch is allowed, and her usage page and carol's group page show it too;
3. the grace passes: cyd's Start on the form drawn in the grace, and cyd's own REST
   call, are refused with the numbers; no server starts, no session opens; bob's and
   alice's servers keep running through the sampler's rounds;
4. alice deletes the file; after the next round cyd starts a server.

:mod:`tests.storage.test_storage_export_join` starts the same hub for the XDMoD exports.
Screenshots go to the artifacts folder.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from eohub.domain.wording import span_text
from tests.accounting.service.pages.test_browser import log_in as service_page
from tests.accounting.service_support import Accounting
from tests.spawner.test_refused_launch_browser import log_in
from tests.storage.test_walk import du, write
from tests.support.hub import Hub, start_hub

pytestmark = [pytest.mark.browser, pytest.mark.hub]

GIB = 2**30
# Seconds climate may stay over its quota: long enough for the browser steps in the
# grace (about 8 s on an idle machine, which includes alice's launch, and several times
# that on a loaded one), short enough not to wait long for its end.
GRACE = 90
#: A user name longer than XDMoD's 30 characters (the export join's).
LONG = "maria-antonia.fernandez-castellanos"
HUB_GROUPS = {"climate": ["alice", "bob", "cyd"], "astro": [LONG, "dora"]}
ACCOUNTING_GROUPS = {
    "climate": {
        "display_name": "Climate modelling",
        "allocation": "month",
        "pis": ["carol"],
        "quotas": {"": {"storage_bytes": GIB}},
    },
    "astro": {"display_name": "Astronomy", "allocation": "month"},
}
CLIMATE = {"environment": "lab", "size": "small", "group": "climate"}
HUB_CONFIG = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.launch_config_file = {launch!r}
c.JupyterHub.load_groups = {groups!r}
from eohub.spawner import check_hub_config
check_hub_config(c)
"""


def launch_config(workdir: Path) -> dict[str, Any]:
    return {
        "sizes": {"small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"}},
        "environments": {"lab": {"display_name": "JupyterLab", "sizes": ["small"]}},
        "volumes": {
            "home": {
                "kind": "workspace",
                "display_name": "Your workspace",
                "mount_path": "/home/jovyan",
                "local_path": str(workdir / "workspaces" / "{username}"),
            }
        },
        "charge_groups": ["climate", "astro"],
    }


def start_storage_hub(workdir: Path) -> Hub:
    """The hub, its accounting service answering; the sampler starts with it."""
    launch = workdir / "launch.yaml"
    launch.write_text(yaml.safe_dump(launch_config(workdir)))
    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
        f"c.AccountingService.storage_grace = {GRACE}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    sampler_config = workdir / "eohub_storage_config.py"
    sampler_config.write_text(
        f"c.LocalWorkspaceSampler.launch_config_file = {str(launch)!r}\n"
        "c.StorageSamplerApp.interval = 2\n"
    )
    groups = {name: {"users": users} for name, users in HUB_GROUPS.items()}
    started = start_hub(
        workdir,
        HUB_CONFIG.format(launch=str(launch), groups=groups),
        env={
            "EOHUB_STORAGE_SAMPLER": "local",
            "EOHUB_STORAGE_HUB_GROUPS": "1",
            "EOHUB_STORAGE_CONFIG": str(sampler_config),
        },
    )
    try:
        Accounting(started).wait_ready(timeout=60)
        started.ensure_user("erin")  # in no group: her space is charged to none
    except BaseException:
        started.process.stop(timeout=20)
        raise
    return started


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    started = start_storage_hub(tmp_path_factory.mktemp("storage-hub"))
    yield started
    started.process.stop(timeout=20)


# -- helpers shared with the export join ---------------------------------------------------


def eventually(check: Callable[[], Any], what: str, hub: Hub, timeout: float = 60) -> Any:
    """``check()`` once it is true, polled; else fail saying ``what`` with the hub's log."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in {timeout}s\n{hub.process.log_tail(40)}")
        time.sleep(0.3)
    return found


def workspace(hub: Hub, user: str) -> Path:
    return hub.workdir / "workspaces" / user


def ledger(hub: Hub, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of the accounting service's own database (SQLite in the hub's folder)."""
    with sqlite3.connect(hub.workdir / "eohub-accounting.sqlite") as db:
        return db.execute(query, args).fetchall()


def latest_sample(hub: Hub, user: str) -> tuple[int, datetime] | None:
    """The bytes and time of ``user``'s newest storage sample, if any."""
    rows = ledger(
        hub,
        "SELECT bytes, measured_at FROM storage_samples WHERE user = ? "
        "ORDER BY measured_at DESC LIMIT 1",
        user,
    )
    if not rows:
        return None
    size, at = rows[0]
    return size, datetime.fromisoformat(at).replace(tzinfo=UTC)


def next_round(hub: Hub, user: str, at_least: int = 0) -> tuple[int, datetime]:
    """``user``'s first sample measured after now (of ``at_least`` bytes): a round of
    the sampler that ended after what the test did."""
    now = datetime.now(UTC)

    def newer() -> tuple[int, datetime] | None:
        found = latest_sample(hub, user)
        return found if found and found[1] > now and found[0] >= at_least else None

    found: tuple[int, datetime] = eventually(newer, f"a new sample of {user}", hub)
    return found


# -- the story -----------------------------------------------------------------------------


def climate(hub: Hub, user: str = "cyd") -> dict[str, Any]:
    """The service's quota check for a server charged to climate, as the hub asks it."""
    service = Accounting(hub)
    body = {"user": user, "group": "climate", "cpu": 0.5}
    answer = service.call("POST", "api/quota/check", service.hub_token, json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def state(hub: Hub) -> str:
    return str(climate(hub)["standing"]["group"]["storage"]["state"])


def minute(text: str | None) -> str:
    """An RFC 3339 time as the notices write it: to the minute, in UTC."""
    assert text is not None
    return f"{datetime.fromisoformat(text).astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def words(storage: dict[str, Any]) -> tuple[str, str]:
    """The grace warning and the refusal for climate's storage, as the contract words them."""
    over = (
        "Group climate stores 1.5 GiB, over its storage quota of 1 GiB since "
        f"{minute(storage['over_since'])}"
    )
    grace = (
        f"{over}. New servers charged to it will be refused from "
        f"{minute(storage['refused_from'])} unless space is freed."
    )
    refused = (
        f"{over} (grace of {span_text(GRACE)} ended). Free some space to start servers charged to "
        "it; running servers are not stopped."
    )
    return grace, refused


def hub_page(browser: Browser, hub: Hub, user: str) -> Page:
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    log_in(page, hub, user)
    page.goto(f"{hub.url}/hub/spawn")
    return page


def start_from_form(page: Page, hub: Hub, user: str) -> None:
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(rf".*/(spawn-pending|user)/{user}.*"))
    eventually(lambda: (hub.server(user) or {}).get("ready"), f"{user}'s server", hub, 120)
    # The spawn-pending page moves to the server by itself once it is ready; leaving
    # before it has would race that navigation.
    page.wait_for_url(re.compile(rf".*/user/{user}/.*"))
    page.goto(f"{hub.url}/hub/home")  # not JupyterLab, which keeps polling


def big_file(hub: Hub) -> Path:
    return workspace(hub, "alice") / "runs" / "ensemble-member-01.nc"


def fill_alices_workspace(hub: Hub) -> Path:
    """3 MiB of notes, then the 1.5 GiB that puts climate over (in this order, so that
    the round that sees climate over has seen the notes too)."""
    write(workspace(hub, "alice") / "notes" / "analysis.ipynb", 3 * 2**20)
    big = big_file(hub)
    big.parent.mkdir(parents=True, exist_ok=True)
    with big.open("wb") as f:
        os.posix_fallocate(f.fileno(), 0, GIB + GIB // 2)
    return big


def in_grace(hub: Hub, browser: Browser, artifacts: Path, grace: str) -> Page:
    """The warning on the forms and the pages while climate is in its grace; alice's
    launch is allowed. Returns cyd's form, drawn now, to submit once the grace ends."""
    cyd = hub_page(browser, hub, "cyd")
    warning = cyd.locator(".eohub-group-warnings")
    expect(warning).to_have_text(grace)
    expect(cyd.locator("#spawn_form button[type=submit]")).to_be_enabled()

    alice = hub_page(browser, hub, "alice")
    expect(alice.locator(".eohub-group-warnings")).to_have_text(grace)
    alice.screenshot(path=str(artifacts / "1-form-in-grace.png"), full_page=True)
    start_from_form(alice, hub, "alice")

    usage = service_page(browser, hub, "alice", "usage")
    expect(usage.get_by_role("alert").filter(has_text="storage quota")).to_have_text(grace)
    row = usage.locator("#storage #storage-latest tbody tr").first
    expect(row).to_contain_text("Climate modelling")
    expect(row).to_contain_text("of 1 GiB")
    usage.locator("#storage").scroll_into_view_if_needed()
    usage.screenshot(path=str(artifacts / "2-alice-usage-in-grace.png"), full_page=True)

    groups = service_page(browser, hub, "carol", "groups")
    report = groups.locator("section.group-report[data-group=climate]")
    expect(report.get_by_role("alert").filter(has_text="storage quota")).to_have_text(grace)
    expect(report.locator(".storage .storage-total")).to_contain_text("1.5 GiB of 1 GiB")
    expect(report.locator(".storage-members tbody tr").first).to_contain_text("alice")
    report.locator(".storage").scroll_into_view_if_needed()
    groups.screenshot(path=str(artifacts / "3-carol-group-in-grace.png"), full_page=True)
    return cyd


def refused(hub: Hub, cyd: Page, artifacts: Path, refusal: str) -> None:
    """cyd's Start on the form drawn in the grace, then cyd's own REST call: refused
    with the reason; nothing starts and the ledger opens no session."""
    cyd.click("#spawn_form button[type=submit]")
    cyd.wait_for_url(re.compile(r".*/hub/eohub/spawn/cyd.*"))
    expect(cyd.locator(".spawn-error-msg")).to_contain_text(refusal)
    start = cyd.locator("#spawn_form button[type=submit]")
    expect(start).to_be_disabled()
    expect(cyd.locator("#eohub-start-reason")).to_have_text(f"Start is disabled: {refusal}")
    cyd.screenshot(path=str(artifacts / "4-form-refused.png"), full_page=True)

    token = Accounting(hub).user_token("cyd")
    response = hub.api(
        "POST",
        "/users/cyd/server",
        data=json.dumps(CLIMATE),
        headers={"Authorization": f"token {token}"},
    )
    assert response.status_code == 403, response.text
    assert refusal in response.json()["message"]
    assert hub.server("cyd") is None
    assert ledger(hub, "SELECT id FROM sessions WHERE user = 'cyd'") == []


def test_a_group_over_its_storage_quota_is_warned_then_refused_then_let_in(
    hub: Hub, browser: Browser, artifacts: Path
) -> None:
    try:
        hub.spawn("bob", options=CLIMATE)
        [(bob_session,)] = eventually(
            lambda: ledger(hub, "SELECT id FROM sessions WHERE user = 'bob'"), "bob's session", hub
        )
        assert state(hub) == "ok"

        big = fill_alices_workspace(hub)
        eventually(lambda: state(hub) == "grace", "climate over its quota", hub)
        size, _ = latest_sample(hub, "alice") or (0, None)
        assert size == du(workspace(hub, "alice"))  # the sampler counts as du does
        storage = climate(hub)["standing"]["group"]["storage"]
        assert (storage["bytes"] > storage["limit"], storage["limit"]) == (True, GIB)
        grace, refusal = words(storage)
        refused_from = datetime.fromisoformat(storage["refused_from"])
        assert climate(hub)["warnings"] == [grace]

        cyd = in_grace(hub, browser, artifacts, grace)
        assert datetime.now(UTC) < refused_from, "the browser steps took longer than the grace"

        eventually(lambda: state(hub) == "refused", "the grace's end", hub, GRACE + 30)
        assert climate(hub)["reason"] == refusal
        # A round after the grace ended: running servers are not stopped for storage.
        next_round(hub, "alice")
        for user in ("bob", "alice"):
            assert (hub.server(user) or {}).get("ready"), f"{user}'s server was stopped"
        still_open = ledger(hub, "SELECT stopped_at FROM sessions WHERE id = ?", bob_session)
        assert still_open == [(None,)]
        refused(hub, cyd, artifacts, refusal)

        big.unlink()
        eventually(lambda: state(hub) == "ok", "climate back within its quota", hub)
        cyd.goto(f"{hub.url}/hub/spawn")
        expect(cyd.locator(".eohub-group-warnings")).to_have_count(0)
        cyd.screenshot(path=str(artifacts / "5-form-after-freeing-space.png"), full_page=True)
        start_from_form(cyd, hub, "cyd")
    finally:
        big_file(hub).unlink(missing_ok=True)
        for user in ("alice", "bob", "cyd"):
            if hub.server(user) is not None:
                hub.stop(user)
