"""The usage pages' Storage sections: storage over the page's range, the latest figures,
and the warnings of groups nearly full or over their storage quota.

A user's page draws one line per group they hold space in (space charged to no group
is "no group"), and their total; a group's page the group's total against its quota and
its largest members. Figures are the store's (:mod:`eohub.adapters.accounting_db.
storage_history`): what a user holds in a group is the sum of their latest sample at
each source (a home root, a scratch root, a claim) not older than the service's
``storage_sample_max_age``, a group the sum of its members', as the quota check counts
them; each figure lists its sources. The warnings are the quota check's own verdict
(:meth:`~eohub.domain.accounting.quota.Standing.storage`, with the service's
``storage_grace`` and ``storage_warning_fraction``), so a page never says a group is
fine while its launches are refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from eohub.accounting.service.pages.budgets import Notice, group_label, group_standing
from eohub.accounting.service.pages.words import files_text, size_text
from eohub.adapters.accounting_db.groups import GroupInfo
from eohub.adapters.accounting_db.storage import oldest_counted
from eohub.adapters.accounting_db.storage_history import (
    Held,
    Holding,
    Names,
    default_step,
    series_points,
    total_series,
)
from eohub.adapters.accounting_db.store import AccountingStore
from eohub.domain.accounting.events import format_time
from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.periods import PeriodKind
from eohub.domain.accounting.quota import WHOLE_GROUP, Limits
from eohub.domain.accounting.storage_quota import StoragePolicy, StorageState, StorageVerdict
from eohub.domain.reports.charts import Frame, Line, LineChart, line_chart
from eohub.domain.wording import size_limit_text, span_text

DASH = "\u2013"  # shown for "none"
#: How space charged to no group is named on the pages.
NO_GROUP = "no group"
#: What a Storage section says when nothing was ever measured.
NO_SAMPLES = "No storage samples yet: see the storage how-tos."
#: A group's chart draws its total and this many of its largest members.
TOP_MEMBERS = 5
#: The points of a chart: the page's range in about this many (see default_step).
CHART_POINTS = 100
#: How a source the sampler did not name is listed beside named ones.
UNNAMED_SOURCE = "unnamed source"
#: The Bootstrap colour of each storage state's notice.
NOTICE_LEVEL = {
    StorageState.NEAR: "warning",
    StorageState.GRACE: "warning",
    StorageState.REFUSED: "danger",
}


@dataclass(frozen=True)
class Source:
    """Where part of a figure was measured (a sampler's root or claim), and its bytes."""

    name: str  # "" when the sampler did not name it
    bytes: int

    @property
    def label(self) -> str:
        return self.name or UNNAMED_SOURCE

    @property
    def size(self) -> str:
        return size_text(self.bytes)


@dataclass(frozen=True)
class Figure:
    """One row of the latest figures: a group (user's page) or a member (group's page),
    summed over the sources it was measured at."""

    name: str  # the group ("" for no group) or the member
    label: str
    bytes: int
    file_count: int
    measured_at: datetime  # the newest of its sources' samples
    sources: tuple[Source, ...] = ()
    share: float | None = None  # percent of the group's total (group's page)
    group_bytes: int | None = None  # the group's total (user's page; None: no group)
    group_limit: int | None = None  # the group's storage quota (None: none)

    @property
    def named_sources(self) -> tuple[Source, ...]:
        """The sources to list under the figure: none when the only one is unnamed."""
        return self.sources if any(s.name for s in self.sources) else ()

    @property
    def size(self) -> str:
        return size_text(self.bytes)

    @property
    def files(self) -> str:
        return files_text(self.file_count)

    @property
    def group_size(self) -> str:
        """The group's total, and its quota: ``12.0 GiB of 10 GiB``; a dash for none."""
        if self.group_bytes is None:
            return DASH
        total = size_text(self.group_bytes)
        if self.group_limit is None:
            return total
        return f"{total} of {size_limit_text(self.group_limit)}"


#: A chart line in bytes, before scaling: its name, values per point, and CSS style.
Drawn = tuple[str, list[int], str]


@dataclass(frozen=True)
class StorageSection:
    """A page's Storage section: the chart, its data, the figures and the notices."""

    points: tuple[datetime, ...]
    lines: tuple[Drawn, ...]  # what the chart draws, in bytes (the page's JSON too)
    chart: LineChart | None  # None: nothing measured
    figures: tuple[Figure, ...]
    total: int = 0
    limit: int | None = None
    verdict: StorageVerdict | None = None  # the group's (group's page)
    notices: tuple[Notice, ...] = ()
    max_age: timedelta | None = None  # the service's storage_sample_max_age (None: none)

    @property
    def expiry(self) -> str:
        """Why a figure may be gone: a sentence naming the max age, empty without one."""
        if self.max_age is None or self.max_age <= timedelta(0):
            return ""
        age = span_text(self.max_age.total_seconds())
        return f"A measurement older than {age} no longer counts."

    @property
    def empty(self) -> bool:
        """Nothing ever measured (a section may chart figures that no longer count)."""
        return not self.figures and not self.lines

    @property
    def total_size(self) -> str:
        return size_text(self.total)

    @property
    def limit_size(self) -> str:
        return DASH if self.limit is None else size_limit_text(self.limit)

    @property
    def percent(self) -> float | None:
        """The group's total as a share of its quota (group's page), at most 100."""
        if self.limit is None:
            return None
        return 100.0 if self.limit <= 0 else min(100.0, 100 * self.total / self.limit)

    @property
    def level(self) -> str:
        """The Bootstrap colour of the group's quota meter."""
        state = self.verdict.state if self.verdict else StorageState.OK
        return NOTICE_LEVEL.get(state, "success")

    def to_json(self) -> dict[str, Any]:
        """The chart's data in bytes, embedded in the page for scripts and tests."""
        return {
            "points": [format_time(p) for p in self.points],
            "series": [{"name": name, "bytes": values} for name, values, _ in self.lines],
            "limit_bytes": self.limit,
        }


def notice(verdict: StorageVerdict) -> Notice | None:
    """A verdict as a page's notice; None for a group within its quota."""
    level = NOTICE_LEVEL.get(verdict.state)
    return None if level is None or not verdict.text else Notice(level, verdict.text)


def storage_verdict(
    store: AccountingStore, group: GroupInfo, now: datetime, policy: StoragePolicy
) -> StorageVerdict:
    """The group's storage verdict, as its quota check reaches it."""
    standing = group_standing(store, group, now)
    if standing is None:
        return StorageVerdict(StorageState.OK)
    return standing.storage(now, policy)


@dataclass(frozen=True)
class Span:
    """The page's range, and the periods it is shown in (for the axis labels)."""

    start: datetime
    end: datetime
    kind: PeriodKind

    def x(self, t: datetime) -> float:
        """Days since the start: the charts' x axis."""
        return round((t - self.start).total_seconds() / 86400, 4)

    def ticks(self) -> list[tuple[float, str]]:
        """Date labels along the x axis: about eight days, or each month."""
        if self.kind is PeriodKind.DAY:
            days = (self.end - self.start).days
            every = max(1, math.ceil(days / 8))
            return [
                (d, (self.start + timedelta(days=d)).strftime("%d %b"))
                for d in range(0, days, every)
            ]
        ticks, t = [], self.start
        while t < self.end:
            ticks.append((self.x(t), t.strftime("%b")))
            t = (t.replace(day=28) + timedelta(days=4)).replace(day=1)
        return ticks


def _chart(
    span: Span, points: list[datetime], drawn: list[Drawn], limit: int | None, frame: Frame
) -> LineChart:
    def gib(values: list[int]) -> tuple[tuple[float, float], ...]:
        return tuple((span.x(p), round(b / GIB, 3)) for p, b in zip(points, values, strict=True))

    lines = [Line(name, gib(values), style) for name, values, style in drawn]
    if limit is not None:
        lines.append(Line("Quota", ((0.0, limit / GIB), (span.x(span.end), limit / GIB)), "limit"))
    return line_chart(
        lines,
        (0.0, span.x(span.end)),
        x_ticks=span.ticks(),
        markers=[(span.x(points[-1]), "now")] if points else [],
        frame=frame,
    )


def _points(store: AccountingStore, span: Span) -> list[datetime]:
    step = default_step(span.start, span.end, CHART_POINTS)
    return series_points(span.start, span.end, step, store.clock())


def _summed(held: Held, by: int) -> dict[str, list[int]]:
    """The triples' series summed over their sources and by user (``by`` 0) or by
    group (1)."""
    summed: dict[str, list[int]] = {}
    for key, values in sorted(held.items()):
        found = summed.get(key[by])
        summed[key[by]] = (
            values if found is None else [a + b for a, b in zip(found, values, strict=True)]
        )
    return summed


def gathered(
    holdings: Iterable[Holding], by: Callable[[Holding], str]
) -> dict[str, list[Holding]]:
    """The holdings gathered by ``by`` (their user, or their group)."""
    found: dict[str, list[Holding]] = {}
    for h in holdings:
        found.setdefault(by(h), []).append(h)
    return found


def figure(name: str, label: str, held: list[Holding], **more: Any) -> Figure:
    """One figure of ``held``: the latest samples of one user in one group, a source each."""
    return Figure(
        name,
        label,
        sum(h.bytes for h in held),
        sum(h.file_count for h in held),
        max(h.measured_at for h in held),
        tuple(Source(h.source, h.bytes) for h in sorted(held, key=lambda h: h.source)),
        **more,
    )


def _latest(
    store: AccountingStore, users: Names = None, groups: Names = None
) -> tuple[list[Holding], list[Holding]]:
    """Each triple's latest sample ever (for the chart: a user moved to another group
    keeps their history in the old one), and those that still count now."""
    ever = store.latest_storage(users, groups, sample_max_age=timedelta(0))
    oldest = oldest_counted(store.clock(), store.storage_sample_max_age)
    return ever, [h for h in ever if oldest is None or h.measured_at >= oldest]


def _group_total(store: AccountingStore, group: str) -> int:
    return sum(h.bytes for h in store.latest_storage(groups={group}))


def _storage_limit(group: GroupInfo) -> int | None:
    return group.quotas.get(WHOLE_GROUP, Limits()).storage_bytes


def user_storage(
    store: AccountingStore,
    user: str,
    member_of: Iterable[str],
    span: Span,
    policy: StoragePolicy,
    frame: Frame,
) -> StorageSection:
    """``user``'s storage per group over ``span``, and the warnings of their groups (their
    hub groups, and any they hold space in) that are nearly full or over their quota."""
    now = store.clock()
    ever, counted = _latest(store, users={user})
    by_group = gathered(counted, lambda h: h.group)
    names = set(member_of) | {h.group for h in ever if h.group}
    infos = {g.name: g for g in store.groups(names)} if names else {}
    order = sorted(infos, key=lambda n: (group_label(n, infos[n].display_name), n))
    verdicts = {n: storage_verdict(store, infos[n], now, policy) for n in order}
    notices = tuple(n for n in map(notice, verdicts.values()) if n is not None)

    def label(group: str) -> str:
        info = infos.get(group)
        return group_label(group, info.display_name if info else "") if group else NO_GROUP

    figures = tuple(
        figure(
            group,
            label(group),
            by_group[group],
            group_bytes=_group_total(store, group) if group else None,
            group_limit=_storage_limit(infos[group]) if group in infos else None,
        )
        for group in sorted(by_group, key=lambda g: (g == "", label(g), g))
    )
    points = _points(store, span) if ever else []
    drawn: list[Drawn] = []
    if points:
        held = _summed(store.storage_holdings(points, {user}), 1)
        # The groups counted now first, as in the table, then those it no longer counts.
        shown = [f.name for f in figures] + sorted(
            set(held) - set(by_group), key=lambda g: (g == "", label(g), g)
        )
        drawn += [(label(g), held[g], f"series-{i}") for i, g in enumerate(shown) if g in held]
    if len(drawn) > 1:
        drawn.insert(0, ("Total", total_series([v for _, v, _ in drawn], len(points)), "total"))
    return StorageSection(
        tuple(points),
        tuple(drawn),
        _chart(span, points, drawn, None, frame) if points else None,
        figures,
        sum(f.bytes for f in figures),
        notices=notices,
        max_age=store.storage_sample_max_age,
    )


def group_storage(
    store: AccountingStore, group: GroupInfo, span: Span, policy: StoragePolicy, frame: Frame
) -> StorageSection:
    """``group``'s storage over ``span`` against its quota, its largest members, each
    member's latest figures (and their sources), and its warning if it is nearly full
    or over."""
    now = store.clock()
    ever, counted = _latest(store, groups={group.name})
    by_user = gathered(counted, lambda h: h.user)
    limit = _storage_limit(group)
    verdict = storage_verdict(store, group, now, policy)
    warned = notice(verdict)
    total = sum(h.bytes for held in by_user.values() for h in held)
    figures = sorted(
        (
            figure(
                user,
                user,
                held,
                share=100 * sum(h.bytes for h in held) / total if total else 0.0,
            )
            for user, held in by_user.items()
        ),
        key=lambda f: (-f.bytes, f.name),
    )
    notices = () if warned is None else (warned,)
    points = _points(store, span) if ever else []
    drawn: list[Drawn] = []
    if points:
        members = _summed(store.storage_holdings(points, None, {group.name}), 0)
        drawn.append(("Total", total_series(members.values(), len(points)), "total"))
        top = [f.name for f in figures[:TOP_MEMBERS] if f.name in members]
        drawn += [(user, members[user], f"series-{i}") for i, user in enumerate(top)]
    return StorageSection(
        tuple(points),
        tuple(drawn),
        _chart(span, points, drawn, limit, frame) if points else None,
        tuple(figures),
        total,
        limit,
        verdict,
        notices,
        store.storage_sample_max_age,
    )


__all__ = [
    "NO_GROUP",
    "NO_SAMPLES",
    "Figure",
    "Source",
    "Span",
    "StorageSection",
    "group_storage",
    "notice",
    "storage_verdict",
    "user_storage",
]
