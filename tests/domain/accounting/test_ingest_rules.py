"""Ingest's rules: a table of sessions and the stop that arrives, then whole batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from eohub.domain.accounting.events import EventError, SessionKey, StartEvent, StopEvent
from eohub.domain.accounting.ingest_rules import (
    RECONCILED,
    HeldStop,
    IngestPlan,
    SessionState,
    StopAction,
    closing_reason,
    plan_ingest,
    start_is_duplicate,
    stop_action,
)
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.session_record import PI_STOP_CLOCK_SLACK, PI_STOP_WINDOW

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)


@pytest.mark.parametrize(
    ("known", "stopped_at", "end_reason", "new_stop", "action"),
    [
        (False, None, None, T1, StopAction.HOLD),  # its start has not arrived
        (True, None, None, T1, StopAction.CLOSE),
        (True, T1, "stopped", T1, StopAction.DUPLICATE),
        (True, T1, "stopped", T2, StopAction.DUPLICATE),  # the first real stop stands
        (True, T1, "idle", T2, StopAction.DUPLICATE),  # enforcement's own close stands
        (True, T1, "budget", T2, StopAction.DUPLICATE),
        (True, T1, "reconcile", T2, StopAction.REPLACE),  # the hub's stop beats an estimate
        (True, T1, "reconcile", T1, StopAction.DUPLICATE),
        (True, T1, "reconciled", T2, StopAction.REPLACE),  # an earlier version's name
    ],
)
def test_stop_action(
    known: bool,
    stopped_at: datetime | None,
    end_reason: str | None,
    new_stop: datetime,
    action: StopAction,
) -> None:
    assert (
        stop_action(known=known, stopped_at=stopped_at, end_reason=end_reason, new_stop=new_stop)
        is action
    )


ASKED = T1 - timedelta(seconds=5)  # the request, shortly before the hub's stop at T1


@pytest.mark.parametrize(
    ("sent", "requested", "stopped_by", "requested_at", "kept"),
    [
        ("stopped", None, None, None, "stopped"),  # nothing asked: the hub's reason
        ("user", None, None, None, "user"),
        ("culled", None, None, None, "idle"),  # an older hub's outbox
        ("quota", None, None, None, "budget"),
        ("stopped", "idle", None, ASKED, "idle"),  # enforcement asked: its reason
        ("admin", "idle", None, ASKED, "idle"),  # the service is an admin to the hub
        ("admin", "max_duration", None, ASKED, "max_duration"),
        ("stopped", "budget", None, ASKED, "budget"),
        ("admin", "admin", "carol", ASKED, "admin"),
        ("stopped", None, "carol", ASKED, "admin"),  # a PI's stop from the pages
        ("user", None, "carol", ASKED, "admin"),
        ("stopped", "idle", "carol", ASKED, "idle"),  # the service's reason first
        ("failed", "idle", None, ASKED, "failed"),  # it died first: a failure stays one
        ("failed", None, "carol", ASKED, "failed"),
        # a request the hub never carried out does not name a later stop
        ("user", "idle", None, T1 - PI_STOP_WINDOW - timedelta(seconds=1), "user"),
        ("user", None, "carol", T1 - PI_STOP_WINDOW - timedelta(seconds=1), "user"),
        ("user", "idle", None, T1 - PI_STOP_WINDOW, "idle"),
        # nor a stop made before it (beyond the clocks' slack)
        ("user", "idle", None, T1 + PI_STOP_CLOCK_SLACK + timedelta(seconds=1), "user"),
        ("user", "idle", None, T1 + PI_STOP_CLOCK_SLACK, "idle"),
    ],
)
def test_closing_reason(
    sent: str,
    requested: str | None,
    stopped_by: str | None,
    requested_at: datetime | None,
    kept: str,
) -> None:
    assert (
        closing_reason(
            sent, T1, requested=requested, stopped_by=stopped_by, requested_at=requested_at
        )
        == kept
    )


@pytest.mark.parametrize(("known", "duplicate"), [(True, True), (False, False)])
def test_start_is_duplicate(known: bool, duplicate: bool) -> None:
    assert start_is_duplicate(known=known) is duplicate


# -- a whole batch: plan_ingest ----------------------------------------------------------

CORE = Resources(1000)
ALICE = SessionKey("alice", "", T0)
BOB = SessionKey("bob", "gpu", T0)


def start(key: str, session: SessionKey = ALICE, group: str = "climate") -> StartEvent:
    return StartEvent(key, session, group, CORE)


def stop(
    key: str, at: datetime = T1, session: SessionKey = ALICE, reason: str = "stopped"
) -> StopEvent:
    return StopEvent(key, session, at, reason)


def stored(
    session: SessionKey = ALICE,
    stopped_at: datetime | None = None,
    reason: str | None = None,
    asked: str | None = None,
    by: str | None = None,
) -> SessionState:
    """A stored session; ``asked``/``by``: a stop requested (for that reason, by them)."""
    return SessionState(
        session,
        "climate",
        CORE,
        stopped_at,
        reason,
        id=7,
        stop_reason=asked,
        stopped_by=by,
        stop_requested_at=ASKED if asked or by else None,
    )


@dataclass(frozen=True)
class Outcome:
    """What a plan says, in a form a table can spell out."""

    counts: tuple[int, int, int]  # accepted, duplicates, corrected
    applied: tuple[str, ...] = ()
    # user, stopped_at and end_reason of new rows
    started: tuple[tuple[str, datetime | None, str | None], ...] = ()
    closed: tuple[tuple[int, datetime | None, str | None], ...] = ()
    charges: tuple[tuple[datetime, int], ...] = ()  # end, sign (every start is T0)
    held: tuple[str, ...] = ()
    paired: tuple[str, ...] = ()


def outcome(plan: IngestPlan) -> Outcome:
    assert all(c.start == T0 for c in plan.charges)
    return Outcome(
        (plan.accepted, plan.duplicates, plan.corrected),
        tuple(key for key, _, _ in plan.applied),
        tuple((s.key.user, s.stopped_at, s.end_reason) for s in plan.started),
        tuple((i, s.stopped_at, s.end_reason) for i, s in plan.closed.items()),
        tuple((c.end, c.sign) for c in plan.charges),
        tuple(s.key for s in plan.held),
        tuple(plan.paired),
    )


HELD_BEFORE = HeldStop("old-stop", ALICE, T1, "stopped", stored=True)
HELD_IDLE = HeldStop("old-stop", ALICE, T1, "idle", stored=True)

BATCHES = [
    ("a start", [start("s")], [], [], set(), Outcome((1, 0, 0), ("s",), (("alice", None, None),))),
    (
        "a start and its stop: one closed row",
        [start("s"), stop("e")],
        [],
        [],
        set(),
        Outcome((2, 0, 0), ("s", "e"), (("alice", T1, "stopped"),), charges=((T1, 1),)),
    ),
    (
        "a key applied before",
        [start("s")],
        [],
        [],
        {"s"},
        Outcome((0, 1, 0)),
    ),
    (
        "one key twice in a batch",
        [start("s"), start("s")],
        [],
        [],
        set(),
        Outcome((1, 1, 0), ("s",), (("alice", None, None),)),
    ),
    (
        "a session started again under another key",
        [start("s2")],
        [stored()],
        [],
        set(),
        Outcome((0, 1, 0), ("s2",)),
    ),
    (
        "a stop closes a stored session",
        [stop("e")],
        [stored()],
        [],
        set(),
        Outcome((1, 0, 0), ("e",), closed=((7, T1, "stopped"),), charges=((T1, 1),)),
    ),
    (
        "a second stop of a closed session",
        [stop("e2", T2)],
        [stored(stopped_at=T1, reason="stopped")],
        [],
        set(),
        Outcome((0, 1, 0), ("e2",)),
    ),
    (
        "the hub's stop replaces the reconciled estimate",
        [stop("e", T2)],
        [stored(stopped_at=T1, reason=RECONCILED)],
        [],
        set(),
        Outcome((1, 0, 1), ("e",), closed=((7, T2, "stopped"),), charges=((T1, -1), (T2, 1))),
    ),
    (
        "the hub's stop of an idle stop the service asked for: idle",
        [stop("e", reason="admin")],
        [stored(asked="idle")],
        [],
        set(),
        Outcome((1, 0, 0), ("e",), closed=((7, T1, "idle"),), charges=((T1, 1),)),
    ),
    (
        "the hub's stop after enforcement's own close: counted once, idle stays",
        [stop("e", reason="admin")],
        [stored(stopped_at=ASKED, reason="idle", asked="idle")],
        [],
        set(),
        Outcome((0, 1, 0), ("e",)),
    ),
    (
        "a PI's stop from the pages: admin",
        [stop("e")],
        [stored(by="carol")],
        [],
        set(),
        Outcome((1, 0, 0), ("e",), closed=((7, T1, "admin"),), charges=((T1, 1),)),
    ),
    (
        "the hub's stop replacing reconcile's estimate keeps the reason asked for",
        [stop("e", T1 + timedelta(seconds=1), reason="admin")],
        [stored(stopped_at=T0 + timedelta(minutes=50), reason="reconcile", asked="max_duration")],
        [],
        set(),
        Outcome(
            (1, 0, 1),
            ("e",),
            closed=((7, T1 + timedelta(seconds=1), "max_duration"),),
            charges=((T0 + timedelta(minutes=50), -1), (T1 + timedelta(seconds=1), 1)),
        ),
    ),
    (
        "a failure stays a failure though a stop was asked for",
        [stop("e", reason="failed")],
        [stored(asked="budget")],
        [],
        set(),
        Outcome((1, 0, 0), ("e",), closed=((7, T1, "failed"),), charges=((T1, 1),)),
    ),
    (
        "a stop before its start is held",
        [stop("e")],
        [],
        [],
        set(),
        Outcome((1, 0, 0), held=("e",)),
    ),
    (
        "a stop, then its start, in one batch: paired, never held",
        [stop("e"), start("s")],
        [],
        [],
        set(),
        Outcome((2, 0, 0), ("s", "e"), (("alice", T1, "stopped"),), charges=((T1, 1),)),
    ),
    (
        "a start pairs with the stop held before",
        [start("s")],
        [],
        [HELD_BEFORE],
        set(),
        Outcome(
            (1, 0, 0),
            ("s", "old-stop"),
            (("alice", T1, "stopped"),),
            charges=((T1, 1),),
            paired=("old-stop",),
        ),
    ),
    (
        "a held stop keeps its reason when its start arrives",
        [start("s")],
        [],
        [HELD_IDLE],
        set(),
        Outcome(
            (1, 0, 0),
            ("s", "old-stop"),
            (("alice", T1, "idle"),),
            charges=((T1, 1),),
            paired=("old-stop",),
        ),
    ),
    (
        "a stop with its reason, then its start, in one batch",
        [stop("e", reason="max_duration"), start("s")],
        [],
        [],
        set(),
        Outcome((2, 0, 0), ("s", "e"), (("alice", T1, "max_duration"),), charges=((T1, 1),)),
    ),
    (
        "held stops apply in arrival order: the second is a duplicate, uncounted",
        [stop("e1", T1), stop("e2", T2), start("s")],
        [],
        [],
        set(),
        Outcome((3, 0, 0), ("s", "e1", "e2"), (("alice", T1, "stopped"),), charges=((T1, 1),)),
    ),
    (
        "another session's stop stays held",
        [stop("e", session=BOB), start("s")],
        [],
        [],
        set(),
        Outcome((2, 0, 0), ("s",), (("alice", None, None),), held=("e",)),
    ),
]


@pytest.mark.parametrize(
    ("case", "events", "sessions", "pending", "seen", "expected"),
    BATCHES,
    ids=[case for case, *_ in BATCHES],
)
def test_plan_ingest(
    case: str,
    events: list[StartEvent | StopEvent],
    sessions: list[SessionState],
    pending: list[HeldStop],
    seen: set[str],
    expected: Outcome,
) -> None:
    held: dict[SessionKey, list[HeldStop]] = {}
    for h in pending:
        held.setdefault(h.session, []).append(h)
    plan = plan_ingest(
        events,
        seen=seen,
        known_groups={"climate"},
        sessions={s.key: s for s in sessions},
        pending=held,
    )
    assert outcome(plan) == expected


@pytest.mark.parametrize(
    ("single", "field"), [(False, "events[1].group"), (True, "group")], ids=["batch", "single"]
)
def test_an_unknown_group_refuses_the_whole_batch(single: bool, field: str) -> None:
    events = [start("s"), start("t", BOB, group="nope")]
    with pytest.raises(EventError) as refused:
        plan_ingest(
            events[1:] if single else events,
            seen=set(),
            known_groups={"climate"},
            sessions={},
            pending={},
            single=single,
        )
    assert refused.value.errors == {field: "unknown group 'nope'; an admin must define it first"}


def test_a_key_seen_before_is_a_duplicate_even_with_an_unknown_group() -> None:
    plan = plan_ingest(
        [start("s", group="nope")], seen={"s"}, known_groups=set(), sessions={}, pending={}
    )
    assert outcome(plan) == Outcome((0, 1, 0))
