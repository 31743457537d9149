"""What a quota answer's standing tells the launch form: the group's display name and
the limit of each budget left ("150 core-hours left of 200")."""

from __future__ import annotations

from fractions import Fraction

import pytest

from eohub.domain.accounting.ledger import MS_PER_HOUR, Resources, Usage
from eohub.domain.accounting.quota import Limits, Standing, budget_limit, decide, named

ONE_CORE = Resources.from_cpu(1)


def hours(core: float) -> Usage:
    return Usage(int(core * 1000 * MS_PER_HOUR), 0, 0)


CASES = [
    ("no rows", [], {"core_hours": None, "gpu_hours": None, "memory_gib_hours": None}),
    (
        "the group's row",
        [Standing("group g", Limits(core_hours=Fraction(200)), hours(50))],
        {"core_hours": 200.0, "gpu_hours": None, "memory_gib_hours": None},
    ),
    (
        "the member's row is tighter: its limit",
        [
            Standing("group g", Limits(core_hours=Fraction(200)), hours(50)),
            Standing("user a in group g", Limits(core_hours=Fraction(20)), hours(10), member=True),
        ],
        {"core_hours": 20.0, "gpu_hours": None, "memory_gib_hours": None},
    ),
    (
        "the group's row is tighter: its limit",
        [
            Standing("group g", Limits(gpu_hours=Fraction(10)), Usage(0, 0, 9 * MS_PER_HOUR)),
            Standing("user a in group g", Limits(gpu_hours=Fraction(5)), member=True),
        ],
        {"core_hours": None, "gpu_hours": 10.0, "memory_gib_hours": None},
    ),
]


@pytest.mark.parametrize(
    ("standings", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_limit_of_each_budget_left(standings: list[Standing], expected: object) -> None:
    assert budget_limit(standings) == expected
    assert decide(ONE_CORE, standings).standing["budget_limit"] == expected


def test_the_display_name_travels_in_the_standing() -> None:
    rows = [Standing("group g", Limits())]
    assert decide(ONE_CORE, rows, "Climate research").standing["display_name"] == (
        "Climate research"
    )
    assert "display_name" not in decide(ONE_CORE, rows).standing
    assert named(decide(ONE_CORE, rows), "Staff").standing["display_name"] == "Staff"
