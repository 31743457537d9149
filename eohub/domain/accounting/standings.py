"""Which quota rows apply to a user starting a server in a group, and what stands against them.

A group's quota rows are keyed by owner (see :mod:`.quota`):

- the ``WHOLE_GROUP`` row limits everything the group runs and uses, and is the only one
  that limits the group's storage;
- a row named after the user limits that user within the group;
- otherwise the ``EACH_MEMBER`` row limits every member on their own.

The store gathers the numbers (the running totals of the budget window, the group's open
sessions, its storage); the functions here decide which rows they are measured against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from eohub.domain.accounting.ledger import Resources, Usage, usage_in_window
from eohub.domain.accounting.quota import EACH_MEMBER, WHOLE_GROUP, Limits, Running, Standing


@dataclass(frozen=True)
class ApplicableQuotas:
    """The quota rows that limit one user in one group; ``None`` where no row does."""

    group: Limits | None
    member: Limits | None

    @property
    def counts_storage(self) -> bool:
        """Whether the group's stored bytes must be measured (only the group row limits them)."""
        return self.group is not None and self.group.storage_bytes is not None


def applicable_quotas(user: str, quotas: Mapping[str, Limits]) -> ApplicableQuotas:
    """The rows of ``quotas`` that limit ``user``: the group's, and the user's own row,
    else the each-member row."""
    return ApplicableQuotas(quotas.get(WHOLE_GROUP), quotas.get(user, quotas.get(EACH_MEMBER)))


def totals_owners(user: str) -> tuple[str, str]:
    """The running-total rows a quota check reads: the group's, then the user's."""
    return (WHOLE_GROUP, user)


@dataclass(frozen=True)
class Tally:
    """What one scope (the group, or the user within it) used and runs now."""

    used: Usage = field(default_factory=Usage)
    running: Running = field(default_factory=Running)


OpenSession = tuple[str, Resources, datetime]  # (user, resources, started_at)


@dataclass(frozen=True)
class Stored:
    """What a group stores (the sum of its members' sources' latest samples that still
    count), and since when it is over its storage quota (``None``: it is not, or no row
    limits it)."""

    bytes: int = 0
    over_since: datetime | None = None


NOTHING_STORED = Stored()


def tally_open_sessions(
    user: str,
    sessions: Iterable[OpenSession],
    now: datetime,
    window: tuple[datetime, datetime],
    *,
    group_used: Usage,
    user_used: Usage,
) -> tuple[Tally, Tally]:
    """Add the group's open sessions to the closed usage of the window.

    Every open session counts for the group, and also for ``user`` when it is theirs:
    its usage within ``window`` up to ``now``, one running server and what it holds.
    Returns the group's tally, then the user's.
    """
    group = _Counts()
    mine = _Counts()
    for who, resources, started in sessions:
        piece = usage_in_window(resources, started, now, window)
        group_used += piece
        group.add(resources)
        if who == user:
            user_used += piece
            mine.add(resources)
    return Tally(group_used, group.running()), Tally(user_used, mine.running())


@dataclass
class _Counts:
    servers: int = 0
    millicores: int = 0
    memory_bytes: int = 0
    gpus: int = 0

    def add(self, resources: Resources) -> None:
        self.servers += 1
        self.millicores += resources.millicores
        self.memory_bytes += resources.memory_bytes
        self.gpus += resources.gpus

    def running(self) -> Running:
        return Running(self.servers, self.millicores, self.memory_bytes, self.gpus)


def standings_of(
    user: str,
    group_name: str,
    quotas: ApplicableQuotas,
    *,
    group: Tally,
    member: Tally,
    stored: Stored = NOTHING_STORED,
) -> list[Standing]:
    """One :class:`Standing` per applicable row: the group's first, then the user's.

    The group's row carries what the group stores (``stored``); the user's row never
    limits storage.
    """
    found = []
    if quotas.group is not None:
        found.append(
            Standing(
                f"group {group_name}",
                quotas.group,
                group.used,
                group.running,
                stored.bytes,
                storage_over_since=stored.over_since,
            )
        )
    if quotas.member is not None:
        found.append(
            Standing(
                f"user {user} in group {group_name}",
                quotas.member,
                member.used,
                member.running,
                member=True,
            )
        )
    return found


__all__ = [
    "NOTHING_STORED",
    "ApplicableQuotas",
    "OpenSession",
    "Stored",
    "Tally",
    "applicable_quotas",
    "standings_of",
    "tally_open_sessions",
    "totals_owners",
]
