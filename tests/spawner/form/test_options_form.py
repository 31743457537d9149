"""The launch form through a real QuotaLocalSpawner, with a fake accounting client.

As the hub does: the spawner's ``options_form`` reads the launch context and renders it;
the submitted page is read back by the spawner.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.identity.profile import UserProfile
from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.policy import authorize
from eohub.spawner.form.view import UNKNOWN_BUDGET
from eohub.spawner.local import QuotaLocalSpawner
from eohub.spawner.mixin import render_form
from tests.spawner.form.forms import (
    CHARGE_GROUPS,
    PROFILE_LIST,
    PROFILE_SECRETS,
    SIZES,
    Page,
    allowed,
    read_form,
    spent,
    started_with,
)
from tests.support.kube_api import fake_kubeconfig
from tests.support.kube_spawners import NO_API
from tests.support.kube_spawners import make_spawner as make_kube_spawner


class FakeAccounting:
    """An AccountingClient stand-in: answers check_quota from a table."""

    def __init__(self, answers: Mapping[str, QuotaAnswer], error: Exception | None = None):
        self.answers = answers
        self.error = error
        self.asked: list[tuple[str, str, float]] = []

    async def check_quota(
        self,
        *,
        user: str,
        group: str,
        cpu: float,
        memory_bytes: int = 0,
        gpus: int = 0,
        **_: Any,
    ) -> QuotaAnswer:
        self.asked.append((user, group, cpu))
        if self.error is not None:
            raise self.error
        return self.answers.get(group, allowed())


LOCAL_ENVIRONMENTS: dict[str, Any] = {
    "lab": {
        "display_name": "JupyterLab",
        "command": ["/opt/secret-venv/bin/jupyterhub-singleuser"],
        "env": {"PANGEO_SECRET": "pangeo-env-secret-value"},
        "sizes": ["small", "medium"],
        "default": True,
    },
    "secret-project": {
        "display_name": "Secret Project X",
        "allowed_groups": ["black-ops"],
        "sizes": ["large"],
    },
}
LOCAL_VOLUMES: dict[str, Any] = {
    "home": {
        "kind": "workspace",
        "mount_path": "/home/jovyan",
        "local_path": "/srv/secret-workspaces/{username}",
    },
    "common-data": {
        "kind": "host_path",
        "path": "/srv/secret-common",
        "mount_path": "/data/common",
        "optional": True,
        "read_only": True,
    },
}


def make_spawner(
    username: str,
    groups: set[str],
    *,
    accounting: FakeAccounting | None = None,
    saved: dict[str, Any] | None = None,
    server_name: str = "",
    sizes: dict[str, Any] | None = None,
    pi_of: frozenset[str] = frozenset(),
) -> QuotaLocalSpawner:
    config = Config()
    config.QuotaLocalSpawner.launch_environments = LOCAL_ENVIRONMENTS
    config.QuotaLocalSpawner.launch_sizes = SIZES if sizes is None else sizes
    config.QuotaLocalSpawner.launch_volumes = LOCAL_VOLUMES
    config.QuotaLocalSpawner.charge_groups = CHARGE_GROUPS
    user = SimpleNamespace(name=username, groups=[SimpleNamespace(name=g) for g in groups])
    orm = SimpleNamespace(name=server_name, user_options=None, server=None, started=None)
    spawner = QuotaLocalSpawner(
        config=config, user=user, orm_spawner=orm, accounting=accounting or FakeAccounting({})
    )
    spawner.profile = UserProfile(username, "ldap", groups=frozenset(groups), pi_of=pi_of)
    return started_with(spawner, saved)


async def test_render_form_asks_accounting_once_per_chargeable_group() -> None:
    accounting = FakeAccounting({"climate": allowed(3.0), "ocean": spent("ocean")})
    spawner = make_spawner("eve", {"climate", "ocean", "staff"}, accounting=accounting)
    assert spawner.options_form is render_form
    html = await spawner.get_options_form()
    assert sorted(accounting.asked) == [("eve", "climate", 1.0), ("eve", "ocean", 1.0)]
    page = Page.of(html)
    assert page.visible("environment") == ["lab"]
    assert page.visible("group") == ["climate", "ocean"]
    assert page.visible("size") == ["small", "medium"]
    assert "The core-hours budget of group ocean is spent" in page.text
    for secret in (
        "/opt/secret-venv",
        "pangeo-env-secret-value",
        "PANGEO_SECRET",
        "/srv/secret",
        "secret-project",
        "Secret Project X",
    ):
        assert secret not in html


async def test_a_pi_sees_exactly_what_a_member_sees() -> None:
    pi = make_spawner("carol", {"climate", "staff"}, pi_of=frozenset({"climate"}))
    member = make_spawner("carol", {"climate", "staff"})
    assert await pi.get_options_form() == await member.get_options_form()


async def test_a_submitted_default_form_is_a_valid_launch() -> None:
    """What the page sends, read by the spawner as JupyterHub does, passes the policy."""
    spawner = make_spawner("eve", {"climate", "ocean"}, accounting=FakeAccounting({}))
    page = Page.of(await spawner.get_options_form())
    formdata: dict[str, list[str]] = {"_xsrf": ["token"]}
    for control in page.controls:
        kind = control.attrs.get("type")
        if control.hidden or (kind in ("radio", "checkbox") and "checked" not in control.attrs):
            continue
        formdata.setdefault(control.name, []).append(control.value)
    options = spawner.options_from_form(formdata)
    assert options == {"environment": "lab", "size": "small", "group": "climate"}
    launch = authorize(spawner.launch_config(), spawner.member(), LaunchRequest(**options), None)
    assert (launch.environment.name, launch.size.name, launch.group) == ("lab", "small", "climate")


async def test_saved_options_and_a_named_server() -> None:
    saved = {"environment": "gone", "size": "medium", "group": "ocean", "volumes": ["common-data"]}
    spawner = make_spawner("eve", {"climate", "ocean"}, saved=saved, server_name="second")
    page = Page.of(await spawner.get_options_form())
    assert "Server name: second" in page.text
    assert "The environment 'gone' you used last time is no longer offered." in page.text
    assert page.checked("group") == ["ocean"]
    assert page.checked("size") == ["medium"]
    assert page.checked("volumes") == ["common-data"]


async def test_an_accounting_error_still_renders_the_form(
    caplog: pytest.LogCaptureFixture,
) -> None:
    accounting = FakeAccounting({}, error=RuntimeError("boom"))
    spawner = make_spawner("bob", {"climate"}, accounting=accounting)
    page = Page.of(await spawner.get_options_form())
    assert UNKNOWN_BUDGET in page.text
    assert page.visible("size") == ["small", "medium"]
    assert "Could not ask accounting for the budgets of bob" in caplog.text


async def test_an_invalid_launch_config_renders_a_message_not_a_500() -> None:
    spawner = make_spawner("bob", {"climate"}, sizes={"small": {"cpu": 0, "memory": "1G"}})
    html = await spawner.get_options_form()
    page = Page.of(html)
    assert "The hub's launch config is invalid; tell an admin." in page.text
    assert page.controls == []


async def test_a_kube_spawners_profile_list_is_on_its_form(tmp_path: Path) -> None:
    """QuotaKubeSpawner's profile_list, filtered by group, with the last profile launch."""
    with fake_kubeconfig(tmp_path, NO_API):
        spawner = await make_kube_spawner("carol", profile_list=PROFILE_LIST)
    started_with(
        spawner,
        {
            "profile": "datasci",
            "image": "cuda",  # carol is not in ml: dropped, with a notice
            "ram": "4g",
            "group": "climate",
        },
    )
    html = await spawner.get_options_form()
    page = Page.of(html)
    assert page.visible("profile", "radio") == ["pangeo", "rstudio", "datasci", "tiny"]
    assert page.checked("profile") == ["datasci"]
    assert page.select("profile-option-datasci--image").selected == "rocker"
    assert page.select("profile-option-datasci--ram").selected == "4g"
    assert "Your last choice for Image, 'cuda', is no longer offered" in page.text
    assert [s for s in PROFILE_SECRETS if s in html] == []
    # What the page sends is what the spawn takes: KubeSpawner's user_options.
    assert spawner.options_from_form(page.sent()) == read_form(page.sent())
    assert read_form(page.sent()) == {
        "profile": "datasci",
        "image": "rocker",
        "ram": "4g",
        "group": "climate",
    }
