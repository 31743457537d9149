"""The drop-ins in jupyterhub_config.d/ build the right config on JupyterHub 5 and 6.

Drop-in 30 lets every user open the accounting pages: through ``extra_user_scopes`` on
JupyterHub 6, through the ``user`` role in ``load_roles`` on JupyterHub 5 (the Zero to
JupyterHub 4.x chart's), which ignores ``extra_user_scopes``. The table runs the real
files as the chart does, under each version number; the last test loads them with
``load_subconfig`` and hands the config to the JupyterHub installed here (``tox -e
z2jh`` installs 5.5).
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jupyterhub
import pytest
from jupyterhub.app import JupyterHub
from traitlets.config import Config, LazyConfigValue, PyFileConfigLoader

from eohub.accounting.scopes import ACCESS
from eohub.hub import TEMPLATE_DIR, use_eohub_templates
from eohub.logs import KnownDeprecation
from eohub.spawner.form.hub_routes import (
    EXTRA_HANDLERS_DEPRECATED,
    EXTRA_HANDLERS_EXPLAINED,
    install_in_hub,
    use_launch_links,
)
from eohub.spawner.form.launch_link import launch_link_handlers
from tests.support.tools import DROPIN_DIR

V5 = (5, 5, 0, "", "")
V6 = (6, 1, 1, "", "")


def load_dropins(before: str = "") -> Config:
    """Run ``before``, then every drop-in with the same ``c``, as the Zero to JupyterHub
    chart's jupyterhub_config.py runs the files in its jupyterhub_config.d/."""
    config = Config()
    namespace: dict[str, Any] = {"c": config, "get_config": lambda: config}
    # The chart exec()s each file in its own namespace; so do we, to load them alike.
    exec(compile(textwrap.dedent(before), "before.py", "exec"), namespace)  # noqa: S102
    for path in sorted(DROPIN_DIR.glob("*.py")):
        exec(compile(path.read_text(), path.name, "exec"), namespace)  # noqa: S102
    return config


def load_subconfigs(workdir: Path) -> Config:
    """Load every drop-in with ``load_subconfig``, as the test harness and the how-to do."""
    dropins = sorted(str(p) for p in DROPIN_DIR.glob("*.py"))
    config_file = workdir / "jupyterhub_config.py"
    config_file.write_text(f"for path in {dropins!r}:\n    load_subconfig(path)  # noqa: F821\n")
    return PyFileConfigLoader(config_file.name, path=str(workdir)).load_config()


def resolved(config: Config, name: str, empty: Any) -> Any:
    """A JupyterHub setting's value, with appended entries applied to ``empty``."""
    value = config.JupyterHub.get(name, empty)
    return value.get_value(empty) if isinstance(value, LazyConfigValue) else value


def user_roles(config: Config) -> list[dict[str, Any]]:
    return [r for r in resolved(config, "load_roles", []) if r["name"] == "user"]


@pytest.fixture(autouse=True)
def hub_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Drop-in 30 writes its hub token file in the working directory unless given one.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EOHUB_ACCOUNTING_HUB_TOKEN", "dropin-test-token")
    return tmp_path


# (case, version, the site's config before the drop-ins, the user roles after them)
USER_ROLE_CASES = [
    ("6: extra_user_scopes, no user role", V6, "", []),
    ("5: a new user role keeps self", V5, "", [["self", ACCESS]]),
    (
        "5: a site's earlier user role is extended",
        V5,
        'c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "read:groups"]}]',
        [["self", "read:groups", ACCESS]],
    ),
    (
        "5: an appended user role without scopes gets self",
        V5,
        'c.JupyterHub.load_roles.append({"name": "user", "description": "Site users"})',
        [["self", ACCESS]],
    ),
    (
        "5: a user role that already grants access is left alone",
        V5,
        f'c.JupyterHub.load_roles.append({{"name": "user", "scopes": [{ACCESS!r}]}})',
        [[ACCESS]],
    ),
    (
        "6: a site's own user role stays as it is",
        V6,
        'c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "read:groups"]}]',
        [["self", "read:groups"]],
    ),
]


@pytest.mark.parametrize(
    ("version", "before", "scopes"),
    [case[1:] for case in USER_ROLE_CASES],
    ids=[case[0] for case in USER_ROLE_CASES],
)
def test_every_user_may_open_the_accounting_pages(
    monkeypatch: pytest.MonkeyPatch,
    version: tuple[Any, ...],
    before: str,
    scopes: list[list[str]],
) -> None:
    monkeypatch.setattr(jupyterhub, "version_info", version)
    config = load_dropins(before)
    assert [role["scopes"] for role in user_roles(config)] == scopes
    extra = resolved(config, "extra_user_scopes", set())
    # JupyterHub 5 warns about a setting it does not know; the drop-ins set none.
    assert extra == ({ACCESS} if version >= (6,) else set())


