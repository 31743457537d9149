"""What a user may launch: one policy for the form and for the spawn.

The launch form is drawn from :func:`visible_environments`, :func:`offered_sizes`,
:func:`allowed_volumes` and :func:`chargeable_groups`; a spawn, whichever way its options
came, is checked by :func:`authorize`, which is built from the same functions. So the
form cannot offer what a spawn would refuse, and a hand-written REST request cannot get
what the form would not offer.

Which sizes fit a budget is :mod:`eohub.domain.launch.budget`'s arithmetic; its names
are re-exported here. Refusals never reveal what a user may not see: an environment
hidden from them and one that does not exist get the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eohub.domain.fields import describe
from eohub.domain.launch.approved import (
    CHARGED_KEYS,
    Launch,
    check_charged,
    session_limits,
    split_charged,
)
from eohub.domain.launch.budget import (
    Budget,
    SizeOffer,
    hours_left,
    offered_sizes,
    size_fits,
)
from eohub.domain.launch.config import Environment, LaunchConfig, Size
from eohub.domain.launch.grants import (
    Grant,
    environment_grant,
    granting_groups,
    grants_volume,
    not_granted,
)
from eohub.domain.launch.options import (
    FIELDS,
    REPO_FIELDS,
    LaunchRequest,
    OptionsError,
    filepath_problem,
    urlpath_problem,
)
from eohub.domain.launch.repository import RepoLaunch, RepoRules, check_repository
from eohub.domain.launch.volumes import Volume
from eohub.domain.repos.specs import RepoError
from eohub.domain.wording import number_text


@dataclass(frozen=True)
class Member:
    """A user as policy sees them: their name and canonical groups."""

    username: str
    groups: frozenset[str] = frozenset()


def may_use(env: Environment, member: Member) -> bool:
    if not env.allowed_groups and not env.allowed_users:
        return True
    return member.username in env.allowed_users or bool(member.groups & env.allowed_groups)


def may_mount(volume: Volume, member: Member) -> bool:
    return not volume.allowed_groups or bool(member.groups & volume.allowed_groups)


def visible_environments(config: LaunchConfig, member: Member) -> list[Environment]:
    """The environments ``member`` may launch, in config order.

    When the group charged must grant what it pays for, an environment none of the
    member's chargeable groups grants cannot be launched, and so is not shown (unless
    no group can be charged at all: the form then says that instead).
    """
    groups = chargeable_groups(config, member)
    return [
        e
        for e in config.environments.values()
        if may_use(e, member)
        and (not groups or granting_groups(config, e, member.username, groups))
    ]


def allowed_volumes(config: LaunchConfig, member: Member) -> list[Volume]:
    """The volumes ``member`` may mount (always-mounted and optional), in config order."""
    return [v for v in config.volumes.values() if may_mount(v, member)]


def chargeable_groups(config: LaunchConfig, member: Member) -> list[str]:
    """The groups ``member`` may charge, sorted."""
    groups = member.groups & config.charge_groups if config.charge_groups else member.groups
    return sorted(groups)


def _pick_environment(
    config: LaunchConfig, visible: Sequence[Environment], name: str | None
) -> tuple[Environment | None, str | None]:
    if name is not None:
        env = next((e for e in visible if e.name == name), None)
        return env, None if env else f"no environment {name!r} is available to you"
    if not visible:
        return None, "no environment is available to you"
    default = config.default_environment
    return (default if default in visible else visible[0]), None


def pick_group(
    config: LaunchConfig, member: Member, name: str | None, grant: Grant | None = None
) -> tuple[str | None, str | None]:
    """The group to charge, or why none: ``grant`` (what the launch uses) narrows the
    chargeable groups to those that grant it (:mod:`eohub.domain.launch.grants`)."""
    groups = chargeable_groups(config, member)
    granting = [g for g in groups if grant is None or grant.check(g)]
    if name is not None:
        if name not in member.groups:
            return None, f"you are not a member of group {name!r}"
        if name not in groups:
            return None, f"group {name!r} cannot be charged"
        if grant is not None and name not in granting:
            return None, not_granted(grant.what, name, granting)
        return name, None
    if len(granting) == 1:
        return granting[0], None
    if granting:
        return None, "choose the group to charge"
    if groups and grant is not None:
        return None, f"none of the groups you may charge grants {grant.what}"
    return None, "none of your groups can be charged for a server"


def _size_problem(config: LaunchConfig, env: Environment, name: str) -> str | None:
    size = config.sizes.get(name)
    if size is not None and size.gpus and not env.gpu:
        return f"size {name!r} has GPUs, which environment {env.name!r} does not use"
    if size is None or name not in env.sizes:
        return f"size {name!r} is not offered for environment {env.name!r}"
    return None


def _pick_size(
    config: LaunchConfig, env: Environment, name: str | None, budget: Budget | None, group: str
) -> tuple[Size | None, str | None]:
    offers = offered_sizes(config, env, budget)
    if name is not None:
        if problem := _size_problem(config, env, name):
            return None, problem
        offer = next(o for o in offers if o.size.name == name)
        if not offer.fits:
            hours = number_text(offer.hours) if offer.hours is not None else "no"
            return None, (
                f"size {name!r} does not fit the budget left of group {group!r}: it buys "
                f"{hours} hours of it, and at least {float(config.min_hours):g} are needed"
            )
        return offer.size, None
    fitting = [o.size for o in offers if o.fits]
    default = next((s for s in fitting if s.name == env.default_size), None)
    if default or fitting:
        return default or fitting[0], None
    return None, f"no size of environment {env.name!r} fits the budget left of group {group!r}"


def pick_volumes(
    config: LaunchConfig,
    member: Member,
    names: tuple[str, ...] | None,
    group: str | None = None,
) -> tuple[tuple[Volume, ...], str | None]:
    """The volumes to mount: the always-mounted ones and those chosen, that ``group``
    (the group charged) grants; a chosen one it does not grant is refused."""
    allowed = allowed_volumes(config, member)
    granted = [v for v in allowed if grants_volume(config, v, group)]
    chosen = set(names or ())
    problems = []
    for name in names or ():
        volume = next((v for v in allowed if v.name == name), None)
        if volume is None:
            problems.append(f"no volume {name!r} is available to you")
        elif not volume.optional:
            problems.append(f"volume {name!r} is always mounted; it is not a choice")
        elif volume not in granted:
            groups = chargeable_groups(config, member)
            payers = [g for g in groups if grants_volume(config, volume, g)]
            problems.append(not_granted(f"volume {volume.display_name!r}", group or "", payers))
    volumes = tuple(v for v in granted if not v.optional or v.name in chosen)
    return volumes, "; ".join(problems) or None


def authorize(
    config: LaunchConfig,
    member: Member,
    request: LaunchRequest,
    budget_left_by_group: Mapping[str, Budget] | None,
    repos: RepoRules | None = None,
) -> Launch:
    """Resolve ``request`` into a :class:`Launch`, or raise :class:`OptionsError`.

    Left-out fields get defaults: the default environment (else the first visible
    one), the environment's default size (else its first size that fits), the only
    group ``member`` may charge, the always-mounted volumes only, and the environment's
    start page. The launch's session limits are resolved for the group charged.
    ``budget_left_by_group`` gives the budget left of each group; None means
    no budget information (every size fits), and so does a group missing from it.
    ``repos`` are the admin's repository rules; without them no repository environment
    can be launched.
    """
    errors: dict[str, str | None] = {}
    env, errors["environment"] = _pick_environment(
        config, visible_environments(config, member), request.environment
    )
    grant = environment_grant(config, env, member.username) if env is not None else None
    group, errors["group"] = pick_group(config, member, request.group, grant)
    size: Size | None = None
    if env is not None:
        budget = None
        if budget_left_by_group is not None and group is not None:
            budget = budget_left_by_group.get(group)
        size, errors["size"] = _pick_size(config, env, request.size, budget, group or "")
    volumes, errors["volumes"] = pick_volumes(config, member, request.volumes, group)
    repo: RepoLaunch | None = None
    if env is not None:
        repo = _pick_repository(env, request, repos, errors)
    if request.urlpath is not None:
        errors["urlpath"] = urlpath_problem(request.urlpath)
    if request.filepath is not None and not errors.get("filepath"):
        errors["filepath"] = filepath_problem(request.filepath)
    problems = {k: v for k, v in errors.items() if v}
    if problems or env is None or size is None or group is None:
        raise OptionsError(problems or {"size": "no size is available"})
    return Launch(
        environment=env,
        size=size,
        group=group,
        volumes=volumes,
        urlpath=request.urlpath or env.default_urlpath,
        urlpath_chosen=request.urlpath is not None,
        repo=repo,
        limits=session_limits(config.limit_rules, env, group),
    )


def _pick_repository(
    env: Environment,
    request: LaunchRequest,
    repos: RepoRules | None,
    errors: dict[str, str | None],
) -> RepoLaunch | None:
    if not env.repository:
        given = next((k for k in REPO_FIELDS if getattr(request, k) is not None), None)
        if given is not None:
            errors[given] = (
                f"is only for environments that launch a repository; {env.display_name!r} does not"
            )
        return None
    unset = f"environment {env.name!r} launches repositories, which this hub has not set up"
    return repository_of(request, repos, errors, "environment", unset)


def repository_of(
    request: LaunchRequest,
    repos: RepoRules | None,
    errors: dict[str, str | None],
    field: str,
    unset: str,
) -> RepoLaunch | None:
    """The repository ``request`` names, checked against ``repos``; problems go to
    ``errors`` (``unset`` at ``field`` when the hub has no repository rules)."""
    if repos is None:
        errors[field] = unset
        return None
    try:
        return check_repository(repos, request)
    except RepoError as e:
        errors.update(e.errors)
        return None


def fallback(
    config: LaunchConfig, member: Member, saved: object
) -> tuple[LaunchRequest, list[str]]:
    """The options saved from a previous launch, less what no longer matches the config.

    Each dropped choice (a removed environment, size or volume, a group the user left,
    a value that cannot be read) gets one message for the form; the rest is kept to
    prefill it. Never raises, whatever ``saved`` holds: the resolved keys stored with
    the options (``cpu``, ``image``...) and unknown keys are ignored.
    """
    if not isinstance(saved, Mapping):
        return LaunchRequest(), []
    messages: list[str] = []
    values: dict[str, object] = {}
    for key, field in FIELDS.items():
        raw = saved.get(key)
        if raw is None or raw == "":
            continue
        try:
            values[key] = field.parse(raw)
        except ValueError:
            messages.append(f"Your last choice of {key}, {describe(raw)}, could not be used.")
    request = LaunchRequest(**values)  # type: ignore[arg-type]

    visible = visible_environments(config, member)
    env, _ = _pick_environment(config, visible, request.environment)
    if env is None and request.environment is not None:
        messages.append(
            f"The environment {request.environment!r} you used last time is no longer offered."
        )
        env, _ = _pick_environment(config, visible, None)
        values.pop("environment")
    if request.size is not None and (env is None or _size_problem(config, env, request.size)):
        where = f" for {env.display_name}" if env is not None else ""
        messages.append(
            f"The size {request.size!r} you used last time is no longer offered{where}."
        )
        values.pop("size")
    if env is None or not env.repository:
        for key in REPO_FIELDS:  # they belong to a repository launch only
            values.pop(key, None)
    if request.group is not None and pick_group(config, member, request.group)[1]:
        messages.append(
            f"You can no longer charge group {request.group!r}, which you charged last time."
        )
        values.pop("group")
    if request.volumes is not None:
        allowed = allowed_volumes(config, member)
        optional = {v.name for v in allowed if v.optional}
        mounted = {v.name for v in allowed if not v.optional}
        for name in request.volumes:
            if name not in optional | mounted:  # one now always mounted goes unsaid
                messages.append(f"The volume {name!r} you chose last time is no longer offered.")
        values["volumes"] = tuple(n for n in request.volumes if n in optional)
    return LaunchRequest(**values), messages  # type: ignore[arg-type]


__all__ = [
    "CHARGED_KEYS",
    "Budget",
    "Launch",
    "Member",
    "SizeOffer",
    "allowed_volumes",
    "authorize",
    "chargeable_groups",
    "check_charged",
    "fallback",
    "hours_left",
    "may_mount",
    "may_use",
    "offered_sizes",
    "pick_group",
    "pick_volumes",
    "repository_of",
    "session_limits",
    "size_fits",
    "split_charged",
    "visible_environments",
]
