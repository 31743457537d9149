"""Add to the hub's ``tornado_settings`` without replacing what a site already set.

The Zero to JupyterHub chart and a site's own config may set ``tornado_settings``
(``headers``, ``cookie_options``...) before eohub's drop-ins run; assigning a new dict
there would silently drop them. :func:`merge_tornado_settings` merges instead: a dict
value (``headers``, ``cookie_options``, ``xsrf_cookie_kwargs``) is merged one level
deep, any other value is replaced.

Where the earlier settings are not visible yet, the merge is deferred: a drop-in run
through ``load_subconfig`` starts from an empty config that traitlets merges into the
parent's afterwards, and the trait's own default is only known when the application
loads its config. There the value stored is a :class:`DeepUpdate`, which traitlets
applies to whatever the setting holds at that point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue


def deep_merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``; dict values merged one level deep."""
    merged = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for key, value in extra.items():
        old = merged.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = {**old, **value}
        else:
            merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


class DeepUpdate(LazyConfigValue):
    """A deferred ``update`` that merges dict values one level deep, like
    :func:`deep_merged`, into the value the setting has when it is finally loaded."""

    def merge_into(self, other: Any) -> Any:
        # traitlets merges two pending updates shallowly: a site's pending
        # ``headers`` and this one's would replace each other.
        if isinstance(other, LazyConfigValue):
            self._update = deep_merged(other._update or {}, self._update)
            return self
        return self.get_value(other)

    def get_value(self, initial: Any) -> Any:
        if self._value is not None:
            return self._value
        self._value = deep_merged(dict(initial or {}), self._update)
        return self._value


def current_settings(section: Config, name: str = "tornado_settings") -> dict[str, Any]:
    """A copy of ``section[name]`` as far as it is known here (``{}`` when unset)."""
    if name not in section:
        return {}
    value = section[name]
    if isinstance(value, LazyConfigValue):
        # Not get_value(): it caches its result, which must come from the real setting.
        return deep_merged({}, value._update or {})
    return deep_merged(dict(value), {})


def merge_tornado_settings(
    section: Config, extra: Mapping[str, Any], name: str = "tornado_settings"
) -> dict[str, Any]:
    """Merge ``extra`` into ``section[name]`` (``c.JupyterHub``, ``c.ServerApp``...).

    Returns the settings as known here after the merge.
    """
    value = section.get(name)
    if value is not None and not isinstance(value, LazyConfigValue):
        merged = deep_merged(dict(value), extra)
        section[name] = merged
        return merged
    pending: Mapping[str, Any] = {}
    if isinstance(value, LazyConfigValue):
        pending = dict(value._update or {})
    lazy = DeepUpdate()
    lazy._update = deep_merged(pending, extra)
    section[name] = lazy
    return deep_merged({}, lazy._update)
