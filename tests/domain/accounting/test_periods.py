"""Accounting periods and allocation windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eohub.domain.accounting.periods import (
    Allocation,
    PeriodKind,
    next_period_start,
    period_start,
    periods_between,
)


def d(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "t", "start", "following"),
    [
        (PeriodKind.DAY, d(2026, 2, 28, 23, 59), d(2026, 2, 28), d(2026, 3, 1)),
        (PeriodKind.MONTH, d(2026, 12, 31, 23), d(2026, 12, 1), d(2027, 1, 1)),
        (PeriodKind.QUARTER, d(2026, 5, 17), d(2026, 4, 1), d(2026, 7, 1)),
        (PeriodKind.QUARTER, d(2026, 12, 1), d(2026, 10, 1), d(2027, 1, 1)),
        (PeriodKind.YEAR, d(2028, 2, 29), d(2028, 1, 1), d(2029, 1, 1)),
    ],
)
def test_period_bounds(
    kind: PeriodKind, t: datetime, start: datetime, following: datetime
) -> None:
    assert period_start(kind, t) == start
    assert next_period_start(kind, start) == following


def test_periods_between_clips_to_the_interval() -> None:
    got = list(periods_between(PeriodKind.MONTH, d(2026, 1, 20), d(2026, 3, 5)))
    assert got == [
        (d(2026, 1, 1), d(2026, 1, 20), d(2026, 2, 1)),
        (d(2026, 2, 1), d(2026, 2, 1), d(2026, 3, 1)),
        (d(2026, 3, 1), d(2026, 3, 1), d(2026, 3, 5)),
    ]


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("month", (d(2026, 3, 1), d(2026, 4, 1))),
        ("Quarter", (d(2026, 1, 1), d(2026, 4, 1))),
        ("year", (d(2026, 1, 1), d(2027, 1, 1))),
        ("rolling:1", (d(2026, 3, 15), d(2026, 3, 16))),
        ("rolling:30", (d(2026, 2, 14), d(2026, 3, 16))),
    ],
)
def test_allocation_windows(text: str, window: tuple[datetime, datetime]) -> None:
    allocation = Allocation.parse(text)
    assert allocation.window(d(2026, 3, 15, 12)) == window
    assert str(Allocation.parse(str(allocation))) == str(allocation)


def test_rolling_buckets_are_days() -> None:
    assert len(Allocation.parse("rolling:7").bucket_starts(d(2026, 3, 15, 12))) == 7
    assert Allocation.parse("month").bucket_starts(d(2026, 3, 15)) == [d(2026, 3, 1)]


@pytest.mark.parametrize(
    "text", ["week", "rolling:0", "rolling:-3", "rolling:9999", "rolling:x", ""]
)
def test_bad_allocations_are_refused_in_words(text: str) -> None:
    with pytest.raises(ValueError, match=r"allocation period|rolling window"):
        Allocation.parse(text)
