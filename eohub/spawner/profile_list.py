"""KubeSpawner's ``profile_list`` in QuotaKubeSpawner, policed by eohub's launch policy.

The list (or dict, or what a callable returns for this user) is read by
:mod:`eohub.domain.launch.profiles`; the user's choices are checked by
:mod:`eohub.domain.launch.profile_selection`. What is left to this adapter is what
needs a live spawner: calling ``profile_list`` and callable override values, and
applying the overrides with KubeSpawner's semantics (dict traits merged recursively,
``None`` deleting a key), so that a profile builds the pod it builds under plain
KubeSpawner. The pod's resources are then read back from the traits: that, not the
profile's wording, is what is charged and quota-checked.

Each launch starts again from the admin's values of every trait a profile has ever
overridden on this spawner: the hub keeps one spawner per server, and a launch must not
inherit the previous launch's image or GPU.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from kubespawner.utils import recursive_update
from slugify import slugify
from tornado import web
from traitlets import Callable, Dict, List, Union
from traitlets.config import Configurable

from eohub.domain.accounting.resources import (
    CHARGED_KEY,
    MAX_CPU,
    MAX_GPUS,
    MAX_MEMORY_BYTES,
    PROFILE_KEY,
)
from eohub.domain.fields import FieldErrors
from eohub.domain.launch.budget import size_fits
from eohub.domain.launch.config import Environment, Size
from eohub.domain.launch.fields import LaunchConfigError
from eohub.domain.launch.options import OptionsError, parse_options
from eohub.domain.launch.pod_defaults import RESTRICTED_CONTAINER, RESTRICTED_POD, SECURE_TRAITS
from eohub.domain.launch.policy import Launch, check_charged, session_limits
from eohub.domain.launch.profile_policy import ProfileParts, authorize_profile
from eohub.domain.launch.profile_reading import describe_size, is_gpu, requested
from eohub.domain.launch.profile_security import SECURITY_TRAITS, override_violations
from eohub.domain.launch.profile_selection import ProfileSelection, option_keys, select_profile
from eohub.domain.launch.profiles import Profile, parse_profile_list
from eohub.logs import get_logger
from eohub.spawner.context import InvalidLaunchConfig, LaunchContext
from eohub.spawner.errors import options_error, user_error

log = get_logger(__name__)


class ProfileListSupport(Configurable):
    """The ``profile_list`` trait and its launches; mixed into QuotaKubeSpawner."""

    profile_list = Union(
        [List(), Dict(), Callable()],
        default_value=[],
        help="""KubeSpawner's profile list, exactly as Zero to JupyterHub's
        ``singleuser.profileList`` sets it: a list of profiles, a dict of them keyed by
        slug, or a callable (sync or async) that takes the spawner and returns one.

        Every key KubeSpawner reads works as it does there (``display_name``, ``slug``,
        ``description``, ``default``, ``kubespawner_override``, ``profile_options``
        with ``choices`` and ``unlisted_choice``). eohub adds ``allowed_groups`` on a
        profile, an option, a choice or an unlisted choice (2i2c's convention: absent
        means everyone), and an ``eohub`` key per profile with ``charge_groups``,
        ``charge`` (``guarantee`` or ``limit``), and the session limits
        ``idle_timeout`` and ``max_duration`` (seconds, or "30m", "8h", "7d"; 0: no
        limit, lifting ``session_limits``) with ``group_limits`` per group charged, e.g.
        ``eohub: {max_duration: 8h, group_limits: {climate: {max_duration: 2d}}}``.
        ``validation_regex`` must match the whole value. The pod a profile makes is
        charged for its CPU, memory and GPUs and still checked against the restricted
        Pod Security Standard. Profiles appear on the launch form after the
        environments of ``launch_environments``; a slug may not repeat an environment's
        name. See the how-to "Use your KubeSpawner profile list".""",
    ).tag(config=True)

    _profile_admin: dict[str, Any] | None = None

    async def launch_profiles(self) -> tuple[Profile, ...]:
        """Every profile of the list for this user (a callable is called now).

        Raises InvalidLaunchConfig naming the key path when the list is invalid.
        """
        value = self.profile_list
        if callable(value):
            value = value(self)
            if hasattr(value, "__await__"):
                value = await value
        try:
            return parse_profile_list(value, slugify, known_traits=frozenset(self.trait_names()))
        except LaunchConfigError as e:
            raise InvalidLaunchConfig(str(e)) from e

    async def authorize_profile_launch(
        self, context: LaunchContext, raw: Mapping[str, Any], charged: dict[str, object]
    ) -> Launch:
        """A ``profile_list`` launch: choices, eohub's part, the overrides, then quota.

        Raises HTTPError 400 (bad choices, with field errors) or 403 (quota) before
        anything is created.
        """
        spawner: Any = self  # a QuotaSpawnerMixin too: the quota check and approval
        config = context.config
        options = option_keys(raw)
        for key in [k for k in charged if k not in (PROFILE_KEY, CHARGED_KEY)]:
            # In a profile launch ``image`` or ``cpu`` name its options: what it charged
            # is stored apart, under CHARGED_KEY.
            options[key] = charged.pop(key)
        slug = charged.get("profile")
        try:
            request = parse_options({k: v for k, v in raw.items() if k not in options})
            selection = select_profile(
                context.profiles,
                slug,  # type: ignore[arg-type]
                options,
                building=request.names_repository,
            )
            parts = authorize_profile(config, context.member, request, selection, context.rules)
            if parts.repo is not None:
                assert context.rules is not None  # authorize_profile refuses it otherwise
                repo = await spawner.repo_launches.resolve(parts.repo, context.rules)
                if repo.image is None:
                    raise user_error(
                        500,
                        "Building images is not set up on this hub (no image prefix); "
                        "tell an admin.",
                        "Repository launches not set up",
                    )
                parts = dataclasses.replace(parts, repo=repo)
                selection = selection.with_image(repo.image)
            launch = self.profile_launch(selection, parts)
            limits = session_limits(config.limit_rules, launch.environment, launch.group)
            launch = dataclasses.replace(launch, limits=limits)
            check_charged(charged, launch)
        except FieldErrors as e:
            raise options_error(e) from None
        answer = await spawner.allowed_quota(launch)
        if answer.budget_left and not size_fits(launch.size, answer.budget_left, config.min_hours):
            raise user_error(
                403,
                f"{launch.environment.display_name} ({launch.size.display_name}) does not fit "
                f"the budget left of group {launch.group!r} for at least "
                f"{float(config.min_hours):g} hours; choose a smaller option.",
                "Quota",
            )
        spawner.approve(launch, answer)
        return launch

    # -- the admin's values, restored before each launch --------------------------------

    def restore_profile_traits(self) -> None:
        """Put back the admin's value of every trait a profile overrode before."""
        for name, value in (self._profile_admin or {}).items():
            setattr(self, name, copy.deepcopy(value))

    def _remember(self, name: str) -> None:
        if self._profile_admin is None:
            self._profile_admin = {}
        if name not in self._profile_admin:
            self._profile_admin[name] = copy.deepcopy(getattr(self, name))

    def apply_overrides(
        self, path: str, overrides: Mapping[str, Any], typed_by: str | None = None
    ) -> None:
        """Apply one ``kubespawner_override`` as KubeSpawner's ``_apply_overrides`` does.

        ``typed_by`` names the option whose free text the user typed into these overrides
        (``{value}``): a value the setting refuses is then the user's 400, not the
        admin's 500.
        """
        for name, raw in overrides.items():
            where = f"{path}.{name}"
            self._remember(name)
            try:
                value = raw(self) if callable(raw) else copy.deepcopy(raw)
                # A copy: the admin's dict may be shared with every other spawner.
                current = copy.deepcopy(getattr(self, name))
                if isinstance(value, dict) and isinstance(current, dict):
                    recursive_update(current, value)
                    setattr(self, name, current)
                else:
                    setattr(self, name, value)
            except web.HTTPError:
                raise  # a callable's own answer to the user, as a callable list may give
            except Exception as e:  # the admin's value or callable: name it, not a traceback
                if typed_by is not None:
                    raise options_error(
                        OptionsError({typed_by: "is not a value this profile can use"})
                    ) from None
                log.error(
                    "The profile override {where} cannot be applied: {error}", where=where, error=e
                )
                raise _admin_error(f"the profile setting {where} is invalid") from None

    # -- what the overrides made ---------------------------------------------------------

    def profile_launch(self, selection: ProfileSelection, parts: ProfileParts) -> Launch:
        """Apply ``selection``'s overrides onto the admin's values; the launch they make."""
        self.restore_profile_traits()
        typed = {
            p.overrides()[0]: p.option.name
            for p in selection.picks
            if p.unlisted is not None and not p.built
        }
        for path, overrides in selection.overrides():
            self.apply_overrides(path, overrides, typed.get(path))
        try:
            size = self._charged_size(selection)
        except web.HTTPError:
            if typed:  # the user's own value made the size: theirs to change
                problem = "asks for more than this hub allows"
                raise options_error(OptionsError(dict.fromkeys(typed.values(), problem))) from None
            raise
        profile = selection.profile
        urlpath = parts.urlpath or getattr(self, "default_url", "") or ""
        environment = Environment(
            name=profile.slug,
            display_name=selection.summary(),
            sizes=(size.name,),
            image=getattr(self, "image", None),
            default_urlpath=urlpath,
            max_duration=profile.rules.max_duration,
            idle_timeout=profile.rules.idle_timeout,
            group_limits=profile.rules.group_limits,
        )
        return Launch(
            environment=environment,
            size=size,
            group=parts.group,
            volumes=parts.volumes,
            urlpath=urlpath,
            urlpath_chosen=parts.urlpath is not None,
            repo=parts.repo,
            profile=selection,
        )

    def _charged_size(self, selection: ProfileSelection) -> Size:
        cpu_guarantee = getattr(self, "cpu_guarantee", None)
        cpu_limit = getattr(self, "cpu_limit", None)
        mem_guarantee = getattr(self, "mem_guarantee", None)
        mem_limit = getattr(self, "mem_limit", None)
        charge = selection.profile.rules.charge
        cpu = requested(cpu_guarantee, cpu_limit, charge)
        memory = requested(mem_guarantee, mem_limit, charge)
        gpus = self._gpus()
        impossible = (
            not 0 <= float(cpu or 0) <= MAX_CPU
            or not 0 <= int(memory or 0) <= MAX_MEMORY_BYTES
            or not 0 <= gpus <= MAX_GPUS
        )
        if impossible:
            raise _admin_error(f"profile {selection.profile.path} asks for an impossible size")
        names = [p.choice.slug if p.choice is not None else "custom" for p in selection.picks]
        return Size(
            name="+".join([selection.profile.slug, *names]),
            display_name=describe_size({"cpu": cpu or 0, "memory": memory or 0, "gpus": gpus}),
            cpu=float(cpu or 0),
            memory=int(memory or 0),
            cpu_limit=cpu_limit,
            memory_limit=int(mem_limit) if mem_limit else None,
            gpus=gpus,
        )

    def _gpus(self) -> int:
        name = getattr(self, "gpu_resource_name", "nvidia.com/gpu")
        limits = dict(getattr(self, "extra_resource_limits", {}) or {})
        guarantees = dict(getattr(self, "extra_resource_guarantees", {}) or {})
        total = 0
        for key in {*limits, *guarantees}:
            if is_gpu(key, name):
                try:
                    total += int(str(limits.get(key, guarantees.get(key))))
                except ValueError:
                    raise _admin_error(f"the GPU count {key} is not a whole number") from None
        return total


