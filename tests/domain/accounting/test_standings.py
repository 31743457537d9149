"""Which quota rows apply to a user in a group, and the standings measured against them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from eohub.domain.accounting.ledger import MS_PER_HOUR, Resources, Usage
from eohub.domain.accounting.quota import EACH_MEMBER, WHOLE_GROUP, Limits, Running, Standing
from eohub.domain.accounting.standings import (
    ApplicableQuotas,
    Stored,
    Tally,
    applicable_quotas,
    standings_of,
    tally_open_sessions,
    totals_owners,
)

GROUP = Limits(core_hours=Fraction(100))
STORED = Limits(storage_bytes=10**9)
EACH = Limits(max_servers=2)
ALICE = Limits(max_servers=5)


@pytest.mark.parametrize(
    ("case", "quotas", "group", "member"),
    [
        ("no rows", {}, None, None),
        ("whole group only", {WHOLE_GROUP: GROUP}, GROUP, None),
        ("each member only", {EACH_MEMBER: EACH}, None, EACH),
        ("named member only", {"alice": ALICE}, None, ALICE),
        ("named beats each member", {EACH_MEMBER: EACH, "alice": ALICE}, None, ALICE),
        ("another member's row", {"bob": ALICE}, None, None),
        ("another member's row, each", {"bob": ALICE, EACH_MEMBER: EACH}, None, EACH),
        ("all three", {WHOLE_GROUP: GROUP, EACH_MEMBER: EACH, "alice": ALICE}, GROUP, ALICE),
    ],
)
def test_applicable_quotas(
    case: str, quotas: dict[str, Limits], group: Limits | None, member: Limits | None
) -> None:
    assert applicable_quotas("alice", quotas) == ApplicableQuotas(group, member), case


@pytest.mark.parametrize(
    ("quotas", "counts"),
    [
        ({}, False),
        ({WHOLE_GROUP: GROUP}, False),  # a group row without a storage limit
        ({WHOLE_GROUP: STORED}, True),
        ({"alice": STORED}, False),  # only the group's row limits storage
        ({EACH_MEMBER: STORED}, False),
    ],
)
def test_storage_is_measured_only_for_a_group_storage_limit(
    quotas: dict[str, Limits], counts: bool
) -> None:
    assert applicable_quotas("alice", quotas).counts_storage is counts


def test_totals_owners_are_the_group_then_the_user() -> None:
    assert totals_owners("alice") == (WHOLE_GROUP, "alice")


T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=10)
WINDOW = (T0, T0 + timedelta(days=31))
ONE_CORE = Resources(1000)
HALF_CORE = Resources(500)


def core_hours(hours: float, millicores: int = 1000) -> Usage:
    return Usage(int(hours * millicores * MS_PER_HOUR))


@pytest.mark.parametrize(
    ("case", "sessions", "group", "user"),
    [
        ("nothing open", [], Tally(core_hours(3)), Tally(core_hours(1))),
        (
            "the user's session counts twice",
            [("alice", ONE_CORE, NOW - timedelta(hours=2))],
            Tally(core_hours(5), Running(1, 1000)),
            Tally(core_hours(3), Running(1, 1000)),
        ),
        (
            "another member's session counts for the group only",
            [("bob", HALF_CORE, NOW - timedelta(hours=2))],
            Tally(core_hours(4), Running(1, 500)),
            Tally(core_hours(1)),
        ),
        (
            "only the part inside the window",
            [("alice", ONE_CORE, T0 - timedelta(hours=5))],
            Tally(core_hours(3 + 240), Running(1, 1000)),
            Tally(core_hours(1 + 240), Running(1, 1000)),
        ),
        (
            "both",
            [
                ("alice", ONE_CORE, NOW - timedelta(hours=1)),
                ("bob", HALF_CORE, NOW - timedelta(hours=4)),
            ],
            Tally(core_hours(3 + 1 + 2), Running(2, 1500)),
            Tally(core_hours(1 + 1), Running(1, 1000)),
        ),
    ],
)
def test_tally_open_sessions(
    case: str,
    sessions: list[tuple[str, Resources, datetime]],
    group: Tally,
    user: Tally,
) -> None:
    found = tally_open_sessions(
        "alice", sessions, NOW, WINDOW, group_used=core_hours(3), user_used=core_hours(1)
    )
    assert found == (group, user), case


GROUP_TALLY = Tally(core_hours(7), Running(3, 2500))
USER_TALLY = Tally(core_hours(2), Running(1, 1000))
OVER_SINCE = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("case", "quotas", "expected"),
    [
        ("no rows: nothing limits", ApplicableQuotas(None, None), []),
        (
            "group row, with the storage",
            ApplicableQuotas(STORED, None),
            [
                Standing(
                    "group climate",
                    STORED,
                    core_hours(7),
                    Running(3, 2500),
                    123,
                    storage_over_since=OVER_SINCE,
                )
            ],
        ),
        (
            "member row, never the storage",
            ApplicableQuotas(None, EACH),
            [
                Standing(
                    "user alice in group climate",
                    EACH,
                    core_hours(2),
                    Running(1, 1000),
                    member=True,
                )
            ],
        ),
        (
            "both, group first",
            ApplicableQuotas(GROUP, ALICE),
            [
                Standing(
                    "group climate",
                    GROUP,
                    core_hours(7),
                    Running(3, 2500),
                    123,
                    storage_over_since=OVER_SINCE,
                ),
                Standing(
                    "user alice in group climate",
                    ALICE,
                    core_hours(2),
                    Running(1, 1000),
                    member=True,
                ),
            ],
        ),
    ],
)
def test_standings_of(case: str, quotas: ApplicableQuotas, expected: list[Standing]) -> None:
    stored = Stored(123, OVER_SINCE)
    found = standings_of(
        "alice", "climate", quotas, group=GROUP_TALLY, member=USER_TALLY, stored=stored
    )
    assert found == expected, case
