"""The hub's stop routes, served so that each stop knows who asked for it.

JupyterHub stops a server for an API caller in ``DELETE /hub/api/users/<name>/server``,
``.../servers/<server>`` (the home page, the admin page, a user's token, the idle culler,
the accounting service) and ``DELETE /hub/api/users/<name>`` (an admin deleting a
user). eohub serves these routes with subclasses of JupyterHub's own handlers whose
``delete`` notes the caller (:func:`eohub.spawner.stop_attribution.stops_asked_by`) and
then runs JupyterHub's ``delete`` unchanged; everything else (GET, POST, PATCH, PUT,
scopes, answers and errors) is JupyterHub's own code.

How they are installed: :func:`use_stop_reasons` (drop-in 00, the Zero to JupyterHub
kit's ``hub.extraConfig``) runs while the hub reads its config, before it builds its
routes. It observes the hub's ``handlers`` trait, which JupyterHub sets once, with its
own routes, prefixes and order, just before it builds its tornado application; in that
list eohub swaps JupyterHub's handler class for its subclass in the entries that name it.
The patterns stay JupyterHub's own, wherever the hub's ``base_url`` puts them, and no
route is added before or after them: a route in ``c.JupyterHub.extra_handlers`` comes
after JupyterHub's and could never win. The subclasses keep JupyterHub's module and
class names, which its request metrics use as labels. A class that is not JupyterHub's
(a site's own handler) is left alone; a hub whose server stop routes could not be
swapped says so in its log, and its stops are then recorded as ``stopped``.

It also marks the stops of JupyterHub's own shutdown cleanup (``cleanup_servers``) as
``shutdown``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from jupyterhub.apihandlers import users

from eohub.logs import attach, get_logger
from eohub.spawner.stop_attribution import stops_asked_by, stops_at_shutdown

log = get_logger(__name__)


class _NotesStopCaller:
    """``delete`` notes who asks, then JupyterHub's ``delete`` runs as it is."""

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        # prepare() has resolved the caller; None when not logged in, and JupyterHub's
        # own scope check then refuses the request.
        caller = self.current_user  # type: ignore[attr-defined]
        with stops_asked_by(getattr(caller, "kind", None), getattr(caller, "name", None)):
            await super().delete(*args, **kwargs)  # type: ignore[misc]


def _keep_label(handler: type, jupyterhub_handler: type) -> type:
    # JupyterHub's request metrics label each request with the handler's module and
    # class name: keep them, so a site's dashboards and alerts see the same series.
    handler.__module__ = jupyterhub_handler.__module__
    handler.__name__ = jupyterhub_handler.__name__
    handler.__qualname__ = jupyterhub_handler.__qualname__
    return handler


class UserServerStopHandler(_NotesStopCaller, users.UserServerAPIHandler):  # type: ignore[misc]
    """JupyterHub's ``/api/users/<name>/server`` and ``/servers/<server>`` handler."""


class UserStopHandler(_NotesStopCaller, users.UserAPIHandler):  # type: ignore[misc]
    """JupyterHub's ``/api/users/<name>`` handler (its DELETE stops the user's server)."""


_keep_label(UserServerStopHandler, users.UserServerAPIHandler)
_keep_label(UserStopHandler, users.UserAPIHandler)

#: JupyterHub's handler classes, and the eohub subclass that serves each one's routes.
ATTRIBUTED: dict[type, type] = {
    users.UserServerAPIHandler: UserServerStopHandler,
    users.UserAPIHandler: UserStopHandler,
}


def attribute_stops(handlers: list[Any]) -> list[tuple[str, type]]:
    """Swap, in place, JupyterHub's stop handlers in ``handlers`` (a tornado route list
    of tuples) for eohub's; the pattern and eohub's handler of each route swapped."""
    swapped = []
    for index, entry in enumerate(handlers):
        if not isinstance(entry, list | tuple) or len(entry) < 2:
            continue
        ours = ATTRIBUTED.get(entry[1])
        if ours is None:
            continue
        handlers[index] = type(entry)([entry[0], ours, *entry[2:]])
        swapped.append((str(entry[0]), ours))
    return swapped


def install_in_hub(hub: Any) -> None:
    """Once per hub: serve its stop routes with eohub's handlers when it builds them, and
    mark the stops of its shutdown cleanup."""
    if getattr(hub, "_eohub_stop_reasons", False):
        return
    hub._eohub_stop_reasons = True
    hub.observe(_on_handlers, "handlers")
    if getattr(hub, "tornado_application", None) is not None:
        # Its routes are built: a swap would not reach them.
        _report(hub, [])
    elif hub.handlers:  # listed, not built yet (a config read late): swap them now
        _report(hub, attribute_stops(hub.handlers))
    hub.cleanup = _marked_shutdown(hub.cleanup)


def _on_handlers(change: Any) -> None:
    # In place: setting the trait again would notify a second time.
    _report(change.owner, attribute_stops(change.new))


def readable_route(pattern: str) -> str:
    """``/hub/api/users/([^/]+)/servers/([^/]*)`` as ``/hub/api/users/<name>/servers/<server>``."""
    names = iter(("<name>", "<server>"))
    return re.sub(r"\([^)]*\)", lambda _: next(names, "<...>"), pattern)


def _report(hub: Any, swapped: list[tuple[str, type]]) -> None:
    attach(hub.log)
    if any(ours is UserServerStopHandler for _, ours in swapped):
        log.info(
            "eohub records who stops each server (its user, an admin, an idle culler):"
            " it serves JupyterHub's DELETE {routes} with JupyterHub's own code, noting"
            " the caller",
            routes=", ".join(readable_route(pattern) for pattern, _ in swapped),
        )
        return
    log.warning(
        "eohub could not serve JupyterHub's server stop routes (a site's own handler"
        " serves them, this JupyterHub names them otherwise, or use_stop_reasons ran"
        " after the hub built its routes): stops are recorded as 'stopped' instead of"
        " user, admin or idle",
    )


def _marked_shutdown(cleanup: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    async def cleanup_marked_shutdown() -> None:
        with stops_at_shutdown():
            await cleanup()

    return cleanup_marked_shutdown


def running_hub() -> Any | None:
    """The JupyterHub application reading its config in this process, if any."""
    app = sys.modules.get("jupyterhub.app")
    hub_class = getattr(app, "JupyterHub", None)
    if hub_class is None or not hub_class.initialized():
        return None
    return hub_class.instance()


def use_stop_reasons(c: Any = None) -> bool:
    """Record in the ledger who stopped each server of the hub reading this config.

    Called from a config file (drop-in 00, the Zero to JupyterHub kit's
    ``hub.extraConfig``; ``use_launch_links(c)`` calls it too), as the hub reads it,
    once per hub however many call it. It changes no setting of ``c`` (taken so that
    config files call it as they call ``use_launch_links(c)``). Elsewhere (a config
    check) it does nothing, and says so by returning False.
    """
    hub = running_hub()
    if hub is None:
        return False
    install_in_hub(hub)
    return True


__all__ = [
    "ATTRIBUTED",
    "UserServerStopHandler",
    "UserStopHandler",
    "attribute_stops",
    "install_in_hub",
    "readable_route",
    "running_hub",
    "use_stop_reasons",
]
