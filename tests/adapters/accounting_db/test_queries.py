"""The store's shared statements and row helpers: times, record rows, window totals."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine, insert

from eohub.adapters.accounting_db.models import UsageTotal
from eohub.adapters.accounting_db.queries import (
    aware_utc,
    naive_utc,
    record,
    usage_order,
    window_totals,
)
from eohub.domain.accounting.ledger import Resources

NAIVE = datetime(2026, 4, 1, 12, 30)
AWARE = NAIVE.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "naive", "aware"),
    [
        (NAIVE, NAIVE, AWARE),
        ("2026-04-01 12:30:00", NAIVE, AWARE),  # SQLite hands back the stored text
        ("2026-04-01T12:30:00.000000", NAIVE, AWARE),
        (None, None, None),
    ],
)
def test_raw_times(value: datetime | str | None, naive: datetime | None, aware: datetime) -> None:
    assert naive_utc(value) == naive
    if value is not None:
        assert aware_utc(value) == aware


def test_usage_rows_sort_by_period_then_group_then_user() -> None:
    rows = [
        SimpleNamespace(period_start=AWARE, group="b", user="a"),
        SimpleNamespace(period_start=AWARE, group="a", user="z"),
        SimpleNamespace(period_start=AWARE.replace(day=2), group="a", user="a"),
        SimpleNamespace(period_start=AWARE, group="a", user=""),
    ]
    ordered = sorted(rows, key=usage_order)  # type: ignore[arg-type]
    assert [(r.group, r.user) for r in ordered] == [("a", ""), ("a", "z"), ("b", "a"), ("a", "a")]


def test_record_builds_a_session_record() -> None:
    row = SimpleNamespace(
        id=7,
        user="ada",
        server="gpu",
        group="climate",
        millicores=500,
        memory_bytes=2**30,
        gpus=1,
        started_at=AWARE,
        stopped_at=None,
        end_reason=None,
        profile="lab",
        image="jupyter/base",
        stopped_by="carol",
        profile_name="Python lab",
        stop_requested_at=AWARE,
        idle_timeout=1800,
        max_duration=None,
        stop_reason="idle",
    )
    found = record(row)  # type: ignore[arg-type]
    assert (found.id, found.user, found.server, found.group) == (7, "ada", "gpu", "climate")
    assert found.resources == Resources(500, 2**30, 1)
    assert (found.started_at, found.stopped_at, found.profile) == (AWARE, None, "lab")
    assert (found.stopped_by, found.profile_name) == ("carol", "Python lab")
    assert found.stop_requested_at == AWARE
    assert (found.idle_timeout, found.max_duration, found.stop_reason) == (1800, None, "idle")


def total(
    user: str, bucket: int, cpu: int, kind: str = "day", mem: int | None = None
) -> dict[str, object]:
    return {
        "group": "climate",
        "user": user,
        "kind": kind,
        "period_start": AWARE.replace(day=bucket),
        "cpu_mcore_ms": cpu,
        "mem_mib_ms": 2 * cpu if mem is None else mem,
        "gpu_ms": 0,
    }


def keys(buckets: list[int], users: list[str]) -> dict[str, object]:
    return {
        "group": "climate",
        "users": users,
        "kind": "day",
        "buckets": [AWARE.replace(day=b) for b in buckets],
    }


def test_window_totals_sum_the_buckets_of_the_window(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as c:
        c.execute(
            insert(UsageTotal),
            [
                total("ada", 1, 10),
                total("ada", 2, 5),
                total("ada", 3, 100),
                total("bob", 1, 1),
                total("ada", 1, 1000, kind="month"),
            ],
        )
    with sqlite_engine.connect() as c:
        assert sorted(window_totals(c, keys([1, 2], ["ada", "bob"]))) == [
            ("ada", 15, 30, 0),
            ("bob", 1, 2, 0),
        ]
        assert window_totals(c, keys([1], ["carl"])) == []


def test_window_totals_past_64_bits_are_summed_exactly_on_sqlite(sqlite_engine: Engine) -> None:
    big = 2**62
    with sqlite_engine.begin() as c:
        c.execute(insert(UsageTotal), [total("ada", d, big, mem=1) for d in (1, 2, 3)])
    with sqlite_engine.connect() as c:
        assert window_totals(c, keys([1, 2, 3], ["ada"])) == [("ada", 3 * big, 3, 0)]
