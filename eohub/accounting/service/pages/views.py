"""What the usage pages show, gathered from the store into plain objects for templates.

Each page is one function (:func:`my_usage`, :func:`group_report`, :func:`all_groups`)
that reads the store and returns a frozen dataclass; the handlers in
:mod:`eohub.accounting.service.pages.handlers` decide who may see what, and the
templates only lay the objects out. Budgets and their notices are worded in
:mod:`eohub.accounting.service.pages.budgets`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from eohub.accounting.service.pages.budgets import (
    GroupBudget,
    Meter,
    Notice,
    group_budget,
    group_label,
    group_standing,
    num,
    undefined_budget,
)
from eohub.accounting.service.pages.session_view import SessionRow, session_row
from eohub.adapters.accounting_db.groups import GroupInfo
from eohub.adapters.accounting_db.store import AccountingStore, UsageRow
from eohub.domain.accounting.ledger import Usage
from eohub.domain.accounting.periods import (
    PeriodKind,
    next_period_start,
    period_start,
    periods_between,
)
from eohub.domain.accounting.quota import EACH_MEMBER, WHOLE_GROUP, Limits
from eohub.domain.accounting.session_record import SessionRecord
from eohub.domain.reports.charts import (
    BarChart,
    Frame,
    Line,
    LineChart,
    Series,
    keep_top,
    line_chart,
    stacked_bars,
)

SESSIONS_PER_PAGE, TOP_USERS = 25, 10
#: A group report lists this many of its latest stops, among the sessions of the group
#: recorded latest (``RECENT_SCAN``): enough to see why servers stopped, not a history.
RECENT_STOPS, RECENT_SCAN = 10, 50


# -- ranges and labels -------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """``[start, end)`` split into periods of ``kind``."""

    kind: PeriodKind
    start: datetime
    end: datetime

    @property
    def periods(self) -> list[datetime]:
        return [p for p, _, _ in periods_between(self.kind, self.start, self.end)]


def recent_range(kind: PeriodKind, now: datetime, count: int) -> Range:
    """The ``count`` periods of ``kind`` up to and including the current one."""
    current = period_start(kind, now)
    start = current
    for _ in range(count - 1):
        start = period_start(kind, start - timedelta(days=1))
    return Range(kind, start, next_period_start(kind, current))


def period_label(kind: PeriodKind, t: datetime) -> str:
    if kind is PeriodKind.DAY:
        return t.strftime("%d %b")
    if kind is PeriodKind.MONTH:
        return t.strftime("%b %Y")
    if kind is PeriodKind.QUARTER:
        return f"Q{(t.month - 1) // 3 + 1} {t.year}"
    return str(t.year)


# -- usage over time ---------------------------------------------------------------
@dataclass(frozen=True)
class History:
    """Core-hours per period, one series per group or user: a chart and its table."""

    range: Range
    labels: tuple[str, ...]
    series: tuple[Series, ...]  # what the chart draws (the largest, plus "Other")
    totals: dict[str, Usage]  # every name's whole usage over the range
    chart: BarChart

    @property
    def empty(self) -> bool:
        return not self.totals

    def to_json(self) -> dict[str, Any]:
        """The chart's data, embedded in the page for scripts and tests."""
        return {
            "period": self.range.kind.value,
            "labels": list(self.labels),
            "series": [{"name": s.name, "core_hours": list(s.values)} for s in self.series],
        }


def history(
    rows: Iterable[UsageRow], rng: Range, key: Callable[[UsageRow], str], frame: Frame
) -> History:
    periods = rng.periods
    index = {p: i for i, p in enumerate(periods)}
    per_name: dict[str, list[Fraction]] = defaultdict(lambda: [Fraction(0)] * len(periods))
    totals: dict[str, Usage] = defaultdict(Usage)
    for row in rows:
        name = key(row)
        if row.period_start in index:
            per_name[name][index[row.period_start]] += row.usage.core_hours
        totals[name] += row.usage
    series = keep_top(
        [
            Series(name, tuple(round(float(v), 3) for v in per_name[name]))
            for name in sorted(per_name)
        ]
    )
    labels = tuple(period_label(rng.kind, p) for p in periods)
    return History(rng, labels, tuple(series), dict(totals), stacked_bars(labels, series, frame))


# -- my usage --------------------------------------------------------------------------
@dataclass(frozen=True)
class UsagePage:
    user: str
    history: History
    budgets: tuple[GroupBudget, ...]
    sessions: tuple[SessionRow, ...]
    next_before: int | None
    before: int | None
    labels: dict[str, str] = field(default_factory=dict)  # group -> its display name
    running: tuple[SessionRow, ...] = ()  # every open session, whichever page shows it

    @property
    def notices(self) -> list[Notice]:
        return [n for b in self.budgets for n in b.notices]


