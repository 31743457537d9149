"""Accounting periods: calendar month, quarter and year, daily buckets, rolling windows.

All times are timezone-aware UTC :class:`~datetime.datetime` objects. A period is the
half-open interval ``[start, end)``. The ledger keeps running totals per calendar period
and per day; a rolling window of N days is the sum of its N daily buckets, so a quota
check reads a bounded number of rows however many sessions exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class PeriodKind(StrEnum):
    """The granularity of a running total."""

    DAY = "day"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


#: The period kinds the ledger keeps running totals for.
LEDGER_KINDS: tuple[PeriodKind, ...] = tuple(PeriodKind)

_ROLLING = re.compile(r"^rolling:([1-9][0-9]{0,3})$")
MAX_ROLLING_DAYS = 3660


def ensure_utc(t: datetime) -> datetime:
    """``t`` in UTC; a naive datetime is taken to be UTC already (as SQL returns it)."""
    if t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def period_start(kind: PeriodKind, t: datetime) -> datetime:
    """The start of the period of ``kind`` that contains ``t``."""
    t = ensure_utc(t)
    if kind is PeriodKind.DAY:
        return datetime(t.year, t.month, t.day, tzinfo=UTC)
    if kind is PeriodKind.MONTH:
        return datetime(t.year, t.month, 1, tzinfo=UTC)
    if kind is PeriodKind.QUARTER:
        return datetime(t.year, 3 * ((t.month - 1) // 3) + 1, 1, tzinfo=UTC)
    return datetime(t.year, 1, 1, tzinfo=UTC)


def next_period_start(kind: PeriodKind, start: datetime) -> datetime:
    """The start of the period after the one starting at ``start``."""
    if kind is PeriodKind.DAY:
        return start + timedelta(days=1)
    months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[kind]
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def periods_between(
    kind: PeriodKind, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, datetime]]:
    """Yield ``(period_start, overlap_start, overlap_end)`` per period ``[start, end)`` meets."""
    start, end = ensure_utc(start), ensure_utc(end)
    current = period_start(kind, start)
    while current < end:
        following = next_period_start(kind, current)
        yield current, max(start, current), min(end, following)
        current = following


@dataclass(frozen=True)
class Allocation:
    """How a group's budget renews: a calendar period, or a rolling window of N days.

    ``rolling_days`` is set only for a rolling window; it then covers today (UTC) and the
    ``rolling_days - 1`` days before it.
    """

    kind: PeriodKind
    rolling_days: int | None = None

    @classmethod
    def parse(cls, text: str) -> Allocation:
        """Parse ``month``, ``quarter``, ``year`` or ``rolling:N`` (N days, 1..3660)."""
        text = text.strip().lower()
        match = _ROLLING.match(text)
        if match:
            days = int(match.group(1))
            if days > MAX_ROLLING_DAYS:
                raise ValueError(f"a rolling window is at most {MAX_ROLLING_DAYS} days")
            return cls(PeriodKind.DAY, days)
        if text in ("month", "quarter", "year"):
            return cls(PeriodKind(text))
        raise ValueError(
            f"unknown allocation period {text!r}: use month, quarter, year or rolling:N"
        )

    def __str__(self) -> str:
        if self.rolling_days is not None:
            return f"rolling:{self.rolling_days}"
        return self.kind.value

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The ``[start, end)`` of the budget period that contains ``now``."""
        now = ensure_utc(now)
        if self.rolling_days is not None:
            today = period_start(PeriodKind.DAY, now)
            return today - timedelta(days=self.rolling_days - 1), today + timedelta(days=1)
        start = period_start(self.kind, now)
        return start, next_period_start(self.kind, start)

    def bucket_starts(self, now: datetime) -> list[datetime]:
        """The running-total buckets (of kind :attr:`kind`) that make up the current window."""
        start, end = self.window(now)
        return [p for p, _, _ in periods_between(self.kind, start, end)]
