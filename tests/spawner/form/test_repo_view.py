"""The launch form's repository section, the RepoLaunches settings check and progress.

The form is rendered through a real QuotaLocalSpawner (as the hub does), with a fake
accounting client; the settings check is the one ``check_hub_config`` runs at start-up.
"""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from eohub.domain.identity.profile import UserProfile
from eohub.domain.launch.config import LaunchConfigError
from eohub.domain.launch.options import parse_options
from eohub.spawner import check_hub_config
from eohub.spawner.form.repo_view import NOTES, UNTRUSTED
from eohub.spawner.local import QuotaLocalSpawner
from eohub.spawner.mixin import render_form
from eohub.spawner.repo_launches import RepoLaunches
from eohub.spawner.repo_progress import MAX_MESSAGES, RepoProgress
from tests.support.kube_spawners import FakeAccounting

SIZES = {"small": {"display_name": "Small", "cpu": 1, "memory": "2G"}}
ENVIRONMENTS: dict[str, Any] = {
    "lab": {"display_name": "Lab", "default": True},
    "from-repo": {
        "display_name": "From a repository",
        "repository": True,
        "allowed_groups": ["builders"],
    },
}
TOKEN = "binderhub-token-never-shown"
PASSWORD = "registry-password-never-shown"


def make_spawner(groups: set[str], saved: dict[str, Any] | None = None) -> QuotaLocalSpawner:
    config = Config()
    config.QuotaLocalSpawner.launch_environments = ENVIRONMENTS
    config.QuotaLocalSpawner.launch_sizes = SIZES
    config.RepoLaunches.binderhub_token = TOKEN
    config.RepoLaunches.registry_password = PASSWORD
    config.RepoLaunches.trusted_repos = ["github.com/eohub/*"]
    user = SimpleNamespace(name="ada", groups=[SimpleNamespace(name=g) for g in groups])
    orm = SimpleNamespace(name="", user_options=saved, server=None, started=None)
    spawner = QuotaLocalSpawner(
        config=config,
        user=user,
        orm_spawner=orm,
        accounting=FakeAccounting({}),
        repo_launches=RepoLaunches(config=config),
    )
    spawner.profile = UserProfile("ada", "ldap", groups=frozenset(groups))
    return spawner


def field_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    assert found, name
    return found[1]


async def test_the_section_appears_only_for_who_may_launch_repositories() -> None:
    html = await render_form(make_spawner({"climate"}))
    assert 'id="eohub-repo"' not in html
    html = await render_form(make_spawner({"builders"}))
    assert 'id="eohub-repo"' in html
    assert NOTES["local"].replace("'", "&#39;") in html  # "no image is built" here
    assert 'data-repository="true"' in html
    assert 'data-repository="false"' in html
    for secret in (TOKEN, PASSWORD):
        assert secret not in html


async def test_a_launch_link_prefills_the_form_and_an_untrusted_one_warns() -> None:
    spawner = make_spawner({"builders"})
    request = parse_options(
        {
            "environment": "from-repo",
            "provider": "gh",
            "repo": "someone/thing",
            "ref": "v2",
            "filepath": "a b.ipynb",
        }
    )
    html = await render_form(spawner, request, untrusted_link=True)
    assert field_value(html, "repo") == "someone/thing"
    assert field_value(html, "ref") == "v2"
    assert field_value(html, "filepath") == "a b.ipynb"
    assert re.search(r'<option value="gh"[^>]*selected', html)
    assert re.search(r'value="from-repo"[^>]*\n?[^>]*checked', html)
    assert UNTRUSTED.replace("'", "&#39;") in html
    link = "/hub/eohub/launch/gh/someone/thing/v2?filepath=a%20b.ipynb&amp;environment=from-repo"
    assert f'id="eohub-link" readonly value="{link}"' in html
    assert "[![Launch on eohub](/hub/eohub/badge.svg)]" in html
    assert "&lt;a href=" in html  # the HTML snippet is text, escaped

    trusted = await render_form(spawner, request, untrusted_link=False)
    assert UNTRUSTED.replace("'", "&#39;") not in trusted


