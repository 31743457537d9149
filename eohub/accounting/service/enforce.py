"""The enforcement worker: warn about spent budgets, then stop the servers they pay for.

Each round gathers every budget that running sessions are charged to (a group's, and a
member's within it), asks :func:`eohub.domain.accounting.enforcement.plan_enforcement` what to do,
and does it. Warnings live in memory, exposed by :meth:`Enforcer.warnings` for the usage
pages; after a restart a budget still spent is warned again, with a fresh grace period,
so a restart can only delay a stop, never hasten it.

Stopping goes through :class:`ServerStopper`, which the session-lifetime worker
(:mod:`.lifetimes`) shares: it records the reason on the session
(:meth:`AccountingStore.request_stop`), asks the hub's REST API to stop the server, and
closes the session with that reason once the hub confirms the server is gone. The stop
is counted once whichever of the two stop records lands first: if this close comes
first, the hub's own stop event for the session is a duplicate to the ledger; if the
hub's event comes first, it ends with the reason recorded with the request
(:func:`eohub.domain.accounting.stop_reasons.final_reason`) and :meth:`close_session`
finds the session closed. When the hub cannot be reached or does not confirm the stop
in time, the session is left open and the next round asks again, while the reason still
holds; a request whose reason no longer holds is withdrawn
(:meth:`ServerStopper.withdraw`), unless the hub is already carrying it out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI, HubAPIError, StopOutcome
from eohub.domain.accounting.enforcement import (
    BUDGET,
    Budget,
    BudgetKey,
    Cleared,
    Mode,
    RunningSession,
    WarningInfo,
    budget_from_standing,
    plan_enforcement,
)
from eohub.domain.accounting.quota import WHOLE_GROUP
from eohub.domain.accounting.reconcile import belongs_to
from eohub.domain.accounting.session_record import SessionRecord
from eohub.logs import get_logger

log = get_logger(__name__)

Outcome = Literal["stopped", "pending", "gone", "failed"]


class OpenSession(Protocol):
    """What a stop needs of a plan's session (budgets', lifetimes')."""

    @property
    def id(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...


@dataclass(frozen=True)
class StopTarget:
    """A session whose server to stop, why (a stop reason) and a sentence for the log."""

    session: int
    user: str
    server: str
    started_at: datetime
    reason: str
    detail: str

    @classmethod
    def of(cls, session: OpenSession, reason: str, detail: str) -> StopTarget:
        return cls(session.id, session.user, session.server, session.started_at, reason, detail)


@dataclass(frozen=True)
class StopOutcomes:
    """The sessions of one round's stops, by outcome.

    Attributes
    ----------
    stopped
        The hub stopped the server; the session was closed with the stop's reason.
    pending
        The hub has not confirmed the stop yet (asked again next round).
    gone
        The server was gone already, or the session closed (reconcile closes it).
    failed
        The stop request failed (asked again next round).
    """

    stopped: tuple[int, ...] = ()
    pending: tuple[int, ...] = ()
    gone: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


class ServerStopper:
    """Stops sessions' servers through the hub, and records each stop once, with its reason.

    Parameters
    ----------
    store
        The accounting store; its ``clock`` says what time it is.
    hub
        The hub's REST API.
    stop_timeout
        Seconds to wait for the hub to confirm a stop it has begun.
    poll_interval
        Seconds between checks while waiting for that confirmation.
    slack
        Seconds the clocks of the hub and the service may differ by.
    """

    def __init__(
        self,
        store: AccountingStore,
        hub: HubAPI,
        *,
        stop_timeout: float = 60.0,
        poll_interval: float = 1.0,
        slack: float = 60.0,
    ) -> None:
        self.store = store
        self.hub = hub
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self.slack = timedelta(seconds=slack)

    async def stop_all(self, targets: Iterable[StopTarget]) -> StopOutcomes:
        """Stop every target at once; the outcomes by session."""
        targets = list(targets)
        outcomes = await asyncio.gather(*(self.stop(t) for t in targets))
        done: dict[Outcome, list[int]] = {"stopped": [], "pending": [], "gone": [], "failed": []}
        for target, outcome in zip(targets, outcomes, strict=True):
            done[outcome].append(target.session)
        return StopOutcomes(*(tuple(done[k]) for k in ("stopped", "pending", "gone", "failed")))

    async def stop(self, t: StopTarget) -> Outcome:
        """Record the reason, ask the hub to stop the server, close once it is gone."""
        store = self.store
        try:
            if not await self._runs(t):
                log.info(
                    "Not stopping server {server!r} of {user}: it no longer runs; "
                    "reconcile closes session {session}",
                    server=t.server,
                    user=t.user,
                    session=t.session,
                )
                return "gone"
            # Recorded first, so the hub's own stop event ends with this reason too.
            if not await store.write(store.request_stop, t.session, t.reason, store.clock()):
                return "gone"  # the hub's stop event closed it meanwhile
            outcome = await self.hub.stop_server(t.user, t.server)
            if outcome is StopOutcome.GONE:
                return "gone"
            if outcome is StopOutcome.STOPPING and not await self._wait_until_gone(t):
                log.warning(
                    "The hub has not stopped server {server!r} of {user} within {timeout:g} s; "
                    "retrying next round",
                    server=t.server,
                    user=t.user,
                    timeout=self.stop_timeout,
                )
                return "pending"
        except HubAPIError as e:
            log.warning(
                "Could not stop server {server!r} of {user} ({reason}); retrying next round: "
                "{error}",
                server=t.server,
                user=t.user,
                reason=t.reason,
                error=e,
            )
            return "failed"
        closed = await store.write(store.close_session, t.session, store.clock(), t.reason)
        log.warning(
            "Stopped server {server!r} of {user} (session {session}{note}), reason {reason}: "
            "{detail}",
            server=t.server,
            user=t.user,
            session=t.session,
            note="" if closed else ", closed already by the hub's stop event",
            reason=t.reason,
            detail=t.detail,
        )
        return "stopped"

    async def withdraw(self, t: StopTarget) -> bool:
        """Withdraw the stop asked for ``t``'s session (``t.reason`` recorded), whose reason
        no longer holds (``t.detail`` says why); False when it stays.

        It stays while the hub is stopping the server (the hub's stop event then ends
        the session with it), and when the hub cannot be reached (the next round sees).
        """
        try:
            server = await self.hub.server(t.user, t.server)
        except HubAPIError as e:
            log.warning(
                "Could not check server {server!r} of {user} before withdrawing its {reason} "
                "stop; checking again next round: {error}",
                server=t.server,
                user=t.user,
                reason=t.reason,
                error=e,
            )
            return False
        if (
            server is not None
            and server.pending == "stop"
            and belongs_to(t.started_at, server.started, self.slack)
        ):
            return False
        store = self.store
        if not await store.write(store.withdraw_stop, t.session):
            return False  # closed meanwhile: it ended with the reason recorded
        log.info(
            "Withdrew the {reason} stop of server {server!r} of {user} (session {session}), "
            "which the hub had not confirmed: {detail}",
            reason=t.reason,
            server=t.server,
            user=t.user,
            session=t.session,
            detail=t.detail,
        )
        return True

    async def _runs(self, t: StopTarget) -> bool:
        server = await self.hub.server(t.user, t.server)
        return server is not None and belongs_to(t.started_at, server.started, self.slack)

    async def _wait_until_gone(self, t: StopTarget) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout
        while loop.time() < deadline:
            await asyncio.sleep(self.poll_interval)
            if not await self._runs(t):
                return True
        return False


@dataclass(frozen=True)
class EnforcementReport:
    """What one round did.

    Attributes
    ----------
    issued, cleared
        Warnings issued for the first time, and withdrawn.
    stopped
        Sessions whose servers the hub stopped; each was closed as ``budget``.
    pending
        Sessions whose stop the hub has not confirmed yet (retried next round).
    gone
        Sessions whose servers were already gone (reconcile closes them).
    failed
        Sessions whose stop request failed (retried next round).
    withdrawn
        Sessions whose budget stop, asked for before, was withdrawn.
    """

    issued: tuple[WarningInfo, ...] = ()
    cleared: tuple[Cleared, ...] = ()
    stopped: tuple[int, ...] = ()
    pending: tuple[int, ...] = ()
    gone: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    withdrawn: tuple[int, ...] = ()


def running_session(r: SessionRecord) -> RunningSession:
    """The budget plan's view of an open session."""
    return RunningSession(
        r.id, r.user, r.server, r.group, r.started_at, r.resources.gpus, r.stop_reason
    )


class Enforcer:
    """Warns about spent budgets and, in mode ``stop``, stops the servers after a grace.

    Parameters
    ----------
    store
        The accounting store; its ``clock`` says what time it is.
    hub
        The hub's REST API.
    mode
        ``off``, ``warn`` or ``stop`` (see :mod:`eohub.domain.accounting.enforcement`).
    grace_period
        Seconds between the first warning and the stop.
    stop_timeout
        Seconds to wait for the hub to confirm a stop it has begun.
    poll_interval
        Seconds between checks while waiting for that confirmation.
    slack
        Seconds the clocks of the hub and the service may differ by.
    """

    def __init__(
        self,
        store: AccountingStore,
        hub: HubAPI,
        mode: Mode | str,
        grace_period: float,
        *,
        stop_timeout: float = 60.0,
        poll_interval: float = 1.0,
        slack: float = 60.0,
    ) -> None:
        self.store = store
        self.hub = hub
        self.mode = Mode(mode)
        self.grace = timedelta(seconds=grace_period)
        self.stopper = ServerStopper(
            store, hub, stop_timeout=stop_timeout, poll_interval=poll_interval, slack=slack
        )
        self._warnings: dict[BudgetKey, WarningInfo] = {}

    def warnings(self) -> dict[str, tuple[WarningInfo, ...]]:
        """The warnings in force, by group: the group's own first, then its members'."""
        by_group: dict[str, list[WarningInfo]] = {}
        for key in sorted(self._warnings):
            by_group.setdefault(key[0], []).append(self._warnings[key])
        return {group: tuple(found) for group, found in by_group.items()}

    def budgets(self, sessions: list[RunningSession]) -> list[Budget]:
        """The state of every budget the running sessions are charged to."""
        now = self.store.clock()
        groups = {g.name: g for g in self.store.groups({s.group for s in sessions})}
        budgets: list[Budget] = []
        group_rows_done: set[str] = set()
        for group_name, user in sorted({(s.group, s.user) for s in sessions}):
            group = groups.get(group_name)
            if group is None:
                continue  # no allocation: nothing to enforce
            standings = self.store.standings(user, group, now)
            # standings() lists the group's row (if it has one), then the member's.
            if WHOLE_GROUP in group.quotas:
                group_row, *member_rows = standings
                if group_name not in group_rows_done:
                    budgets.append(budget_from_standing(group_name, "", group_row))
                    group_rows_done.add(group_name)
            else:
                member_rows = standings
            if member_rows:
                budgets.append(budget_from_standing(group_name, user, member_rows[0]))
        return budgets

    async def run_once(self) -> EnforcementReport:
        """One round: warn, clear and stop as the plan says."""
        store = self.store
        now = store.clock()
        sessions = (
            [running_session(r) for r, _ in await store.read(store.open_sessions)]
            if self.mode is not Mode.OFF
            else []
        )
        plan = plan_enforcement(
            budgets=await store.read(self.budgets, sessions) if sessions else [],
            sessions=sessions,
            warnings=self._warnings,
            mode=self.mode,
            grace=self.grace,
            now=now,
        )
        self._warnings = dict(plan.warnings)
        for w in plan.issued:
            log.warning(
                "Budget spent while {count} server(s) run: {reason} {outlook}",
                count=len(w.sessions),
                reason=w.reason,
                outlook=f"They will be stopped at {w.stop_at.isoformat()}."
                if w.stop_at
                else "They keep running (enforcement only warns).",
            )
        for c in plan.cleared:
            log.info(
                "Budget warning for group {group}{member} withdrawn: {reason}",
                group=c.warning.group,
                member=f" (user {c.warning.user})" if c.warning.user else "",
                reason=c.reason,
            )
        done = await self.stopper.stop_all(
            StopTarget.of(s.session, BUDGET, s.reason) for s in plan.stops
        )
        withdrawn = [
            w.session.id
            for w in plan.withdrawn
            if await self.stopper.withdraw(StopTarget.of(w.session, BUDGET, w.reason))
        ]
        return EnforcementReport(
            plan.issued,
            plan.cleared,
            done.stopped,
            done.pending,
            done.gone,
            done.failed,
            tuple(withdrawn),
        )


__all__ = [
    "EnforcementReport",
    "Enforcer",
    "OpenSession",
    "Outcome",
    "ServerStopper",
    "StopOutcomes",
    "StopTarget",
]
