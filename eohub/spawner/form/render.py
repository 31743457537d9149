"""The launch form as HTML: the Jinja environment and the form of a launch context.

:func:`render_launch_form` builds the view model of a
:class:`~eohub.spawner.context.LaunchContext` (:func:`eohub.spawner.form.view.build_form`)
and renders it with the Jinja template ``templates/eohub_launch_form.html``. The
spawners' ``options_form`` (:func:`eohub.spawner.mixin.render_form`) and the launch-link
page build the context; JupyterHub puts the fragment inside its own spawn page's
``<form>``, next to its Start button.

The form works without JavaScript: plain radios, checkboxes and inputs with the field
names :mod:`eohub.domain.launch.options` reads. Where the hub serves eohub's own spawn
route (:mod:`eohub.spawner.form.spawn_route`, installed with the launch-link handlers),
a small script points the hub's ``<form>`` there, keeping its query (``_xsrf``,
``next``): a refused launch then comes back with the user's choices and server name,
not the default server's last launch. Without JavaScript it posts to ``/hub/spawn``.
Its other script only hides the sizes that the chosen environment does not offer or
that do not fit the chosen group's budget, and shows the session limits of the chosen
environment for the chosen group (worded for each pair here:
:mod:`eohub.spawner.form.limits_view`).

Given JupyterHub's ``User``, the form lists the user's running servers with the time
their limits leave them (:mod:`eohub.spawner.form.running`).

``profile_list`` profiles (QuotaKubeSpawner) are listed after the environments, in the
same radio group, then named ``profile``
(:attr:`~eohub.spawner.form.view.LaunchForm.choice_field`); their
options are the fields of KubeSpawner's own form
(:mod:`eohub.spawner.form.profile_view`). The script disables the fields of what is
not chosen (other profiles' options, the sizes while a profile is chosen, a free-text
value while its list is not on "Other..."), so the browser does not send them. An
option that builds images offers "Build from a repository": the repository section
then stands in for its list, and only the repository fields are sent for it.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from eohub.spawner.context import LaunchContext
from eohub.spawner.form.profile_view import saved_repository
from eohub.spawner.form.repo_view import RepoFormView, build_repo_form
from eohub.spawner.form.running import running_servers
from eohub.spawner.form.view import LaunchForm, build_form

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "eohub_launch_form.html"
SPAWN_ROUTE_TEMPLATE = "eohub_spawn_route.html"
#: eohub's spawn route under the hub's prefix: ``eohub/spawn/<user>/<server>``.
SPAWN_ROUTE = "eohub/spawn"
#: The attribute that marks the spawn route's handler class among the hub's handlers.
SPAWN_ROUTE_MARK = "eohub_spawn_route"
#: What the form says in place of itself when the launch config is invalid.
INVALID_CONFIG = "The hub's launch config is invalid; tell an admin."


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(form: LaunchForm | None, *, error: str = "") -> str:
    """The form's HTML fragment; with ``error`` and no form, only that message."""
    return environment().get_template(TEMPLATE).render(form=form, error=error)


def repo_section(context: LaunchContext) -> RepoFormView | None:
    """The repository section of ``context``'s form; None where it has none.

    It is shown for an environment with ``repository: true`` and for a profile that
    builds images (fancy-profiles' ``dynamic_image_building``), given repository rules.
    """
    builds = any(p.repository for p in context.profiles)
    if context.rules is None or not (context.offers_repositories or builds):
        return None
    return build_repo_form(
        context.rules,
        saved_repository(context.profiles, context.saved, context.saved_profile),
        backend=context.config.backend,
        hub_prefix=context.hub_prefix,
        origin=context.origin,
        untrusted_link=context.untrusted_link,
    )


def spawn_route_installed() -> bool:
    """Whether this process is a hub whose ``extra_handlers`` hold eohub's spawn route.

    Read from the running JupyterHub application, never imported: outside a hub (the
    tests, a CLI) there is no route and the form posts where JupyterHub says.
    """
    app = sys.modules.get("jupyterhub.app")
    hub = getattr(app, "JupyterHub", None)
    if hub is None or not hub.initialized():
        return False
    handlers = getattr(hub.instance(), "extra_handlers", None) or []
    return any(
        isinstance(h, list | tuple) and len(h) > 1 and getattr(h[1], SPAWN_ROUTE_MARK, False)
        for h in handlers
    )


def spawn_route_path(hub_prefix: str, username: str, server_name: str) -> str:
    """The path of eohub's spawn route for ``username``'s server ``server_name``."""
    parts = [hub_prefix.rstrip("/"), SPAWN_ROUTE, quote(username, safe="@~")]
    if server_name:
        parts.append(quote(server_name, safe="@~"))
    return "/".join(parts)


def spawn_route_script(context: LaunchContext) -> str:
    """The script that points the hub's spawn ``<form>`` at eohub's spawn route."""
    action = spawn_route_path(context.hub_prefix, context.member.username, context.server_name)
    return environment().get_template(SPAWN_ROUTE_TEMPLATE).render(action=action)


def render_launch_form(
    context: LaunchContext, *, spawn_route: bool | None = None, user: Any = None
) -> str:
    """The launch form of ``context``: what its user may start, prefilled.

    ``spawn_route`` says whether the form posts to eohub's spawn route; by default,
    when this hub serves it (:func:`spawn_route_installed`). ``user`` (JupyterHub's
    ``User`` of the form) adds their running servers and the time they have left.
    """
    form = build_form(
        context.config,
        context.member,
        context.saved,
        context.messages,
        context.budgets,
        server_name=context.server_name,
        repo=repo_section(context),
        repo_rules=context.rules,
        profiles=context.profiles,
        saved_profile=context.saved_profile,
        start_blocked=context.start_blocked,
        enforces_read_only=context.enforces_read_only,
        running=running_servers(user, context.config, context.profiles),
    )
    html = render(form)
    if spawn_route if spawn_route is not None else spawn_route_installed():
        html += spawn_route_script(context)
    return html


__all__ = [
    "INVALID_CONFIG",
    "SPAWN_ROUTE",
    "SPAWN_ROUTE_MARK",
    "render",
    "render_launch_form",
    "repo_section",
    "spawn_route_installed",
    "spawn_route_path",
    "spawn_route_script",
]
