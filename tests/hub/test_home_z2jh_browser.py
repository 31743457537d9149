"""The home page on the Zero to JupyterHub kit's hub, in headless Chromium.

The kit's values (``deploy/z2jh/values.yaml``: its ``eohub-hub-pages`` extraConfig puts
eohub's templates in), mapped onto the hub's config as the chart does
(tests/support/z2jh_hub.py); QuotaKubeSpawner with the kit's ``profileList`` against the
Kubernetes API fake; the accounting service as its own process, as the kit's Deployment
runs it, so the test can really stop it. Run it with ``.tox/z2jh`` for the chart's
JupyterHub 5.5.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from eohub.hub.home import BUDGET_WAIT
from tests.spawner.test_z2jh_hub import chart_values, dropin_files
from tests.support.fake_kube_server import KubeAPIThread
from tests.support.hub import Hub
from tests.support.kube_api import write_kubeconfig
from tests.support.process import ServiceProcess, free_port
from tests.support.z2jh import chart_secret, merge_values
from tests.support.z2jh_hub import ACCOUNTING, start_accounting, start_chart_hub

pytestmark = pytest.mark.hub

#: A profile with a session limit, for alice's group.
LIMITED = {
    "display_name": "Climate notebooks",
    "slug": "climate-nb",
    "allowed_groups": ["climate"],
    "eohub": {"max_duration": 4 * 3600, "idle_timeout": "1h"},
    "kubespawner_override": {
        "image": "quay.io/jupyter/scipy-notebook:2026-11-30",
        "cpu_guarantee": 2,
        "mem_guarantee": "4G",
    },
}
ACCOUNTING_CONFIG = """
c.AccountingService.reconcile_interval = 0
c.AccountingService.groups = {
    "climate": {"allocation": "month", "quotas": {"": {"core_hours": 50}}},
    "eo-ml": {"allocation": "month"},
    "staff": {"allocation": "month"},
}
"""


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, ServiceProcess]]:
    workdir = tmp_path_factory.mktemp("z2jh-home")
    port, accounting_url = free_port(), f"http://127.0.0.1:{free_port()}"
    with KubeAPIThread() as kube:
        values = chart_values(kube.url, accounting_url)
        profiles: list[dict[str, Any]] = values["singleuser"]["profileList"]
        values = merge_values(values, {"singleuser": {"profileList": [*profiles, LIMITED]}})
        secret = chart_secret(values)
        accounting = start_accounting(
            workdir / "accounting",
            url=accounting_url,
            hub_url=f"http://127.0.0.1:{port}",
            token=secret[f"hub.services.{ACCOUNTING}.apiToken"],
            config=ACCOUNTING_CONFIG,
        )
        try:
            hub = start_chart_hub(
                workdir / "hub",
                values,
                secret,
                dropin_files(values),
                port=port,
                env={"KUBECONFIG": str(write_kubeconfig(workdir / "kubeconfig", kube.url))},
            )
            try:
                hub.ensure_user("alice")
                properties = {"display_name": "Climate Researchers"}
                assert hub.api("PUT", "/groups/climate/properties", json=properties).ok
                yield hub, accounting
            finally:
                hub.process.stop(timeout=20)
        finally:
            accounting.stop()


def test_the_kits_home_page_shows_a_profile_server_and_survives_a_stopped_service(
    kit: tuple[Hub, ServiceProcess], page: Page, artifacts: Path
) -> None:
    hub, accounting = kit
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "any password")  # the dummy authenticator
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/(?!login).*"))
    try:
        page.goto(f"{hub.url}/hub/spawn")
        # The profile's limits, in plain words, before launch.
        profile = page.locator(".eohub-profile:has(input[value=climate-nb])")
        expect(profile.locator(".eohub-limits:visible")).to_have_text(
            "Stops after 1 hour idle, at most 4 hours."
        )
        page.screenshot(path=str(artifacts / "0-kit-form-limits.png"), full_page=True)
        page.check("input[name=profile][value=climate-nb]")
        page.click("#spawn_form button[type=submit], #spawn_form input[type=submit]")
        # The pending page moves on to the server once it runs; then the test goes on.
        page.wait_for_url(re.compile(r".*/user/alice/.*"), timeout=90_000, wait_until="commit")
        deadline = time.monotonic() + 90
        while not (server := hub.server("alice")) or not server["ready"]:
            assert time.monotonic() < deadline, hub.process.log_tail()
            time.sleep(0.3)

        page.goto(f"{hub.url}/hub/home")
        row = page.locator("tr.eohub-server-row[data-server-name='']")
        expect(row.locator(".eohub-environment")).to_have_text("Climate notebooks")
        expect(row.locator(".eohub-size")).to_have_text("2 CPU, 4 GiB")
        expect(row.locator(".eohub-group")).to_have_text("Climate Researchers")
        expect(row.locator(".eohub-budget")).to_contain_text(
            re.compile(r"(50|49\.9) core-hours left")
        )
        expect(row.locator(".eohub-budget")).to_contain_text("enough for about 1 d 1 h more")
        expect(row.locator(".eohub-ends-in")).to_have_text(re.compile(r"ends in 3 h 5\d min"))
        expect(row.locator(".eohub-maximum")).to_have_text("at most 4 hours")
        expect(row.locator(".eohub-idle-limit")).to_have_text("stops after 1 hour idle")
        expect(page.locator("#eohub-usage")).to_have_attribute("href", f"/services/{ACCOUNTING}/")
        page.screenshot(path=str(artifacts / "1-kit-home.png"), full_page=True)

        accounting.stop()  # the kit's Deployment scaled to zero
        began = time.monotonic()
        page.goto(f"{hub.url}/hub/home", wait_until="commit")  # the hub's answer, timed
        took = time.monotonic() - began
        page.wait_for_load_state()
        expect(row.locator(".eohub-budget")).to_have_text("budget unknown")
        expect(row.locator(".eohub-environment")).to_have_text("Climate notebooks")
        page.screenshot(path=str(artifacts / "2-kit-home-service-stopped.png"), full_page=True)
        assert took < BUDGET_WAIT + 5, f"the home page took {took:.1f} s"
    finally:
        if hub.server("alice") is not None:
            hub.stop("alice")
    assert "Traceback" not in hub.process.log_tail(200)
