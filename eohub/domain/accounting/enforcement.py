"""Budget enforcement: warn when a budget is spent while servers run, then stop them.

Quota checks refuse new servers once a budget is spent; this module decides what happens
to the servers already running. It is pure: :func:`plan_enforcement` takes the budgets
(spent or not, and why), the running sessions, the warnings issued so far and the time,
and returns the next warnings and the servers to stop. The accounting service keeps the
warnings between rounds and carries out the stops.

A budget is either a group's as a whole (``user == ""``) or one member's within the group
(a per-user or ``"*"`` quota row). Whether it is spent is
:func:`eohub.domain.accounting.quota.decide`'s own rule, applied to the budget rows alone, so
a form, a spawn and enforcement cannot disagree: a spent core-hour or memory budget
affects every server charged to it, a spent GPU-hour budget only the servers holding
GPUs.

Modes:

``off``
    Nothing is warned or stopped; warnings left from before are cleared.
``warn``
    The first round that finds a spent budget with servers running issues a warning; it
    stays until the budget is available again (a new period, a raised quota) or no
    affected server runs.
``stop``
    As ``warn``, and once ``grace`` has passed since the warning, the affected servers
    are stopped. A stop the service asked for (recorded with the reason ``budget``) and
    the hub has not confirmed (it was restarting, or slow) is asked for again while the
    budget is still spent, grace or not.

A budget stop asked for whose budget is available again (a new period, a raised quota),
or that the mode no longer carries out (``warn``), is withdrawn
(:attr:`EnforcementPlan.withdrawn`): the server keeps running, and a later stop, by its
user say, is not recorded as ``budget``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.quota import Limits, Running, Standing, decide

# BUDGET (re-exported): the end reason of a session stopped because its budget ran out.
from eohub.domain.accounting.stop_reasons import BUDGET

#: A budget's key: ``(group, user)``, where ``user`` is ``""`` for the whole group.
BudgetKey = tuple[str, str]


class Mode(StrEnum):
    """What enforcement does (see the module docstring)."""

    OFF = "off"
    WARN = "warn"
    STOP = "stop"


@dataclass(frozen=True)
class Budget:
    """One budget's state now.

    Attributes
    ----------
    group, user
        Whose budget: ``user == ""`` for the group as a whole.
    spent
        Why every server charged to it must stop (a core-hour or memory budget is
        spent), or ``None``.
    gpu_spent
        Why servers holding GPUs must stop (the GPU-hour budget is spent), or ``None``.
    """

    group: str
    user: str = ""
    spent: str | None = None
    gpu_spent: str | None = None

    @property
    def key(self) -> BudgetKey:
        return (self.group, self.user)


def budget_from_standing(group: str, user: str, standing: Standing) -> Budget:
    """Whether ``standing``'s budgets are spent, by the same rule quota checks use.

    Only the hour budgets count: concurrent limits and storage refuse new servers but do
    not stop running ones.
    """
    hours_only = Standing(
        standing.scope,
        Limits(
            core_hours=standing.limits.core_hours,
            gpu_hours=standing.limits.gpu_hours,
            memory_gib_hours=standing.limits.memory_gib_hours,
        ),
        standing.used,
        Running(),
    )
    cpu = decide(Resources(0), [hours_only])
    if not cpu.allowed:
        return Budget(group, user, spent=cpu.reason)
    gpu = decide(Resources(0, gpus=1), [hours_only])
    return Budget(group, user, gpu_spent=None if gpu.allowed else gpu.reason)


@dataclass(frozen=True)
class RunningSession:
    """An open session: whose, charged to which group, and whether it holds GPUs."""

    id: int
    user: str
    server: str
    group: str
    started_at: datetime
    gpus: int = 0
    #: The reason recorded when the service asked the hub to stop this server, while that
    #: stop is not confirmed; else ``None``.
    stop_reason: str | None = None


#: Why a session is stopped again whose budget stop was asked for and not confirmed.
UNCONFIRMED = "its stop was asked for and is not confirmed yet"

#: Why a budget stop asked for is withdrawn, by mode.
WITHDRAWN = {
    Mode.STOP: "the budget it was asked for is available again",
    Mode.WARN: "enforcement only warns now",
}


@dataclass(frozen=True)
class WarningInfo:
    """A warning that a budget is spent while servers charged to it run.

    Attributes
    ----------
    group, user
        The budget (``user == ""``: the group's as a whole).
    reason
        Which budget is spent, in words for users.
    first_warned_at
        When the warning was first issued; it does not move while the budget stays spent.
    stop_at
        When the servers are stopped (``first_warned_at`` plus the grace period), or
        ``None`` when the mode only warns.
    sessions
        The ids of the affected open sessions.
    """

    group: str
    user: str
    reason: str
    first_warned_at: datetime
    stop_at: datetime | None
    sessions: tuple[int, ...]

    @property
    def key(self) -> BudgetKey:
        return (self.group, self.user)


@dataclass(frozen=True)
class Cleared:
    """A warning withdrawn, and why."""

    warning: WarningInfo
    reason: str


@dataclass(frozen=True)
class Stop:
    """Stop this session's server: its budget is spent and the grace period is over."""

    session: RunningSession
    reason: str


@dataclass(frozen=True)
class Withdrawal:
    """Withdraw the budget stop asked for this session: ``reason`` says why."""

    session: RunningSession
    reason: str


@dataclass(frozen=True)
class EnforcementPlan:
    """The warnings to keep from now on, what changed, the servers to stop, and the
    budget stops asked for before that no longer apply."""

    warnings: Mapping[BudgetKey, WarningInfo]
    issued: tuple[WarningInfo, ...] = ()
    cleared: tuple[Cleared, ...] = ()
    stops: tuple[Stop, ...] = ()
    withdrawn: tuple[Withdrawal, ...] = ()


def _affected(
    budget: Budget, sessions: Iterable[RunningSession]
) -> tuple[str, list[RunningSession]]:
    mine = [
        s
        for s in sessions
        if s.group == budget.group and (not budget.user or s.user == budget.user)
    ]
    if budget.spent is not None:
        return budget.spent, mine
    if budget.gpu_spent is not None:
        return budget.gpu_spent, [s for s in mine if s.gpus > 0]
    return "", []


def _asked_for(
    running: Iterable[RunningSession],
    kept: Mapping[BudgetKey, WarningInfo],
    mode: Mode,
    stops: dict[int, Stop],
) -> list[Withdrawal]:
    """Ask again for the budget stops asked for before whose budget is still spent
    (adding them to ``stops``); the others are withdrawn."""
    spent_for = {session for w in kept.values() for session in w.sessions}
    withdrawn: list[Withdrawal] = []
    for s in running:
        if s.stop_reason != BUDGET:
            continue
        if mode is Mode.STOP and s.id in spent_for:
            stops.setdefault(s.id, Stop(s, UNCONFIRMED))
        else:
            withdrawn.append(Withdrawal(s, WITHDRAWN[mode]))
    return withdrawn


def plan_enforcement(
    *,
    budgets: Iterable[Budget],
    sessions: Iterable[RunningSession],
    warnings: Mapping[BudgetKey, WarningInfo],
    mode: Mode,
    grace: timedelta,
    now: datetime,
) -> EnforcementPlan:
    """Decide this round's warnings and stops (see the module docstring)."""
    if mode is Mode.OFF:
        return EnforcementPlan(
            {}, cleared=tuple(Cleared(w, "enforcement is off") for w in warnings.values())
        )
    running = sorted(sessions, key=lambda s: s.id)
    budget_list = sorted(budgets, key=lambda b: b.key)
    kept: dict[BudgetKey, WarningInfo] = {}
    issued: list[WarningInfo] = []
    stops: dict[int, Stop] = {}
    available: set[BudgetKey] = set()
    for budget in budget_list:
        reason, affected = _affected(budget, running)
        if not reason:
            available.add(budget.key)
        if not affected:
            continue
        ids = tuple(s.id for s in affected)
        before = warnings.get(budget.key)
        first = before.first_warned_at if before is not None else now
        stop_at = first + grace if mode is Mode.STOP else None
        if before is None:
            warning = WarningInfo(budget.group, budget.user, reason, now, stop_at, ids)
            issued.append(warning)
        else:
            warning = replace(before, reason=reason, stop_at=stop_at, sessions=ids)
        kept[budget.key] = warning
        if stop_at is not None and now >= stop_at:
            for s in affected:
                stops.setdefault(s.id, Stop(s, reason))
    withdrawn = _asked_for(running, kept, mode, stops)
    cleared = tuple(
        Cleared(
            w,
            "the budget is available again"
            if key in available
            else "no server charged to the budget runs any more",
        )
        for key, w in sorted(warnings.items())
        if key not in kept
    )
    return EnforcementPlan(
        kept,
        tuple(issued),
        cleared,
        tuple(stops[i] for i in sorted(stops)),
        tuple(withdrawn),
    )


__all__ = [
    "BUDGET",
    "UNCONFIRMED",
    "WITHDRAWN",
    "Budget",
    "BudgetKey",
    "Cleared",
    "EnforcementPlan",
    "Mode",
    "RunningSession",
    "Stop",
    "WarningInfo",
    "Withdrawal",
    "budget_from_standing",
    "plan_enforcement",
]
