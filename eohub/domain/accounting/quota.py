"""Quota decisions: may this user start this server, charged to this group, right now?

The decision is pure. The store gathers the numbers (usage in the group's current budget
window, what is running now), :mod:`.standings` says which quota rows they are measured
against, and :func:`decide` compares them with the limits. Every
denial says which limit, in words a scientist can act on, and the answer always carries
the budget left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from eohub.domain.accounting.ledger import Resources, Usage
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


@dataclass(frozen=True)
class Decision:
    """The answer, and the standing it was measured against (see :func:`standing_json`)."""

    allowed: bool
    reason: str
    budget_left: dict[str, float | None]
    standing: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "budget_left": self.budget_left,
            "standing": self.standing,
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


def room(standing: Standing) -> dict[str, Any]:
    """What one scope has left and what it runs, in whole units, ``None`` where unlimited.

    The hub's client keeps this to decide on its own while the service is unreachable
    (:mod:`eohub.domain.accounting.last_known`).
    """
    lim, used, run = standing.limits, standing.used, standing.running

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
        "storage_over": lim.storage_bytes is not None
        and standing.storage_bytes > lim.storage_bytes,
        "running": {
            "servers": run.servers,
            "millicores": run.millicores,
            "memory_bytes": run.memory_bytes,
            "gpus": run.gpus,
        },
    }


def standing_json(standings: list[Standing], display_name: str = "") -> dict[str, Any]:
    """The room of the group's row and of the user's row (``None`` where no row
    applies), the limits of the budgets left (:func:`budget_limit`), and the group's
    display name (empty: unknown) for the launch form."""
    group = next((room(s) for s in standings if not s.member), None)
    member = next((room(s) for s in standings if s.member), None)
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
    return Decision(decision.allowed, decision.reason, decision.budget_left, standing)


def decide(request: Resources, standings: list[Standing], display_name: str = "") -> Decision:
    """Allow the request only if every scope has budget left and room to run it.

    ``display_name`` (the group's, from the service's config) goes into the standing, so
    that the launch form names the group as the admin does.

    A budget is spent once its used hours reach the limit; a GPU budget matters only to a
    request for GPUs, so CPU work goes on when the GPU hours are gone.
    """
    left = budget_left(standings)
    standing = standing_json(standings, display_name)
    for s in standings:
        lim = s.limits
        checks: list[tuple[Fraction | None, Fraction, str, bool]] = [
            (lim.core_hours, s.used.core_hours, "core-hours", True),
            (lim.memory_gib_hours, s.used.memory_gib_hours, "memory GiB-hours", True),
            (lim.gpu_hours, s.used.gpu_hours, "GPU-hours", request.gpus > 0),
        ]
        for limit, used, what, applies in checks:
            if applies and limit is not None and used >= limit:
                return Decision(
                    False,
                    f"The {what} budget of {s.scope} is spent: {_hours(used)} of "
                    f"{_hours(limit)} used this period.",
                    left,
                    standing,
                )
        if lim.storage_bytes is not None and s.storage_bytes > lim.storage_bytes:
            return Decision(
                False,
                f"{s.scope.capitalize()} stores {s.storage_bytes / 1024**3:.1f} GiB, over its "
                f"quota of {lim.storage_bytes / 1024**3:.1f} GiB. Free some space first.",
                left,
                standing,
            )
        if lim.max_servers is not None and s.running.servers + 1 > lim.max_servers:
            return Decision(
                False,
                f"{s.scope.capitalize()} already runs {s.running.servers} of at most "
                f"{lim.max_servers} server{'' if lim.max_servers == 1 else 's'} at once. Stop "
                "one to start another.",
                left,
                standing,
            )
        if lim.max_cores is not None:
            wanted = Fraction(s.running.millicores + request.millicores, 1000)
            if wanted > lim.max_cores:
                return Decision(
                    False,
                    f"{s.scope.capitalize()} may hold at most {float(lim.max_cores):g} cores "
                    f"at once; {s.running.millicores / 1000:g} are in use and "
                    f"{request.millicores / 1000:g} more were asked for.",
                    left,
                    standing,
                )
    return Decision(True, "Within quota.", left, standing)
