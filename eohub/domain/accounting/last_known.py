"""Quota decisions from the service's last answers, while the service cannot answer.

The hub's client keeps, from every answer of the accounting service, the *room* of the
scopes that limit a user (what the group and the user have left, and what they run; see
:func:`eohub.domain.accounting.quota.room`) with the time it was measured. During an
outage it decides from that, conservatively:

- every spawn allowed since the measurement is counted against it (one more server, its
  cores), and burns its hours from when it was let through;
- the servers that ran at the measurement go on burning hours at the same rate, and
  servers stopped since are not given back;
- a spawn counts against a measurement unless the service had confirmed its start event
  before it, or it never started (no start event queued) and was let through more than
  ``settle`` seconds before it;
- a last answer that refused stays a refusal, and a group in its storage grace is
  refused once the grace has ended (the room's ``storage.refused_from``);
- a standing older than ``max_age``, or a user it has never measured, is no standing:
  the caller's fallback policy decides.

Times are seconds on one monotonic clock, passed in by the caller. The one wall-clock
time an answer carries, when a group's storage grace ends, is turned into that clock's
seconds as it is kept (:attr:`LastKnown.wall_clock`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from eohub.domain.accounting.events import parse_time
from eohub.domain.accounting.ledger import GIB, Resources

HOURS = ("core_hours", "gpu_hours", "memory_gib_hours")


@dataclass(frozen=True)
class Room:
    """One scope's room at ``at``: ``None`` where no limit applies."""

    at: float
    servers_left: int | None = None
    millicores_left: int | None = None
    hours_left: Mapping[str, float | None] = field(default_factory=dict)
    running: Resources = field(default_factory=lambda: Resources(0))
    storage_over: bool = False
    # When new servers are refused for storage (its grace ends), on the caller's clock.
    storage_refused_from: float | None = None


ROOM_KEYS = frozenset(
    {"servers_left", "millicores_left", "running", "storage_over"} | {f"{h}_left" for h in HOURS}
)


def _int_or_none(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"not a whole number: {value!r}")


def _number_or_none(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"not a finite number: {value!r}")


def refused_from(data: Mapping[str, Any], at: float, wall_at: float | None) -> float | None:
    """The room's ``storage.refused_from`` (RFC 3339) on the caller's clock: ``at`` plus
    the seconds from ``wall_at`` (the wall clock then) to it. None when the room has
    none, or it cannot be read: an older service, or a bad time, is no refusal date."""
    storage = data.get("storage")
    value = storage.get("refused_from") if isinstance(storage, Mapping) else None
    if wall_at is None or not isinstance(value, str):
        return None
    try:
        return at + (parse_time(value).timestamp() - wall_at)
    except (ValueError, OverflowError):
        return None


def room_from_json(data: Any, at: float, wall_at: float | None = None) -> Room | None:
    """The :class:`Room` the service sent (``None`` for a scope without a row).

    ``wall_at`` is the wall-clock time (Unix seconds) at ``at``; without it the room's
    storage refusal date is not kept. Raises ValueError when ``data`` is not a whole room
    (a missing key would read as "no limit"), so that a service that sends something else
    leaves no standing, not a wrong one.
    """
    if data is None:
        return None
    if not isinstance(data, Mapping) or not data.keys() >= ROOM_KEYS:
        raise ValueError("a room is an object with every key")
    running = data["running"]
    if not isinstance(running, Mapping) or not isinstance(data["storage_over"], bool):
        raise ValueError("running is an object, storage_over a boolean")
    counts = [_int_or_none(running.get(k)) for k in ("millicores", "memory_bytes", "gpus")]
    if any(c is None or c < 0 for c in counts):
        raise ValueError("running holds whole numbers")
    return Room(
        at,
        _int_or_none(data["servers_left"]),
        _int_or_none(data["millicores_left"]),
        {name: _number_or_none(data[f"{name}_left"]) for name in HOURS},
        Resources(*(c or 0 for c in counts)),
        data["storage_over"],
        refused_from(data, at, wall_at),
    )


