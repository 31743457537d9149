"""QuotaSpawnerMixin: reading options, the one enforcement path, the env and progress.

A real QuotaLocalSpawner with a fake accounting client; nothing is started.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from tornado import web
from traitlets.config import Config

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.fields import FieldErrors
from eohub.domain.identity.profile import AUTH_STATE_KEY, UserProfile
from eohub.domain.launch.session_limits import SessionLimits
from eohub.spawner.errors import options_error, user_error
from eohub.spawner.ledger import STATE_KEY
from eohub.spawner.local import QuotaLocalSpawner
from eohub.spawner.repo_launches import RepoLaunches
from tests.spawner.context_support import ENVIRONMENTS, SIZES
from tests.support.kube_spawners import FakeAccounting


def make_spawner(
    groups: set[str], answer: QuotaAnswer | None = None, **environment: Any
) -> QuotaLocalSpawner:
    config = Config()
    config.QuotaLocalSpawner.launch_environments = {
        **ENVIRONMENTS,
        "lab": {**ENVIRONMENTS["lab"], **environment},
    }
    config.QuotaLocalSpawner.launch_sizes = SIZES
    config.RepoLaunches.trusted_repos = ["github.com/eohub/*"]
    user = SimpleNamespace(name="ada", groups=[SimpleNamespace(name=g) for g in groups])
    orm = SimpleNamespace(name="", user_options=None, server=None, started=None)
    spawner = QuotaLocalSpawner(
        config=config,
        user=user,
        orm_spawner=orm,
        accounting=FakeAccounting(answer),
        repo_launches=RepoLaunches(config=config),
    )
    spawner.profile = UserProfile(
        "ada", "ldap", display_name="Ada L", email="ada@example.org", groups=frozenset(groups)
    )
    return spawner


def test_user_errors_carry_their_message_for_the_spawn_page() -> None:
    error = user_error(403, "The budget of climate is spent.", "Quota")
    assert (error.status_code, error.reason, error.log_message) == (
        403,
        "Quota",
        "The budget of climate is spent.",
    )
    assert error.jupyterhub_message == "The budget of climate is spent."  # type: ignore[attr-defined]
    bad = options_error(FieldErrors({"size": "unknown size 'x'", "group": "not yours"}))
    assert bad.status_code == 400
    assert bad.jupyterhub_message == (  # type: ignore[attr-defined]
        "Invalid launch options (group: not yours; size: unknown size 'x')"
    )


def test_query_links_with_a_repository_are_refused() -> None:
    spawner = make_spawner({"builders"})
    with pytest.raises(Exception, match="review it and click Start"):
        spawner.options_from_query({"environment": ["from-repo"], "repo": ["https://x.org/r"]})
    assert spawner.options_from_query({"environment": ["lab"]}) == {"environment": "lab"}


def test_a_form_with_bad_syntax_is_a_400() -> None:
    spawner = make_spawner({"climate"})
    assert spawner.read_form({"environment": ["lab"], "size": ["small"]}) == {
        "environment": "lab",
        "size": "small",
    }
    with pytest.raises(web.HTTPError) as refused:
        spawner.read_form({"size": ["a b"]})
    assert refused.value.status_code == 400


async def test_an_approved_launch_is_applied_with_its_quota_answer() -> None:
    spawner = make_spawner({"climate"})
    launch = await spawner.authorize_launch({"environment": "lab", "size": "big"})
    assert (launch.environment.name, launch.size.name, launch.group) == ("lab", "big", "climate")
    assert spawner.launch is launch
    assert spawner.user_options == launch.user_options()
    assert spawner.accounting.quota_checks == [
        {"user": "ada", "group": "climate", "cpu": 4.0, "memory_bytes": 8 * 2**30, "gpus": 0}
    ]
    assert spawner.launch_messages() == [
        "Launching Lab, size Big, charged to climate.",
        "Quota check passed: 120.0 core-hours left.",
    ]
    assert [p["message"] async for p in spawner.progress()][:2] == spawner.launch_messages()
    spawner.clear_state()
    assert (spawner.launch, spawner.quota_answer, spawner.launch_messages()) == (None, None, [])


@pytest.mark.parametrize(
    ("options", "answer", "status", "words"),
    [
        ({"size": "huge"}, None, 400, "Invalid launch options (size: "),
        ({"environment": "from-repo"}, None, 400, "Invalid launch options ("),
        ({}, QuotaAnswer(False, "The budget of climate is spent.", {}), 403, "is spent"),
    ],
)
async def test_refused_launches_apply_nothing(
    options: dict[str, Any], answer: QuotaAnswer | None, status: int, words: str
) -> None:
    spawner = make_spawner({"climate"}, answer)
    with pytest.raises(web.HTTPError) as refused:
        await spawner.authorize_launch(options)
    assert refused.value.status_code == status
    assert words in str(refused.value.log_message)
    assert spawner.launch is None


async def test_an_unchecked_quota_is_said_in_the_progress() -> None:
    answer = QuotaAnswer(True, "the accounting service did not answer", {}, "fail-open")
    spawner = make_spawner({"climate"}, answer)
    await spawner.authorize_launch({})
    assert spawner.launch_messages()[1] == (
        "Quota decided without the accounting service: the accounting service did not answer"
    )


@pytest.mark.parametrize(("passes", "token_set"), [(True, True), (False, False)])
async def test_the_launch_env(passes: bool, token_set: bool) -> None:
    spawner = make_spawner({"climate"}, env={"A": "1"}, pass_access_token=passes)
    await spawner.run_auth_state_hook(
        {AUTH_STATE_KEY: spawner.profile.to_auth_state(), "access_token": "tok"}  # type: ignore[union-attr]
    )
    launch = await spawner.authorize_launch({"size": "small"})
    env = spawner.launch_env(launch)
    assert {k: v for k, v in env.items() if k != "EOHUB_ACCESS_TOKEN"} == {
        "A": "1",
        "EOHUB_GROUP": "climate",
        "EOHUB_ENVIRONMENT": "lab",
        "EOHUB_SIZE": "small",
        "GIT_AUTHOR_NAME": "Ada L",
        "GIT_COMMITTER_NAME": "Ada L",
        "GIT_AUTHOR_EMAIL": "ada@example.org",
        "GIT_COMMITTER_EMAIL": "ada@example.org",
    }
    assert ("EOHUB_ACCESS_TOKEN" in env) is token_set


async def test_the_local_backend_carries_the_limits_to_the_start_and_the_state() -> None:
    # Nothing on the machine ends the server: accounting's enforcement does, from these.
    spawner = make_spawner(
        {"climate"}, max_duration="8h", group_limits={"climate": {"idle_timeout": "1h"}}
    )
    spawner.session_limits = {"idle_timeout": "2h", "max_duration": "1d"}
    launch = await spawner.authorize_launch({"size": "small"})
    assert launch.limits == SessionLimits(idle_timeout=3600, max_duration=8 * 3600)
    spawner._begin_start_record()  # what start() does once the process is up
    await spawner.start_recorded()
    (start,) = spawner.accounting.starts
    assert (start["idle_timeout"], start["max_duration"]) == (3600, 8 * 3600)
    session = spawner.get_state()[STATE_KEY]
    assert (session["idle_timeout"], session["max_duration"]) == (3600, 8 * 3600)
