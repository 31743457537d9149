"""The launch form's view model: what a user may start, drawn from the launch policy.

:func:`build_form` turns the policy's answers (:func:`visible_environments`,
:func:`chargeable_groups`, :func:`offered_sizes`, :func:`allowed_volumes`, and
:func:`authorize` for the preselection) and accounting's quota answers into a
:class:`LaunchForm` of plain frozen dataclasses, with the budgets, hours and resources in
words (:mod:`eohub.spawner.form.words`); :mod:`eohub.spawner.form.render` renders it as
HTML. The types are in :mod:`eohub.spawner.form.form_model`.

Only what the view model holds reaches the page, and it holds nothing admin-only: no
images, commands, environment variables, node selectors, tolerations, claims or paths,
and no environment or volume the user may not use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.fields import FieldErrors
from eohub.domain.launch.config import Environment, LaunchConfig
from eohub.domain.launch.grants import granting_groups, grants_volume
from eohub.domain.launch.options import REPO_FIELDS, LaunchRequest
from eohub.domain.launch.policy import (
    Budget,
    Launch,
    Member,
    allowed_volumes,
    authorize,
    chargeable_groups,
    offered_sizes,
    visible_environments,
)
from eohub.domain.launch.profiles import Profile
from eohub.domain.launch.repository import RepoRules
from eohub.spawner.form.form_model import (
    EnvironmentView,
    GroupView,
    LaunchForm,
    SizeHours,
    SizeView,
    VolumeView,
)
from eohub.spawner.form.limits_view import (
    Limits,
    any_limit,
    environment_limits,
    profile_limits,
)
from eohub.spawner.form.profile_view import ProfileView, build_profiles, chosen_profile
from eohub.spawner.form.repo_view import RepoFormView
from eohub.spawner.form.running import RunningServerView
from eohub.spawner.form.words import (
    UNKNOWN_BUDGET,
    answer_warnings,
    budget_text,
    display_names,
    group_name,
    hours_text,
    resources_text,
    size_budget_text,
)

#: Next to a read-only volume, on a backend that cannot make it read-only.
READ_ONLY_NOT_ENFORCED = "read-only is not enforced on this machine"


def _budgets(answers: Mapping[str, QuotaAnswer]) -> dict[str, Budget]:
    # As the spawn's own check does: a group whose answer has no budget is unlimited.
    return {g: dict(a.budget_left) for g, a in answers.items() if a.budget_left}


def _preselect(
    config: LaunchConfig,
    member: Member,
    request: LaunchRequest,
    budgets: Mapping[str, Budget],
    rules: RepoRules | None,
) -> Launch | None:
    """What a Start without changes would launch, dropping saved choices that fail."""
    for _ in range(len(dataclasses.fields(request)) + 1):
        try:
            return authorize(config, member, request, budgets, rules)
        except FieldErrors as e:
            droppable = ("environment", "size", "volumes", "urlpath", *REPO_FIELDS)
            drop = {k: None for k in e.errors if k in droppable}
            if not drop or all(getattr(request, k) is None for k in drop):
                return None
            request = dataclasses.replace(request, **drop)
    return None


def _default_environment(
    config: LaunchConfig, visible: Sequence[Environment], saved: str | None
) -> Environment | None:
    by_name = {e.name: e for e in visible}
    if saved in by_name:
        return by_name[saved]
    default = config.default_environment
    if default is not None and default.name in by_name:
        return default
    return visible[0] if visible else None


def _pick_group(
    groups: Sequence[str],
    saved: str | None,
    answers: Mapping[str, QuotaAnswer],
    fits_any: Mapping[str, bool],
) -> str | None:
    """The group to preselect: the last one charged while it may still start a server,
    else the first whose budget runs a size, else the first allowed, else the first."""
    allowed = [g for g in groups if answers.get(g) is None or answers[g].allowed]
    if saved in allowed:
        return saved
    return next((g for g in allowed if fits_any.get(g)), None) or next(
        iter(allowed or groups), None
    )


def _size_views(
    config: LaunchConfig,
    groups: Sequence[str],
    fit: Mapping[str, Mapping[str, tuple[bool, float | None]]],
    answers: Mapping[str, QuotaAnswer],
    selected: str | None,
    launch: Launch | None,
) -> tuple[SizeView, ...]:
    """The sizes that fit at least one group's budget, in config order."""
    index = {g: i for i, g in enumerate(groups)}
    unknown = {g for g in groups if budget_text(answers.get(g)) == UNKNOWN_BUDGET}
    views = []
    for size in config.sizes.values():
        by_group = fit.get(size.name, {})  # empty: offered by no environment shown
        fits = tuple(index[g] for g, (ok, _) in by_group.items() if ok)
        if not fits:
            continue
        views.append(
            SizeView(
                name=size.name,
                display_name=size.display_name,
                description=size.description,
                resources=resources_text(size),
                fits=fits,
                hours=tuple(
                    SizeHours(
                        index[g],
                        size_budget_text(group_name(g, answers.get(g)), h, known=g not in unknown),
                    )
                    for g, (ok, h) in by_group.items()
                    if ok
                ),
                checked=launch is not None and launch.size.name == size.name,
                shown=selected is not None and index[selected] in fits,
            )
        )
    return tuple(views)


