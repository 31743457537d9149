"""The launch form's view model types: plain frozen dataclasses, what the template shows.

:mod:`eohub.spawner.form.view` builds a :class:`LaunchForm` from the launch policy and
accounting's answers; nothing admin-only is ever put in one.
"""

from __future__ import annotations

from dataclasses import dataclass

from eohub.spawner.form.limits_view import Limits, LimitsText
from eohub.spawner.form.profile_view import ProfileView
from eohub.spawner.form.repo_view import RepoFormView
from eohub.spawner.form.running import RunningServerView


@dataclass(frozen=True)
class EnvironmentView:
    """One environment the user may launch; ``sizes`` are the size names it offers."""

    name: str
    display_name: str
    description: str
    default_urlpath: str
    sizes: tuple[str, ...]
    size_names: str  # the offered sizes' display names, for readers without JavaScript
    default_size: str
    checked: bool
    repository: bool = False
    #: The groups that may pay for it, when fewer than all the user may charge.
    charge_groups: tuple[str, ...] = ()
    #: Its session limits in words, per group (empty: the hub sets no limits at all).
    limits: Limits = ()


@dataclass(frozen=True)
class GroupView:
    """A group the user may charge: its budget left in words, any refusal, and the
    warnings accounting gave with its answer (storage nearly full, or over its quota
    within its grace), shown above Start while the group is chosen."""

    index: int
    name: str
    budget: str
    refusal: str
    checked: bool
    display_name: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How the form names it: its display name, else its id."""
        return self.display_name or self.name


@dataclass(frozen=True)
class SizeHours:
    """What the budget of the group at ``group`` (its index) buys of a size."""

    group: int
    text: str


@dataclass(frozen=True)
class SizeView:
    """A size that fits the budget of at least one chargeable group.

    ``fits`` lists the indexes of those groups; ``shown`` says whether it fits the
    selected one (the others are hidden until a script shows them).
    """

    name: str
    display_name: str
    description: str
    resources: str
    fits: tuple[int, ...]
    hours: tuple[SizeHours, ...]
    checked: bool
    shown: bool


@dataclass(frozen=True)
class VolumeView:
    """A volume the user may mount: a choice when optional, else information."""

    name: str
    display_name: str
    description: str
    mount_path: str
    read_only: bool
    checked: bool
    #: The indexes of the groups that may pay for it, when fewer than all of them.
    groups: tuple[int, ...] = ()
    #: Said next to "read-only" where the backend cannot enforce it.
    read_only_note: str = ""


@dataclass(frozen=True)
class LaunchForm:
    """Everything the template shows, and nothing else."""

    environments: tuple[EnvironmentView, ...]
    groups: tuple[GroupView, ...]
    sizes: tuple[SizeView, ...]
    optional_volumes: tuple[VolumeView, ...]
    mounted_volumes: tuple[VolumeView, ...]
    urlpath: str
    urlpath_placeholder: str
    server_name: str = ""
    notices: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    repo: RepoFormView | None = None
    profiles: tuple[ProfileView, ...] = ()
    #: Why Start cannot work whatever is chosen (the server limit), else empty.
    start_blocked: str = ""
    #: The user's running servers, with the time their limits leave them.
    running: tuple[RunningServerView, ...] = ()

    @property
    def choice_field(self) -> str:
        """``profile`` names an environment or a profile (as the spawner reads it): with
        profiles listed, one radio group keeps the choice single, without JavaScript too."""
        return "profile" if self.profiles else "environment"

    @property
    def selected_group(self) -> GroupView | None:
        return next((g for g in self.groups if g.checked), None)

    @property
    def warned_groups(self) -> tuple[GroupView, ...]:
        """The groups with warnings; the page shows the chosen one's (a script follows
        the choice)."""
        return tuple(g for g in self.groups if g.warnings)

    @property
    def any_size_shown(self) -> bool:
        return any(s.shown for s in self.sizes)

    @property
    def running_soon(self) -> bool:
        """Whether a running server is near one of its limits."""
        return any(r.soon for r in self.running)

    def limits_hidden(self, limits: LimitsText) -> bool:
        """Whether ``limits`` are another group's than the one preselected."""
        selected = self.selected_group
        return limits.group is not None and (selected is None or limits.group != selected.index)


__all__ = [
    "EnvironmentView",
    "GroupView",
    "LaunchForm",
    "LimitsText",
    "RunningServerView",
    "SizeHours",
    "SizeView",
    "VolumeView",
]