def test_the_installed_hub_grants_access_to_every_user(hub_workdir: Path) -> None:
    # Whatever JupyterHub this environment has, its own traits carry the grant.
    app = JupyterHub(config=load_subconfigs(hub_workdir))
    users = [role for role in app.load_roles if role["name"] == "user"]
    if jupyterhub.version_info >= (6,):
        assert ACCESS in app.extra_user_scopes
        assert users == []
    else:
        assert "extra_user_scopes" not in app.config.JupyterHub
        assert [role["scopes"] for role in users] == [["self", ACCESS]]


@pytest.mark.parametrize(
    ("before", "paths"),
    [
        ("", [TEMPLATE_DIR]),  # JupyterHub adds its own folder last to a set list
        ('c.JupyterHub.template_paths = ["/site"]', ["/site", TEMPLATE_DIR]),
        ('c.JupyterHub.template_paths.append("/site")', ["/site", TEMPLATE_DIR]),
    ],
)
def test_the_hubs_pages_use_eohubs_templates_after_the_sites(
    before: str, paths: list[str]
) -> None:
    config = load_dropins(before)
    assert config.JupyterHub.template_paths == paths
    use_eohub_templates(config)  # twice (the kit and a drop-in): once in the list
    assert config.JupyterHub.template_paths == paths


# -- eohub's launch links and spawn route (drop-in 00) -----------------------------------

EOHUB_ROUTES = launch_link_handlers()


class SiteHandler:
    """A site's own handler class (never served here)."""


SITE = ("/site/page", SiteHandler)


@pytest.mark.parametrize(
    ("before", "handlers"),
    [
        ("", EOHUB_ROUTES),
        ('c.JupyterHub.extra_handlers = [("/site/page", SiteHandler)]', [SITE, *EOHUB_ROUTES]),
        ('c.JupyterHub.extra_handlers.append(("/site/page", SiteHandler))', [SITE, *EOHUB_ROUTES]),
        # A site's config that installs them itself, before the drop-ins: once each.
        (
            "from eohub.spawner.form.launch_link import launch_link_handlers\n"
            "c.JupyterHub.extra_handlers = launch_link_handlers()",
            EOHUB_ROUTES,
        ),
        (
            "from eohub.spawner.form.hub_routes import use_launch_links\nuse_launch_links(c)",
            EOHUB_ROUTES,
        ),
    ],
    ids=["none", "site-list", "site-append", "site-launch-link-handlers", "site-installs"],
)
def test_the_dropins_serve_eohubs_routes_once_after_the_sites(
    before: str, handlers: list[Any]
) -> None:
    config = load_dropins_with(before)
    assert resolved(config, "extra_handlers", []) == handlers
    use_launch_links(config)  # again, as the Zero to JupyterHub kit's extraConfig does
    assert resolved(config, "extra_handlers", []) == handlers


def load_dropins_with(before: str) -> Config:
    """:func:`load_dropins`, with the site's handler class known to ``before``."""
    config = Config()
    namespace: dict[str, Any] = {
        "c": config,
        "get_config": lambda: config,
        "SiteHandler": SiteHandler,
    }
    exec(compile(before, "before.py", "exec"), namespace)  # noqa: S102
    for path in sorted(DROPIN_DIR.glob("*.py")):
        exec(compile(path.read_text(), path.name, "exec"), namespace)  # noqa: S102
    return config


@pytest.fixture
def hub() -> Iterator[tuple[JupyterHub, list[logging.LogRecord]]]:
    """A JupyterHub application (not started), and what its logger writes; the logger's
    filters are restored after."""
    app = JupyterHub()
    logger = app.log  # configured when first read: handlers added after it stay
    filters, written = list(logger.filters), []
    handler = logging.Handler()
    handler.emit = written.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    yield app, written
    logger.removeHandler(handler)
    logger.filters = filters


def test_a_hub_serves_each_route_once_and_explains_the_deprecation(
    hub_workdir: Path, hub: tuple[JupyterHub, list[logging.LogRecord]]
) -> None:
    # The site's file installs them, then loads the drop-ins with load_subconfig, which
    # cannot see the site's list: the hub keeps one of each, after the site's handler.
    site = hub_workdir / "site.py"
    dropins = sorted(str(p) for p in DROPIN_DIR.glob("*.py"))
    site.write_text(
        "from eohub.spawner.form.launch_link import launch_link_handlers\n"
        "c.JupyterHub.extra_handlers = launch_link_handlers()\n"
        f"for path in {dropins!r}:\n    load_subconfig(path)  # noqa: F821\n"
    )
    app, hub_records = hub
    install_in_hub(app)  # what use_launch_links does in a hub reading its config
    app.update_config(PyFileConfigLoader(site.name, path=str(hub_workdir)).load_config())
    assert app.extra_handlers == EOHUB_ROUTES
    said = [(r.levelname, r.getMessage()) for r in hub_records if "extra_handlers" in r.msg]
    assert said == [("INFO", EXTRA_HANDLERS_EXPLAINED)]
    # Without eohub's routes, the warning is the site's to read.
    app.extra_handlers = [SITE]
    assert (hub_records[-1].levelname, hub_records[-1].msg) == (
        "WARNING",
        EXTRA_HANDLERS_DEPRECATED,
    )
    assert sum(isinstance(f, KnownDeprecation) for f in app.log.filters) == 1