#: Per size name, per chargeable group: whether it fits the budget, and for how long.
Fit = dict[str, dict[str, tuple[bool, float | None]]]


def _fit(
    config: LaunchConfig,
    visible: Sequence[Environment],
    groups: Sequence[str],
    budgets: Mapping[str, Budget],
) -> tuple[Fit, dict[str, tuple[str, ...]]]:
    """How each offered size fits each group's budget, and the sizes of each environment."""
    fit: Fit = {}
    offered: dict[str, tuple[str, ...]] = {}
    for env in visible:
        offers = offered_sizes(config, env, None)
        offered[env.name] = tuple(o.size.name for o in offers)
        for group in groups:
            for offer in offered_sizes(config, env, budgets.get(group)):
                fit.setdefault(offer.size.name, {})[group] = (offer.fits, offer.hours)
    return fit, offered


def _environment_views(
    config: LaunchConfig,
    member: Member,
    visible: Sequence[Environment],
    offered: Mapping[str, tuple[str, ...]],
    selected: Environment | None,
    limits: Mapping[str, Limits],
) -> tuple[EnvironmentView, ...]:
    groups = chargeable_groups(config, member)

    def payers(env: Environment) -> tuple[str, ...]:
        granting = granting_groups(config, env, member.username, groups)
        return () if granting == groups else tuple(granting)

    return tuple(
        EnvironmentView(
            name=e.name,
            display_name=e.display_name,
            description=e.description,
            default_urlpath=e.default_urlpath,
            sizes=offered[e.name],
            size_names=", ".join(config.sizes[n].display_name for n in offered[e.name]),
            default_size=e.default_size or "",
            checked=selected is not None and e.name == selected.name,
            repository=e.repository,
            charge_groups=payers(e),
            limits=limits.get(e.name, ()),
        )
        for e in visible
    )


def _limits(
    config: LaunchConfig,
    visible: Sequence[Environment],
    profiles: Sequence[Profile],
    views: Sequence[ProfileView],
    groups: Sequence[str],
) -> tuple[dict[str, Limits], tuple[ProfileView, ...]]:
    """Each environment's limits in words, per group, and the profiles' ``views`` with
    theirs; none at all when no environment or profile has any (a hub without session
    limits says nothing of them)."""
    envs = {e.name: environment_limits(config, e, groups) for e in visible}
    profs = [profile_limits(config, p, groups) for p in profiles]
    if not any_limit([*envs.values(), *profs]):
        return {}, tuple(views)
    with_limits = (dataclasses.replace(v, limits=lim) for v, lim in zip(views, profs, strict=True))
    return envs, tuple(with_limits)


def _group_views(
    groups: Sequence[str], answers: Mapping[str, QuotaAnswer], selected: str | None
) -> tuple[GroupView, ...]:
    return tuple(
        GroupView(
            index=i,
            name=g,
            budget=budget_text(answers.get(g)),
            refusal="" if answers.get(g) is None or answers[g].allowed else answers[g].reason,
            checked=g == selected,
            display_name=group_name(g, answers.get(g)),
            warnings=answer_warnings(answers.get(g)),
        )
        for i, g in enumerate(groups)
    )


def _volume_views(
    config: LaunchConfig,
    member: Member,
    saved: LaunchRequest,
    *,
    enforces_read_only: bool = True,
) -> tuple[tuple[VolumeView, ...], tuple[VolumeView, ...]]:
    """The optional volumes (choices) and the mounted ones (information), each with the
    groups that may pay for it (a script shows it for those only)."""
    chosen = set(saved.volumes or ())
    groups = chargeable_groups(config, member)
    optional: list[VolumeView] = []
    mounted: list[VolumeView] = []
    for v in allowed_volumes(config, member):
        payers = tuple(i for i, g in enumerate(groups) if grants_volume(config, v, g))
        view = VolumeView(
            name=v.name,
            display_name=v.display_name,
            description=v.description,
            mount_path=v.mount_path,
            read_only=v.read_only,
            checked=v.name in chosen,
            groups=() if len(payers) == len(groups) else payers,
            read_only_note=READ_ONLY_NOT_ENFORCED
            if v.read_only and not enforces_read_only
            else "",
        )
        (optional if v.optional else mounted).append(view)
    return tuple(optional), tuple(mounted)


