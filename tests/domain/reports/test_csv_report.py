"""CSV rows of sessions and usage: tables of cases, a round trip, and formula guards."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eohub.domain.accounting.ledger import GIB, MS_PER_HOUR, Resources, Usage
from eohub.domain.accounting.session_record import SessionRecord, UsageRow
from eohub.domain.reports.csv_report import (
    SESSION_HEADER,
    USAGE_HEADER,
    cores_text,
    ratio_text,
    safe_cell,
    session_row,
    session_rows,
    usage_row,
)

T0 = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


def session(**changes: Any) -> SessionRecord:
    base: dict[str, Any] = {
        "id": 7,
        "user": "alice",
        "server": "analysis",
        "group": "climate",
        "resources": Resources.from_cpu("0.25", 2 * GIB, 1),
        "started_at": T0,
        "stopped_at": T0 + timedelta(hours=3),
        "end_reason": "idle",
        "profile": "eo-python",
        "image": "quay.io/eo/python:1",
    }
    base.update(changes)
    return SessionRecord(**base)


def cells(record: SessionRecord, now: datetime) -> dict[str, str]:
    return dict(zip(SESSION_HEADER, session_row(record, now), strict=True))


def test_a_stopped_session_row() -> None:
    row = cells(session(), T0 + timedelta(days=9))
    assert row == {
        "id": "7",
        "user": "alice",
        "server": "analysis",
        "group": "climate",
        "profile": "eo-python",
        "image": "quay.io/eo/python:1",
        "cpu": "0.25",
        "memory_bytes": str(2 * GIB),
        "gpus": "1",
        "started_at": "2026-01-31T23:00:00.000000Z",
        "stopped_at": "2026-02-01T02:00:00.000000Z",
        "end_reason": "idle",
        "core_hours": "0.750000",
        "memory_gib_hours": "6.000000",
        "gpu_hours": "3.000000",
        "idle_timeout": "",
        "max_duration": "",
    }


def test_the_first_versions_columns_keep_their_places() -> None:
    # Sheets that read the columns by place still work: the new ones come last.
    assert SESSION_HEADER[:15] == (
        "id",
        "user",
        "server",
        "group",
        "profile",
        "image",
        "cpu",
        "memory_bytes",
        "gpus",
        "started_at",
        "stopped_at",
        "end_reason",
        "core_hours",
        "memory_gib_hours",
        "gpu_hours",
    )
    assert SESSION_HEADER[15:] == ("idle_timeout", "max_duration")


@pytest.mark.parametrize(
    ("idle_timeout", "max_duration", "cells_written"),
    [
        (None, None, ("", "")),
        (3600, None, ("3600", "")),
        (None, 86_400, ("", "86400")),
        (1, 366 * 86_400, ("1", "31622400")),
    ],
)
def test_the_sessions_limits_are_whole_seconds(
    idle_timeout: int | None, max_duration: int | None, cells_written: tuple[str, str]
) -> None:
    row = cells(
        session(idle_timeout=idle_timeout, max_duration=max_duration, end_reason="max_duration"),
        T0,
    )
    assert (row["idle_timeout"], row["max_duration"]) == cells_written
    assert row["end_reason"] == "max_duration"


def test_an_open_session_counts_up_to_now() -> None:
    now = T0 + timedelta(minutes=20)
    row = cells(session(stopped_at=None, end_reason=None), now)
    assert (row["stopped_at"], row["end_reason"]) == ("", "")
    assert row["core_hours"] == "0.083333"  # 0.25 CPU x 1/3 h
    assert row["gpu_hours"] == "0.333333"


def test_times_in_any_offset_are_written_in_utc() -> None:
    start = datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    row = cells(session(started_at=start), T0)
    assert row["started_at"] == "2026-02-28T23:00:00.000000Z"


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("alice", "alice"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_cells_are_defused(text: str, cell: str) -> None:
    assert safe_cell(text) == cell


def test_every_text_column_is_guarded() -> None:
    record = session(user="=u", server="+s", group="-g", profile="@p", image="=i", end_reason="=r")
    row = cells(record, T0)
    for key in ("user", "server", "group", "profile", "image", "end_reason"):
        assert row[key].startswith("'"), key


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(1, 3), "0.333333"),
        (Fraction(2, 3), "0.666667"),
        (Fraction(1, 2_000_000), "0.000000"),  # half to even
        (Fraction(3, 2_000_000), "0.000002"),
        (Fraction(5), "5.000000"),
        (Fraction(0), "0.000000"),
    ],
)
def test_decimals_are_exact(value: Fraction, text: str) -> None:
    assert ratio_text(value.numerator, value.denominator, 6) == text


@pytest.mark.parametrize(
    ("millicores", "text"), [(250, "0.25"), (2000, "2"), (1, "0.001"), (1500, "1.5")]
)
def test_cores_drop_trailing_zeros(millicores: int, text: str) -> None:
    assert cores_text(millicores) == text


def test_a_usage_row() -> None:
    usage = Usage(cpu_mcore_ms=1500 * MS_PER_HOUR, mem_mib_ms=512 * MS_PER_HOUR, gpu_ms=0)
    row = usage_row(UsageRow(datetime(2026, 2, 1, tzinfo=UTC), "climate", "=bob", usage))
    assert dict(zip(USAGE_HEADER, row, strict=True)) == {
        "period_start": "2026-02-01T00:00:00.000000Z",
        "group": "climate",
        "user": "'=bob",
        "core_hours": "1.500000",
        "memory_gib_hours": "0.500000",
        "gpu_hours": "0.000000",
    }


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(user=text, server=text, group=text, profile=text, millicores=st.integers(1, 4_096_000))
def test_rows_survive_a_csv_round_trip(
    user: str, server: str, group: str, profile: str, millicores: int
) -> None:
    record = session(
        user=user, server=server, group=group, profile=profile, resources=Resources(millicores)
    )
    out = io.StringIO(newline="")
    csv.writer(out).writerows(session_rows([record], T0))
    (back,) = csv.reader(io.StringIO(out.getvalue(), newline=""))
    assert back == session_row(record, T0)
    assert len(back) == len(SESSION_HEADER)
    assert (back[1], back[3]) == (safe_cell(user), safe_cell(group))
    assert Fraction(back[6]) == Fraction(millicores, 1000)


@given(st.integers(0, 10**15), st.integers(1, 10**10))
def test_ratio_text_agrees_with_exact_decimal_rounding(numerator: int, denominator: int) -> None:
    exact = round(Fraction(numerator, denominator) * 10**6)  # Python rounds half to even
    assert ratio_text(numerator, denominator, 6) == f"{exact // 10**6}.{exact % 10**6:06d}"
