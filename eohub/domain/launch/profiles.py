"""KubeSpawner's ``profile_list``, read as data and checked like eohub's own config.

Zero to JupyterHub admins describe their environments in ``singleuser.profileList``,
which the chart copies into ``KubeSpawner.profile_list``. :func:`parse_profile_list`
reads one (the list form, the dict form keyed by slug, or what a callable returned)
into frozen :class:`Profile` objects, with KubeSpawner's own defaults: a missing slug
comes from the display name, the first choice of an option is its default when none
is marked, and the first profile is the default when none is marked.

Everything a profile says about the pod stays in its ``kubespawner_override`` mappings,
which are the admin's and are applied as KubeSpawner applies them
(:mod:`eohub.spawner.profile_list`). What eohub adds is read here:

- ``allowed_groups`` on a profile, an option, a choice or an unlisted choice, with the
  meaning of 2i2c's ``basehub`` (the de-facto convention): absent means everyone; group
  names compare case-insensitively; what a user may not use is removed before they see
  the list (:func:`eohub.domain.launch.profile_selection.visible_profiles`).
- ``eohub`` on a profile, for what KubeSpawner cannot say: ``charge_groups``,
  the session limits ``idle_timeout`` and ``max_duration`` (``3600``, ``"30m"``, ``"8h"``;
  ``0``: no limit) with their ``group_limits`` per group charged, as an environment's
  (:mod:`eohub.domain.launch.session_limits`), and ``charge`` (``guarantee``, the
  default, or ``limit``: which of the pod's requests or limits a session is charged for).
- jupyterhub-fancy-profiles' keys (``description_in_choices``, ``dynamic_image_building``)
  are accepted; ``dynamic_image_building`` makes the profile a repository launch.

Errors name the key path the way the admin wrote it
(``profile_list[2].profile_options.image.choices.gpu.kubespawner_override``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from eohub.domain.accounting.resources import CHARGED_KEY, GROUP_KEY, PROFILE_KEY
from eohub.domain.fields import describe
from eohub.domain.launch.fields import MAX_DESCRIPTION, Entry, LaunchConfigError
from eohub.domain.launch.options import REPO_FIELDS
from eohub.domain.launch.session_limits import OWN_LIMIT_KEYS, PartialLimits, parse_own_limits

#: The key under which a profile carries eohub's own settings.
EOHUB_KEY = "eohub"
#: The suffix KubeSpawner gives an option's free-text value in ``user_options``.
UNLISTED_SUFFIX = "--unlisted-choice"
#: What a session of a profile is charged for: the pod's requests or its limits.
CHARGE_RULES = ("guarantee", "limit")
#: Option names a profile launch needs for eohub's own part: the group charged, the
#: volumes, the start page and the repository to build from. ``environment`` names
#: eohub's own environments instead of a profile.
RESERVED_OPTIONS = frozenset(
    {PROFILE_KEY, GROUP_KEY, CHARGED_KEY, "environment", "volumes", "urlpath", *REPO_FIELDS}
)
MAX_PROFILES = 1000
MAX_SLUG = 255
MAX_UNLISTED = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_OPTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")

_PROFILE_KEYS = frozenset(
    {
        "display_name",
        "slug",
        "description",
        "default",
        "kubespawner_override",
        "profile_options",
        "allowed_groups",
        EOHUB_KEY,
    }
)
_OPTION_KEYS = frozenset(
    {
        "display_name",
        "choices",
        "unlisted_choice",
        "allowed_groups",
        "description_in_choices",
        "dynamic_image_building",
    }
)
_CHOICE_KEYS = frozenset(
    {"display_name", "description", "default", "kubespawner_override", "allowed_groups"}
)
_UNLISTED_KEYS = frozenset(
    {
        "enabled",
        "display_name",
        "display_name_in_choices",
        "validation_regex",
        "validation_message",
        "kubespawner_override",
        "allowed_groups",
        "description_in_choices",
    }
)
_EOHUB_KEYS = frozenset({"charge_groups", "charge", *OWN_LIMIT_KEYS})

Overrides = Mapping[str, Any]


@dataclass(frozen=True)
class Choice:
    """One listed value of a profile option."""

    slug: str
    display_name: str
    path: str
    description: str = ""
    default: bool = False
    overrides: Overrides = field(default_factory=dict, hash=False)
    allowed_groups: frozenset[str] | None = None


@dataclass(frozen=True)
class Unlisted:
    """An option's free-text value: ``{value}`` in its overrides is what the user wrote."""

    path: str
    display_name: str = ""
    display_name_in_choices: str = "Other..."
    validation_regex: str | None = None
    validation_message: str = ""
    overrides: Overrides = field(default_factory=dict, hash=False)
    allowed_groups: frozenset[str] | None = None

    def problem(self, value: str) -> str | None:
        """Why ``value`` may not be used; None if it may.

        The whole value must match ``validation_regex`` (KubeSpawner only anchors the
        start, so ``^quay.io/`` admits ``quay.io/x;anything``); write ``.*`` to allow more.
        """
        if not value or len(value) > MAX_UNLISTED or _CONTROL.search(value):
            return f"must be 1 to {MAX_UNLISTED} characters, without control characters"
        if "{" in value or "}" in value:
            # KubeSpawner formats the overrides again with the user's name and friends.
            return "must not contain '{' or '}'"
        if self.validation_regex is not None and not re.fullmatch(self.validation_regex, value):
            return self.validation_message or f"must match {self.validation_regex}"
        return None


