"""The launch context: the form and the launch-link checks decide from it, without a spawner.

The form is rendered from a :class:`LaunchContext` built here from a parsed config, as
the spawner builds one per request; the launch link's checks (tested in
``form/test_launch_link.py``) are pure functions of the context. The last tests check
what a real QuotaLocalSpawner puts in its context.
"""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.identity.profile import UserProfile
from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.policy import Member
from eohub.spawner.context import (
    LaunchContext,
    ask_budgets,
    context_source,
    request_origin,
    server_limit_reason,
)
from eohub.spawner.form.render import render, render_launch_form, repo_section
from eohub.spawner.form.repo_view import UNTRUSTED
from eohub.spawner.form.view import build_form
from eohub.spawner.local import QuotaLocalSpawner
from eohub.spawner.repo_launches import RepoLaunches
from tests.spawner.context_support import (
    ADA,
    ALLOWED,
    BOB,
    ENVIRONMENTS,
    SIZES,
    config,
    context,
    rules,
)
from tests.spawner.form.forms import started_with

# -- the form renders a context ------------------------------------------------------------


def test_the_form_renders_from_a_context_without_a_spawner() -> None:
    saved = LaunchRequest(environment="from-repo", repo="https://github.com/eohub/demo")
    messages = ["The size 'huge' you used last time is no longer offered."]
    built = context(
        saved=saved,
        messages=tuple(messages),
        budgets={"builders": ALLOWED, "climate": ALLOWED},
        server_name="second",
        hub_prefix="/prefix/hub/",
        origin="https://hub.example.org",
    )
    html = render_launch_form(built)
    assert html == render(
        build_form(
            built.config,
            ADA,
            saved,
            messages,
            built.budgets,
            server_name="second",
            repo=repo_section(built),
            repo_rules=built.rules,
        )
    )
    assert "Server name: <strong>second</strong>" in html
    assert "The size &#39;huge&#39; you used last time is no longer offered." in html
    assert "https://hub.example.org/prefix/hub/eohub/launch/gh/eohub/demo/HEAD" in html
    assert 'id="eohub-repo"' in html


@pytest.mark.parametrize(
    ("member", "with_rules", "section"),
    [
        (ADA, True, True),
        (ADA, False, False),  # no rules: repository launches are not set up
        (BOB, True, False),  # the repository environment is not Bob's
    ],
)
def test_the_repository_section_needs_rules_and_an_environment_for_it(
    member: Member, with_rules: bool, section: bool
) -> None:
    built = LaunchContext(config(), member, rules() if with_rules else None)
    assert ('id="eohub-repo"' in render_launch_form(built)) is section


def test_a_prefilled_context_replaces_the_last_launch_and_its_messages() -> None:
    request = LaunchRequest(environment="from-repo", provider="gh", repo="someone/x", ref="v1")
    built = context(saved=LaunchRequest(size="big"), messages=("a notice",))
    link = built.prefilled(request, untrusted_link=True)
    assert (link.saved, link.messages, link.untrusted_link) == (request, (), True)
    assert (built.saved, built.messages) == (LaunchRequest(size="big"), ("a notice",))
    html = render_launch_form(link)
    assert UNTRUSTED.replace("'", "&#39;") in html
    assert "a notice" not in html
    assert "a notice" in render_launch_form(built)


@pytest.mark.parametrize(
    ("handler", "origin"),
    [
        (None, ""),
        (SimpleNamespace(), ""),
        (
            SimpleNamespace(request=SimpleNamespace(protocol="https", host="h.org")),
            "https://h.org",
        ),
    ],
)
def test_request_origin(handler: object, origin: str) -> None:
    assert request_origin(handler) == origin


# -- the budgets ------------------------------------------------------------------------


class Accounting:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.asked: list[tuple[str, str, float, int]] = []

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
        self.asked.append((user, group, cpu, gpus))
        if self.error is not None:
            raise self.error
        return ALLOWED


@pytest.mark.parametrize(
    ("with_sizes", "member", "asked"),
    [
        # The smallest size without GPUs, once per chargeable group.
        (True, ADA, [("ada", "builders", 1.0, 0), ("ada", "climate", 1.0, 0)]),
        # Profiles only: one millicore, so that every group still shows its budget.
        (False, ADA, [("ada", "builders", 0.001, 0), ("ada", "climate", 0.001, 0)]),
        (True, Member("nobody"), []),
    ],
)
async def test_ask_budgets_asks_once_per_chargeable_group(
    with_sizes: bool, member: Member, asked: list[tuple[str, str, float, int]]
) -> None:
    accounting = Accounting()
    launch_config = config() if with_sizes else dataclasses.replace(config(), sizes={})
    answers = await ask_budgets(accounting, launch_config, member)
    assert sorted(accounting.asked) == asked
    assert answers == {group: ALLOWED for _, group, _, _ in asked}