@dataclass(frozen=True)
class LetThrough:
    """A spawn allowed at ``at`` (by the service or by this module)."""

    user: str
    server: str
    resources: Resources
    at: float
    queued: bool = False  # its start event is in the outbox: it started
    delivered_at: float | None = None  # when the service confirmed its start event

    def counts_against(self, measured_at: float, settle: float) -> bool:
        """Whether a measurement at ``measured_at`` is without this spawn."""
        if self.delivered_at is not None and self.delivered_at <= measured_at:
            return False
        return self.queued or self.at > measured_at - settle


@dataclass(frozen=True)
class Answer:
    """The service's last answer to one user in one group."""

    allowed: bool
    reason: str
    member: Room | None
    at: float


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str
    budget_left: dict[str, float | None]


def _rate(resources: Resources, budget: str) -> float:
    """Hours of ``budget`` that ``resources`` burn per hour."""
    if budget == "core_hours":
        return resources.millicores / 1000
    if budget == "memory_gib_hours":
        return resources.memory_bytes / GIB
    return float(resources.gpus)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def project(room: Room, since: list[LetThrough], now: float) -> tuple[Room, str]:
    """``room`` at ``now``, less what ``since`` took; and how much it took, in words."""
    elapsed = max(0.0, now - room.at) / 3600
    hours: dict[str, float | None] = {}
    for budget in HOURS:
        left = room.hours_left.get(budget)
        if left is not None:
            left -= elapsed * _rate(room.running, budget)
            for spawn in since:
                burning = max(0.0, now - max(spawn.at, room.at)) / 3600
                left -= burning * _rate(spawn.resources, budget)
        hours[budget] = left
    servers = None if room.servers_left is None else room.servers_left - len(since)
    millicores = room.millicores_left
    if millicores is not None:
        millicores -= sum(s.resources.millicores for s in since)
    words = f"{len(since)} server{'s' if len(since) != 1 else ''} started since"
    later = Room(
        now, servers, millicores, hours, room.running, room.storage_over, room.storage_refused_from
    )
    return later, words


def refusal(room: Room, request: Resources, scope: str) -> str | None:
    """Why ``room`` has no space for ``request``, or None."""
    for budget, what in zip(HOURS, ("core-hours", "GPU-hours", "memory GiB-hours"), strict=True):
        left = room.hours_left.get(budget)
        applies = budget != "gpu_hours" or request.gpus > 0
        if applies and left is not None and left <= 0:
            return f"the {what} budget of {scope} is probably spent"
    # The service refused it for storage (its grace had ended), or its grace has ended since.
    grace_ended = room.storage_refused_from is not None and room.at >= room.storage_refused_from
    if room.storage_over or grace_ended:
        return f"{scope} stores more than its storage quota, past its grace"
    if room.servers_left is not None and room.servers_left < 1:
        return f"{scope} probably runs as many servers as it may"
    if room.millicores_left is not None and room.millicores_left < request.millicores:
        return f"{scope} probably holds as many cores as it may"
    return None


def _tightest(rooms: list[Room]) -> dict[str, float | None]:
    left: dict[str, float | None] = {}
    for budget in HOURS:
        known = [r.hours_left[budget] for r in rooms if r.hours_left.get(budget) is not None]
        left[budget] = (
            round(max(0.0, min(k for k in known if k is not None)), 6) if known else None
        )
    return left


