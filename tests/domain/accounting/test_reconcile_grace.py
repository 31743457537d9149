"""hold_closes: reconcile closes a session only once its server has been missing a while."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eohub.domain.accounting.reconcile import Close, OpenSession, ReconcilePlan
from eohub.domain.accounting.reconcile_grace import hold_closes

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
WAIT = timedelta(minutes=2)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def plan(now: float, *session_ids: int) -> ReconcilePlan:
    closes = tuple(
        Close(OpenSession(i, "alice", f"s{i}", at(-60)), at(-10), "gone") for i in session_ids
    )
    return ReconcilePlan(at(now), close=closes)


@pytest.mark.parametrize(
    ("missing_since", "now", "gone", "closed", "waiting"),
    [
        # First round that misses a session: it waits, from now.
        ({}, 0, [1], [], {1: 0}),
        # Still missing, not long enough: it keeps waiting from the first miss.
        ({1: 0}, 1, [1], [], {1: 0}),
        # Missing for close_after: closed now, and forgotten.
        ({1: 0}, 2, [1], [1], {}),
        # Found again (or its stop arrived): no longer in the plan, forgotten.
        ({1: 0}, 1, [], [], {}),
        # Two sessions at different stages.
        ({1: 0}, 2.5, [1, 2], [1], {2: 2.5}),
    ],
)
def test_a_session_is_closed_once_missing_for_close_after(
    missing_since: dict[int, float],
    now: float,
    gone: list[int],
    closed: list[int],
    waiting: dict[int, float],
) -> None:
    due, left = hold_closes(plan(now, *gone), {k: at(v) for k, v in missing_since.items()}, WAIT)
    assert [c.session.id for c in due.close] == closed
    assert left == {k: at(v) for k, v in waiting.items()}
    assert due.seen_at == at(now)


def test_without_a_wait_every_close_is_due_at_once() -> None:
    due, left = hold_closes(plan(0, 1, 2), {}, timedelta(0))
    assert [c.session.id for c in due.close] == [1, 2]
    assert left == {}