def my_usage(
    store: AccountingStore,
    user: str,
    member_of: Iterable[str],
    rng: Range,
    before: int | None,
    frame: Frame,
) -> UsagePage:
    """``user``'s usage, and the budgets of the groups they may charge or have charged.

    Of ``member_of`` (the user's hub groups), those with an allocation are chargeable:
    their budgets show before any use. A group charged without one shows with a warning.
    """
    now = store.clock()
    rows = store.usage(rng.kind, rng.start, rng.end, user=user)
    hist = history(rows, rng, lambda r: r.group, frame)
    used = set(hist.totals)
    running = store.sessions(users={user}, open_only=True, limit=100)
    used |= {s.group for s in running}
    records = store.sessions(users={user}, before_id=before, limit=SESSIONS_PER_PAGE)
    defined = {g.name: g for g in store.groups(used | set(member_of) | {s.group for s in records})}
    shown = used | (set(member_of) & set(defined))
    budgets = tuple(
        group_budget(store, user, defined[name], now, as_member=True)
        if name in defined
        else undefined_budget(name)
        for name in sorted(shown, key=lambda n: (_label(defined, n), n))
    )
    return UsagePage(
        user,
        hist,
        budgets,
        tuple(session_row(s, now) for s in records),
        records[-1].id if len(records) == SESSIONS_PER_PAGE else None,
        before,
        {name: info.display_name for name, info in defined.items() if info.display_name},
        tuple(session_row(s, now) for s in running),
    )


def _label(defined: dict[str, GroupInfo], name: str) -> str:
    return group_label(name, defined[name].display_name if name in defined else "")


# -- a PI's group ------------------------------------------------------------------
@dataclass(frozen=True)
class MemberRow:
    user: str
    used: Usage
    share: float  # percent of the group's core-hours this window
    limit: float | None  # the member's core-hour quota
    open_servers: int

    @property
    def meter(self) -> Meter:
        return Meter("core-hours", float(self.used.core_hours), self.limit)


@dataclass(frozen=True)
class QuotaRow:
    owner: str  # "" (group), "*" (each member) or a user name
    limits: Limits

    @property
    def label(self) -> str:
        if self.owner == WHOLE_GROUP:
            return "The whole group"
        if self.owner == EACH_MEMBER:
            return "Each member"
        return self.owner


@dataclass(frozen=True)
class GroupReport:
    info: GroupInfo
    budget: GroupBudget
    burn_down: LineChart
    burn_down_data: dict[str, Any]
    members: tuple[MemberRow, ...]
    history: History
    quotas: tuple[QuotaRow, ...]
    running: tuple[SessionRow, ...]
    stopped: tuple[SessionRow, ...] = ()  # recent stops, with why (see recent_stops)

    @property
    def label(self) -> str:
        """The group's name for people: its display name, else its name."""
        return group_label(self.info.name, self.info.display_name)

    @property
    def has_limit(self) -> bool:
        return self.info.quotas.get(WHOLE_GROUP, Limits()).core_hours is not None


def burn_down(
    store: AccountingStore, group: GroupInfo, now: datetime, frame: Frame
) -> tuple[LineChart, dict[str, Any]]:
    """Core-hours left in the group's current window, day by day, against an even pace.

    Without a group core-hour limit the chart shows the cumulative use instead.
    """
    w0, w1 = group.allocation.window(now)
    limit = num(group.quotas.get(WHOLE_GROUP, Limits()).core_hours)
    days = store.usage(PeriodKind.DAY, w0, w1, groups={group.name})
    per_day: dict[datetime, Fraction] = defaultdict(Fraction)
    for row in days:
        per_day[row.period_start] += row.usage.core_hours

    def x(t: datetime) -> float:
        return round((t - w0).total_seconds() / 86400, 4)

    span = x(w1)
    cumulative, used_points = Fraction(0), [(0.0, 0.0)]
    today = period_start(PeriodKind.DAY, now)
    for day, _, day_end in periods_between(PeriodKind.DAY, w0, min(today, w1)):
        cumulative += per_day.get(day, Fraction(0))
        used_points.append((x(day_end), float(cumulative)))
    total = sum(per_day.values(), Fraction(0))
    if now < w1:
        used_points.append((x(now), float(total)))
    lines: list[Line]
    if limit is not None:
        left = tuple((px, round(limit - used, 3)) for px, used in used_points)
        lines = [
            Line("Limit", ((0.0, limit), (span, limit)), "limit"),
            Line("Even pace", ((0.0, limit), (span, 0.0)), "pace"),
            Line("Budget left", left, "left"),
        ]
    else:
        lines = [Line("Used", tuple((px, round(u, 3)) for px, u in used_points), "left")]
    step = max(1, round(span / 6))
    ticks = [
        (x(w0 + timedelta(days=d)), (w0 + timedelta(days=d)).strftime("%d %b"))
        for d in range(0, int(span) + 1, step)
    ]
    chart = line_chart(lines, (0.0, span), x_ticks=ticks, markers=[(x(now), "now")], frame=frame)
    data = {
        "window": [w0.isoformat(), w1.isoformat()],
        "limit_core_hours": limit,
        "lines": [{"name": line.name, "points": list(line.points)} for line in lines],
    }
    return chart, data