@dataclass
class LastKnown:
    """Each user's and group's last standing, and the spawns let through since.

    ``max_age``: seconds a standing is used for. ``settle``: seconds after which a spawn
    whose start the service never confirmed is taken to have failed, once the service
    has answered again. ``wall_clock``: the wall-clock time now (Unix seconds), read as
    an answer is kept, to place its storage refusal date on the caller's clock.
    """

    max_age: float
    settle: float = 600.0
    wall_clock: Callable[[], float] = time.time
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    groups: dict[str, tuple[float, Room | None]] = field(default_factory=dict)
    spawns: dict[str, list[LetThrough]] = field(default_factory=dict)

    def observe(self, user: str, group: str, body: Mapping[str, Any], asked_at: float) -> None:
        """Keep the service's answer (the JSON body) to a check sent at ``asked_at``.

        An answer without a readable standing forgets the user's standing in the group.
        Answers may arrive out of order: for each scope, the newest measurement wins.
        """
        standing = body.get("standing")
        try:
            if not isinstance(standing, Mapping):
                raise ValueError("no standing")
            # Read a little after asked_at: the grace's end is placed, if anything, early.
            wall_at = self.wall_clock()
            group_room = room_from_json(standing.get("group"), asked_at, wall_at)
            member_room = room_from_json(standing.get("member"), asked_at, wall_at)
        except ValueError:
            self.answers.pop((user, group), None)
            return
        known = self.answers.get((user, group))
        if known is None or known.at <= asked_at:
            allowed, reason = bool(body.get("allowed")), str(body.get("reason", ""))
            self.answers[(user, group)] = Answer(allowed, reason, member_room, asked_at)
        if self.groups.get(group, (asked_at, None))[0] <= asked_at:
            self.groups[group] = (asked_at, group_room)
        self._forget_old(group, asked_at)

    def let_through(
        self, user: str, group: str, server: str, resources: Resources, now: float
    ) -> None:
        """Count a spawn allowed at ``now`` against ``group`` and ``user``."""
        self._forget_old(group, now)
        self.spawns.setdefault(group, []).append(LetThrough(user, server, resources, now))

    def queued(self, user: str, server: str) -> None:
        """The start event of ``user``'s ``server`` was queued: the spawn started."""
        self._mark(user, server, lambda s: s.delivered_at is None and not s.queued, queued=True)

    def delivered(self, user: str, server: str, now: float) -> None:
        """The service confirmed the start event of ``user``'s ``server``."""
        self._mark(user, server, lambda s: s.delivered_at is None, queued=True, delivered_at=now)

    def _mark(self, user: str, server: str, pending: Any, **change: Any) -> None:
        """Change the oldest pending spawn of ``user``'s ``server``: one event, one spawn."""
        found = [
            (s.at, group, i)
            for group, spawns in self.spawns.items()
            for i, s in enumerate(spawns)
            if s.user == user and s.server == server and pending(s)
        ]
        if found:
            _, group, i = min(found)
            self.spawns[group][i] = replace(self.spawns[group][i], **change)

    def _forget_old(self, group: str, now: float) -> None:
        """Drop the spawns no usable measurement can be without."""
        oldest_usable = now - self.max_age
        self.spawns[group] = [
            s
            for s in self.spawns.get(group, [])
            if (s.delivered_at is None or s.delivered_at > oldest_usable)
            and (s.queued or s.at > oldest_usable - self.settle)
        ]

    def decide(self, user: str, group: str, request: Resources, now: float) -> Verdict | None:
        """Allow or refuse from the last standing; None when there is no usable one."""
        answer = self.answers.get((user, group))
        if answer is None or now - answer.at > self.max_age:
            return None
        age = _minutes(now - answer.at)
        if not answer.allowed:
            return Verdict(False, f"Its last answer, {age} ago: {answer.reason}", {})
        spawns = self.spawns.get(group, [])
        scopes: list[tuple[Room, list[LetThrough], str]] = []
        group_room = self.groups.get(group, (now, None))[1]
        if group_room is not None:
            scopes.append((group_room, spawns, f"group {group}"))
        if answer.member is not None:
            mine = [s for s in spawns if s.user == user]
            scopes.append((answer.member, mine, f"user {user} in group {group}"))
        rooms = []
        for room, spawned, scope in scopes:
            since = [s for s in spawned if s.counts_against(room.at, self.settle)]
            now_room, started = project(room, since, now)
            why = refusal(now_room, request, scope)
            if why is not None:
                measured = _minutes(now - room.at)
                return Verdict(
                    False,
                    f"By its last standing, {measured} old, with {started}, {why}.",
                    _tightest([now_room]),
                )
            rooms.append(now_room)
        return Verdict(True, f"Within quota by its last standing, {age} old.", _tightest(rooms))


__all__ = [
    "LastKnown",
    "LetThrough",
    "Room",
    "Verdict",
    "project",
    "refusal",
    "refused_from",
    "room_from_json",
]
