"""A KubeSpawner ``profile_list`` rewritten as eohub's own launch config.

For admins who move from ``singleuser.profileList`` to ``launch_config_file``:
:func:`convert_profiles` takes the parsed profiles (:mod:`eohub.domain.launch.profiles`)
and returns the ``environments``, ``sizes`` and ``charge_groups`` that launch the same
pods, with one warning per thing the launch config cannot say. Nothing is dropped
without a warning naming its key path.

- Each profile becomes one environment, or one per choice of its image option (the
  first option whose choices override ``image``).
- Its sizes are the choices of its resource option (the first other option whose
  choices override CPU, memory or extended resources), or one size made from the
  profile's own overrides. Sizes are shared between environments when they are equal.
- Overrides apply as KubeSpawner applies them: the profile's, then each chosen
  option's, in the order of ``profile_options``; dicts merge and ``None`` deletes.
- ``base`` holds the admin's KubeSpawner values the overrides apply onto (the chart's
  ``singleuser`` image, CPU and memory); eohub adds an environment's node selector,
  tolerations and env to the admin's own at launch, so only the profile's go there.
- An environment needs one node selector, toleration list and env for all its sizes:
  size choices that change them split the environment in two.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eohub.domain.launch.config import IMAGE
from eohub.domain.launch.fields import MAX_DESCRIPTION, MAX_TEXT
from eohub.domain.launch.options import NAME, urlpath_problem
from eohub.domain.launch.profile_reading import (
    PLACEMENT_KEYS,
    RESOURCE_KEYS,
    merge,
    read_placement,
    read_size,
)
from eohub.domain.launch.profiles import Choice, Overrides, Profile, ProfileOption

#: The overrides a launch config can express; any other is a warning.
CONVERTED_KEYS = RESOURCE_KEYS | PLACEMENT_KEYS | {"image", "default_url"}
_NOT_NAME = re.compile(r"[^a-z0-9._-]+")
_HINTS = {
    "volumes": "define the volume under volumes (launch_volumes) instead",
    "volume_mounts": "define the volume under volumes (launch_volumes) instead",
}
# One profile launch: the choice per option, the size's name, the environment part.
_Entry = tuple[dict[str, Choice], str, dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """Where one profile launch (its slug and a choice per option) lands in eohub."""

    profile: str
    choices: Mapping[str, str]
    environment: str
    size: str


@dataclass(frozen=True)
class Conversion:
    """The launch config made from a profile list, and what it could not express."""

    environments: Mapping[str, Mapping[str, Any]]
    sizes: Mapping[str, Mapping[str, Any]]
    charge_groups: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    routes: tuple[Route, ...] = field(default=(), hash=False)

    def launch_config(self) -> dict[str, Any]:
        """The data of a ``launch_config_file`` (keys ``charge_groups``, ``sizes``...)."""
        data: dict[str, Any] = {}
        if self.charge_groups:
            data["charge_groups"] = list(self.charge_groups)
        data["sizes"] = {k: dict(v) for k, v in self.sizes.items()}
        data["environments"] = {k: copy.deepcopy(dict(v)) for k, v in self.environments.items()}
        return data


def _name(text: str, used: set[str], fallback: str) -> str:
    """``text`` as a unique eohub name (lowercase letters, digits, '.', '_', '-')."""
    base = _NOT_NAME.sub("-", text.casefold()).strip("-._")[:63].strip("-._") or fallback
    name, n = base, 2
    while name in used or not NAME.fullmatch(name):
        suffix = f"-{n}"
        name, n = base[: 63 - len(suffix)] + suffix, n + 1
    used.add(name)
    return name


def group_spellings(data: object) -> dict[str, tuple[str, ...]]:
    """Every ``allowed_groups`` name in a raw profile list, by its casefolded form.

    Profiles compare group names casefolded (2i2c's convention); eohub compares them as
    written. The converter writes every spelling the admin used.
    """
    found: dict[str, set[str]] = {}
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            names = item.get("allowed_groups")
            if isinstance(names, list | tuple):
                for name in names:
                    if isinstance(name, str):
                        found.setdefault(name.casefold(), set()).add(name)
            stack += list(item.values())
        elif isinstance(item, list | tuple):
            stack += list(item)
    return {k: tuple(sorted(v)) for k, v in found.items()}


def _touches(option: ProfileOption, keys: frozenset[str]) -> bool:
    return any(keys & set(c.overrides) for c in option.choices)


class _Converter:
    """Builds the launch config one profile at a time; collects the warnings."""

    def __init__(
        self, base: Mapping[str, Any], gpu_resource: str, spellings: Mapping[str, Sequence[str]]
    ) -> None:
        self.base = base
        self.spellings = spellings
        self.gpu_resource = gpu_resource
        self.environments: dict[str, dict[str, Any]] = {}
        self.sizes: dict[str, dict[str, Any]] = {}
        self.size_names: set[str] = set()
        self.env_names: set[str] = set()
        self.warnings: dict[str, None] = {}  # ordered, without repeats
        self.routes: list[Route] = []

    def warn(self, where: str, text: str) -> None:
        self.warnings[" ".join(f"{where}: {text}".split())] = None

    # -- what cannot be converted, said once per key ------------------------------------

    def check_sources(self, profile: Profile) -> None:
        sources: list[tuple[str, Overrides]] = [(profile.path, profile.overrides)]
        for option in profile.options:
            sources += [(c.path, c.overrides) for c in option.choices]
            if option.unlisted is not None:
                self.warn(
                    option.unlisted.path,
                    "eohub offers no free-text values; only the listed choices are converted",
                )
            if option.builds_images:
                self.warn(
                    f"{option.path}.dynamic_image_building",
                    "not converted; an eohub environment with repository: true builds images",
                )
        for path, overrides in sources:
            for key, value in overrides.items():
                where = f"{path}.kubespawner_override.{key}"
                if callable(value):
                    self.warn(where, "is computed per spawn (a callable); not converted")
                elif key not in CONVERTED_KEYS:
                    hint = _HINTS.get(key, "set it on QuotaKubeSpawner if every server needs it")
                    self.warn(where, f"has no eohub launch config equivalent; {hint}")
        if profile.rules.charge == "limit":
            self.warn(
                f"{profile.path}.eohub.charge",
                "eohub charges a size's cpu and memory (the guarantees), not the limits",
            )

    def check_options(self, profile: Profile, image: ProfileOption | None, size: Any) -> None:
        for option in profile.options:
            if option is image:
                continue
            restricted = option.allowed_groups is not None or any(
                c.allowed_groups is not None for c in option.choices
            )
            if restricted and option is size:
                self.warn(
                    option.path,
                    "eohub sizes have no allowed_groups: a size some groups may not use is "
                    "offered in an environment of its own, for the groups allowed at every level",
                )
            elif restricted:
                self.warn(
                    option.path,
                    "allowed_groups here is not converted: eohub offers no such choice",
                )
            if option is size:
                continue
            default = option.default_choice
            others = [c.slug for c in option.choices if c is not default]
            if others:
                self.warn(
                    option.path,
                    "is neither an image nor a size choice, which eohub cannot offer; only "
                    f"its default choice {default.slug if default else ''!r} is converted, "
                    f"not {', '.join(map(repr, others))}",
                )

    # -- one profile ---------------------------------------------------------------------

    def profile(self, profile: Profile) -> None:
        self.check_sources(profile)
        image = next((o for o in profile.options if _touches(o, frozenset({"image"}))), None)
        size = next(
            (o for o in profile.options if o is not image and _touches(o, RESOURCE_KEYS)), None
        )
        self.check_options(profile, image, size)
        fixed = {
            o.name: o.default_choice
            for o in profile.options
            if o is not image and o is not size and o.default_choice is not None
        }
        for image_choice in image.choices if image else (None,):
            picks = dict(fixed)
            if image is not None and image_choice is not None:
                picks[image.name] = image_choice
            shapes: dict[str, list[_Entry]] = {}
            for size_choice in size.choices if size else (None,):
                chosen = dict(picks)
                if size is not None and size_choice is not None:
                    chosen[size.name] = size_choice
                groups = self.groups(profile, [(image, image_choice), (size, size_choice)])
                found = self.launch(profile, chosen, size_choice) if groups is not None else None
                if found is not None:
                    shape, size_name = found
                    # Sizes that need other groups or placement need an environment apart.
                    shape = {**shape, "allowed_groups": groups}
                    key = json.dumps(shape, sort_keys=True, default=str)
                    shapes.setdefault(key, []).append((chosen, size_name, shape))
            self.add_environments(profile, image, image_choice, size, shapes)

    def groups(
        self,
        profile: Profile,
        picks: Sequence[tuple[ProfileOption | None, Choice | None]],
    ) -> list[str] | None:
        """An environment's allowed_groups: the groups named at every level (none: all).

        None when no group is named at every level: eohub's empty list means everyone.
        """
        levels = [profile.allowed_groups]
        for option, choice in picks:
            if option is not None and choice is not None:
                levels += [option.allowed_groups, choice.allowed_groups]
        given = [g for g in levels if g is not None]
        if not given:
            return []
        both = frozenset.intersection(*given)
        choices = [c for o, c in picks if c is not None]
        where = choices[-1].path if choices else profile.path
        if both not in given:
            # Exact only when one level's groups are within every other level's.
            self.warn(
                f"{where}.allowed_groups",
                "eohub has one allowed_groups list per environment: written as the groups "
                f"named at every level ({', '.join(sorted(both)) or 'none'})",
            )
        if not both:
            self.warn(where, "no group is allowed at every level; not converted")
            return None
        return sorted({s for g in both for s in self.spellings.get(g, (g,))})

    def launch(
        self, profile: Profile, chosen: Mapping[str, Choice], size_choice: Choice | None
    ) -> tuple[dict[str, Any], str] | None:
        """The environment part and the size name of one profile launch."""
        sources = [(profile.path, profile.overrides)]
        sources += [
            (chosen[o.name].path, chosen[o.name].overrides)
            for o in profile.options
            if o.name in chosen
        ]
        sources = [(p, {k: v for k, v in o.items() if not callable(v)}) for p, o in sources]
        where = size_choice.path if size_choice is not None else profile.path
        full = merge(self.base, sources)
        image = full.get("image")
        if not isinstance(image, str) or not IMAGE.fullmatch(image):
            self.warn(
                where,
                f"the image {image!r} is not an image reference eohub accepts; not converted"
                if image
                else "has no image (kubespawner_override.image, or the base image); not converted",
            )
            return None
        shape: dict[str, Any] = {"image": image}
        url = full.get("default_url")
        if isinstance(url, str) and url:
            if problem := urlpath_problem(url):
                self.warn(f"{where}.kubespawner_override.default_url", f"{problem}; not converted")
            else:
                shape["default_urlpath"] = url
        own = merge({}, sources)
        shape |= read_placement(
            own, sources, base_tolerations=self.base.get("tolerations"), warn=self.warn
        )
        size = read_size(
            full, own, size_choice, where, gpu_resource=self.gpu_resource, warn=self.warn
        )
        return shape, self.add_size(size, size_choice.slug if size_choice else profile.slug)

    def add_size(self, data: dict[str, Any], preferred: str) -> str:
        same = next((n for n, s in self.sizes.items() if s == data), None)
        if same is not None:
            return same
        name = _name(preferred, self.size_names, "size")
        self.sizes[name] = data
        return name

    def add_environments(
        self,
        profile: Profile,
        image: ProfileOption | None,
        image_choice: Choice | None,
        size: ProfileOption | None,
        shapes: Mapping[str, list[_Entry]],
    ) -> None:
        for entries in shapes.values():
            stem = profile.slug + (f"-{image_choice.slug}" if image_choice else "")
            title = profile.display_name
            if image is not None and image_choice is not None:
                title += f" ({image.display_name}: {image_choice.display_name})"
            sizes = list(dict.fromkeys(n for _, n, _ in entries))
            if len(shapes) > 1:
                # Its sizes change the placement: this part is an environment of its own.
                stem += f"-{sizes[0]}"
                title += " - " + ", ".join(self.sizes[n]["display_name"] for n in sizes)
            name = _name(stem, self.env_names, "environment")
            text = image_choice.description if image_choice else ""
            env: dict[str, Any] = {"display_name": title[:MAX_TEXT]}
            if text or profile.description:
                env["description"] = (text or profile.description)[:MAX_DESCRIPTION]
            shape = dict(entries[0][2])
            groups = shape.pop("allowed_groups")
            env |= shape
            env["sizes"] = sizes
            default = size.default_choice if size is not None else None
            found = [n for c, n, _ in entries if size and default and c.get(size.name) is default]
            if found and len(sizes) > 1:
                env["default_size"] = found[0]
            if any(self.sizes[n].get("gpus") for n in sizes):
                env["gpu"] = True
            if groups:
                env["allowed_groups"] = groups
            env |= profile.rules.own_limits
            if profile.rules.group_limits:
                env["group_limits"] = {g: dict(v) for g, v in profile.rules.group_limits.items()}
            self.environments[name] = env
            for chosen, size_name, _ in entries:
                picks = {k: c.slug for k, c in chosen.items()}
                self.routes.append(Route(profile.slug, picks, name, size_name))

    def mark_default(self, profiles: Sequence[Profile]) -> None:
        """KubeSpawner's default launch (the marked or first profile, default choices)."""
        profile = next((p for p in profiles if p.default), profiles[0] if profiles else None)
        if profile is None:
            return
        picks = {o.name: o.default_choice.slug for o in profile.options if o.default_choice}
        route = next(
            (r for r in self.routes if r.profile == profile.slug and r.choices == picks), None
        )
        if route is None:
            self.warn(profile.path, "its default launch is not converted; no default is set")
            return
        self.environments[route.environment]["default"] = True

    def charge_groups(self, profiles: Sequence[Profile]) -> tuple[str, ...]:
        given = [p.rules.charge_groups for p in profiles]
        every = frozenset[str]().union(*given)
        if not every:
            return ()
        differ = next((p for p in profiles if p.rules.charge_groups != every), None)
        if differ is not None:
            self.warn(
                f"{differ.path}.eohub.charge_groups",
                "eohub has one charge_groups list for every environment: written as the "
                f"groups of all profiles ({', '.join(sorted(every))})",
            )
        return tuple(sorted(every))


def convert_profiles(
    profiles: Sequence[Profile],
    *,
    base: Mapping[str, Any] | None = None,
    gpu_resource_name: str = "nvidia.com/gpu",
    spellings: Mapping[str, Sequence[str]] | None = None,
) -> Conversion:
    """The launch config that launches what ``profiles`` launch, and the warnings.

    ``base`` holds the admin's KubeSpawner values the overrides apply onto, by trait
    name (``image``, ``cpu_guarantee``, ``mem_guarantee``, ``tolerations``...): a
    profile that sets no image or memory gets the admin's. ``gpu_resource_name`` is
    the extended resource eohub requests GPUs as (QuotaKubeSpawner's setting).
    ``spellings`` are the group names as the admin wrote them (:func:`group_spellings`).
    """
    converter = _Converter(base or {}, gpu_resource_name, spellings or {})
    for profile in profiles:
        converter.profile(profile)
    converter.mark_default(profiles)
    return Conversion(
        environments=converter.environments,
        sizes=converter.sizes,
        charge_groups=converter.charge_groups(profiles),
        warnings=tuple(converter.warnings),
        routes=tuple(converter.routes),
    )


__all__ = ["CONVERTED_KEYS", "Conversion", "Route", "convert_profiles", "group_spellings"]
