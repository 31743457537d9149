"""eohub's part of a ``profile_list`` launch: the group charged, the volumes, the start page.

A profile's own choices are checked by :mod:`eohub.domain.launch.profile_selection`;
what eohub adds to any launch (who is charged, which of the admin's volumes are
mounted) is decided here, with the launch config's rules, so that a profile launch and
an environment launch answer alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from eohub.domain.launch.config import LaunchConfig
from eohub.domain.launch.grants import Grant, grants_profile_groups
from eohub.domain.launch.options import REPO_FIELDS, LaunchRequest, OptionsError, urlpath_problem
from eohub.domain.launch.policy import (
    Member,
    pick_group,
    pick_volumes,
    repository_of,
    visible_environments,
)
from eohub.domain.launch.profile_selection import ProfileSelection
from eohub.domain.launch.profiles import Profile
from eohub.domain.launch.repository import RepoLaunch, RepoRules
from eohub.domain.launch.volumes import Volume


@dataclass(frozen=True)
class ProfileParts:
    """What eohub decides of a profile launch: the group, the volumes, the start page."""

    group: str
    volumes: tuple[Volume, ...]
    urlpath: str | None
    #: The repository to build the image from, for a profile that builds images.
    repo: RepoLaunch | None = None


def authorize_profile(
    config: LaunchConfig,
    member: Member,
    request: LaunchRequest,
    selection: ProfileSelection,
    repos: RepoRules | None = None,
) -> ProfileParts:
    """eohub's part of a ``profile_list`` launch, or :class:`OptionsError`.

    The profile's ``eohub.charge_groups`` narrow the groups it may be charged to (the
    launch config's ``charge_groups`` otherwise). Environments, sizes and repositories
    are eohub's own launches; naming them here is an error, not silently ignored.
    """
    errors: dict[str, str | None] = {}
    for key in ("environment", "size"):
        if getattr(request, key) is not None:
            errors[key] = f"is not used by profile {selection.profile.display_name!r}"
    repo = _repository(selection.profile, request, repos, errors)
    allowed = profile_charge_groups(config, selection.profile)
    if allowed is not None and not allowed:
        group, errors["group"] = None, "none of your groups can be charged for a server"
    else:
        scoped = replace(config, charge_groups=allowed) if allowed else config
        grant = profile_grant(config, selection)
        group, errors["group"] = pick_group(scoped, member, request.group, grant)
    volumes, errors["volumes"] = pick_volumes(config, member, request.volumes, group)
    if request.urlpath is not None:
        errors["urlpath"] = urlpath_problem(request.urlpath)
    problems = {k: v for k, v in errors.items() if v}
    if problems or group is None:
        raise OptionsError(problems or {"group": "no group can be charged"})
    return ProfileParts(group, volumes, request.urlpath, repo)


def profile_charge_groups(config: LaunchConfig, profile: Profile) -> frozenset[str] | None:
    """The groups ``profile`` may be charged to, when its ``eohub.charge_groups`` narrow
    the launch config's (never widen them); None when it sets none."""
    own = profile.rules.charge_groups
    if not own:
        return None
    return own & config.charge_groups if config.charge_groups else own


def profile_grant(config: LaunchConfig, selection: ProfileSelection) -> Grant:
    """Which groups may pay for ``selection``: those the profile's ``allowed_groups``, and
    those of each option, choice and "Other..." picked, name (when the group charged
    must grant what it pays for; :mod:`eohub.domain.launch.grants`), compared casefolded
    as the profile list's names are."""
    guards = [selection.profile.allowed_groups]
    for pick in selection.picks:
        guards.append(pick.option.allowed_groups)
        if pick.choice is not None:
            guards.append(pick.choice.allowed_groups)
        elif pick.unlisted is not None and pick.option.unlisted is not None:
            guards.append(pick.option.unlisted.allowed_groups)
    return Grant(
        f"profile {selection.profile.display_name!r} with these choices",
        lambda group: all(grants_profile_groups(config, g, group) for g in guards),
    )


def profile_groups(config: LaunchConfig, profile: Profile, groups: Sequence[str]) -> list[str]:
    """Those of ``groups`` that grant ``profile`` itself (its choices may narrow more)."""
    return [g for g in groups if grants_profile_groups(config, profile.allowed_groups, g)]


def _repository(
    profile: Profile,
    request: LaunchRequest,
    repos: RepoRules | None,
    errors: dict[str, str | None],
) -> RepoLaunch | None:
    """The repository to build from (fancy-profiles' ``dynamic_image_building``)."""
    if not request.names_repository:
        return None
    if not profile.repository:
        for key in REPO_FIELDS:
            if getattr(request, key) is not None:
                errors[key] = (
                    f"is only for profiles that build images; {profile.display_name!r} does not"
                )
        return None
    unset = "this hub has not set up building images from repositories"
    return repository_of(request, repos, errors, "repo", unset)


def wants_profile(
    config: LaunchConfig, member: Member, raw: Mapping[str, object], profiles: Sequence[Profile]
) -> bool:
    """Whether ``raw`` asks for a ``profile_list`` profile rather than an environment.

    ``profile`` names either (the two share one namespace); ``environment`` names only
    eohub's own. With neither, eohub's default environment wins, then the profile
    list's default, then eohub's first environment, then the first profile: the launch
    config is eohub's own and so speaks first.
    """
    if not profiles or raw.get("environment") not in (None, ""):
        return False
    slug = raw.get("profile")
    if slug not in (None, ""):
        return not isinstance(slug, str) or slug not in config.environments
    visible = visible_environments(config, member)
    if config.default_environment in visible:
        return False
    if any(p.default for p in profiles):
        return True
    return not visible


__all__ = [
    "ProfileParts",
    "authorize_profile",
    "profile_charge_groups",
    "profile_grant",
    "profile_groups",
    "wants_profile",
]