def _admin_error(text: str) -> web.HTTPError:
    message = f"This hub's launch settings cannot start your server: {text}. Tell an admin."
    error = web.HTTPError(500, message, reason="Invalid profile")
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    return error


def check_profile_list(
    spawner_class: type[Configurable],
    values: Mapping[str, Any],
    environments: Collection[str] = (),
) -> tuple[Profile, ...] | None:
    """Validate the profile list of ``spawner_class``'s settings ``values``, at start-up.

    ``values`` are the settings by trait name, as the spawner would load them from the
    hub's config (:func:`eohub.spawner.settings.spawner_settings`).

    Raises LaunchConfigError naming the key path: an invalid list, a slug that is also
    the name of one of ``environments``, or an override that makes a pod break the
    restricted Pod Security Standard (unless ``allow_unrestricted_pods``). A callable
    list is checked per user, at spawn time; None is returned for it.
    """

    value = values.get("profile_list") or []
    if callable(value):
        return None
    known = frozenset(spawner_class.class_trait_names())
    profiles = parse_profile_list(value, slugify, known_traits=known)
    for profile in profiles:
        if profile.slug in environments:
            raise LaunchConfigError(
                f"{profile.path}.slug",
                f"{profile.slug!r} is also the name of an environment of launch_environments",
            )
    if values.get("allow_unrestricted_pods"):
        return profiles
    base = {
        **SECURE_TRAITS,
        "container_security_context": RESTRICTED_CONTAINER,
        "pod_security_context": RESTRICTED_POD,
    }
    base.update({k: v for k, v in values.items() if k in SECURITY_TRAITS and not callable(v)})
    problems = override_violations(base, profiles)
    if problems:
        where, _, message = problems[0].partition(": ")
        raise LaunchConfigError(
            where,
            f"breaks the restricted Pod Security Standard ({message}); remove it, or set "
            "QuotaKubeSpawner.allow_unrestricted_pods in a namespace whose policy admits it",
        )
    return profiles
