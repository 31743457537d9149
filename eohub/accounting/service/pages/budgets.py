"""Budgets as the pages show them: meters against limits, quota scopes, and notices.

The numbers come from :meth:`AccountingStore.standings`, the computation the quota check
itself uses, so a page never disagrees with a refused spawn; this module only words them
for people (which budget, how much is left, what happens when it runs out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from eohub.adapters.accounting_db.groups import GroupInfo
from eohub.adapters.accounting_db.store import AccountingStore
from eohub.domain.accounting.enforcement import WarningInfo
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import WHOLE_GROUP, Standing, budget_left
from eohub.domain.reports.wording import hours_text, possessive, quantity

#: A budget this far used (percent) earns a warning on the pages.
WARN_PERCENT = 80


def describe_allocation(allocation: Allocation) -> str:
    if allocation.rolling_days is not None:
        return f"rolling {allocation.rolling_days} days"
    return {"month": "monthly", "quarter": "quarterly", "year": "yearly"}[allocation.kind.value]


@dataclass(frozen=True)
class Meter:
    """One budget: hours used against a limit (``None``: unlimited)."""

    what: str
    used: float
    limit: float | None

    @property
    def left(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - self.used)

    @property
    def percent(self) -> float | None:
        if self.limit is None:
            return None
        return 100.0 if self.limit <= 0 else min(100.0, 100 * self.used / self.limit)

    @property
    def level(self) -> str:
        """A Bootstrap colour: ``danger`` when spent, ``warning`` when nearly so."""
        if self.limit is None:
            return "secondary"
        if self.used >= self.limit:
            return "danger"
        return "warning" if (self.percent or 0) >= WARN_PERCENT else "success"


@dataclass(frozen=True)
class ScopeBudget:
    """A quota scope ("group climate", "you in climate"): its meters and what runs now."""

    scope: str
    meters: tuple[Meter, ...]
    servers: int
    max_servers: int | None
    cores: float
    max_cores: float | None
    storage_bytes: int = 0
    max_storage_bytes: int | None = None

    @property
    def limited(self) -> tuple[Meter, ...]:
        return tuple(m for m in self.meters if m.limit is not None)


@dataclass(frozen=True)
class Notice:
    level: str  # a Bootstrap alert colour
    text: str


@dataclass(frozen=True)
class GroupBudget:
    group: str
    display_name: str
    defined: bool
    allocation: str = ""
    window: tuple[datetime, datetime] | None = None
    scopes: tuple[ScopeBudget, ...] = ()
    left: dict[str, float | None] = field(default_factory=dict)
    notices: tuple[Notice, ...] = ()


def num(v: Fraction | int | None) -> float | None:
    return None if v is None else float(v)


def scope_budget(s: Standing, label: str) -> ScopeBudget:
    lim = s.limits
    return ScopeBudget(
        label,
        (
            Meter("core-hours", float(s.used.core_hours), num(lim.core_hours)),
            Meter("memory GiB-hours", float(s.used.memory_gib_hours), num(lim.memory_gib_hours)),
            Meter("GPU-hours", float(s.used.gpu_hours), num(lim.gpu_hours)),
        ),
        s.running.servers,
        lim.max_servers,
        s.running.millicores / 1000,
        num(lim.max_cores),
        s.storage_bytes,
        lim.storage_bytes,
    )


def _notices(charged: str, scopes: Iterable[ScopeBudget], when: str) -> list[Notice]:
    """Warnings for budgets nearly or wholly spent; ``charged`` names the group for people."""
    notes = []
    for scope in scopes:
        for m in scope.limited:
            if m.level == "danger":
                notes.append(
                    Notice(
                        "danger",
                        f"{_sentence(scope.scope)} is spent: {hours_text(m.used)} of "
                        f"{quantity(m.limit, m.what)} used {when}. New servers charged to "
                        f"{charged} are refused until it renews.",
                    )
                )
            elif m.level == "warning":
                notes.append(
                    Notice(
                        "warning",
                        f"{_sentence(scope.scope)} is {m.percent:.0f}% used: "
                        f"{hours_text(m.used)} of {quantity(m.limit, m.what)} {when}.",
                    )
                )
    return notes


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def group_label(name: str, display_name: str) -> str:
    """How a group is named in sentences: its display name, else its name."""
    return display_name or name


def _when(allocation: Allocation) -> str:
    if allocation.rolling_days is not None:
        return f"in the last {allocation.rolling_days} days"
    return f"this {allocation.kind.value}"


def group_budget(
    store: AccountingStore, user: str, group: GroupInfo, now: datetime, *, as_member: bool
) -> GroupBudget:
    """The budgets that apply to ``user`` in ``group`` (``as_member``) or the group's own.

    Scopes are worded for people: "the group's budget" (``Climate modelling's budget``)
    and "your share" of it.
    """
    standings = store.standings(user, group, now)
    whole = f"group {group.name}"
    label = group_label(group.name, group.display_name)
    scopes = []
    for s in standings:
        if s.scope == whole:
            scopes.append(scope_budget(s, f"{possessive(label)} budget"))
        elif as_member:
            scopes.append(scope_budget(s, f"your share of {possessive(label)} budget"))
    if not as_member:
        standings = [s for s in standings if s.scope == whole]
    return GroupBudget(
        group.name,
        group.display_name,
        True,
        describe_allocation(group.allocation),
        group.allocation.window(now),
        tuple(scopes),
        budget_left(standings),
        tuple(_notices(label, scopes, _when(group.allocation))),
    )


def undefined_budget(name: str) -> GroupBudget:
    return GroupBudget(
        name,
        "",
        False,
        notices=(
            Notice(
                "warning",
                f"The group {name} has no allocation in accounting, so new servers charged "
                "to it are refused. Ask an admin to set one up.",
            ),
        ),
    )


def enforcement_notices(warnings: Iterable[WarningInfo]) -> list[Notice]:
    """The enforcement worker's warnings (budgets spent while servers run), for people."""
    notes = []
    for w in warnings:
        if w.stop_at is None:
            then = "Its servers keep running, but new ones are refused."
        else:
            then = f"Its servers will be stopped at {w.stop_at:%Y-%m-%d %H:%M} UTC."
        notes.append(Notice("danger", f"{w.reason} {then}"))
    return notes


def group_standing(store: AccountingStore, group: GroupInfo, now: datetime) -> Standing | None:
    """The whole group's standing, or None when it has no group-wide quota row.

    The store reports standings for a user; asking for the whole-group owner name
    yields the group's own standing first, and nothing else of interest.
    """
    whole = f"group {group.name}"
    return next((s for s in store.standings(WHOLE_GROUP, group, now) if s.scope == whole), None)


__all__ = [
    "GroupBudget",
    "Meter",
    "Notice",
    "ScopeBudget",
    "describe_allocation",
    "enforcement_notices",
    "group_budget",
    "group_label",
    "group_standing",
    "num",
    "undefined_budget",
]
