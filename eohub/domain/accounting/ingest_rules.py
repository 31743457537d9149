"""Which accounting event replaces which: the rules ingest follows, whatever the order.

Events of one session can reach the service in any order: a start dead-lettered and
requeued after its stop, two hubs, a hand-made replay. The ledger must come out as if
they had arrived in order:

- an event whose key was applied (or held) before is a duplicate, and so is the second
  of two events with one key in a batch;
- a start must name a group an admin defined, or the whole batch is refused;
- a start of a session already stored is a duplicate: the first one stands;
- a stop of a session the service does not know yet is *held*, not refused and not
  lost; when the start arrives, the held stops are applied right after it, in the order
  they arrived, so the session is closed and charged once for ``[start, stop]``;
- a stop of a closed session is a duplicate, except that the hub's own stop replaces the
  reconcile loop's estimate (``reconciled``) when it names another time.

:func:`plan_ingest` applies them to a batch in memory and says what to write; the SQL
adapter reads what it needs beforehand and writes the plan in one transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from eohub.domain.accounting.events import (
    Event,
    EventError,
    SessionKey,
    StartEvent,
    StopEvent,
)
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.reconcile import RECONCILED


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


def unknown_group_error(group: str, index: int | None) -> tuple[str, str]:
    """The field and message refusing a start charged to an undefined ``group``.

    ``index`` is the event's place in a batch, or None for a body of one event.
    """
    where = "group" if index is None else f"events[{index}].group"
    return where, f"unknown group {group!r}; an admin must define it first"


@dataclass(eq=False)
class SessionState:
    """A session a batch refers to: stored (``id``), or started by this batch (``start``)."""

    key: SessionKey
    group: str
    resources: Resources
    stopped_at: datetime | None = None
    end_reason: str | None = None
    id: int | None = None
    start: StartEvent | None = None


@dataclass(frozen=True)
class HeldStop:
    """A stop waiting for its start: from this batch, or held before (``stored``)."""

    key: str
    session: SessionKey
    stopped_at: datetime
    reason: str
    stored: bool = False


class Charge(NamedTuple):
    """Usage to add to (``sign`` 1) or take back from (-1) the running totals."""

    group: str
    user: str
    resources: Resources
    start: datetime
    end: datetime
    sign: int = 1


@dataclass
class IngestPlan:
    """What a batch writes, once every event in it is checked."""

    started: list[SessionState] = field(default_factory=list)  # new rows, in order
    closed: dict[int, SessionState] = field(default_factory=dict)  # stored rows, by id
    # (event key, "start" or "stop", its session): the events recorded as applied
    applied: list[tuple[str, str, SessionState]] = field(default_factory=list)
    held: list[HeldStop] = field(default_factory=list)  # stops to keep for their start
    paired: list[str] = field(default_factory=list)  # keys of held stops now applied
    charges: list[Charge] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    corrected: int = 0


class _Pairing:
    """The in-memory state of one batch while its events are checked and paired."""

    def __init__(
        self, sessions: dict[SessionKey, SessionState], pending: dict[SessionKey, list[HeldStop]]
    ) -> None:
        self.sessions = sessions
        self.pending = pending
        self.plan = IngestPlan()
        self.holding: list[HeldStop] = []

    def start(self, event: StartEvent) -> None:
        plan = self.plan
        known = self.sessions.get(event.session)
        if start_is_duplicate(known=known is not None):
            # The same session started twice under another key: the first one stands.
            assert known is not None
            plan.applied.append((event.id, "start", known))
            plan.duplicates += 1
            return
        state = SessionState(event.session, event.group, event.resources, start=event)
        plan.applied.append((event.id, "start", state))
        self.sessions[event.session] = state
        plan.started.append(state)
        plan.accepted += 1
        # Stops that came first are applied now, as if they had arrived after it.
        for held in self.pending.pop(event.session, []):
            if held.stored:
                plan.paired.append(held.key)
            self.stop(held, counted=False)

    def stop(self, stop: HeldStop, counted: bool = True) -> None:
        plan = self.plan
        target = self.sessions.get(stop.session)
        action = stop_action(
            known=target is not None,
            stopped_at=target.stopped_at if target else None,
            end_reason=target.end_reason if target else None,
            new_stop=stop.stopped_at,
        )
        if action is StopAction.HOLD:
            self.pending.setdefault(stop.session, []).append(stop)
            self.holding.append(stop)
            plan.accepted += 1
            return
        assert target is not None
        plan.applied.append((stop.key, "stop", target))
        if action is StopAction.DUPLICATE:
            plan.duplicates += counted
            return
        session = stop.session
        if action is StopAction.REPLACE:
            # The reconcile loop closed it at the last time it was seen; the hub's own
            # stop is the better record, so it replaces the estimate.
            assert target.stopped_at is not None
            plan.charges.append(
                Charge(
                    target.group,
                    session.user,
                    target.resources,
                    session.started_at,
                    target.stopped_at,
                    -1,
                )
            )
            plan.corrected += 1
        plan.charges.append(
            Charge(
                target.group, session.user, target.resources, session.started_at, stop.stopped_at
            )
        )
        target.stopped_at, target.end_reason = stop.stopped_at, stop.reason
        if target.id is not None:
            plan.closed[target.id] = target
        plan.accepted += counted

    def finish(self) -> IngestPlan:
        # A stop held and paired within this batch is never stored.
        paired_here = {key for key, kind, _ in self.plan.applied if kind == "stop"}
        self.plan.held = [s for s in self.holding if s.key not in paired_here]
        return self.plan


def plan_ingest(
    events: Iterable[Event],
    *,
    seen: set[str],
    known_groups: set[str],
    sessions: Mapping[SessionKey, SessionState],
    pending: Mapping[SessionKey, list[HeldStop]],
    single: bool = False,
) -> IngestPlan:
    """Check and pair ``events`` in order; what the batch writes.

    ``seen`` are the event keys applied or held before, ``known_groups`` the defined
    groups the starts name, ``sessions`` the stored sessions the events name and
    ``pending`` the stops held for the sessions they start. ``sessions`` states are
    updated in place as events close them.

    Raises
    ------
    EventError
        A start names an undefined group: nothing of the batch may be written.
    """
    seen = set(seen)
    pairing = _Pairing(dict(sessions), {k: list(v) for k, v in pending.items()})
    errors: dict[str, str] = {}
    for index, event in enumerate(events):
        if event.id in seen:
            pairing.plan.duplicates += 1
            continue
        seen.add(event.id)
        if isinstance(event, StartEvent):
            if event.group not in known_groups:
                where, why = unknown_group_error(event.group, None if single else index)
                errors[where] = why
                continue
            pairing.start(event)
        else:
            assert isinstance(event, StopEvent)
            pairing.stop(HeldStop(event.id, event.session, event.stopped_at, event.reason))
    if errors:
        raise EventError(errors)
    return pairing.finish()


__all__ = [
    "RECONCILED",
    "Charge",
    "HeldStop",
    "IngestPlan",
    "SessionState",
    "StopAction",
    "plan_ingest",
    "start_is_duplicate",
    "stop_action",
    "unknown_group_error",
]
