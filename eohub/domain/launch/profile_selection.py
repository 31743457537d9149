"""A launch of a ``profile_list`` profile: the choices, checked, in both wire formats.

KubeSpawner reads a profile launch from ``user_options`` as ``{"profile": slug,
"<option>": choice, "<option>--unlisted-choice": text}``; its form sends
``profile`` and ``profile-option-<slug>--<option>`` fields, which
:func:`form_profile_options` turns into that shape. :func:`select_profile` checks the
choices against the profiles the user may see and returns a :class:`ProfileSelection`,
or raises :class:`OptionsError` naming each bad field, as eohub's own options do.

What is charged is not known here: the overrides may hold callables, so the spawner
applies them and reads the pod's resources from the result.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from eohub.domain.fields import describe
from eohub.domain.launch.options import FIELDS, REPO_FIELDS, OptionsError
from eohub.domain.launch.profiles import (
    UNLISTED_SUFFIX,
    Choice,
    Overrides,
    Profile,
    ProfileOption,
    fill_unlisted,
)

#: The value KubeSpawner's form gives an option's select when "Other..." is picked.
UNLISTED_MARKER = "unlisted-choice"
_FORM_PREFIX = "profile-option-"


@dataclass(frozen=True)
class Pick:
    """What was chosen for one option: a listed choice, or free text (``unlisted``)."""

    option: ProfileOption
    choice: Choice | None = None
    unlisted: str | None = None
    #: The value is the image built from the user's repository (fancy-profiles'
    #: ``dynamic_image_building``): trusted because the builder made it for the spec,
    #: and not stored, since the repository options are.
    built: bool = False

    @property
    def label(self) -> str:
        """The chosen value as the user saw it."""
        if self.unlisted is not None:
            return self.unlisted
        return self.choice.display_name if self.choice is not None else ""

    def overrides(self) -> tuple[str, Overrides]:
        """The key path and the overrides this pick applies."""
        if self.built:
            if self.unlisted is None:  # the image is not built yet: nothing to apply
                return f"{self.option.path}.dynamic_image_building", {}
            if self.option.unlisted is None:
                return f"{self.option.path}.dynamic_image_building", {"image": self.unlisted}
        if self.unlisted is not None:
            assert self.option.unlisted is not None
            text = self.unlisted
            return f"{self.option.unlisted.path}.kubespawner_override", fill_unlisted(
                self.option.unlisted.overrides, text
            )
        assert self.choice is not None
        return f"{self.choice.path}.kubespawner_override", self.choice.overrides


@dataclass(frozen=True)
class ProfileSelection:
    """A profile and a pick for each of its options, checked against what the user sees."""

    profile: Profile
    picks: tuple[Pick, ...] = ()

    def overrides(self) -> tuple[tuple[str, Overrides], ...]:
        """The overrides to apply, in KubeSpawner's order: the profile's, then each option's."""
        first = (f"{self.profile.path}.kubespawner_override", self.profile.overrides)
        return (first, *(p.overrides() for p in self.picks))

    def user_options(self) -> dict[str, object]:
        """The choices as KubeSpawner stores them in ``user_options``."""
        options: dict[str, object] = {"profile": self.profile.slug}
        for pick in self.picks:
            if pick.built:
                continue
            if pick.unlisted is not None:
                options[pick.option.name + UNLISTED_SUFFIX] = pick.unlisted
            elif pick.choice is not None:
                options[pick.option.name] = pick.choice.slug
        return options

    def with_image(self, image: str) -> ProfileSelection:
        """This selection with ``image``, built from a repository, for the building option."""
        picks = tuple(
            Pick(p.option, unlisted=image, built=True) if p.option.builds_images else p
            for p in self.picks
        )
        return ProfileSelection(self.profile, picks)

    def summary(self) -> str:
        """The choices in words, for progress messages and the form."""
        parts = [f"{p.option.display_name}: {p.label}" for p in self.picks]
        return self.profile.display_name + (f" ({', '.join(parts)})" if parts else "")