def group_report(
    store: AccountingStore, group: GroupInfo, viewer: str, rng: Range, frames: tuple[Frame, Frame]
) -> GroupReport:
    now = store.clock()
    w0, w1 = group.allocation.window(now)
    window_rows = store.usage(group.allocation.kind, w0, w1, groups={group.name}, by_user=True)
    used: dict[str, Usage] = defaultdict(Usage)
    for row in window_rows:
        used[row.user] += row.usage
    running = store.sessions(groups={group.name}, open_only=True, limit=200)
    open_count: dict[str, int] = defaultdict(int)
    for s in running:
        open_count[s.user] += 1
    named = {o for o in group.quotas if o not in (WHOLE_GROUP, EACH_MEMBER)}
    total_core = sum((u.core_hours for u in used.values()), Fraction(0))
    each = group.quotas.get(EACH_MEMBER)
    members = tuple(
        MemberRow(
            user,
            used.get(user, Usage()),
            float(100 * used[user].core_hours / total_core) if total_core and user in used else 0,
            num(group.quotas.get(user, each or Limits()).core_hours),
            open_count.get(user, 0),
        )
        for user in sorted(set(used) | named | set(open_count))
    )
    months = store.usage(rng.kind, rng.start, rng.end, groups={group.name}, by_user=True)
    chart, data = burn_down(store, group, now, frames[1])
    return GroupReport(
        group,
        group_budget(store, viewer, group, now, as_member=False),
        chart,
        data,
        tuple(sorted(members, key=lambda m: (-m.used.cpu_mcore_ms, m.user))),
        history(months, rng, lambda r: r.user, frames[0]),
        tuple(QuotaRow(o, lim) for o, lim in sorted(group.quotas.items())),
        tuple(session_row(s, now) for s in running),
        tuple(session_row(s, now) for s in recent_stops(store, group.name)),
    )


def recent_stops(store: AccountingStore, group: str) -> list[SessionRecord]:
    """The group's latest stops, latest first: the last :data:`RECENT_STOPS` closed
    sessions among those recorded latest, and the last as many that a PI or an admin
    stopped (so a busy group does not hide them)."""
    latest = [s for s in store.sessions(groups={group}, limit=RECENT_SCAN) if s.stopped_at]
    by_people = store.sessions(groups={group}, stopped_by_someone=True, limit=RECENT_STOPS)
    closed = {s.id: s for s in (*latest[:RECENT_STOPS], *by_people)}
    return sorted(
        closed.values(), key=lambda s: (s.stopped_at or s.started_at, s.id), reverse=True
    )


# -- every group (admins) -------------------------------------------------------------
@dataclass(frozen=True)
class GroupTotal:
    name: str
    info: GroupInfo | None  # None: charged in the range, but not set up in accounting
    used: Usage
    window_used: Meter | None  # core-hours this allocation window, against the limit
    open_servers: int


@dataclass(frozen=True)
class UserTotal:
    user: str
    used: Usage
    groups: tuple[str, ...]


@dataclass(frozen=True)
class AllPage:
    history: History
    groups: tuple[GroupTotal, ...]
    total: Usage
    top_users: tuple[UserTotal, ...]
    user_count: int
    open_servers: int


def all_groups(store: AccountingStore, rng: Range, frame: Frame) -> AllPage:
    now = store.clock()
    hist = history(store.usage(rng.kind, rng.start, rng.end), rng, lambda r: r.group, frame)
    open_count: dict[str, int] = defaultdict(int)
    for s, _ in store.open_sessions():
        open_count[s.group] += 1
    infos = {g.name: g for g in store.groups()}
    rows = []
    for name in sorted(set(infos) | set(hist.totals)):
        info = infos.get(name)
        meter = None
        if info is not None:
            standing = group_standing(store, info, now)
            if standing is not None:
                meter = Meter(
                    "core-hours",
                    float(standing.used.core_hours),
                    num(standing.limits.core_hours),
                )
        rows.append(
            GroupTotal(name, info, hist.totals.get(name, Usage()), meter, open_count.get(name, 0))
        )
    by_user: dict[str, Usage] = defaultdict(Usage)
    user_groups: dict[str, set[str]] = defaultdict(set)
    for row in store.usage(rng.kind, rng.start, rng.end, by_user=True):
        by_user[row.user] += row.usage
        user_groups[row.user].add(row.group)
    top = sorted(by_user, key=lambda u: (-by_user[u].cpu_mcore_ms, u))[:TOP_USERS]
    return AllPage(
        hist,
        tuple(rows),
        sum(hist.totals.values(), Usage()),
        tuple(UserTotal(u, by_user[u], tuple(sorted(user_groups[u]))) for u in top),
        len(by_user),
        sum(open_count.values()),
    )


__all__ = [
    "AllPage",
    "GroupReport",
    "History",
    "Range",
    "SessionRow",
    "UsagePage",
    "all_groups",
    "group_report",
    "my_usage",
    "period_label",
    "recent_range",
    "recent_stops",
    "session_row",
]
