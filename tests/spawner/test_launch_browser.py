"""End to end in headless Chromium: LDAP login, the launch form, JupyterLab, the ledger.

Real parts only: JupyterHub with configurable-http-proxy, eohub's LDAPAuthenticator on
slapd (tests/data/10-directory.ldif), QuotaLocalSpawner (servers run as the hub's user,
``switch_user = False``), and the accounting service from the drop-in, on PostgreSQL.

The directory's people, as this hub sees them (nested groups followed):

=====  =============================  ======================  ========================
user   groups                         may charge              environments
=====  =============================  ======================  ========================
carol  climate (PI), staff            climate, staff          lab, climate-lab
bob    researchers, climate           climate                 lab, climate-lab
dave   sentinel-team, eo-scientists   eo-scientists (spent)   lab, eo-lab
=====  =============================  ======================  ========================
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from eohub.accounting.scopes import ACCESS, READ
from tests.accounting.service_support import Accounting
from tests.auth.ldap_support import ldap_hub_config
from tests.support.accounting import empty_database
from tests.support.browser import wait_for_hub_handler
from tests.support.hub import Hub, start_hub
from tests.support.slapd import Directory
from tests.support.tools import DROPIN_DIR

pytestmark = pytest.mark.hub

# A report tool: a service whose role holds the read scope (drop-in 30's docs show it).
REPORT_TOKEN = secrets.token_hex(16)
READER_SCOPES = (READ, ACCESS)

SIZES = {
    "small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"},
    "medium": {"display_name": "Medium", "cpu": 1, "memory": "2G", "memory_limit": "4G"},
    "large": {"display_name": "Large", "cpu": 16, "memory": "64G"},
}
ENVIRONMENTS = {
    "lab": {
        "display_name": "JupyterLab",
        "description": "Python 3 with the scientific stack.",
        "sizes": ["small", "medium", "large"],
        "default": True,
        "env": {"LAB_SECRET": "lab-secret-value"},
    },
    "climate-lab": {
        "display_name": "Climate lab",
        "description": "CMIP6 tools for the climate group.",
        "allowed_groups": ["climate"],
        "sizes": ["small", "medium"],
        "default_size": "small",
    },
    "eo-lab": {
        "display_name": "EO lab",
        "description": "The Sentinel toolbox.",
        "allowed_groups": ["eo-scientists"],
        "sizes": ["small"],
        "env": {"EO_SECRET": "eo-secret-value"},
    },
}
# climate has plenty; staff's 4 core-hours buy Large (16 CPUs) only 15 minutes, too short
# to offer; eo-scientists has spent its (zero) budget.
ACCOUNTING_GROUPS = {
    "climate": {"allocation": "month", "pis": ["carol"], "quotas": {"": {"core_hours": 100}}},
    "staff": {"allocation": "month", "quotas": {"": {"core_hours": 4}}},
    "eo-scientists": {"allocation": "month", "quotas": {"": {"core_hours": 0}}},
}
SECRETS = ["lab-secret-value", "LAB_SECRET", "eo-lab", "EO lab", "EO_SECRET", "eo-archive"]


def hub_config(directory: Directory, root: Path) -> str:
    volumes = {
        "home": {
            "kind": "workspace",
            "display_name": "Your workspace",
            "mount_path": "/home/jovyan",
            "local_path": str(root / "workspaces" / "{username}"),
        },
        "common-data": {
            "kind": "host_path",
            "display_name": "Common data",
            "description": "Shared reference data.",
            "path": str(root / "common-data"),
            "mount_path": "/data/common",
            "read_only": True,
            "optional": True,
        },
        "eo-archive": {
            "kind": "host_path",
            "display_name": "EO archive",
            "path": str(root / "eo-archive"),
            "mount_path": "/data/eo",
            "allowed_groups": ["eo-scientists"],
        },
        # The folder of the group charged; only climate's members may mount it.
        "group-share": {
            "kind": "host_path",
            "display_name": "Group share",
            "path": str(root / "groups" / "{group}"),
            "mount_path": "/data/group",
            "allowed_groups": ["climate"],
            "optional": True,
        },
    }
    ldap = ldap_hub_config(
        directory, allowed_groups={"researchers", "climate", "eo-scientists"}, nested_groups=True
    )
    return (
        ldap
        + f"""