@dataclass(frozen=True)
class ProfileOption:
    """A choice a profile offers (an image, a size...): listed values, free text, or both."""

    name: str
    display_name: str
    path: str
    choices: tuple[Choice, ...] = ()
    unlisted: Unlisted | None = None
    allowed_groups: frozenset[str] | None = None
    builds_images: bool = False

    @property
    def default_choice(self) -> Choice | None:
        """The marked default, else the first choice (as KubeSpawner picks it)."""
        first = self.choices[0] if self.choices else None
        return next((c for c in self.choices if c.default), first)

    def choice(self, slug: str) -> Choice | None:
        return next((c for c in self.choices if c.slug == slug), None)


@dataclass(frozen=True)
class ProfileRules:
    """eohub's per-profile settings: who may be charged, for how long, for what.

    ``idle_timeout`` and ``max_duration`` are seconds (None: not set; 0: no limit), as
    :class:`eohub.domain.launch.config.Environment`'s.
    """

    charge_groups: frozenset[str] = frozenset()
    max_duration: int | None = None
    charge: str = "guarantee"
    idle_timeout: int | None = None
    group_limits: Mapping[str, PartialLimits] = field(default_factory=dict, hash=False)

    @property
    def own_limits(self) -> dict[str, int]:
        """The limits the profile sets itself (``0``: it lifts the hub's)."""
        given = {"idle_timeout": self.idle_timeout, "max_duration": self.max_duration}
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class Profile:
    """One entry of ``profile_list``; ``path`` is where it is in the admin's config."""

    slug: str
    display_name: str
    path: str
    description: str = ""
    default: bool = False
    overrides: Overrides = field(default_factory=dict, hash=False)
    options: tuple[ProfileOption, ...] = ()
    allowed_groups: frozenset[str] | None = None
    rules: ProfileRules = ProfileRules()

    @property
    def repository(self) -> bool:
        """Whether an option builds images from repositories (fancy-profiles' key)."""
        return any(o.builds_images for o in self.options)

    def option(self, name: str) -> ProfileOption | None:
        return next((o for o in self.options if o.name == name), None)

    @property
    def override_names(self) -> frozenset[str]:
        """Every trait this profile's overrides, or its options', may set."""
        names = set(self.overrides)
        for option in self.options:
            for choice in option.choices:
                names.update(choice.overrides)
            if option.unlisted is not None:
                names.update(option.unlisted.overrides)
        return frozenset(names)


def _groups(entry: Entry, key: str) -> frozenset[str] | None:
    """``allowed_groups`` casefolded; None when absent (everyone)."""
    if entry.data.get(key) is None:
        return None
    return frozenset(g.casefold() for g in entry.strings(key))


