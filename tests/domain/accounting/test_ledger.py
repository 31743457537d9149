"""The ledger's arithmetic: exact units, period splits that add up, open sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.accounting.ledger import (
    GIB,
    Resources,
    Usage,
    session_usage,
    split_usage,
    usage_in_window,
)
from eohub.domain.accounting.periods import PeriodKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cpu", "memory", "gpus", "hours", "core_hours", "gib_hours", "gpu_hours"),
    [
        (0.25, 0, 0, 1, Fraction(1, 4), 0, 0),  # the LSST:UK service rounded this to 1
        (0.1, 0, 0, 3, Fraction(3, 10), 0, 0),
        (2, 4 * GIB, 1, Fraction(1, 2), 1, 2, Fraction(1, 2)),
        ("0.001", 0, 0, 1000, 1, 0, 0),
        (64, 512 * GIB, 8, 24 * 31, 64 * 744, 512 * 744, 8 * 744),
    ],
)
def test_exact_usage(cpu, memory, gpus, hours, core_hours, gib_hours, gpu_hours) -> None:  # type: ignore[no-untyped-def]
    usage = session_usage(
        Resources.from_cpu(cpu, memory, gpus), T0, T0 + timedelta(hours=float(hours))
    )
    assert usage.core_hours == core_hours
    assert usage.memory_gib_hours == gib_hours
    assert usage.gpu_hours == gpu_hours


def test_a_stop_at_or_before_the_start_uses_nothing() -> None:
    r = Resources.from_cpu(1)
    assert session_usage(r, T0, T0) == Usage()
    assert session_usage(r, T0, T0 - timedelta(seconds=1)) == Usage()
    assert list(split_usage(r, T0, T0, PeriodKind.DAY)) == []


def test_a_session_across_a_year_end_splits_in_every_kind() -> None:
    start = datetime(2025, 12, 31, 22, tzinfo=UTC)
    r = Resources.from_cpu(1)
    for kind in (PeriodKind.DAY, PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR):
        pieces = list(split_usage(r, start, start + timedelta(hours=4), kind))
        assert [p.core_hours for _, p in pieces] == [2, 2]
        assert pieces[1][0] == datetime(2026, 1, 1, tzinfo=UTC)


def test_times_in_other_zones_are_read_as_instants() -> None:
    cet = timezone(timedelta(hours=1))
    start = datetime(2026, 2, 1, 0, 30, tzinfo=cet)  # 2026-01-31 23:30 UTC
    pieces = list(
        split_usage(Resources.from_cpu(1), start, start + timedelta(hours=1), PeriodKind.MONTH)
    )
    assert [(p.month, u.core_hours) for p, u in pieces] == [
        (1, Fraction(1, 2)),
        (2, Fraction(1, 2)),
    ]


def test_usage_in_a_window_clips_both_ends() -> None:
    r = Resources.from_cpu(2)
    window = (T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    assert usage_in_window(r, T0, T0 + timedelta(hours=5), window).core_hours == 2
    assert usage_in_window(r, T0 + timedelta(hours=3), T0 + timedelta(hours=5), window) == Usage()


times = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
resources = st.builds(
    Resources,
    millicores=st.integers(1, 256_000),
    memory_bytes=st.integers(0, 2**42),
    gpus=st.integers(0, 16),
)


@given(resources, times, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)))
def test_the_sum_over_periods_equals_the_whole(
    r: Resources, start: datetime, length: timedelta
) -> None:
    whole = session_usage(r, start, start + length)
    for kind in PeriodKind:
        total = sum((u for _, u in split_usage(r, start, start + length, kind)), Usage())
        assert total == whole


@given(
    resources, times, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=90)), times
)
def test_windows_partition_the_session(
    r: Resources, start: datetime, length: timedelta, cut: datetime
) -> None:
    end = start + length
    before = usage_in_window(r, start, end, (datetime(2000, 1, 1, tzinfo=UTC), cut))
    after = usage_in_window(r, start, end, (cut, datetime(2100, 1, 1, tzinfo=UTC)))
    assert before + after == session_usage(r, start, end)
