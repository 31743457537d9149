"""The launch form's ``profile_list`` profiles: what each shows, and what it posts.

:func:`build_profiles` turns the profiles a user may see (already group-filtered, see
:func:`eohub.domain.launch.profile_selection.visible_profiles`) and the last profile
launch's choices into plain frozen views. The fields are named as KubeSpawner's own
form names them, so that the spawner reads them with
:func:`eohub.domain.launch.profile_selection.profile_form_to_options`:
``profile`` (the slug), ``profile-option-<slug>--<option>`` (a choice's slug, or
``unlisted-choice``) and ``profile-option-<slug>--<option>--unlisted-choice`` (the text).

An option that builds images (fancy-profiles' ``dynamic_image_building``) gets one more
entry, "Build from a repository", when the hub has repository rules: it stands for the
form's repository section (:mod:`eohub.spawner.form.repo_view`), whose ``provider``,
``repo``, ``ref`` and ``filepath`` fields the spawn reads for that option instead
(:func:`eohub.domain.launch.profile_policy.authorize_profile`).

Only what the page shows is held: names, descriptions and the unlisted choice's
validation; never a ``kubespawner_override``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from eohub.domain.launch.config import LaunchConfig
from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.policy import Member, chargeable_groups
from eohub.domain.launch.profile_policy import (
    profile_charge_groups,
    profile_groups,
    wants_profile,
)
from eohub.domain.launch.profile_selection import UNLISTED_MARKER, default_profile
from eohub.domain.launch.profiles import UNLISTED_SUFFIX, Profile, ProfileOption
from eohub.spawner.form.limits_view import Limits

#: The prefix of KubeSpawner's form fields of a profile's options.
FIELD_PREFIX = "profile-option-"
#: The value of an option's "Build from a repository" entry. Empty, because the spawn
#: reads an empty field as not given: without JavaScript the entry is posted, and then
#: means "no choice of this list", while the repository fields name the image.
REPOSITORY_CHOICE = ""


@dataclass(frozen=True)
class ChoiceView:
    """One listed value of an option; ``selected`` is the default or the saved one."""

    value: str
    display_name: str
    description: str
    selected: bool


@dataclass(frozen=True)
class UnlistedView:
    """An option's free-text value: the field, its label and the browser's check."""

    name: str
    id: str
    display_name: str
    display_name_in_choices: str
    pattern: str  # validation_regex: HTML's pattern matches the whole value, as eohub does
    title: str
    value: str
    selected: bool


@dataclass(frozen=True)
class OptionView:
    """One option of a profile: a select of its choices (and "Other..." when enabled)."""

    name: str  # the select's field name
    id: str
    display_name: str
    choices: tuple[ChoiceView, ...]
    unlisted: UnlistedView | None
    builds: bool = False  # offers "Build from a repository" (the repository section)
    building: bool = False  # that entry is selected: the last launch built a repository

    @property
    def described(self) -> bool:
        return any(c.description for c in self.choices)

    @property
    def repository_choice(self) -> str:
        return REPOSITORY_CHOICE


@dataclass(frozen=True)
class ProfileView:
    """A ``profile_list`` profile on the form, beside eohub's environments."""

    index: int
    slug: str
    display_name: str
    description: str
    options: tuple[OptionView, ...]
    checked: bool
    charge_groups: tuple[str, ...] = ()  # set when the profile narrows the groups charged
    limits: Limits = ()  # its session limits in words, per group (the form sets them)

    @property
    def id(self) -> str:
        # Slugs are the admin's text: ids are made from the position instead.
        return f"eohub-profile-{self.index}"

    @property
    def builds(self) -> bool:
        """Whether an option of it builds its image from the repository section."""
        return any(o.builds for o in self.options)


def _text(value: object) -> str:
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) else ""


