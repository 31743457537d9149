"""XDMoD's storage JSON, checked against ``usage.schema.json``'s rules."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.reports.xdmod_storage import (
    StorageOptions,
    one_per_measurement,
    storage_record,
    storage_records,
)

T0 = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
names = st.text(
    alphabet=st.one_of(st.sampled_from("|\n\r\t%=+-@ ,[]._~\\\"'"), st.characters(codec="utf-8")),
    min_size=1,
    max_size=300,
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
starts = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1))

STORAGE_REQUIRED = {"resource", "mountpoint", "user", "pi", "dt", "file_count", "logical_usage"}
STORAGE_OPTIONAL = {"physical_usage", "soft_threshold", "hard_threshold"}


def check_storage(entry: dict[str, Any]) -> None:
    assert STORAGE_REQUIRED <= set(entry) <= STORAGE_REQUIRED | STORAGE_OPTIONAL
    assert len(entry["resource"]) <= 200
    assert len(entry["mountpoint"]) <= 255
    assert len(entry["user"]) <= 30
    assert len(entry["pi"]) <= 30
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", entry["dt"])
    datetime.fromisoformat(entry["dt"])
    for key in ("file_count", "logical_usage", *STORAGE_OPTIONAL):
        if key in entry:
            assert type(entry[key]) is int
            assert 0 <= entry[key] <= 2**64 - 1


def test_storage_records_follow_the_schema() -> None:
    options = StorageOptions(
        resource="eohub-home", mountpoint="/home", hard_thresholds={"climate": 10 * GIB}
    )
    at = datetime(2026, 3, 1, 0, 30, 15, 500, tzinfo=timezone(timedelta(hours=1)))
    entries = storage_records(
        [
            StorageSample("alice", "climate", 5 * GIB, at, file_count=1200),
            StorageSample("bob", "ocean", 0, at),
            StorageSample("c" * 40, "g|x", 1, datetime(2026, 3, 1)),
        ],
        options,
    )
    for entry in entries:
        check_storage(entry)
    assert entries[0] == {
        "resource": "eohub-home",
        "mountpoint": "/home",
        "user": "alice",
        "pi": "climate",
        "dt": "2026-02-28T23:30:15Z",
        "file_count": 1200,
        "logical_usage": 5 * GIB,
        "hard_threshold": 10 * GIB,
    }
    assert "hard_threshold" not in entries[1]
    assert entries[2]["pi"] == "g%7Cx"
    assert len(entries[2]["user"]) == 30


@settings(max_examples=200, deadline=None)
@given(
    user=names,
    group=names,
    size=st.integers(min_value=0, max_value=2**64 - 1),
    files=st.integers(min_value=0, max_value=2**40),
    at=starts,
    offset=offsets,
)
def test_any_storage_sample_fits_the_schema(
    user: str, group: str, size: int, files: int, at: datetime, offset: timezone
) -> None:
    measured = at.replace(tzinfo=UTC).astimezone(offset)
    entry = storage_record(
        StorageSample(user, group, size, measured, files),
        StorageOptions(resource="store", hard_thresholds={group: None}),
    )
    check_storage(entry)
    assert entry["dt"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"resource": "bad name"}, "resource"),
        ({"resource": "ok", "mountpoint": "home"}, "mountpoint"),
        ({"resource": "ok", "mountpoint": "/a|b"}, "mountpoint"),
        ({"resource": "ok", "hard_thresholds": {"g": -1}}, "hard_thresholds"),
    ],
)
def test_bad_storage_options_fail(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StorageOptions(**options)


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="bytes"):
        storage_record(StorageSample("a", "g", -1, T0), StorageOptions(resource="s"))


def _s(user: str, group: str, size: int, hour: int, files: int = 0, source: str = "") -> Any:
    return StorageSample(user, group, size, T0 + timedelta(hours=hour), files, source)


@pytest.mark.parametrize(
    ("case", "samples", "merged"),
    [
        ("nothing", [], []),
        ("one", [_s("a", "g", 5, 0, 1, "/home")], [_s("a", "g", 5, 0, 1)]),
        (
            "one round, two sources",
            [_s("a", "g", 5, 0, 1, "/home"), _s("a", "g", 7, 0, 2, "/scratch")],
            [_s("a", "g", 12, 0, 3)],
        ),
        (
            "other users and groups stay apart, in their order",
            [
                _s("a", "g", 5, 0, 1, "/home"),
                _s("b", "g", 1, 0, 1, "/home"),
                _s("a", "", 2, 0, 1, "/home"),
                _s("a", "g", 7, 0, 2, "/scratch"),
            ],
            [_s("a", "g", 12, 0, 3), _s("b", "g", 1, 0, 1), _s("a", "", 2, 0, 1)],
        ),
        (
            "other times stay apart",
            [_s("a", "g", 5, 0, 1, "/home"), _s("a", "g", 7, 1, 2, "/scratch")],
            [_s("a", "g", 5, 0, 1), _s("a", "g", 7, 1, 2)],
        ),
    ],
)
def test_one_record_per_user_group_and_time(case: str, samples: Any, merged: Any) -> None:
    assert list(one_per_measurement(samples)) == merged, case


def test_the_records_sum_a_rounds_sources() -> None:
    options = StorageOptions("store")
    records = storage_records(
        [_s("a", "g", 5 * GIB, 0, 1, "/home"), _s("a", "g", 7, 0, 2, "pvc:hub/a")], options
    )
    assert [(r["logical_usage"], r["file_count"]) for r in records] == [(5 * GIB + 7, 3)]