def _allowed(allowed: frozenset[str] | None, groups: frozenset[str]) -> bool:
    return allowed is None or bool(allowed & groups)


def _visible_option(option: ProfileOption, groups: frozenset[str]) -> ProfileOption | None:
    if not _allowed(option.allowed_groups, groups):
        return None
    choices = tuple(c for c in option.choices if _allowed(c.allowed_groups, groups))
    unlisted = option.unlisted
    if unlisted is not None and not _allowed(unlisted.allowed_groups, groups):
        unlisted = None
    if not choices and unlisted is None:
        return None
    return ProfileOption(
        name=option.name,
        display_name=option.display_name,
        path=option.path,
        choices=choices,
        unlisted=unlisted,
        allowed_groups=option.allowed_groups,
        builds_images=option.builds_images,
    )


def visible_profiles(profiles: Sequence[Profile], groups: Collection[str]) -> tuple[Profile, ...]:
    """The profiles a member of ``groups`` may use, with what they may not use removed.

    As 2i2c's filter does: a profile, choice or unlisted choice with ``allowed_groups``
    is kept only for members of one of them (compared casefolded). An option the user
    may not use at all is removed, so its overrides (and its default's) do not apply.
    """
    folded = frozenset(g.casefold() for g in groups)
    visible: list[Profile] = []
    for profile in profiles:
        if not _allowed(profile.allowed_groups, folded):
            continue
        options = tuple(o for o in (_visible_option(o, folded) for o in profile.options) if o)
        visible.append(
            Profile(
                slug=profile.slug,
                display_name=profile.display_name,
                path=profile.path,
                description=profile.description,
                default=profile.default,
                overrides=profile.overrides,
                options=options,
                allowed_groups=profile.allowed_groups,
                rules=profile.rules,
            )
        )
    return tuple(visible)


def default_profile(profiles: Sequence[Profile]) -> Profile | None:
    """The marked default, else the first (as KubeSpawner picks it)."""
    return next((p for p in profiles if p.default), profiles[0] if profiles else None)


#: eohub's own options in a profile launch; every other key is one of the profile's.
PROFILE_LAUNCH_FIELDS = ("group", "volumes", "urlpath", *REPO_FIELDS)


def option_keys(raw: Mapping[str, object]) -> dict[str, object]:
    """The keys of ``raw`` that are not eohub's own options: a profile's option choices."""
    return {k: v for k, v in raw.items() if k not in PROFILE_LAUNCH_FIELDS}


def form_profile_options(formdata: Mapping[str, object], slug: str) -> dict[str, object]:
    """The option fields of KubeSpawner's form for profile ``slug``, as user options.

    The form holds every profile's fields; only the chosen profile's count, as
    KubeSpawner's ``options_from_form`` reads them.
    """
    prefix = f"{_FORM_PREFIX}{slug}--"
    return {k[len(prefix) :]: v for k, v in formdata.items() if k.startswith(prefix)}


def is_profile_form_field(key: str) -> bool:
    return key.startswith(_FORM_PREFIX)


def profile_form_to_options(formdata: Mapping[str, object]) -> dict[str, object]:
    """Form data with KubeSpawner's profile fields read as its ``options_from_form`` does:
    the chosen profile's ``profile-option-<slug>--<option>`` fields become ``<option>``,
    other profiles' fields are dropped, and everything else is left as it is."""
    result = {k: v for k, v in formdata.items() if not is_profile_form_field(k)}
    slug = formdata.get("profile")
    if isinstance(slug, list | tuple):
        slug = slug[0] if slug else None
    if isinstance(slug, str) and slug:
        result.update(form_profile_options(formdata, slug))
    return result


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {describe(value)}")
    return value


