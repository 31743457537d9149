"""A user's running servers on the launch form: their limits, their clocks, in words.

The limits are the session's own (kept in the spawner's state when it started); the
clocks count from the hub's ``started`` and ``last_activity``. The spawners here are
stand-ins with the attributes the form reads of JupyterHub's (``orm_spawner``,
``ready``, ``get_state``) and of eohub's (``launch``, and what makes them a
:class:`~eohub.spawner.context.LaunchContextSource`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.policy import Member, authorize, fallback
from eohub.domain.launch.session_limits import SessionLimits
from eohub.spawner.form.render import render
from eohub.spawner.form.running import (
    RunningServerView,
    idle_seconds,
    running_seconds,
    running_servers,
    session_limits,
)
from eohub.spawner.form.view import build_form
from eohub.spawner.ledger import LAST_OPTIONS_KEY, STATE_KEY
from tests.spawner.form.forms import SIZES, Page, allowed

NOW = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
CONFIG = parse_launch_config(
    {
        "lab": {"display_name": "JupyterLab", "command": ["x"], "sizes": ["small"]},
        "gpu": {"display_name": "GPU lab", "command": ["x"], "sizes": ["small"]},
    },
    {"small": SIZES["small"]},
    {},
    backend="local",
    charge_groups=["climate"],
)


@pytest.mark.parametrize(
    ("session", "limits"),
    [
        (None, SessionLimits()),
        ({"group": "climate"}, SessionLimits()),
        ({"idle_timeout": 7200, "max_duration": 86400}, SessionLimits(7200, 86400)),
        ({"max_duration": 3600}, SessionLimits(None, 3600)),
        # What no start could have kept reads as no limit, never as a failure.
        ({"idle_timeout": "2h", "max_duration": True}, SessionLimits()),
        ({"idle_timeout": -5, "max_duration": 10**9}, SessionLimits()),
        ("garbage", SessionLimits()),
    ],
)
def test_the_limits_are_the_sessions_own(session: Any, limits: SessionLimits) -> None:
    state = {} if session is None else {STATE_KEY: session}
    assert session_limits(state) == limits


def record(started: datetime | None, activity: datetime | None) -> SimpleNamespace:
    return SimpleNamespace(started=started, last_activity=activity)


NAIVE = NOW.replace(tzinfo=None)  # the hub's database keeps naive UTC


@pytest.mark.parametrize(
    ("started", "activity", "running", "idle"),
    [
        (NOW - timedelta(hours=2), NOW - timedelta(minutes=5), 7200, 300),
        # No activity since it started: idle since the start.
        (NOW - timedelta(hours=2), None, 7200, 7200),
        # Activity before this start (an earlier session's) counts from the start.
        (NOW - timedelta(hours=1), NOW - timedelta(hours=3), 3600, 3600),
        (NAIVE - timedelta(minutes=30), NAIVE - timedelta(minutes=10), 1800, 600),
        (None, None, 0, 0),
        # A clock ahead of the hub's: never negative.
        (NOW + timedelta(minutes=1), NOW + timedelta(minutes=1), 0, 0),
    ],
)
def test_running_and_idle_time_from_the_hubs_records(
    started: datetime | None, activity: datetime | None, running: float, idle: float
) -> None:
    spawner = SimpleNamespace(orm_spawner=record(started, activity))
    assert running_seconds(spawner, NOW) == running
    assert idle_seconds(spawner, NOW) == idle


@dataclass
class Spawner:
    """One of eohub's spawners, as the form reads it."""

    name: str
    state: dict[str, Any]
    started: datetime
    activity: datetime | None = None
    ready: bool = True
    launch: Any = None
    user_options: dict[str, Any] = field(default_factory=dict)

    @property
    def orm_spawner(self) -> SimpleNamespace:
        return record(self.started, self.activity)

    def get_state(self) -> dict[str, Any]:
        return self.state

    # What makes it a LaunchContextSource (eohub's spawners).
    async def launch_context(self, *, form: bool = True) -> Any: ...
    async def form_context(self, context: Any) -> Any: ...
    def repo_rules(self) -> Any: ...


class User:
    def __init__(self, *spawners: Any) -> None:
        self.name = "ada"
        self.spawners = spawners

    def all_spawners(self, include_default: bool = True) -> list[Any]:
        return list(self.spawners)

    def server_url(self, name: str) -> str:
        return f"/user/ada/{name}/" if name else "/user/ada/"