def _overrides(entry: Entry, known_traits: Collection[str] | None) -> Overrides:
    value = entry.data.get("kubespawner_override")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        entry.fail("kubespawner_override", f"must be a mapping of traits, not {describe(value)}")
    for key in value:
        if not isinstance(key, str) or (known_traits is not None and key not in known_traits):
            raise LaunchConfigError(
                f"{entry.path('kubespawner_override')}.{key}",
                "is not a KubeSpawner setting (check the spelling)",
            )
    return dict(value)


def _unlisted(entry: Entry, known: Collection[str] | None) -> Unlisted | None:
    raw = entry.data.get("unlisted_choice")
    if raw is None:
        return None
    u = Entry(raw, entry.path("unlisted_choice"), _UNLISTED_KEYS)
    if not u.flag("enabled", False):
        return None
    regex = u.text("validation_regex", max_len=1024)
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as e:
            u.fail("validation_regex", f"is not a valid regular expression ({e})")
    overrides = _overrides(u, known)
    try:
        _fill(overrides, "value")
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:
        u.fail("kubespawner_override", f"may use only {{value}} as a placeholder ({e!r})")
    return Unlisted(
        path=u.where,
        display_name=u.text("display_name", "") or "",
        display_name_in_choices=u.text("display_name_in_choices", "Other...") or "Other...",
        validation_regex=regex,
        validation_message=u.text("validation_message", "", max_len=MAX_DESCRIPTION) or "",
        overrides=overrides,
        allowed_groups=_groups(u, "allowed_groups"),
    )


def _option(
    name: object, data: object, where: str, known: Collection[str] | None
) -> ProfileOption:
    if not isinstance(name, str) or not _OPTION_NAME.fullmatch(name):
        raise LaunchConfigError(
            where, f"option name {describe(name)} must be 1 to 63 letters, digits, '.', '_' or '-'"
        )
    if name in RESERVED_OPTIONS:
        raise LaunchConfigError(
            f"{where}.{name}", "is one of eohub's own launch options; give the option another name"
        )
    o = Entry(data, f"{where}.{name}", _OPTION_KEYS)
    raw_choices = o.data.get("choices") or {}
    if not isinstance(raw_choices, Mapping):
        o.fail("choices", f"must be a mapping of slugs to choices, not {describe(raw_choices)}")
    choices = []
    for slug, raw in raw_choices.items():
        if not isinstance(slug, str) or not slug or len(slug) > MAX_SLUG or _CONTROL.search(slug):
            o.fail("choices", f"choice key {describe(slug)} must be a non-empty string")
        c = Entry(raw, f"{o.path('choices')}.{slug}", _CHOICE_KEYS)
        choices.append(
            Choice(
                slug=slug,
                display_name=c.text("display_name", slug) or slug,
                path=c.where,
                description=c.description(),
                default=c.flag("default", False),
                overrides=_overrides(c, known),
                allowed_groups=_groups(c, "allowed_groups"),
            )
        )
    unlisted = _unlisted(o, known)
    if not choices and unlisted is None:
        o.fail("choices", "are required unless unlisted_choice is enabled")
    building = o.data.get("dynamic_image_building")
    if isinstance(building, Mapping):
        building = building.get("enabled")
    return ProfileOption(
        name=name,
        display_name=o.text("display_name", name) or name,
        path=o.where,
        choices=tuple(choices),
        unlisted=unlisted,
        allowed_groups=_groups(o, "allowed_groups"),
        builds_images=building is True,
    )


def _rules(entry: Entry) -> ProfileRules:
    raw = entry.data.get(EOHUB_KEY)
    if raw is None:
        return ProfileRules()
    e = Entry(raw, entry.path(EOHUB_KEY), _EOHUB_KEYS)
    charge = e.text("charge", "guarantee") or "guarantee"
    if charge not in CHARGE_RULES:
        e.fail("charge", f"must be one of {', '.join(CHARGE_RULES)}, not {describe(charge)}")
    own, group_limits = parse_own_limits(e.data, e.where)
    return ProfileRules(
        charge_groups=e.groups("charge_groups"),
        max_duration=own.get("max_duration"),
        charge=charge,
        idle_timeout=own.get("idle_timeout"),
        group_limits=group_limits,
    )