def _problems(visible: Sequence[object], groups: Sequence[str]) -> tuple[str, ...]:
    """Why the user cannot start anything, if they cannot."""
    problems = []
    if not visible:
        problems.append("No environment is available to you; ask the platform's admins.")
    if not groups:
        problems.append(
            "None of your groups can be charged for a server; ask the platform's admins."
        )
    return tuple(problems)


def _payers(
    config: LaunchConfig,
    member: Member,
    groups: Sequence[str],
    visible: Sequence[Environment],
    saved_environment: str | None,
    profile: str | None,
    views: Sequence[ProfileView],
) -> list[str]:
    """The groups that may pay for what the form preselects: the group preselected is
    one of them, so that Start without changes (and without JavaScript) is valid."""
    if profile is not None:
        view = next((v for v in views if v.slug == profile), None)
        return list(view.charge_groups) if view is not None and view.charge_groups else [*groups]
    first = _default_environment(config, visible, saved_environment)
    return granting_groups(config, first, member.username, groups) if first else [*groups]


def build_form(
    config: LaunchConfig,
    member: Member,
    saved: LaunchRequest,
    messages: Sequence[str],
    answers: Mapping[str, QuotaAnswer],
    *,
    server_name: str = "",
    repo: RepoFormView | None = None,
    repo_rules: RepoRules | None = None,
    profiles: Sequence[Profile] = (),
    saved_profile: Mapping[str, object] | None = None,
    start_blocked: str = "",
    enforces_read_only: bool = True,
    running: Sequence[RunningServerView] = (),
) -> LaunchForm:
    """The launch form of ``member``, prefilled with ``saved`` (their last choices).

    ``start_blocked``: why no server can start (the server limit), shown by the disabled
    Start button; ``enforces_read_only``: False where read-only is not enforced;
    ``running``: the user's running servers. ``messages`` say which saved choices no
    longer apply; ``answers``: accounting's quota answer per chargeable group (none:
    "budget unknown"). ``profiles``: the ``profile_list`` profiles the user may see;
    ``saved_profile``: the last profile launch's choices that still hold. ``repo`` is
    for a repository environment or image builder."""
    visible = visible_environments(config, member)
    groups = chargeable_groups(config, member)
    budgets = _budgets(answers)
    fit, offered = _fit(config, visible, groups, budgets)
    fits_any = {g: any(f[g][0] for f in fit.values() if g in f) for g in groups}
    profile = chosen_profile(config, member, profiles, saved, saved_profile or {})
    views = build_profiles(config, member, profiles, saved_profile or {}, profile, bool(repo))
    env_limits, views = _limits(config, visible, profiles, views, groups)
    payers = _payers(config, member, groups, visible, saved.environment, profile, views)
    selected = _pick_group(payers or groups, saved.group, answers, fits_any)
    request = dataclasses.replace(saved, group=selected)
    launch = _preselect(config, member, request, budgets, repo_rules) if selected else None
    env_default = (
        launch.environment if launch else _default_environment(config, visible, saved.environment)
    )
    optional_volumes, mounted_volumes = _volume_views(
        config, member, saved, enforces_read_only=enforces_read_only
    )
    checked = None if profile else env_default  # a preselected profile unchecks them
    return LaunchForm(
        environments=_environment_views(config, member, visible, offered, checked, env_limits),
        groups=_group_views(groups, answers, selected),
        sizes=_size_views(config, groups, fit, answers, selected, launch),
        optional_volumes=optional_volumes,
        mounted_volumes=mounted_volumes,
        urlpath=saved.urlpath or "",
        urlpath_placeholder=checked.default_urlpath if checked else "",
        server_name=server_name,
        notices=tuple(messages),
        problems=_problems([*visible, *profiles], groups),
        repo=repo if any(e.repository for e in visible) or any(p.builds for p in views) else None,
        profiles=views,
        start_blocked=start_blocked,
        running=tuple(running),
    )


__all__ = [
    "READ_ONLY_NOT_ENFORCED",
    "UNKNOWN_BUDGET",
    "EnvironmentView",
    "GroupView",
    "LaunchForm",
    "SizeHours",
    "SizeView",
    "VolumeView",
    "budget_text",
    "build_form",
    "display_names",
    "hours_text",
    "resources_text",
    "size_budget_text",
]
