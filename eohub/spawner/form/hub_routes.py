"""eohub's pages in a hub: launch links, their badge and the spawn route, installed once.

:func:`use_launch_links` adds :func:`~eohub.spawner.form.launch_link.launch_link_handlers`
to ``c.JupyterHub.extra_handlers`` (drop-in 00 and the Zero to JupyterHub kit call it).
It keeps a site's own handlers, and adds eohub's only where they are not there yet, so a
site's config that calls it again (or that set ``launch_link_handlers()`` itself) gets
each route once. Called from the running hub's config file, it also:

- drops a repeated eohub route from the hub's ``extra_handlers`` when they are set
  (a config loaded with ``load_subconfig`` cannot see what the file around it set);
- turns JupyterHub's start-up warning that ``extra_handlers`` is deprecated into an
  INFO line that says why eohub uses it (:class:`eohub.logs.KnownDeprecation`), while
  eohub's routes are in the list. ``extra_handlers`` is the one way to serve a page
  under ``/hub/`` with the hub's login and CSRF token, which the launch form needs;
- records who stops each server (:func:`eohub.spawner.stop_routes.use_stop_reasons`),
  for configs written before they called that themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from eohub.logs import explain_deprecation
from eohub.spawner.form.launch_link import launch_link_handlers
from eohub.spawner.stop_routes import running_hub, use_stop_reasons

#: JupyterHub's warning (3.1 to 6) when ``extra_handlers`` is set, word for word.
EXTRA_HANDLERS_DEPRECATED = (
    "JupyterHub.extra_handlers is deprecated in JupyterHub 3.1."
    " Please use JupyterHub services to register additional HTTP endpoints."
)
#: What the hub's log says instead, while eohub's routes are in ``extra_handlers``.
EXTRA_HANDLERS_EXPLAINED = (
    "eohub registers its launch pages and spawn route through JupyterHub.extra_handlers"
    " (deprecated in JupyterHub 3.1, still supported): they share the hub's login and"
    " CSRF token, which a service's pages cannot."
)


def _route_key(entry: object) -> tuple[object, object] | None:
    """``(pattern, handler class)`` of one of eohub's routes; None for any other entry."""
    if not isinstance(entry, list | tuple) or len(entry) < 2:
        return None
    eohub_classes = {handler for _, handler in launch_link_handlers()}
    return (entry[0], entry[1]) if entry[1] in eohub_classes else None


def has_eohub_routes(handlers: Iterable[object]) -> bool:
    """Whether ``handlers`` (``extra_handlers``) hold one of eohub's routes."""
    return any(_route_key(entry) is not None for entry in handlers)


def without_repeats(handlers: Iterable[Any]) -> list[Any]:
    """``handlers`` without a repeat of one of eohub's routes; a site's entries all stay."""
    kept, seen = [], set()
    for entry in handlers:
        key = _route_key(entry)
        if key is not None and key in seen:
            continue
        seen.add(key)
        kept.append(entry)
    return kept


def configured_handlers(value: object) -> list[Any]:
    """The entries a config's ``extra_handlers`` holds so far: a list once assigned, else
    what was appended, inserted or prepended to it (a lazy value, applied later)."""
    if not isinstance(value, LazyConfigValue):
        return list(value) if isinstance(value, list | tuple) else []
    pending = value.to_dict()
    inserted = [entry for _, entry in pending.get("inserts", [])]
    return [*pending.get("prepend", []), *inserted, *pending.get("extend", [])]


def use_launch_links(c: Config) -> None:
    """Serve eohub's launch links, badge and spawn route from the hub ``c`` configures.

    Adds to ``c.JupyterHub.extra_handlers`` what is not there yet, after a site's own
    entries; as a lazy value when nothing was assigned yet, so that a list assigned
    before (in the file that loads this one) is extended, not replaced.
    """
    value = c.JupyterHub.extra_handlers
    present = {_route_key(entry) for entry in configured_handlers(value)}
    missing = [entry for entry in launch_link_handlers() if _route_key(entry) not in present]
    if isinstance(value, LazyConfigValue):
        value.extend(missing)
    else:
        c.JupyterHub.extra_handlers = [*configured_handlers(value), *missing]
    hub = running_hub()
    if hub is not None:
        install_in_hub(hub)
        # A config written before use_stop_reasons (a copied drop-in 00, the kit's older
        # values) records who stops servers too.
        use_stop_reasons(c)


def install_in_hub(hub: Any) -> None:
    """Once per hub: one copy of each eohub route, and the deprecation explained."""
    if getattr(hub, "_eohub_launch_links", False):
        return
    hub._eohub_launch_links = True
    hub.observe(_drop_repeats, "extra_handlers")
    explain_deprecation(
        hub.log,
        EXTRA_HANDLERS_DEPRECATED,
        EXTRA_HANDLERS_EXPLAINED,
        applies=lambda: has_eohub_routes(hub.extra_handlers),
    )


def _drop_repeats(change: Any) -> None:
    # In place: setting the trait again would notify (and warn) a second time.
    change.new[:] = without_repeats(change.new)


__all__ = [
    "EXTRA_HANDLERS_DEPRECATED",
    "EXTRA_HANDLERS_EXPLAINED",
    "configured_handlers",
    "has_eohub_routes",
    "install_in_hub",
    "running_hub",
    "use_launch_links",
    "without_repeats",
]
