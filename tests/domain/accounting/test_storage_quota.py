"""A group's storage against its quota: the states, their words, and quota decisions
that refuse only once the grace has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest

from eohub.domain.accounting.ledger import GIB, MS_PER_HOUR, Resources, Usage
from eohub.domain.accounting.quota import Limits, Standing, decide, room
from eohub.domain.accounting.storage_quota import (
    DEFAULT_STORAGE_POLICY,
    StoragePolicy,
    StorageState,
    StorageVerdict,
    storage_state,
)

NOW = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
SINCE = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
DAYS_3 = timedelta(days=3)
LIMIT = 10 * GIB
GROUP = "group climate"
ONE_CORE = Resources.from_cpu(1)

NEAR_95 = "Group climate stores 9.5 GiB, 95% of its storage quota of 10 GiB."
GRACE_12 = (
    "Group climate stores 12.0 GiB, over its storage quota of 10 GiB since 2026-12-06 "
    "10:00 UTC. New servers charged to it will be refused from 2026-12-09 10:00 UTC "
    "unless space is freed."
)
REFUSED_12 = (
    "Group climate stores 12.0 GiB, over its storage quota of 10 GiB since 2026-12-06 "
    "10:00 UTC (grace of 3 days ended). Free some space to start servers charged to it; "
    "running servers are not stopped."
)

# name, used, limit, over_since, now, grace, warn_fraction -> state, refused_from, text
STATES: list[tuple[Any, ...]] = [
    ("no quota", 50 * GIB, None, None, NOW, DAYS_3, 0.9, StorageState.OK, None, ""),
    ("well within", GIB, LIMIT, None, NOW, DAYS_3, 0.9, StorageState.OK, None, ""),
    ("near", int(9.5 * GIB), LIMIT, None, NOW, DAYS_3, 0.9, StorageState.NEAR, None, NEAR_95),
    ("near, warnings off", int(9.5 * GIB), LIMIT, None, NOW, DAYS_3, 0, StorageState.OK, None, ""),
    (
        "exactly at the quota is near, not over",
        LIMIT,
        LIMIT,
        None,
        NOW,
        DAYS_3,
        0.9,
        StorageState.NEAR,
        None,
        "Group climate stores 10.0 GiB, 100% of its storage quota of 10 GiB.",
    ),
    (
        "just under the warning",
        int(8.9 * GIB),
        LIMIT,
        None,
        NOW,
        DAYS_3,
        0.9,
        StorageState.OK,
        None,
        "",
    ),
    (
        "over, in its grace",
        12 * GIB,
        LIMIT,
        SINCE,
        SINCE + timedelta(hours=5),
        DAYS_3,
        0.9,
        StorageState.GRACE,
        SINCE + DAYS_3,
        GRACE_12,
    ),
    (
        "over, a second before the grace ends",
        12 * GIB,
        LIMIT,
        SINCE,
        NOW - timedelta(seconds=1),
        DAYS_3,
        0.9,
        StorageState.GRACE,
        NOW,
        GRACE_12,
    ),
    (
        "over, the grace has just ended",
        12 * GIB,
        LIMIT,
        SINCE,
        NOW,
        DAYS_3,
        0.9,
        StorageState.REFUSED,
        NOW,
        REFUSED_12,
    ),
    (
        "over with warnings off is still in its grace",
        12 * GIB,
        LIMIT,
        SINCE,
        SINCE,
        DAYS_3,
        0,
        StorageState.GRACE,
        NOW,
        GRACE_12,
    ),
    (
        "over without a grace",
        12 * GIB,
        LIMIT,
        SINCE,
        SINCE,
        timedelta(0),
        0.9,
        StorageState.REFUSED,
        SINCE,
        "Group climate stores 12.0 GiB, over its storage quota of 10 GiB since 2026-12-06 "
        "10:00 UTC. Free some space to start servers charged to it; running servers are "
        "not stopped.",
    ),
    (
        "over, not yet seen by the store: the grace starts now",
        12 * GIB,
        LIMIT,
        None,
        SINCE,
        DAYS_3,
        0.9,
        StorageState.GRACE,
        NOW,
        GRACE_12,
    ),
    (
        "a quota of nothing",
        1,
        0,
        SINCE,
        SINCE,
        timedelta(hours=36),
        0.9,
        StorageState.GRACE,
        SINCE + timedelta(hours=36),
        "Group climate stores 1 B, over its storage quota of 0 B since 2026-12-06 "
        "10:00 UTC. New servers charged to it will be refused from 2026-12-07 22:00 UTC "
        "unless space is freed.",
    ),
    (
        "a quota under a GiB, in the unit that fits",
        768 * 2**20,
        512 * 2**20,
        SINCE,
        SINCE,
        timedelta(hours=36),
        0.9,
        StorageState.GRACE,
        SINCE + timedelta(hours=36),
        "Group climate stores 768.0 MiB, over its storage quota of 512 MiB since "
        "2026-12-06 10:00 UTC. New servers charged to it will be refused from 2026-12-07 "
        "22:00 UTC unless space is freed.",
    ),
]


@pytest.mark.parametrize(
    ("name", "used", "limit", "since", "now", "grace", "fraction", "state", "refused", "text"),
    STATES,
    ids=[c[0] for c in STATES],
)
def test_storage_states(
    name: str,
    used: int,
    limit: int | None,
    since: datetime | None,
    now: datetime,
    grace: timedelta,
    fraction: float,
    state: StorageState,
    refused: datetime | None,
    text: str,
) -> None:
    verdict = storage_state(used, limit, since, now, grace, fraction, scope=GROUP)
    assert (verdict.state, verdict.refused_from, verdict.text) == (state, refused, text)
    assert verdict.refused is (state is StorageState.REFUSED)
    assert verdict.warning == (text if state in (StorageState.NEAR, StorageState.GRACE) else "")


def test_the_words_keep_the_case_of_the_name_and_read_the_time_in_utc() -> None:
    east = SINCE.astimezone(timezone(timedelta(hours=2)))  # 12:00 there
    verdict = storage_state(12 * GIB, LIMIT, east, NOW, DAYS_3, 0.9, scope="group CLIMATE")
    assert verdict.text.startswith("Group CLIMATE stores 12.0 GiB")
    assert "2026-12-06 10:00 UTC" in verdict.text


@pytest.mark.parametrize(
    ("grace", "fraction", "max_age", "message"),
    [
        (timedelta(seconds=-1), 0.9, DAYS_3, "grace"),
        (DAYS_3, -0.1, DAYS_3, "fraction"),
        (DAYS_3, 1.5, DAYS_3, "fraction"),
        (DAYS_3, 0.9, timedelta(seconds=-1), "max age"),
    ],
)
def test_a_bad_policy_is_refused(
    grace: timedelta, fraction: float, max_age: timedelta, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        StoragePolicy(grace, fraction, max_age)


def test_the_default_policy_is_three_days_ninety_percent_and_a_week() -> None:
    assert StoragePolicy(DAYS_3, 0.9, timedelta(days=7)) == DEFAULT_STORAGE_POLICY
    verdict = DEFAULT_STORAGE_POLICY.verdict(12 * GIB, LIMIT, SINCE, SINCE, scope=GROUP)
    assert verdict == StorageVerdict(StorageState.GRACE, NOW, GRACE_12, SINCE)


# -- quota decisions ------------------------------------------------------------------


def group(stored: int, since: datetime | None = None, **limits: Any) -> Standing:
    return Standing(
        GROUP,
        Limits(storage_bytes=LIMIT, **limits),
        storage_bytes=stored,
        storage_over_since=since,
    )


def spent() -> Usage:
    return Usage(10 * 1000 * MS_PER_HOUR)


# name, standings, now -> allowed, reason, warnings, storage state in the room
DECISIONS: list[tuple[Any, ...]] = [
    ("within", [group(GIB)], NOW, True, "Within quota.", [], "ok"),
    (
        "near: allowed, warned",
        [group(int(9.5 * GIB))],
        NOW,
        True,
        "Within quota.",
        [NEAR_95],
        "near",
    ),
    (
        "over in its grace: allowed, warned",
        [group(12 * GIB, SINCE)],
        SINCE + timedelta(days=1),
        True,
        "Within quota.",
        [GRACE_12],
        "grace",
    ),
    (
        "over past its grace: refused",
        [group(12 * GIB, SINCE)],
        NOW,
        False,
        REFUSED_12,
        [],
        "refused",
    ),
    (
        "budget spent in the grace: refused for the budget, still warned",
        [
            Standing(
                GROUP,
                Limits(core_hours=Fraction(10), storage_bytes=LIMIT),
                spent(),
                storage_bytes=12 * GIB,
                storage_over_since=SINCE,
            )
        ],
        SINCE,
        False,
        "The core-hours budget of group climate is spent: 10 of 10 used this period.",
        [GRACE_12],
        "grace",
    ),
    (
        "a member's row never limits storage",
        [
            group(GIB),
            Standing(
                "user alice in group climate",
                Limits(storage_bytes=1),
                storage_bytes=5 * GIB,
                member=True,
            ),
        ],
        NOW,
        True,
        "Within quota.",
        [],
        "ok",
    ),
]


@pytest.mark.parametrize(
    ("name", "standings", "now", "allowed", "reason", "warnings", "state"),
    DECISIONS,
    ids=[c[0] for c in DECISIONS],
)
def test_storage_decisions(
    name: str,
    standings: list[Standing],
    now: datetime,
    allowed: bool,
    reason: str,
    warnings: list[str],
    state: str,
) -> None:
    decision = decide(ONE_CORE, standings, now=now, storage_grace=DAYS_3)
    answer = decision.to_json()
    assert (answer["allowed"], answer["reason"], answer["warnings"]) == (
        allowed,
        reason,
        warnings,
    )
    room_ = answer["standing"]["group"]
    assert room_["storage"]["state"] == state
    # The hub's last-known fallback reads storage_over as "refused for storage".
    assert room_["storage_over"] is (state == "refused")


def test_the_room_carries_the_storage_and_its_grace() -> None:
    decision = decide(ONE_CORE, [group(12 * GIB, SINCE)], now=SINCE, storage_grace=DAYS_3)
    assert decision.standing["group"]["storage"] == {
        "bytes": 12 * GIB,
        "limit": LIMIT,
        "over_since": "2026-12-06T10:00:00.000000Z",
        "refused_from": "2026-12-09T10:00:00.000000Z",
        "state": "grace",
    }
    assert decision.standing["member"] is None


def test_a_room_without_a_storage_row_says_so() -> None:
    member = Standing("user a in group g", Limits(max_servers=1), member=True)
    assert room(member)["storage"] == {
        "bytes": 0,
        "limit": None,
        "over_since": None,
        "refused_from": None,
        "state": "ok",
    }


def test_warnings_are_always_in_the_answer() -> None:
    assert decide(ONE_CORE, [], now=NOW).to_json()["warnings"] == []
