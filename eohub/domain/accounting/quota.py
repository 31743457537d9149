"""Quota decisions: may this user start this server, charged to this group, right now?

The decision is pure. The store gathers the numbers (usage in the group's current budget
window, what is running now, what the group stores and since when it is over its storage
quota), :mod:`.standings` says which quota rows they are measured against, and
:func:`decide` compares them with the limits. Every denial says which limit, in words a
scientist can act on, and the answer always carries the budget left, and the warnings
(storage nearly full, or over it within its grace: :mod:`.storage_quota`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from eohub.domain.accounting.events import format_time
from eohub.domain.accounting.ledger import Resources, Usage
from eohub.domain.accounting.storage_quota import (
    DEFAULT_STORAGE_GRACE,
    DEFAULT_STORAGE_WARNING_FRACTION,
    OK,
    StoragePolicy,
    StorageVerdict,
    sentence_start,
)
from eohub.domain.wording import number_text

#: Who a quota row limits: the group as a whole, or each member of the group on their own.
#: Any other owner is one named member.
WHOLE_GROUP = ""
EACH_MEMBER = "*"


@dataclass(frozen=True)
class Limits:
    """Limits of one quota row; ``None`` means unlimited.

    Hour budgets apply per allocation period of the group. Concurrent limits count the
    servers (and cores) running at the same time.
    """

    core_hours: Fraction | None = None
    gpu_hours: Fraction | None = None
    memory_gib_hours: Fraction | None = None
    max_servers: int | None = None
    max_cores: Fraction | None = None
    storage_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        def num(v: Fraction | int | None) -> float | int | None:
            return None if v is None else (v if isinstance(v, int) else float(v))

        return {
            "core_hours": num(self.core_hours),
            "gpu_hours": num(self.gpu_hours),
            "memory_gib_hours": num(self.memory_gib_hours),
            "max_servers": self.max_servers,
            "max_cores": num(self.max_cores),
            "storage_bytes": self.storage_bytes,
        }


UNLIMITED = Limits()


@dataclass(frozen=True)
class Running:
    """Servers running now, and what they hold."""

    servers: int = 0
    millicores: int = 0
    memory_bytes: int = 0
    gpus: int = 0


@dataclass(frozen=True)
class Standing:
    """One quota scope's limits and what has been used against them."""

    scope: str  # "group climate" or "user alice in group climate"
    limits: Limits
    used: Usage = field(default_factory=Usage)
    running: Running = field(default_factory=Running)
    storage_bytes: int = 0
    member: bool = False  # the user's own row (named, or each member's), not the group's
    # Since when the group stores more than its storage quota (the store keeps it).
    storage_over_since: datetime | None = None

    def storage(self, now: datetime, policy: StoragePolicy) -> StorageVerdict:
        """Where the group's storage stands; a member's row never limits storage."""
        if self.member:
            return OK
        return policy.verdict(
            self.storage_bytes,
            self.limits.storage_bytes,
            self.storage_over_since,
            now,
            scope=self.scope,
        )


@dataclass(frozen=True)
class Decision:
    """The answer, and the standing it was measured against (see :func:`standing_json`)."""

    allowed: bool
    reason: str
    budget_left: dict[str, float | None]
    standing: dict[str, Any] = field(default_factory=dict)
    # Words to show before any refusal: storage nearly full, or over it within its grace.
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "budget_left": self.budget_left,
            "standing": self.standing,
            "warnings": list(self.warnings),
        }


def _hours(value: Fraction) -> str:
    # As every page words hours: one decimal at most ("10", "12.5").
    return number_text(float(value))


def _left(limit: Fraction | None, used: Fraction) -> Fraction | None:
    return None if limit is None else limit - used


def budget_left(standings: list[Standing]) -> dict[str, float | None]:
    """The tightest hours left across the scopes; ``None`` where nothing limits them."""
    result: dict[str, float | None] = {}
    for name in ("core_hours", "gpu_hours", "memory_gib_hours"):
        lefts = [
            _left(getattr(s.limits, name), getattr(s.used, name))
            for s in standings
            if getattr(s.limits, name) is not None
        ]
        known = [v for v in lefts if v is not None]
        result[name] = round(float(max(min(known), Fraction(0))), 6) if known else None
    return result


def budget_limit(standings: list[Standing]) -> dict[str, float | None]:
    """Per budget, the limit of the scope whose hours left :func:`budget_left` reports
    (the tightest), so that a form can say "150 core-hours left of 200"; ``None`` where
    nothing limits it."""
    result: dict[str, float | None] = {}
    for name in ("core_hours", "gpu_hours", "memory_gib_hours"):
        limited = [s for s in standings if getattr(s.limits, name) is not None]
        tightest = min(
            limited,
            key=lambda s: getattr(s.limits, name) - getattr(s.used, name),
            default=None,
        )
        result[name] = None if tightest is None else float(getattr(tightest.limits, name))
    return result


