"""A ``kubespawner_override`` applied to plain trait values, as KubeSpawner applies it.

KubeSpawner's ``_apply_overrides`` merges a mapping into a mapping trait
(``recursive_update``: nested mappings merge, ``None`` deletes a key) and replaces any
other value. The start-up checks and the converter need the same result without a
spawner, so this is that rule on plain data. Callable values need a live spawner and are
left out here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def merged(traits: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``traits`` with ``overrides`` applied as KubeSpawner applies them (callables skipped)."""
    result = copy.deepcopy(dict(traits))
    for key, value in overrides.items():
        if callable(value):
            continue
        current = result.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping | None):
            # The dict traits default to {}: a missing one merges like an empty one.
            result[key] = _recursive(dict(current or {}), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _recursive(target: dict[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in new.items():
        if isinstance(value, Mapping):
            inner = target.get(key)
            target[key] = _recursive(dict(inner) if isinstance(inner, Mapping) else {}, value)
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)
    return target


__all__ = ["merged"]
