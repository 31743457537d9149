"""merge_tornado_settings keeps what a site (or the Zero to JupyterHub chart) set."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets import Dict
from traitlets.config import Config, Configurable

from eohub.hub.tornado_settings import current_settings, merge_tornado_settings

Z2JH_LIKE = {"headers": {"X-Site": "1"}, "slow_spawn_timeout": 0}
CSP = {"headers": {"Content-Security-Policy": "frame-ancestors https://portal.example.org"}}


class App(Configurable):
    tornado_settings = Dict({"headers": {"X-Default": "d"}}, config=True)


def loaded(config: Config) -> dict[str, Any]:
    return dict(App(config=config).tornado_settings)


@pytest.mark.parametrize(
    ("before", "extra", "expected"),
    [
        ({}, CSP, {"headers": {"X-Default": "d", **CSP["headers"]}}),
        (Z2JH_LIKE, CSP, {"headers": {"X-Site": "1", **CSP["headers"]}, "slow_spawn_timeout": 0}),
        (Z2JH_LIKE, {"slow_spawn_timeout": 10}, {**Z2JH_LIKE, "slow_spawn_timeout": 10}),
        (
            {"cookie_options": {"SameSite": "Lax", "Secure": True}},
            {"cookie_options": {"SameSite": "None"}},
            {"cookie_options": {"SameSite": "None", "Secure": True}},
        ),
    ],
)
def test_merges_one_level_deep(
    before: dict[str, Any], extra: dict[str, Any], expected: dict[str, Any]
) -> None:
    config = Config()
    if before:
        config.App.tornado_settings = before
    merge_tornado_settings(config.App, extra)
    assert loaded(config) == expected


def test_a_drop_in_loaded_with_load_subconfig_keeps_the_parents_settings() -> None:
    # load_subconfig runs the drop-in on an empty Config and merges it into the parent's.
    parent = Config()
    parent.App.tornado_settings = Z2JH_LIKE
    drop_in = Config()
    merge_tornado_settings(drop_in.App, CSP)
    merge_tornado_settings(drop_in.App, {"cookie_options": {"SameSite": "None"}})
    assert current_settings(drop_in.App) == {**CSP, "cookie_options": {"SameSite": "None"}}
    parent.merge(drop_in)
    assert loaded(parent) == {
        "headers": {"X-Site": "1", **CSP["headers"]},
        "slow_spawn_timeout": 0,
        "cookie_options": {"SameSite": "None"},
    }


def test_a_sites_own_lazy_update_is_kept() -> None:
    config = Config()
    config.App.tornado_settings.update({"xsrf_cookies": True})
    merge_tornado_settings(config.App, CSP)
    assert loaded(config) == {
        "headers": {"X-Default": "d", **CSP["headers"]},
        "xsrf_cookies": True,
    }


def test_reading_a_pending_merge_does_not_fix_its_value() -> None:
    config = Config()
    merge_tornado_settings(config.App, CSP)
    assert current_settings(config.App) == CSP
    assert loaded(config)["headers"]["X-Default"] == "d"


def test_a_drop_in_merged_over_a_sites_pending_update_keeps_both_headers() -> None:
    parent = Config()
    parent.App.tornado_settings.update({"headers": {"X-Site": "1"}, "xsrf_cookies": True})
    drop_in = Config()
    merge_tornado_settings(drop_in.App, CSP)
    parent.merge(drop_in)
    assert loaded(parent) == {
        "headers": {"X-Default": "d", "X-Site": "1", **CSP["headers"]},
        "xsrf_cookies": True,
    }