def session(**limits: int) -> dict[str, Any]:
    return {"started_at": "2026-12-06T10:00:00+00:00", "group": "climate", **limits}


def test_each_running_server_with_what_its_limits_leave_it() -> None:
    user = User(
        Spawner(
            "",
            {
                STATE_KEY: session(idle_timeout=7200, max_duration=8 * 3600),
                LAST_OPTIONS_KEY: {"environment": "gpu", "size": "small", "group": "climate"},
            },
            NOW - timedelta(hours=2, minutes=5),
            NOW - timedelta(minutes=12),
        ),
        # Near its maximum: highlighted.
        Spawner(
            "long",
            {STATE_KEY: session(max_duration=3 * 3600), LAST_OPTIONS_KEY: {"environment": "lab"}},
            NOW - timedelta(hours=2, minutes=50),
        ),
        # Idle near its limit: highlighted.
        Spawner(
            "idle",
            {STATE_KEY: session(idle_timeout=3600), LAST_OPTIONS_KEY: {"environment": "lab"}},
            NOW - timedelta(hours=2),
            NOW - timedelta(minutes=55),
        ),
        Spawner("free", {STATE_KEY: session()}, NOW - timedelta(minutes=3)),
        # Not started by eohub, and not running: not listed.
        Spawner("other", {}, NOW - timedelta(hours=1)),
        Spawner("pending", {STATE_KEY: session()}, NOW, ready=False),
        SimpleNamespace(name="stopped", ready=False),
    )
    views = running_servers(user, CONFIG, (), NOW)
    assert views == (
        RunningServerView(
            "",
            "My Server",
            "/user/ada/",
            "GPU lab",
            "ends in 5 h 55 min (at most 8 hours); idle 12 min (stops after 2 hours idle)",
            False,
        ),
        RunningServerView(
            "long",
            "long",
            "/user/ada/long/",
            "JupyterLab",
            "ends in 10 min (at most 3 hours); idle 2 h 50 min",
            True,
        ),
        RunningServerView(
            "idle",
            "idle",
            "/user/ada/idle/",
            "JupyterLab",
            "no maximum duration; idle 55 min (stops in 5 min if still idle)",
            True,
        ),
        RunningServerView(
            "free", "free", "/user/ada/free/", "unknown", "no maximum duration; idle 3 min", False
        ),
    )


def test_a_server_this_hub_started_shows_its_approved_launchs_limits() -> None:
    member = Member("ada", frozenset({"climate"}))
    launch = authorize(CONFIG, member, LaunchRequest(environment="gpu", group="climate"), None)
    launch = dataclasses.replace(launch, limits=SessionLimits(idle_timeout=1200))
    spawner = Spawner("gpu", {STATE_KEY: session()}, NOW - timedelta(hours=1), launch=launch)
    (view,) = running_servers(User(spawner), CONFIG, (), NOW)
    assert (view.environment, view.soon) == ("GPU lab", True)
    assert view.clock == "no maximum duration; idle 1 h (stops any moment if still idle)"


def test_a_state_that_cannot_be_read_leaves_the_server_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Spawner("broken", {STATE_KEY: session()}, NOW)
    broken.get_state = None  # type: ignore[method-assign, assignment]
    fine = Spawner("fine", {STATE_KEY: session()}, NOW)
    assert [v.name for v in running_servers(User(broken, fine), CONFIG, (), NOW)] == ["fine"]
    assert "leaves out the running server ada:broken" in caplog.text
    assert running_servers(None, CONFIG, (), NOW) == ()


def test_the_form_lists_the_running_servers_first() -> None:
    member = Member("ada", frozenset({"climate"}))
    request, messages = fallback(CONFIG, member, {})
    running = (
        RunningServerView("", "My Server", "/user/ada/", "GPU lab", "ends in 5 h 55 min", False),
        RunningServerView("long", "long", "/user/ada/long/", "", "ends in 10 min", True),
    )
    form = build_form(CONFIG, member, request, messages, {"climate": allowed()}, running=running)
    html = render(form)
    text = Page.of(html).text
    assert text.startswith("Your running servers My Server (GPU lab): ends in 5 h 55 min long")
    assert text.index("ends in 10 min") < text.index("Environment")
    assert "alert-warning eohub-running" in html  # one ends soon
    assert 'href="/user/ada/long/"' in html
    # None running: no list.
    form = build_form(CONFIG, member, request, messages, {"climate": allowed()})
    assert "running servers" not in Page.of(render(form)).text
