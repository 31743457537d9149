"""The start-up check of eohub's own spawner settings' types and bounds.

traitlets checks a setting only when the object is built: for a spawner, when the hub
builds it for a server, so a bad ``deadline_backstop`` or ``idle_culler_services`` would
show as an error on the first spawn. :func:`check_setting_values` checks them with the
traits' own rules when the hub starts (``check_hub_config``), naming the setting.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from traitlets import Container, HasTraits, TraitError, TraitType

from eohub.domain.fields import describe
from eohub.domain.launch.fields import LaunchConfigError


def eohub_settings(spawner_class: type[HasTraits]) -> dict[str, TraitType[Any, Any]]:
    """The config traits that eohub's classes define (not KubeSpawner's, nor JupyterHub's)."""
    return {
        name: trait
        for name, trait in spawner_class.class_traits().items()
        if trait.metadata.get("config")
        and (getattr(trait, "this_class", None) or object).__module__.startswith("eohub.")
    }


def check_setting_values(
    spawner_class: type[HasTraits], values: Mapping[str, Any], sources: Mapping[str, str]
) -> None:
    """Raise LaunchConfigError naming the first of eohub's settings in ``values`` that
    the spawner would refuse; ``sources`` names the section that set each one."""
    traits = {n: t for n, t in eohub_settings(spawner_class).items() if n in values}
    # Copies, on a throwaway class: a trait belongs to the class it is set up on, and
    # setting a value on an object of that class runs exactly the spawner's checks.
    holder = type(spawner_class.__name__, (HasTraits,), copy.deepcopy(traits))()
    for name, trait in traits.items():
        try:
            setattr(holder, name, copy.deepcopy(values[name]))
        except TraitError:
            where = f"{sources.get(name, spawner_class.__name__)}.{name}"
            raise LaunchConfigError(
                where, f"must be {expected(trait)}, not {describe(values[name])}"
            ) from None


# traitlets' words for a value, and plainer ones: (one, several).
_WORDS = {
    "a unicode string": ("a string", "strings"),
    "an int": ("a whole number", "whole numbers"),
    "a float": ("a number", "numbers"),
    "a boolean": ("True or False", "booleans"),
}


def expected(trait: TraitType[Any, Any]) -> str:
    """What ``trait`` accepts, in words: "a whole number of at least 0", "a list of
    strings"."""
    info = str(trait.info())
    text = _WORDS.get(info, (info, ""))[0]
    inner = getattr(trait, "_trait", None)
    if isinstance(trait, Container) and isinstance(inner, TraitType):
        text += " of " + _plural(str(inner.info()))
    low, high = getattr(trait, "min", None), getattr(trait, "max", None)
    bounds = [
        f"{word} {limit}"
        for word, limit in (("at least", low), ("at most", high))
        if isinstance(limit, int | float) and math.isfinite(limit)
    ]
    return text + (" of " + " and ".join(bounds) if bounds else "")


def _plural(info: str) -> str:
    if info in _WORDS:
        return _WORDS[info][1]
    noun = info.split(" ", 1)[1] if info.startswith(("a ", "an ")) else info
    return noun + "s"


__all__ = ["check_setting_values", "eohub_settings", "expected"]