def _profile(
    data: object, where: str, slugify: Callable[[str], str], known: Collection[str] | None
) -> Profile:
    p = Entry(data, where, _PROFILE_KEYS)
    display_name = p.text("display_name", required=True) or ""
    slug = p.text("slug", max_len=MAX_SLUG) or slugify(display_name)
    if not slug:
        p.fail("slug", f"cannot be made from display_name {describe(display_name)}; set a slug")
    raw_options = p.data.get("profile_options") or {}
    if not isinstance(raw_options, Mapping):
        p.fail("profile_options", f"must be a mapping of options, not {describe(raw_options)}")
    options = tuple(
        _option(name, raw, p.path("profile_options"), known) for name, raw in raw_options.items()
    )
    return Profile(
        slug=slug,
        display_name=display_name,
        path=where,
        description=p.text("description", "", max_len=MAX_DESCRIPTION, multiline=True) or "",
        default=p.flag("default", False),
        overrides=_overrides(p, known),
        options=options,
        allowed_groups=_groups(p, "allowed_groups"),
        rules=_rules(p),
    )


def _entries(data: object, where: str) -> list[tuple[str, object]]:
    if isinstance(data, Mapping):
        # KubeSpawner 7.1's dict form: the profiles in the order of their keys. A
        # missing slug still comes from the display name, as KubeSpawner makes it.
        return [(f"{where}.{key}", data[key]) for key in sorted(data, key=str)]
    if isinstance(data, list | tuple):
        return [(f"{where}[{i}]", value) for i, value in enumerate(data)]
    raise LaunchConfigError(where, f"must be a list or mapping of profiles, not {describe(data)}")


def parse_profile_list(
    data: object,
    slugify: Callable[[str], str],
    *,
    known_traits: Collection[str] | None = None,
    where: str = "profile_list",
) -> tuple[Profile, ...]:
    """Validate a profile list; raise :class:`LaunchConfigError` naming the key path.

    ``slugify`` makes a slug from a display name (KubeSpawner's own function, so that
    slugs match). ``known_traits`` are the spawner's trait names; an override of
    anything else is a typo, reported instead of ignored.
    """
    entries = _entries(data, where)
    if len(entries) > MAX_PROFILES:
        raise LaunchConfigError(where, f"must hold at most {MAX_PROFILES} profiles")
    profiles: list[Profile] = []
    for path, raw in entries:
        profile = _profile(raw, path, slugify, known_traits)
        clash = next((p for p in profiles if p.slug == profile.slug), None)
        if clash is not None:
            raise LaunchConfigError(
                f"{path}.slug", f"{profile.slug!r} is also the slug of {clash.path}"
            )
        profiles.append(profile)
    return tuple(profiles)


class _KeepOthers(dict[str, str]):
    # Other placeholders ({username}...) stay for KubeSpawner's own expansion later.
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(value: Any, text: str) -> Any:
    """``value`` with ``{value}`` filled in, as KubeSpawner's ``recursive_format`` does."""
    if isinstance(value, str):
        return value.format_map(_KeepOthers(value=text))
    if isinstance(value, Mapping):
        return {_fill(k, text): _fill(v, text) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(v, text) for v in value]
    if isinstance(value, set | frozenset):
        return {_fill(v, text) for v in value}
    return value


def fill_unlisted(overrides: Overrides, text: str) -> dict[str, Any]:
    """An unlisted choice's overrides for the value ``text`` (already checked)."""
    return {k: _fill(v, text) for k, v in overrides.items()}


__all__ = [
    "CHARGE_RULES",
    "EOHUB_KEY",
    "RESERVED_OPTIONS",
    "UNLISTED_SUFFIX",
    "Choice",
    "Profile",
    "ProfileOption",
    "ProfileRules",
    "Unlisted",
    "fill_unlisted",
    "parse_profile_list",
]
