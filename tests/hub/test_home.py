"""The home page's data: how the hub's config carries it, and a launch rebuilt from state.

The page itself, on a real hub, is tests/hub/test_home_browser.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from eohub.domain.accounting.resources import CHARGED_KEY
from eohub.domain.launch.config import Environment, LaunchConfig, Size
from eohub.domain.launch.profiles import Profile, ProfileRules
from eohub.hub import HOME_VAR, TEMPLATE_DIR, use_eohub_templates
from eohub.hub.home import RunningLaunch, home_page, stored_launch
from eohub.spawner.ledger import LAST_OPTIONS_KEY, STATE_KEY

GIB = 1024**3


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({}, {}, {}),
        ({"site": "set before"}, {}, {"site": "set before"}),
        ({}, {"later": "added after"}, {"later": "added after"}),
    ],
)
def test_the_home_page_data_joins_the_sites_template_vars(
    before: dict[str, str], after: dict[str, str], expected: dict[str, str]
) -> None:
    c = Config()
    if before:
        c.JupyterHub.template_vars = dict(before)
    use_eohub_templates(c)
    use_eohub_templates(c)  # the kit and a drop-in may both call it
    if after:
        c.JupyterHub.template_vars.update(after)
    app = JupyterHub(config=c)
    assert app.template_vars == {**expected, HOME_VAR: home_page}
    assert TEMPLATE_DIR in app.template_paths


def test_any_page_gets_the_home_page_data_without_asking_anything() -> None:
    # JupyterHub calls template_vars' callables for every page, the login page too.
    page = home_page(None)
    assert page.user is None


CONFIG = LaunchConfig(
    backend="local",
    environments={
        "climate-lab": Environment(
            "climate-lab", "Climate lab", ("small", "medium"), max_duration=28800
        ),
        "lab": Environment("lab", "JupyterLab", ("small",)),
    },
    sizes={
        "small": Size("small", "Small", 0.5, GIB),
        "medium": Size("medium", "Medium", 1, 2 * GIB, gpus=1),
    },
)
PROFILES = (
    Profile("eo", "Earth observation", "profile_list[0]", rules=ProfileRules(max_duration=3600)),
)
SESSION = {STATE_KEY: {"started_at": "2026-12-06T12:00:00+00:00", "group": "climate"}}
#: A session with the limits resolved when it started (the config's may have changed).
LIMITED = {STATE_KEY: {**SESSION[STATE_KEY], "idle_timeout": 7200, "max_duration": 28800}}
STARTED = {"environment": "climate-lab", "size": "medium", "group": "climate", "cpu": 1}


@pytest.mark.parametrize(
    ("state", "options", "expected"),
    [
        # No open session: not a server eohub started (or its stop was recorded).
        ({}, STARTED, None),
        ({LAST_OPTIONS_KEY: STARTED}, {}, None),
        # The options that started it, named as the config names them now; the limits
        # are the session's own.
        (
            {**LIMITED, LAST_OPTIONS_KEY: STARTED},
            {"environment": "lab"},  # JupyterHub's: the last ones asked for, not these
            RunningLaunch("Climate lab", "Medium", "climate", 1, 2 * GIB, 1, 28800, 7200),
        ),
        # A session that keeps no limits has none, whatever the config says now.
        (
            {**SESSION, LAST_OPTIONS_KEY: STARTED},
            {},
            RunningLaunch("Climate lab", "Medium", "climate", 1, 2 * GIB, 1, None, None),
        ),
        # Without eohub's copy, JupyterHub's stored options.
        (
            SESSION,
            {"environment": "lab", "size": "small", "group": "staff"},
            RunningLaunch("JupyterLab", "Small", "climate", 0.5, GIB, 0, None),
        ),
        # An environment and size since removed from the config: names and charges.
        (
            {
                **SESSION,
                LAST_OPTIONS_KEY: {
                    "environment": "gone",
                    "size": "huge",
                    "cpu": 8,
                    "mem": 32 * GIB,
                    "gpus": 2,
                },
            },
            {},
            RunningLaunch("gone", "8 CPU, 32 GiB, 2 GPU", "climate", 8, 32 * GIB, 2, None),
        ),
        # A profile_list launch: the profile's name, what it charged, its limit.
        (
            {
                STATE_KEY: {**SESSION[STATE_KEY], "max_duration": 3600},
                LAST_OPTIONS_KEY: {
                    "profile": "eo",
                    "group": "climate",
                    CHARGED_KEY: {"cpu": 0.5, "mem": GIB, "gpus": 0},
                },
            },
            {},
            RunningLaunch("Earth observation", "0.5 CPU, 1 GiB", "climate", 0.5, GIB, 0, 3600),
        ),
        # Unreadable amounts charge nothing rather than fail the page.
        (
            {**SESSION, LAST_OPTIONS_KEY: {"environment": "x", "cpu": "many", "mem": None}},
            {},
            RunningLaunch("x", "0 CPU, 0 GiB", "climate", 0, 0, 0, None),
        ),
    ],
)
def test_a_launch_is_rebuilt_from_the_spawners_state(
    state: dict[str, Any], options: dict[str, Any], expected: RunningLaunch | None
) -> None:
    assert stored_launch(CONFIG, PROFILES, state, options) == expected
