"""The launch form's repository section.

The form is rendered through a real QuotaLocalSpawner (as the hub does), with a fake
accounting client. The RepoLaunches settings check is in ``tests/spawner/test_settings.py``
and the launch's progress in ``tests/spawner/test_launch_progress.py``.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from traitlets.config import Config

from eohub.domain.identity.profile import UserProfile
from eohub.domain.launch.options import parse_options
from eohub.spawner.form.repo_view import NOTES, UNTRUSTED
from eohub.spawner.local import QuotaLocalSpawner
from eohub.spawner.mixin import render_form
from eohub.spawner.repo_launches import RepoLaunches
from tests.spawner.form.forms import started_with
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
    orm = SimpleNamespace(name="", user_options=None, server=None, started=None)
    spawner = QuotaLocalSpawner(
        config=config,
        user=user,
        orm_spawner=orm,
        accounting=FakeAccounting({}),
        repo_launches=RepoLaunches(config=config),
    )
    spawner.profile = UserProfile("ada", "ldap", groups=frozenset(groups))
    return started_with(spawner, saved)


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