c.JupyterHub.services.append({{"name": "report-tool", "api_token": {REPORT_TOKEN!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "usage-readers", "scopes": {list(READER_SCOPES)!r}, "services": ["report-tool"]}}
)
c.JupyterHub.spawner_class = "eohub-local"
c.QuotaLocalSpawner.switch_user = False
c.QuotaLocalSpawner.launch_sizes = {SIZES!r}
c.QuotaLocalSpawner.launch_environments = {ENVIRONMENTS!r}
c.QuotaLocalSpawner.launch_volumes = {volumes!r}
c.QuotaLocalSpawner.charge_groups = ["climate", "staff", "eo-scientists"]
load_subconfig({str(DROPIN_DIR / "29-eohub-launch-check.py")!r})
"""
    )


@pytest.fixture(scope="module")
def launch_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("launch")
    for folder in ("common-data", "eo-archive", "groups/climate", "groups/staff"):
        (root / folder).mkdir(parents=True)
    (root / "common-data" / "README.txt").write_text("shared data\n")
    return root


@pytest.fixture(scope="module")
def hub(directory: Directory, postgres_url: str, launch_root: Path) -> Iterator[Hub]:
    empty_database(postgres_url).dispose()  # the session's database may hold other tests' rows
    accounting_config = launch_root / "eohub_accounting_config.py"
    accounting_config.write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    started = start_hub(
        launch_root / "hub",
        hub_config(directory, launch_root),
        env={
            "EOHUB_ACCOUNTING_DB_URL": postgres_url,
            "EOHUB_ACCOUNTING_CONFIG": str(accounting_config),
        },
    )
    Accounting(started).wait_ready(timeout=60)
    yield started
    started.process.stop(timeout=20)


def log_in(page: Page, hub: Hub, username: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"{username}-pw")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/(?!login).*"))


def values(page: Page, selector: str) -> list[str]:
    found: list[str] = page.locator(selector).evaluate_all("els => els.map(e => e.value)")
    return found


def shown_sizes(page: Page) -> list[str]:
    return values(page, "[data-size]:not([hidden]) input[name=size]:not([disabled])")


def stop_if_running(hub: Hub, username: str) -> None:
    if hub.server(username) is not None:
        hub.stop(username)


def sessions(hub: Hub, username: str) -> list[dict[str, Any]]:
    """The user's sessions in the accounting service, read as a report tool would."""
    response = Accounting(hub).call("GET", f"api/sessions?user={username}", REPORT_TOKEN)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["sessions"]
    return found


def closed_sessions(hub: Hub, username: str, timeout: float = 30) -> list[dict[str, Any]]:
    """The user's finished sessions, once the hub's outbox has delivered the stop."""
    deadline = time.monotonic() + timeout
    while True:
        closed = [s for s in sessions(hub, username) if s["stopped_at"]]
        if closed or time.monotonic() > deadline:
            return closed
        time.sleep(0.5)


def check_carols_form(page: Page, artifacts: Path, launch_root: Path) -> None:
    """What carol sees, and how the script refines the sizes as she chooses."""
    form = page.locator("#eohub-launch")
    expect(form).to_be_visible()

    # Only the environments carol's groups may use; nothing admin-only in the page.
    assert values(page, "input[name=environment]") == ["lab", "climate-lab"]
    html = page.content()
    leaks = [s for s in [*SECRETS, str(launch_root)] if s in html]
    assert leaks == []
    # Two funded groups: a choice, each with its budget left.
    assert values(page, "input[name=group]") == ["climate", "staff"]
    expect(page.locator("label[for=eohub-group-0]")).to_contain_text("100 core-hours left of 100")
    expect(page.locator("label[for=eohub-group-1]")).to_contain_text("4 core-hours left of 4")
    expect(page.get_by_label("Common data")).not_to_be_checked()
    page.screenshot(path=str(artifacts / "1-spawn-form.png"), full_page=True)

    # The script refines the sizes: staff's budget does not run Large for an hour,
    # and the climate lab does not offer it.
    assert shown_sizes(page) == ["small", "medium", "large"]
    page.check("input[name=group][value=staff]")
    assert shown_sizes(page) == ["small", "medium"]
    expect(page.locator("[data-size=small]")).to_contain_text("about 8 hours on staff's budget")
    page.check("input[name=group][value=climate]")
    assert shown_sizes(page) == ["small", "medium", "large"]
    page.check("input[name=environment][value=climate-lab]")
    assert shown_sizes(page) == ["small", "medium"]
    assert page.locator("#eohub-urlpath").get_attribute("placeholder") == "/lab"
    # Only climate grants its lab, so only climate may pay for it (the default rule).
    page.check("input[name=environment][value=lab]")
    page.check("input[name=group][value=staff]")
    page.check("input[name=environment][value=climate-lab]")
    expect(page.locator("input[name=group][value=staff]")).to_be_disabled()
    expect(page.locator("input[name=group][value=climate]")).to_be_checked()


def check_carols_server(hub: Hub, launch_root: Path) -> None:
    """The running server has the options carol chose, and her workspace its link."""
    server = hub.server("carol")
    assert server is not None
    assert server["ready"]
    options = server["user_options"]
    assert {k: options[k] for k in ("environment", "size", "group", "volumes")} == {
        "environment": "climate-lab",
        "size": "medium",
        "group": "climate",
        "volumes": ["common-data"],
    }
    workspace = launch_root / "workspaces" / "carol"
    assert workspace.is_dir()
    assert (workspace / "common").resolve() == (launch_root / "common-data").resolve()


def stop_from_the_home_page(hub: Hub, page: Page, artifacts: Path) -> None:
    page.goto(f"{hub.url}/hub/home")
    wait_for_hub_handler(page, "#stop")
    page.click("#stop")
    deadline = time.monotonic() + 60
    while hub.server("carol") is not None:
        assert time.monotonic() < deadline, hub.process.log_tail()
        time.sleep(0.3)
    page.reload()
    expect(page.locator("#start")).to_be_visible()
    page.screenshot(path=str(artifacts / "4-home-stopped.png"))


def test_log_in_choose_spawn_reach_jupyterlab_stop_and_find_the_session(
    hub: Hub, page: Page, artifacts: Path, launch_root: Path
) -> None:
    try:
        log_in(page, hub, "carol")
        page.goto(f"{hub.url}/hub/spawn")
        check_carols_form(page, artifacts, launch_root)
        # carol picks a size and the group to charge, and mounts the common data.
        page.check("input[name=size][value=medium]")
        page.check("input[name=volumes][value=common-data]")
        expect(page.locator("[data-size=medium]")).to_contain_text(
            "1 CPU · 2 GiB memory (up to 4 GiB)"
        )
        page.screenshot(path=str(artifacts / "2-spawn-form-chosen.png"), full_page=True)

        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(re.compile(r".*/user/carol/lab.*"), timeout=90_000)
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
        # The file browser opens in the workspace, where the chosen volume is linked.
        common = page.locator(".jp-DirListing-item", has_text="common")
        expect(common).to_be_visible(timeout=60_000)
        page.screenshot(path=str(artifacts / "3-jupyterlab.png"))

        check_carols_server(hub, launch_root)
        # Stop through the hub's own home page.
        stop_from_the_home_page(hub, page, artifacts)
    finally:
        stop_if_running(hub, "carol")

    [session] = closed_sessions(hub, "carol")
    assert session["server"] == ""
    assert session["group"] == "climate"
    assert session["profile"] == "climate-lab"
    assert session["profile_name"] == "Climate lab"  # what the usage pages show
    assert (session["cpu"], session["memory_bytes"], session["gpus"]) == (1, 2 * 1024**3, 0)
    assert session["end_reason"] == "user"  # carol stopped it herself, on the home page


def test_the_form_works_without_javascript(hub: Hub, browser: Browser, artifacts: Path) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1200, "height": 800}
    )
    page = context.new_page()
    try:
        log_in(page, hub, "bob")
        page.goto(f"{hub.url}/hub/spawn")
        assert values(page, "input[name=environment]") == ["lab", "climate-lab"]
        # One funded group: no choice to make, the form carries it.
        assert values(page, "input[name=group][type=hidden]") == ["climate"]
        assert shown_sizes(page) == ["small", "medium", "large"]
        page.check("input[name=environment][value=climate-lab]")
        page.check("input[name=size][value=small]")
        page.fill("input[name=urlpath]", "/lab/tree/common")
        page.screenshot(path=str(artifacts / "1-no-javascript-form.png"), full_page=True)
        page.click("#spawn_form button[type=submit]")
        page.wait_for_url(re.compile(r".*/hub/spawn-pending/bob.*"))

        deadline = time.monotonic() + 90
        while not (server := hub.server("bob")) or not server["ready"]:
            assert time.monotonic() < deadline, hub.process.log_tail()
            time.sleep(0.3)
        options = server["user_options"]
        assert {k: options.get(k) for k in ("environment", "size", "group", "urlpath")} == {
            "environment": "climate-lab",
            "size": "small",
            "group": "climate",
            "urlpath": "/lab/tree/common",
        }
        assert options["volumes"] == []
    finally:
        context.close()
        stop_if_running(hub, "bob")


