"""stop_action and start_is_duplicate: a table of sessions and the stop that arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eohub.domain.accounting.pairing import StopAction, start_is_duplicate, stop_action

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
        (True, T1, "culled", T2, StopAction.DUPLICATE),
        (True, T1, "reconciled", T2, StopAction.REPLACE),  # the hub's stop beats an estimate
        (True, T1, "reconciled", T1, StopAction.DUPLICATE),
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


@pytest.mark.parametrize(("known", "duplicate"), [(True, True), (False, False)])
def test_start_is_duplicate(known: bool, duplicate: bool) -> None:
    assert start_is_duplicate(known=known) is duplicate