def _pick(option: ProfileOption, choice: str | None, unlisted: str | None) -> Pick:
    if unlisted is not None:
        # As KubeSpawner: free text, when given, wins over the select's value.
        if option.unlisted is None:
            raise ValueError("does not take a value of your own here")
        problem = option.unlisted.problem(unlisted)
        if problem:
            raise ValueError(problem)
        return Pick(option, unlisted=unlisted)
    if choice is None or choice == UNLISTED_MARKER:
        default = option.default_choice
        if default is None:
            raise ValueError("needs a value: write one in the box")
        return Pick(option, choice=default)
    found = option.choice(choice)
    if found is None:
        raise ValueError(f"{describe(choice)} is not one of the choices available to you")
    return Pick(option, choice=found)


def select_profile(
    profiles: Sequence[Profile],
    slug: str | None,
    options: Mapping[str, object],
    *,
    building: bool = False,
) -> ProfileSelection:
    """Check a profile launch; raise :class:`OptionsError` naming every bad field.

    ``profiles`` are the ones the user may see (:func:`visible_profiles`); a hidden
    profile or choice gets the same answer as one that does not exist. ``options``
    are the option keys of the request (:func:`option_keys`). Options left out get
    their default choice, as in KubeSpawner. With ``building`` (the request names a
    repository), the options that build images wait for the built image
    (:meth:`ProfileSelection.with_image`) instead of taking a choice.
    """
    profile = default_profile(profiles) if slug is None else None
    if slug is not None:
        profile = next((p for p in profiles if p.slug == slug), None)
    if profile is None:
        what = f"no profile {describe(slug)} is" if slug is not None else "no profile is"
        raise OptionsError({"profile": f"{what} available to you"})
    errors: dict[str, str] = {}
    names = {o.name for o in profile.options}
    for key in options:
        base = key.removesuffix(UNLISTED_SUFFIX)
        if base not in names:
            errors[key] = f"is not an option of profile {profile.display_name!r}"
    picks = []
    for option in profile.options:
        if building and option.builds_images:
            picks.append(Pick(option, built=True))
            continue
        try:
            choice = _text(options.get(option.name))
            unlisted = _text(options.get(option.name + UNLISTED_SUFFIX))
            picks.append(_pick(option, choice, unlisted))
        except ValueError as e:
            errors[option.name] = str(e)
    if errors:
        raise OptionsError(errors)
    return ProfileSelection(profile, tuple(picks))


def saved_selection(
    profiles: Sequence[Profile], saved: Mapping[str, object]
) -> tuple[dict[str, object], list[str]]:
    """The saved choices of a profile launch that still hold, and a message per dropped one.

    Never raises: a removed profile falls back to the default, a removed choice to the
    option's default, each with a notice for the form.
    """
    slug = saved.get("profile")
    profile = next((p for p in profiles if p.slug == slug), None)
    if profile is None:
        message = f"The profile {describe(slug)} you used last time is no longer offered."
        return {}, [message] if isinstance(slug, str) else []
    kept: dict[str, object] = {"profile": profile.slug}
    messages = []
    for option in profile.options:
        for key in (option.name, option.name + UNLISTED_SUFFIX):
            if key not in saved:
                continue
            value = saved[key]
            try:
                text = _text(value)
                if key == option.name:
                    _pick(option, text, None)
                else:
                    _pick(option, None, text)
            except ValueError:
                messages.append(
                    f"Your last choice for {option.display_name}, {describe(value)}, "
                    "is no longer offered; the default is selected."
                )
                continue
            kept[key] = text
    if profile.repository:
        # A launch that built its image saved the repository, not the image (Pick.built):
        # the form prefills its repository section from these.
        for key in REPO_FIELDS:
            value = saved.get(key)
            if value in (None, ""):
                continue
            try:
                kept[key] = FIELDS[key].parse(value)
            except ValueError:
                messages.append(
                    f"Your last choice of {key}, {describe(value)}, could not be used."
                )
    return kept, messages


__all__ = [
    "UNLISTED_MARKER",
    "Pick",
    "ProfileSelection",
    "default_profile",
    "form_profile_options",
    "is_profile_form_field",
    "option_keys",
    "profile_form_to_options",
    "saved_selection",
    "select_profile",
    "visible_profiles",
]