def test_an_over_quota_user_sees_the_refusal_on_the_spawn_page(
    hub: Hub, page: Page, artifacts: Path
) -> None:
    log_in(page, hub, "dave")
    page.goto(f"{hub.url}/hub/spawn")
    # dave is in eo-scientists through sentinel-team (nested groups).
    assert values(page, "input[name=environment]") == ["lab", "eo-lab"]
    refusal = page.locator(".eohub-refusal")
    expect(refusal).to_contain_text("The core-hours budget of group eo-scientists is spent")
    expect(page.locator(".eohub-no-size")).to_be_visible()
    assert shown_sizes(page) == []
    # Start is disabled, with the reason next to it.
    expect(page.locator("#spawn_form button[type=submit]")).to_be_disabled()
    expect(page.locator("#eohub-start-reason")).to_contain_text(
        "Start is disabled: The core-hours budget of group eo-scientists is spent"
    )
    page.screenshot(path=str(artifacts / "1-over-quota-form.png"), full_page=True)

    # Sending the form anyway (a script, an old page): the hub's check still refuses
    # before anything starts.
    page.eval_on_selector("#spawn_form", "form => form.submit()")
    error = page.locator(".spawn-error-msg")
    expect(error).to_contain_text("budget of group eo-scientists is spent", timeout=30_000)
    page.screenshot(path=str(artifacts / "2-over-quota-refused.png"), full_page=True)
    assert hub.server("dave") is None
    assert sessions(hub, "dave") == []