def room(standing: Standing, storage: StorageVerdict | None = None) -> dict[str, Any]:
    """What one scope has left and what it runs, in whole units, ``None`` where unlimited.

    The hub's client keeps this to decide on its own while the service is unreachable
    (:mod:`eohub.domain.accounting.last_known`): ``storage_over`` means refused for
    storage. ``storage`` is the scope's storage verdict (``None``: the group's, with no
    grace, as a check at an unknown time must assume).
    """
    lim, used, run = standing.limits, standing.used, standing.running
    if storage is None:
        storage = standing.storage(datetime.now(UTC), StoragePolicy(timedelta(0), 0))

    def hours(limit: Fraction | None, spent: Fraction) -> float | None:
        return None if limit is None else round(float(limit - spent), 6)

    return {
        "servers_left": None if lim.max_servers is None else lim.max_servers - run.servers,
        "millicores_left": (
            None if lim.max_cores is None else int(lim.max_cores * 1000) - run.millicores
        ),
        "core_hours_left": hours(lim.core_hours, used.core_hours),
        "gpu_hours_left": hours(lim.gpu_hours, used.gpu_hours),
        "memory_gib_hours_left": hours(lim.memory_gib_hours, used.memory_gib_hours),
        "storage_over": storage.refused,
        "storage": storage_json(standing, storage),
        "running": {
            "servers": run.servers,
            "millicores": run.millicores,
            "memory_bytes": run.memory_bytes,
            "gpus": run.gpus,
        },
    }


def storage_json(standing: Standing, storage: StorageVerdict) -> dict[str, Any]:
    """A scope's storage in a room: bytes, quota, and the times of its grace (RFC 3339,
    ``None`` where they do not apply)."""
    limit = None if standing.member else standing.limits.storage_bytes
    return {
        "bytes": 0 if standing.member else standing.storage_bytes,
        "limit": limit,
        "over_since": _time_json(storage.over_since),
        "refused_from": _time_json(storage.refused_from),
        "state": storage.state.value,
    }


def _time_json(t: datetime | None) -> str | None:
    return None if t is None else format_time(t)


def standing_json(
    standings: list[Standing],
    display_name: str = "",
    storage: list[StorageVerdict] | None = None,
) -> dict[str, Any]:
    """The room of the group's row and of the user's row (``None`` where no row
    applies), the limits of the budgets left (:func:`budget_limit`), and the group's
    display name (empty: unknown) for the launch form. ``storage`` holds each
    standing's storage verdict, in order (see :func:`room`)."""
    verdicts: list[StorageVerdict | None] = [*storage] if storage else [None] * len(standings)
    rooms = [(s, room(s, v)) for s, v in zip(standings, verdicts, strict=True)]
    group = next((r for s, r in rooms if not s.member), None)
    member = next((r for s, r in rooms if s.member), None)
    standing: dict[str, Any] = {"group": group, "member": member}
    standing["budget_limit"] = budget_limit(standings)
    if display_name:
        standing["display_name"] = display_name
    return standing


def named(decision: Decision, display_name: str) -> Decision:
    """``decision`` with the group's display name in its standing, for the launch form."""
    if not display_name:
        return decision
    standing = {**decision.standing, "display_name": display_name}
    return Decision(
        decision.allowed, decision.reason, decision.budget_left, standing, decision.warnings
    )


def decide(
    request: Resources,
    standings: list[Standing],
    display_name: str = "",
    *,
    now: datetime | None = None,
    storage_grace: timedelta = DEFAULT_STORAGE_GRACE,
    storage_warning_fraction: float = DEFAULT_STORAGE_WARNING_FRACTION,
) -> Decision:
    """Allow the request only if every scope has budget left and room to run it.

    ``display_name`` (the group's, from the service's config) goes into the standing, so
    that the launch form names the group as the admin does.

    A budget is spent once its used hours reach the limit; a GPU budget matters only to a
    request for GPUs, so CPU work goes on when the GPU hours are gone.

    A group over its storage quota is refused only once ``storage_grace`` has passed
    since it went over (``now``: the time of the check, the current time if not given);
    before that, and from ``storage_warning_fraction`` of its quota, the answer carries
    a warning (see :mod:`.storage_quota`).
    """
    policy = StoragePolicy(storage_grace, storage_warning_fraction)
    at = datetime.now(UTC) if now is None else now
    storage = [s.storage(at, policy) for s in standings]
    warnings = tuple(v.warning for v in storage if v.warning)
    left = budget_left(standings)
    standing = standing_json(standings, display_name, storage)
    refusal = _refusal(request, standings, storage)
    if refusal is not None:
        return Decision(False, refusal, left, standing, warnings)
    return Decision(True, "Within quota.", left, standing, warnings)


def _refusal(
    request: Resources, standings: list[Standing], storage: list[StorageVerdict]
) -> str | None:
    """Why the first scope without room refuses ``request``; None when all have room."""
    for s, verdict in zip(standings, storage, strict=True):
        lim = s.limits
        checks: list[tuple[Fraction | None, Fraction, str, bool]] = [
            (lim.core_hours, s.used.core_hours, "core-hours", True),
            (lim.memory_gib_hours, s.used.memory_gib_hours, "memory GiB-hours", True),
            (lim.gpu_hours, s.used.gpu_hours, "GPU-hours", request.gpus > 0),
        ]
        for limit, used, what, applies in checks:
            if applies and limit is not None and used >= limit:
                return (
                    f"The {what} budget of {s.scope} is spent: {_hours(used)} of "
                    f"{_hours(limit)} used this period."
                )
        if verdict.refused:
            return verdict.text
        if lim.max_servers is not None and s.running.servers + 1 > lim.max_servers:
            return (
                f"{sentence_start(s.scope)} already runs {s.running.servers} of at most "
                f"{lim.max_servers} server{'' if lim.max_servers == 1 else 's'} at once. Stop "
                "one to start another."
            )
        if lim.max_cores is not None:
            wanted = Fraction(s.running.millicores + request.millicores, 1000)
            if wanted > lim.max_cores:
                return (
                    f"{sentence_start(s.scope)} may hold at most {float(lim.max_cores):g} cores "
                    f"at once; {s.running.millicores / 1000:g} are in use and "
                    f"{request.millicores / 1000:g} more were asked for."
                )
    return None