async def test_ask_budgets_logs_an_outage_and_answers_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="eohub.spawner.context"):
        answers = await ask_budgets(Accounting(RuntimeError("down")), config(), ADA)
    assert answers == {}
    assert "Could not ask accounting for the budgets of ada" in caplog.text


# -- what a spawner puts in its context ----------------------------------------------------


def make_spawner(
    saved: dict[str, Any] | None = None, *, asked: dict[str, Any] | None = None
) -> QuotaLocalSpawner:
    """ada's spawner: ``saved`` started last time; ``asked`` were the last options asked for
    (JupyterHub's ``orm_spawner.user_options``, saved before the spawn is checked)."""
    spawner_config = Config()
    spawner_config.QuotaLocalSpawner.launch_environments = ENVIRONMENTS
    spawner_config.QuotaLocalSpawner.launch_sizes = SIZES
    user = SimpleNamespace(name="ada", groups=[])
    orm = SimpleNamespace(name="", user_options=asked, server=None, started=None)
    spawner = QuotaLocalSpawner(
        config=spawner_config,
        user=user,
        orm_spawner=orm,
        accounting=Accounting(),
        repo_launches=RepoLaunches(config=spawner_config),
    )
    spawner.profile = UserProfile("ada", "ldap", groups=ADA.groups)
    return started_with(spawner, saved)


async def test_the_spawner_reads_its_context_once_per_request() -> None:
    spawner = make_spawner({"environment": "gone", "size": "small"})
    spawner.handler = SimpleNamespace(request=SimpleNamespace(protocol="http", host="h:8000"))
    built = await spawner.launch_context()
    assert built.member == ADA
    assert built.rules is not None
    assert built.saved == LaunchRequest(size="small")
    assert built.messages == ("The environment 'gone' you used last time is no longer offered.",)
    assert set(built.budgets) == {"builders", "climate"}
    assert (built.hub_prefix, built.origin, built.server_name) == ("/hub/", "http://h:8000", "")
    assert context_source(spawner) is spawner
    assert context_source(SimpleNamespace()) is None


async def test_a_refused_launch_is_never_prefilled() -> None:
    """JupyterHub saves the options asked for before the spawn is checked: a refused
    repository there must not come back on a plain /hub/spawn."""
    refused = {"environment": "from-repo", "repo": "https://github.com/evil/r", "size": "small"}
    spawner = make_spawner(asked=refused)
    assert (await spawner.launch_context()).saved == LaunchRequest()
    # The last launch that started is what the form shows, whatever was asked since.
    spawner = make_spawner({"environment": "lab", "size": "small"}, asked=refused)
    assert (await spawner.launch_context()).saved == LaunchRequest(environment="lab", size="small")


async def test_the_spawn_context_asks_accounting_for_no_budgets() -> None:
    spawner = make_spawner()
    built = await spawner.launch_context(form=False)
    assert spawner.accounting.asked == []
    assert (built.member, built.budgets, built.saved) == (ADA, {}, LaunchRequest())


# -- Start disabled by the named-server limit ----------------------------------------------


class _LimitedHandler:
    """What server_limit_reason asks of JupyterHub's handler: the user's limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def get_current_user_named_server_limit(self) -> int:
        return self.limit


@pytest.mark.parametrize(
    ("name", "existing", "limit", "blocked"),
    [
        # A new name past the limit: the hub would refuse to create it.
        ("third", ("", "a", "b"), 2, True),
        ("third", ("", "a"), 2, False),
        # A name that exists starts whatever the count (the limit only stops new names),
        # even after an admin lowered the limit below what the user has.
        ("b", ("", "a", "b"), 2, False),
        ("c", ("", "a", "b", "c"), 2, False),
        ("third", ("", "a", "b"), 0, False),  # 0: no limit
        ("", ("", "a", "b"), 1, False),  # the default server is never limited
    ],
)
async def test_the_server_limit_blocks_start_only_for_a_new_name(
    name: str, existing: tuple[str, ...], limit: int, blocked: bool
) -> None:
    spawner = SimpleNamespace(
        name=name,
        active=False,
        handler=_LimitedHandler(limit),
        user=SimpleNamespace(name="ada", orm_spawners={n: object() for n in existing}),
    )
    reason = await server_limit_reason(spawner)
    assert bool(reason) is blocked, reason
    if blocked:
        assert f"maximum of {limit} named servers" in reason
