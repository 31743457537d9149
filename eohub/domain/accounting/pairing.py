"""Which accounting event replaces which: the rules ingest follows, whatever the order.

Events of one session can reach the service in any order: a start dead-lettered and
requeued after its stop, two hubs, a hand-made replay. The ledger must come out as if
they had arrived in order:

- a start of a session already stored is a duplicate: the first one stands;
- a stop of a session the service does not know yet is *held*, not refused and not
  lost; when the start arrives, the held stops are applied right after it, in the order
  they arrived, so the session is closed and charged once for ``[start, stop]``;
- a stop of a closed session is a duplicate, except that the hub's own stop replaces the
  reconcile loop's estimate (``reconciled``) when it names another time.
"""

from __future__ import annotations

import enum
from datetime import datetime

RECONCILED = "reconciled"


class StopAction(enum.Enum):
    """What a stop event does to the session it names."""

    CLOSE = "close"  # the session is open: close and charge it
    REPLACE = "replace"  # take back the estimated close, charge the real one
    DUPLICATE = "duplicate"  # already closed for good: nothing changes
    HOLD = "hold"  # no such session yet: keep the stop until its start arrives


def stop_action(
    *, known: bool, stopped_at: datetime | None, end_reason: str | None, new_stop: datetime
) -> StopAction:
    """What a stop at ``new_stop`` does to a session (``known``, closed at ``stopped_at``
    for ``end_reason``, or open when ``stopped_at`` is None)."""
    if not known:
        return StopAction.HOLD
    if stopped_at is None:
        return StopAction.CLOSE
    if end_reason == RECONCILED and stopped_at != new_stop:
        return StopAction.REPLACE
    return StopAction.DUPLICATE


def start_is_duplicate(*, known: bool) -> bool:
    """A start of a session already stored (under another key) changes nothing."""
    return known


__all__ = ["RECONCILED", "StopAction", "start_is_duplicate", "stop_action"]