async def test_the_last_repository_launch_is_prefilled() -> None:
    saved = {"environment": "from-repo", "repo": "https://gitlab.com/g/p", "ref": "main"}
    html = await render_form(make_spawner({"builders"}, saved))
    assert field_value(html, "repo") == "https://gitlab.com/g/p"
    assert "/hub/eohub/launch/gl/g%2Fp/main" in html


def test_query_links_with_a_repository_are_refused() -> None:
    spawner = make_spawner({"builders"})
    with pytest.raises(Exception, match="review it and click Start"):
        spawner.options_from_query({"environment": ["from-repo"], "repo": ["https://x.org/r"]})
    assert spawner.options_from_query({"environment": ["lab"]}) == {"environment": "lab"}


def hub_config(backend: str = "eohub-kube", **repo: Any) -> Config:
    config = Config()
    config.JupyterHub.spawner_class = backend
    section = "QuotaKubeSpawner" if backend == "eohub-kube" else "QuotaLocalSpawner"
    envs = {"from-repo": {"repository": True}}
    config[section].launch_environments = envs
    config[section].launch_sizes = SIZES
    for key, value in repo.items():
        config.RepoLaunches[key] = value
    return config


@pytest.mark.parametrize(
    ("backend", "settings", "where"),
    [
        ("eohub-kube", {}, "RepoLaunches.image_prefix"),
        ("eohub-kube", {"image_prefix": "Bad Prefix/"}, "RepoLaunches.image_prefix"),
        ("eohub-local", {"allowed_repos": [""]}, "RepoLaunches.allowed_repos"),
        ("eohub-local", {"trusted_repos": ["ok", "bad\n"]}, "RepoLaunches.trusted_repos"),
    ],
)
def test_bad_repository_settings_stop_the_hub_naming_the_setting(
    backend: str, settings: dict[str, Any], where: str
) -> None:
    with pytest.raises(LaunchConfigError) as caught:
        check_hub_config(hub_config(backend, **settings))
    assert str(caught.value).startswith(where + ":")


def test_good_repository_settings_pass() -> None:
    config = check_hub_config(hub_config(image_prefix="registry.example.org/binder/eohub-"))
    assert config is not None
    assert config.environments["from-repo"].repository
    assert check_hub_config(hub_config("eohub-local")) is not None


def test_secrets_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOHUB_BINDERHUB_TOKEN", "from-env-token")
    monkeypatch.setenv("EOHUB_REGISTRY_PASSWORD", "from-env-password")
    launches = RepoLaunches()
    assert launches.binderhub_token == "from-env-token"
    assert launches.registry_password == "from-env-password"
    assert launches.builder is None
    assert launches.registry is None


async def test_progress_followers_see_every_message_then_the_end() -> None:
    progress = RepoProgress()
    seen: list[str] = []

    async def follow() -> None:
        async for message in progress.follow():
            seen.append(message)

    follower = asyncio.create_task(follow())
    progress.report("one")
    await asyncio.sleep(0)
    progress.report("two")
    progress.close()
    progress.report("after the end")
    await asyncio.wait_for(follower, 5)
    assert seen == ["one", "two"]
    late = [m async for m in progress.follow()]
    assert late == ["one", "two"]
    assert [m async for m in RepoProgress.closed().follow()] == []


async def test_a_long_log_is_bounded_and_followers_skip_nothing_they_can_still_see() -> None:
    progress = RepoProgress()
    for i in range(MAX_MESSAGES * 2):
        progress.report(str(i))
    progress.close()
    shown = [m async for m in progress.follow()]
    assert len(shown) <= MAX_MESSAGES
    assert shown[-1] == str(MAX_MESSAGES * 2 - 1)
    assert [int(m) for m in shown] == sorted(int(m) for m in shown)


async def test_links_are_absolute_on_the_hub_that_draws_the_form() -> None:
    spawner = make_spawner(
        {"builders"}, {"environment": "from-repo", "repo": "https://github.com/o/r"}
    )
    spawner.handler = SimpleNamespace(
        request=SimpleNamespace(protocol="https", host="hub.example.org")
    )
    html = await render_form(spawner)
    assert (
        'value="https://hub.example.org/hub/eohub/launch/gh/o/r/HEAD?environment=from-repo"'
        in html
    )
    assert "(https://hub.example.org/hub/eohub/badge.svg)" in html