def test_a_rest_spawn_with_a_forbidden_option_gets_400_and_starts_nothing(hub: Hub) -> None:
    bob = hub.login("bob", "bob-pw")  # bob's groups come from the directory at login
    before = sessions(hub, "bob")
    for options, field in [
        ({"environment": "lab", "image": "evil/miner:latest"}, "image"),
        ({"environment": "lab", "group": "staff"}, "group"),  # not his group
        ({"environment": "eo-lab", "group": "climate"}, "environment"),  # not bob's
    ]:
        response = hub.api("POST", "/users/bob/server", data=json.dumps(options))
        assert response.status_code == 400, response.text
        assert f"{field}:" in response.json()["message"]
        assert hub.server("bob") is None

    # JupyterHub keeps the refused options as bob's last ones; his form prefills from
    # his last successful launch if he has one, else falls back from the refused ones
    # with a notice, and never fails.
    form = bob.get(f"{hub.url}/hub/spawn", timeout=30)
    assert form.status_code == 200
    assert 'value="climate-lab"' in form.text
    assert 'value="eo-lab"' not in form.text
    assert sessions(hub, "bob") == before


def test_a_group_that_does_not_grant_the_environment_cannot_pay_for_it(hub: Hub) -> None:
    hub.login("carol", "carol-pw")  # climate (which grants the climate lab) and staff
    before = sessions(hub, "carol")
    options = {"environment": "climate-lab", "group": "staff"}
    response = hub.api("POST", "/users/carol/server", data=json.dumps(options))
    assert response.status_code == 400, response.text
    assert (
        "group: group 'staff' does not grant environment 'Climate lab', so it cannot pay "
        "for it; charge 'climate'"
    ) in response.json()["message"]
    assert hub.server("carol") is None
    assert sessions(hub, "carol") == before


#: carol runs the lab on staff's budget with climate's share: staff is not allowed on
#: the share, so its ``{group}`` path would name a folder staff has no right to.
STAFF_WITH_CLIMATES_SHARE = {"environment": "lab", "group": "staff", "volumes": ["group-share"]}


def test_a_group_that_does_not_grant_a_volume_cannot_pay_for_it(hub: Hub) -> None:
    hub.login("carol", "carol-pw")
    before = sessions(hub, "carol")
    response = hub.api("POST", "/users/carol/server", data=json.dumps(STAFF_WITH_CLIMATES_SHARE))
    assert response.status_code == 400, response.text
    # The refusal names the group that would do.
    assert (
        "volumes: group 'staff' does not grant volume 'Group share', so it cannot pay "
        "for it; charge 'climate'"
    ) in response.json()["message"]
    assert hub.server("carol") is None
    assert sessions(hub, "carol") == before
