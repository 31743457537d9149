"""Quota decisions: every limit, in words, with the budget left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from eohub.domain.accounting.ledger import GIB, MS_PER_HOUR, Resources, Usage
from eohub.domain.accounting.quota import Limits, Running, Standing, budget_left, decide

ONE_CORE = Resources.from_cpu(1)
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def used(core_hours: float = 0, gpu_hours: float = 0, gib_hours: float = 0) -> Usage:
    return Usage(
        int(core_hours * 1000 * MS_PER_HOUR),
        int(gib_hours * 1024 * MS_PER_HOUR),
        int(gpu_hours * MS_PER_HOUR),
    )


CASES = [
    ("no limits", [Standing("group g", Limits())], ONE_CORE, True, "Within quota."),
    (
        "budget left",
        [Standing("group g", Limits(core_hours=Fraction(10)), used(9.5))],
        ONE_CORE,
        True,
        "",
    ),
    (
        "budget spent",
        [Standing("group g", Limits(core_hours=Fraction(10)), used(10))],
        ONE_CORE,
        False,
        "core-hours budget of group g is spent: 10 of 10",
    ),
    (
        "GPU budget spent, CPU request",
        [Standing("group g", Limits(gpu_hours=Fraction(1)), used(gpu_hours=2))],
        ONE_CORE,
        True,
        "",
    ),
    (
        "GPU budget spent, GPU request",
        [Standing("group g", Limits(gpu_hours=Fraction(1)), used(gpu_hours=2))],
        Resources(1000, 0, 1),
        False,
        "GPU-hours budget",
    ),
    (
        "memory budget spent",
        [Standing("group g", Limits(memory_gib_hours=Fraction(5)), used(gib_hours=5))],
        Resources(1000, GIB),
        False,
        "memory GiB-hours",
    ),
    (
        "server limit",
        [Standing("user a in group g", Limits(max_servers=2), running=Running(2, 2000))],
        ONE_CORE,
        False,
        "User a in group g already runs 2 of at most 2 servers",
    ),
    (
        "core limit",
        [Standing("group g", Limits(max_cores=Fraction(4)), running=Running(3, 3500))],
        ONE_CORE,
        False,
        "at most 4 cores at once; 3.5 are in use and 1 more",
    ),
    (
        "core limit exactly met",
        [Standing("group g", Limits(max_cores=Fraction(4)), running=Running(3, 3000))],
        ONE_CORE,
        True,
        "",
    ),
    (
        "storage over, no grace",
        [Standing("group g", Limits(storage_bytes=GIB), storage_bytes=2 * GIB)],
        ONE_CORE,
        False,
        "Group g stores 2.0 GiB, over its storage quota of 1 GiB since 2026-12-06 10:00 UTC.",
    ),
    (
        "storage exactly at the quota",
        [Standing("group g", Limits(storage_bytes=GIB), storage_bytes=GIB)],
        ONE_CORE,
        True,
        "Within quota.",
    ),
    (
        "user scope denies though group allows",
        [
            Standing("group g", Limits(core_hours=Fraction(100)), used(1)),
            Standing("user a in group g", Limits(core_hours=Fraction(1)), used(1)),
        ],
        ONE_CORE,
        False,
        "user a in group g is spent",
    ),
]


@pytest.mark.parametrize(
    ("name", "standings", "request_", "allowed", "reason"), CASES, ids=[c[0] for c in CASES]
)
def test_decisions(
    name: str, standings: list[Standing], request_: Resources, allowed: bool, reason: str
) -> None:
    # No storage grace: a group over its storage quota is refused at once (the grace is
    # tested below).
    decision = decide(request_, standings, now=NOW, storage_grace=timedelta(0))
    assert decision.allowed is allowed
    assert reason in decision.reason


def test_budget_left_is_the_tightest_and_never_negative() -> None:
    standings = [
        Standing("group g", Limits(core_hours=Fraction(100)), used(40)),
        Standing(
            "user a in group g", Limits(core_hours=Fraction(10), gpu_hours=Fraction(2)), used(12)
        ),
    ]
    assert budget_left(standings) == {
        "core_hours": 0.0,
        "gpu_hours": 2.0,
        "memory_gib_hours": None,
    }
    assert budget_left([]) == {"core_hours": None, "gpu_hours": None, "memory_gib_hours": None}
