"""Which accounting event replaces which: the rules ingest follows, whatever the order.

Events of one session can reach the service in any order: a start dead-lettered and
requeued after its stop, two hubs, a hand-made replay. The ledger must come out as if
they had arrived in order:

- an event whose key was applied (or held) before is a duplicate, and so is the second
  of two events with one key in a batch;
- a start must name a group an admin defined, or the whole batch is refused;
- a start of a session already stored is a duplicate: the first one stands, except
  that a hub start brings the session's limits when the stored one has none (the
  reconcile loop opened it first, under the same key, without them: :func:`limits_to_fill`);
- a stop of a session the service does not know yet is *held*, not refused and not
  lost; when the start arrives, the held stops are applied right after it, in the order
  they arrived, so the session is closed and charged once for ``[start, stop]``;
- a stop of a closed session is a duplicate, except that the hub's own stop replaces the
  reconcile loop's estimate (``reconcile``) when it names another time;
- the reason a closed session keeps is the hub's, unless the accounting service (or a
  person, from its pages) asked for that stop: then it is theirs (:func:`closing_reason`).

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
from eohub.domain.accounting.session_record import stop_was_requested
from eohub.domain.accounting.stop_reasons import final_reason, normalise


def closing_reason(
    sent: str,
    stopped_at: datetime,
    *,
    requested: str | None,
    stopped_by: str | None,
    requested_at: datetime | None,
) -> str:
    """The end reason of a session the hub's stop (``sent``, at ``stopped_at``) closes.

    The reason asked for (``requested`` by the service, or a person's ``stopped_by``)
    counts only when the server stopped in time for the request to be what stopped it
    (:func:`~eohub.domain.accounting.session_record.stop_was_requested`): a request the
    hub never carried out does not name a stop made later for another reason.
    """
    if requested_at is not None and not stop_was_requested(requested_at, stopped_at):
        requested = stopped_by = None
    return final_reason(sent, requested, stopped_by)


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
    if end_reason is not None and normalise(end_reason) == RECONCILED and stopped_at != new_stop:
        return StopAction.REPLACE
    return StopAction.DUPLICATE


def start_is_duplicate(*, known: bool) -> bool:
    """A start of a session already stored (under another key) changes nothing."""
    return known


LimitPair = tuple[int | None, int | None]  # idle_timeout, max_duration (seconds; None: none)


def limits_to_fill(*, stored: LimitPair, sent: LimitPair) -> LimitPair | None:
    """The limits a duplicate start writes on the session it names, or None: nothing.

    The reconcile loop opens a session whose start it has not seen, without limits (it
    cannot know them) and under the hub's own key; the hub's start that arrives later is
    a duplicate, but the only record of the limits. A session with limits keeps them.
    """
    if stored != (None, None) or sent == (None, None):
        return None
    return sent


def unknown_group_error(group: str, index: int | None) -> tuple[str, str]:
    """The field and message refusing a start charged to an undefined ``group``.

    ``index`` is the event's place in a batch, or None for a body of one event.
    """
    where = "group" if index is None else f"events[{index}].group"
    return where, f"unknown group {group!r}; an admin must define it first"


@dataclass(eq=False)
class SessionState:
    """A session a batch refers to: stored (``id``), or started by this batch (``start``).

    ``stop_reason``, ``stopped_by`` and ``stop_requested_at`` are the stop asked for, if
    any (see :class:`~eohub.domain.accounting.session_record.SessionRecord`).
    """

    key: SessionKey
    group: str
    resources: Resources
    stopped_at: datetime | None = None
    end_reason: str | None = None
    id: int | None = None
    start: StartEvent | None = None
    stop_reason: str | None = None
    stopped_by: str | None = None
    stop_requested_at: datetime | None = None
    idle_timeout: int | None = None
    max_duration: int | None = None

    @property
    def limits(self) -> LimitPair:
        return self.idle_timeout, self.max_duration


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
    # stored rows, by id, that a duplicate start gave the limits they lacked
    limited: dict[int, SessionState] = field(default_factory=dict)
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
            self.duplicate_start(event)
            return
        state = SessionState(
            event.session,
            event.group,
            event.resources,
            start=event,
            idle_timeout=event.idle_timeout,
            max_duration=event.max_duration,
        )
        plan.applied.append((event.id, "start", state))
        self.sessions[event.session] = state
        plan.started.append(state)
        plan.accepted += 1
        # Stops that came first are applied now, as if they had arrived after it.
        for held in self.pending.pop(event.session, []):
            if held.stored:
                plan.paired.append(held.key)
            self.stop(held, counted=False)

    def duplicate_start(self, event: StartEvent) -> None:
        """A start of a session already known (by its key or its session): counted as a
        duplicate, but it still brings the limits the session lacks."""
        self.plan.duplicates += 1
        known = self.sessions.get(event.session)
        if known is None:
            return
        fill = limits_to_fill(stored=known.limits, sent=(event.idle_timeout, event.max_duration))
        if fill is None:
            return
        known.idle_timeout, known.max_duration = fill
        if known.id is not None:  # else the new row is written with them
            self.plan.limited[known.id] = known

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
        target.end_reason = closing_reason(
            stop.reason,
            stop.stopped_at,
            requested=target.stop_reason,
            stopped_by=target.stopped_by,
            requested_at=target.stop_requested_at,
        )
        target.stopped_at = stop.stopped_at
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
    groups the starts name, ``sessions`` the stored sessions the events name (a start
    seen before included, for the limits it may bring: :func:`limits_to_fill`) and
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
            if isinstance(event, StartEvent):
                pairing.duplicate_start(event)
            else:
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
    "LimitPair",
    "SessionState",
    "StopAction",
    "closing_reason",
    "limits_to_fill",
    "plan_ingest",
    "start_is_duplicate",
    "stop_action",
    "unknown_group_error",
]
