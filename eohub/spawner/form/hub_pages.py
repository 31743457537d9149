"""What eohub's hub pages share: templates beside the hub's, and servers by name.

eohub's handlers (launch links, the spawn route) are JupyterHub ``BaseHandler``\\ s, so
their pages extend the hub's ``page.html`` and show its user menu. Their own templates
(``templates/``) are found after the hub's template paths, so an admin's
``c.JupyterHub.template_paths`` may still override them. The server helpers smooth over
what JupyterHub 5 and 6 do differently, and refuse a bad server name with a 400 (the
same names on both) instead of the hub's 500.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from jupyterhub.handlers.base import BaseHandler
from tornado import web

from eohub.spawner.form.link_errors import INVALID_SERVER_NAME, valid_server_name
from eohub.spawner.form.render import TEMPLATES


@functools.cache
def _with_eohub_templates(hub_env: jinja2.Environment) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(TEMPLATES)]
    if hub_env.loader is not None:
        loaders.insert(0, hub_env.loader)
    loader = jinja2.ChoiceLoader(loaders)
    return hub_env.overlay(loader=loader)


class EohubPage(BaseHandler):  # type: ignore[misc]
    """A hub page that may render eohub's templates (``eohub_*.html``) too."""

    def get_template(self, name: str, sync: bool = False) -> Any:
        if not name.startswith("eohub_"):
            return super().get_template(name, sync)
        hub_env = self.settings["jinja2_env_sync" if sync else "jinja2_env"]
        return _with_eohub_templates(hub_env).get_template(name)

    async def find_for_user(self, user_name: str) -> Any:
        """The hub user ``user_name`` (the current user, or one they act for); 404."""
        user = self.current_user
        if user_name != user.name:
            user = self.find_user(user_name)
            if user is None:
                raise web.HTTPError(404, f"No such user: {user_name}")
        return user

    async def check_named_server(self, user: Any, server_name: str) -> None:
        """Refuse (400) a named server the hub would not create: named servers off, a
        name JupyterHub 6 does not accept, or the per-user limit reached.

        The name is checked here, the same on JupyterHub 5 and 6: 5 takes almost any
        name (one with a quote breaks out of its spawn page's form), and 6 logs its own
        refusal as an ERROR. An existing name 6 would not take is refused too, unless
        the hub allows starting those (``allow_invalid_named_server_start``, 6 only).
        """
        if not self.allow_named_servers:
            raise web.HTTPError(400, "Named servers are not enabled.")
        self.check_server_name(user, server_name)
        check = getattr(self, "_check_named_server_request", None)
        if check is not None:  # JupyterHub 6
            await check(user, server_name, server_name)
            return
        if server_name not in user.orm_spawners and not await self.named_server_room(user):
            limit = await self.get_current_user_named_server_limit()
            raise web.HTTPError(
                400,
                f"User {user.name} already has the maximum of {limit} named servers."
                "  One must be deleted before a new server can be created",
            )

    def check_server_name(self, user: Any, server_name: str) -> None:
        """Refuse (400) a server name JupyterHub 6 would not start, on 5 as on 6."""
        if not server_name or valid_server_name(server_name):
            return
        kept = server_name in user.orm_spawners and self.settings.get(
            "allow_invalid_named_server_start", False
        )
        if not kept:
            raise web.HTTPError(400, INVALID_SERVER_NAME)

    async def named_server_room(self, user: Any) -> bool:
        """Whether ``user`` may create one more named server."""
        if not self.allow_named_servers:
            return False
        limit = await self.get_current_user_named_server_limit()
        named = [name for name in user.orm_spawners if name]
        return not limit or len(named) < limit


def spawner_for(user: Any, server_name: str) -> Any:
    """``user``'s spawner of ``server_name``, made if new, a failed one replaced.

    JupyterHub 6 makes the spawner only through ``get_or_create_spawner`` (its
    ``get_spawner`` fails on a new name) and raises ValueError on a name it refuses.
    """
    make = getattr(user, "get_or_create_spawner", None)
    try:
        if make is not None:
            return make(server_name, server_name, replace_failed=True)
        return user.get_spawner(server_name, replace_failed=True)
    except ValueError as e:
        raise web.HTTPError(400, str(e)) from None


__all__ = ["EohubPage", "spawner_for"]
