"""An authorized launch (:class:`Launch`) and the options it stores.

:func:`eohub.domain.launch.policy.authorize` builds a :class:`Launch` from the admin's
config only; :meth:`Launch.user_options` is what the spawner keeps and accounting
charges from, and :func:`check_charged` makes sure options brought back on a restart
still agree with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eohub.domain.accounting.resources import (
    CHARGED_KEY,
    CPU_KEYS,
    GPU_KEYS,
    GROUP_KEY,
    IMAGE_KEY,
    MEMORY_KEYS,
    PROFILE_KEY,
)
from eohub.domain.launch.config import Environment, Size
from eohub.domain.launch.options import OptionsError
from eohub.domain.launch.profile_selection import ProfileSelection
from eohub.domain.launch.repository import RepoLaunch
from eohub.domain.launch.session_limits import (
    NO_LIMITS,
    LimitRules,
    SessionLimits,
    resolve_limits,
)
from eohub.domain.launch.volumes import Volume


@dataclass(frozen=True)
class Launch:
    """An authorized launch: every part comes from the admin's config.

    ``volumes`` are the volumes to mount: the always-mounted ones the user may mount and
    the optional ones they chose, in config order. ``urlpath`` is the start page asked
    for, else the environment's default (``urlpath_chosen`` says which). ``repo`` is
    the repository to launch, for an environment with ``repository: true``.

    ``profile`` is set for a launch of a ``profile_list`` profile: its ``environment``
    and ``size`` then describe the pod the profile's overrides made (the image, and the
    resources charged), not entries of the launch config.

    ``limits`` are the session's idle and duration limits, resolved for the group
    charged when the launch is authorized (:func:`session_limits`): what the backends,
    the ledger and accounting's enforcement read.
    """

    environment: Environment
    size: Size
    group: str
    volumes: tuple[Volume, ...]
    urlpath: str
    urlpath_chosen: bool = False
    repo: RepoLaunch | None = None
    profile: ProfileSelection | None = None
    limits: SessionLimits = NO_LIMITS

    def user_options(self) -> dict[str, object]:
        """The canonical options to store, with the keys accounting charges from.

        The start page is stored only when the user chose it, so that next time the
        environment's own default applies to whichever environment they pick. A
        profile launch stores KubeSpawner's keys (``profile`` and one per option), and
        what it charged under ``eohub_charged``: its options may be named ``image``,
        ``cpu`` or ``memory``.
        """
        if self.profile is not None:
            return self._profile_options(self.profile)
        options: dict[str, object] = {
            "environment": self.environment.name,
            "size": self.size.name,
            GROUP_KEY: self.group,
            "volumes": [v.name for v in self.volumes if v.optional],
            CPU_KEYS[0]: self.size.cpu,
            MEMORY_KEYS[0]: self.size.memory,
            GPU_KEYS[0]: self.size.gpus,
            PROFILE_KEY: self.environment.name,
        }
        if self.urlpath_chosen:
            options["urlpath"] = self.urlpath
        if self.environment.image is not None:
            options[IMAGE_KEY] = self.environment.image
        if self.repo is not None:
            options.update(self.repo.user_options())
        return options

    def _profile_options(self, profile: ProfileSelection) -> dict[str, object]:
        options = profile.user_options()
        if self.repo is not None:
            options.update(self.repo.user_options())
        options[GROUP_KEY] = self.group
        options["volumes"] = [v.name for v in self.volumes if v.optional]
        charged: dict[str, object] = {
            CPU_KEYS[0]: self.size.cpu,
            MEMORY_KEYS[0]: self.size.memory,
            GPU_KEYS[0]: self.size.gpus,
        }
        if self.environment.image is not None:
            charged[IMAGE_KEY] = self.environment.image
        options[CHARGED_KEY] = charged
        if self.urlpath_chosen:
            options["urlpath"] = self.urlpath
        return options


def session_limits(rules: LimitRules, environment: Environment, group: str) -> SessionLimits:
    """The limits of a session of ``environment`` (or a profile's) charged to ``group``."""
    return resolve_limits(rules, group, environment.own_limits, environment.group_limits)


#: What :meth:`Launch.user_options` stores beyond the options schema, for accounting.
CHARGED_KEYS = (CPU_KEYS[0], MEMORY_KEYS[0], GPU_KEYS[0], PROFILE_KEY, IMAGE_KEY, CHARGED_KEY)


def split_charged(raw: object) -> tuple[object, dict[str, object]]:
    """``raw`` without the charged keys, and those keys.

    A restart without new options re-applies the stored ones, which hold what the
    launch charges too; those keys may come back, but :func:`check_charged` must agree.
    """
    if not isinstance(raw, Mapping):
        return raw, {}
    rest = dict(raw)
    return rest, {k: rest.pop(k) for k in CHARGED_KEYS if k in rest}


def check_charged(charged: Mapping[str, object], launch: Launch) -> None:
    """Raise :class:`OptionsError` for charged keys that differ from what ``launch`` charges."""
    resolved = launch.user_options()
    wrong = {
        k: f"is set by the environment and size ({resolved.get(k)!r}); leave it out"
        for k, v in charged.items()
        if resolved.get(k) != v
    }
    if wrong:
        raise OptionsError(wrong)


__all__ = ["CHARGED_KEYS", "Launch", "check_charged", "session_limits", "split_charged"]