def _option_view(
    profile: Profile,
    index: int,
    position: int,
    option: ProfileOption,
    saved: Mapping[str, object],
    repositories: bool,
) -> OptionView:
    """An option, preselected from ``saved`` (this profile's saved choices, or none);
    ``repositories`` says whether the form has a repository section."""
    name = f"{FIELD_PREFIX}{profile.slug}--{option.name}"
    ident = f"eohub-profile-{index}-option-{position}"
    text = _text(saved.get(option.name + UNLISTED_SUFFIX))
    chosen = _text(saved.get(option.name))
    if option.choice(chosen) is None:
        default = option.default_choice
        chosen = default.slug if default is not None else ""
    builds = repositories and option.builds_images
    # A repository launch saves the repository, not the built image (Pick.built).
    building = builds and bool(_text(saved.get("repo")))
    other = not building and option.unlisted is not None and (bool(text) or not option.choices)
    if building:
        chosen = ""
    choices = tuple(
        ChoiceView(c.slug, c.display_name, c.description, not other and c.slug == chosen)
        for c in option.choices
    )
    unlisted = None
    if option.unlisted is not None:
        u = option.unlisted
        unlisted = UnlistedView(
            name=name + UNLISTED_SUFFIX,
            id=ident + "-unlisted",
            display_name=u.display_name or f"{option.display_name} ({u.display_name_in_choices})",
            display_name_in_choices=u.display_name_in_choices,
            pattern=u.validation_regex or "",
            title=u.validation_message,
            value=text,
            selected=other,
        )
    return OptionView(name, ident, option.display_name, choices, unlisted, builds, building)


def _narrowed_groups(config: LaunchConfig, member: Member, profile: Profile) -> tuple[str, ...]:
    # The groups the spawn would let this profile charge: its own within the hub's and,
    # by default, those its allowed_groups name; empty when that is all of them.
    everyone = chargeable_groups(config, member)
    allowed = profile_charge_groups(config, profile)
    scoped = (
        chargeable_groups(replace(config, charge_groups=allowed), member) if allowed else everyone
    )
    payers = profile_groups(config, profile, scoped)
    return () if payers == everyone else tuple(payers)


def chosen_profile(
    config: LaunchConfig,
    member: Member,
    profiles: Sequence[Profile],
    saved: LaunchRequest,
    saved_profile: Mapping[str, object],
) -> str | None:
    """The slug of the profile to preselect; None when an environment is preselected.

    An environment or repository in ``saved`` wins (a launch link's, or the last launch
    when it was an environment's: a profile launch saves neither), then the last profile
    launch; with neither, the spawner's own rule for an empty request decides
    (:func:`wants_profile`), so that Start without changes launches what is shown.
    """
    slug = saved_profile.get("profile")
    # A repository the last profile launch built from is that launch's, not an
    # environment's (the saved request keeps it when the default environment builds too).
    if saved.environment is not None or saved.repo not in (None, saved_profile.get("repo")):
        return None
    if any(p.slug == slug for p in profiles):
        return str(slug)
    if not wants_profile(config, member, {}, profiles):
        return None
    default = default_profile(profiles)
    return default.slug if default is not None else None


def build_profiles(
    config: LaunchConfig,
    member: Member,
    profiles: Sequence[Profile],
    saved: Mapping[str, object],
    checked: str | None,
    repositories: bool = False,
) -> tuple[ProfileView, ...]:
    """The profiles' views; ``checked`` is the slug of the preselected one, if any.

    ``saved`` holds the last profile launch's choices that still hold (KubeSpawner's
    ``user_options`` shape); they preselect that profile's options, the others show
    their default choice. With ``repositories`` (the form has a repository section),
    an option that builds images offers to build from a repository.
    """
    views = []
    for index, profile in enumerate(profiles):
        mine = saved if saved.get("profile") == profile.slug else {}
        views.append(
            ProfileView(
                index=index,
                slug=profile.slug,
                display_name=profile.display_name,
                description=profile.description,
                options=tuple(
                    _option_view(profile, index, i, o, mine, repositories)
                    for i, o in enumerate(profile.options)
                ),
                checked=profile.slug == checked,
                charge_groups=_narrowed_groups(config, member, profile),
            )
        )
    return tuple(views)


def saved_repository(
    profiles: Sequence[Profile], saved: LaunchRequest, saved_profile: Mapping[str, object]
) -> LaunchRequest:
    """``saved`` with the repository of the last profile launch, when it built one.

    The repository section prefills from it, whether an environment or a profile
    that builds images is chosen; a launch link's repository (in ``saved``) comes first.
    """
    slug = saved_profile.get("profile")
    builder = any(p.slug == slug and p.repository for p in profiles)
    if saved.repo is not None or not builder or not _text(saved_profile.get("repo")):
        return saved

    def field(key: str) -> str | None:
        return _text(saved_profile.get(key)) or None

    return replace(
        saved,
        provider=field("provider"),
        repo=field("repo"),
        ref=field("ref"),
        filepath=field("filepath"),
    )


__all__ = [
    "FIELD_PREFIX",
    "REPOSITORY_CHOICE",
    "UNLISTED_MARKER",
    "ChoiceView",
    "OptionView",
    "ProfileView",
    "UnlistedView",
    "build_profiles",
    "chosen_profile",
    "saved_repository",
]
