"""A duplicate start still brings the limits its session lacks: the reconcile loop opens a
session without them, under the hub's own key, when the hub's start is late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eohub.domain.accounting.events import SessionKey, StartEvent, StopEvent
from eohub.domain.accounting.ingest_rules import (
    LimitPair,
    SessionState,
    limits_to_fill,
    plan_ingest,
)
from eohub.domain.accounting.ledger import Resources

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
CORE = Resources(1000)
ALICE = SessionKey("alice", "", T0)
NONE: LimitPair = (None, None)


@pytest.mark.parametrize(
    ("stored", "sent", "filled"),
    [
        (NONE, (3600, 7200), (3600, 7200)),  # reconcile opened it: the hub's start brings them
        (NONE, (3600, None), (3600, None)),
        (NONE, (None, 7200), (None, 7200)),
        (NONE, NONE, None),  # nothing to bring (reconcile's own start again, or no limits)
        ((3600, 7200), NONE, None),  # a start without limits never takes them away
        ((3600, 7200), (60, 120), None),  # the first start's limits stand
        ((3600, None), (60, 120), None),  # a session with one limit has its limits
        ((None, 7200), (60, 120), None),
    ],
)
def test_limits_to_fill(stored: LimitPair, sent: LimitPair, filled: LimitPair | None) -> None:
    assert limits_to_fill(stored=stored, sent=sent) == filled


def start(key: str, idle: int | None = None, most: int | None = None) -> StartEvent:
    return StartEvent(key, ALICE, "climate", CORE, idle_timeout=idle, max_duration=most)


def stop(key: str) -> StopEvent:
    return StopEvent(key, ALICE, T1, "stopped")


def stored(limits: LimitPair = NONE, stopped_at: datetime | None = None) -> SessionState:
    return SessionState(
        ALICE,
        "climate",
        CORE,
        stopped_at,
        None if stopped_at is None else "reconcile",
        id=7,
        idle_timeout=limits[0],
        max_duration=limits[1],
    )


# events, stored session (or None), keys seen before;
# then accepted, duplicates, the stored rows given limits, the limits of the new rows
PLANS = [
    (
        "reconcile's start, then the hub's under the same key: the limits come in",
        [start("s", 3600, 7200)],
        stored(),
        {"s"},
        (0, 1, {7: (3600, 7200)}, []),
    ),
    (
        "the same under another key",
        [start("s2", 3600, 7200)],
        stored(),
        set(),
        (0, 1, {7: (3600, 7200)}, []),
    ),
    (
        "a closed session gets them too (reports and exports show them)",
        [start("s", 3600, 7200)],
        stored(stopped_at=T1),
        {"s"},
        (0, 1, {7: (3600, 7200)}, []),
    ),
    (
        "a session with limits keeps them",
        [start("s", 60, 120)],
        stored((3600, 7200)),
        {"s"},
        (0, 1, {}, []),
    ),
    (
        "reconcile's start after the hub's changes nothing",
        [start("s")],
        stored((3600, 7200)),
        {"s"},
        (0, 1, {}, []),
    ),
    (
        "a start seen before whose session is not stored (a replay of another's key)",
        [start("s", 3600, 7200)],
        None,
        {"s"},
        (0, 1, {}, []),
    ),
    (
        "both starts in one batch: the new row has the limits",
        [start("s"), start("s", 3600, 7200), stop("e")],
        None,
        set(),
        (2, 1, {}, [(3600, 7200)]),
    ),
    (
        "the hub's start first in one batch: its limits stand",
        [start("s", 3600, 7200), start("s")],
        None,
        set(),
        (1, 1, {}, [(3600, 7200)]),
    ),
]


@pytest.mark.parametrize(
    ("case", "events", "session", "seen", "expected"), PLANS, ids=[p[0] for p in PLANS]
)
def test_a_duplicate_start_brings_missing_limits(
    case: str,
    events: list[StartEvent | StopEvent],
    session: SessionState | None,
    seen: set[str],
    expected: tuple[int, int, dict[int, LimitPair], list[LimitPair]],
) -> None:
    plan = plan_ingest(
        events,
        seen=seen,
        known_groups={"climate"},
        sessions={} if session is None else {ALICE: session},
        pending={},
    )
    limited = {i: s.limits for i, s in plan.limited.items()}
    assert (
        plan.accepted,
        plan.duplicates,
        limited,
        [s.limits for s in plan.started],
    ) == expected
    assert not plan.charges or [c.end for c in plan.charges] == [T1]  # usage counted once
