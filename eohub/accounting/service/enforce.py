"""The enforcement worker: warn about spent budgets, then stop the servers they pay for.

Each round gathers every budget that running sessions are charged to (a group's, and a
member's within it), asks :func:`eohub.domain.accounting.enforcement.plan_enforcement` what to do,
and does it. Warnings live in memory, exposed by :meth:`Enforcer.warnings` for the usage
pages; after a restart a budget still spent is warned again, with a fresh grace period,
so a restart can only delay a stop, never hasten it.

Stopping goes through the hub's REST API, and the session is closed here, with the end
reason ``quota``, once the hub confirms the server is gone. The usage is counted once
whichever of the two stop records lands first: if this close comes first, the hub's own
stop event for the session is a duplicate to the ledger (it only replaces stops closed
as ``reconciled``); if the hub's event comes first, :meth:`close_session` finds the
session closed and adds nothing. When the hub cannot confirm the stop in time, the
session is left open: the next round retries, and reconcile closes it once the server is
gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI, HubAPIError, StopOutcome
from eohub.domain.accounting.enforcement import (
    QUOTA,
    Budget,
    BudgetKey,
    Cleared,
    Mode,
    RunningSession,
    Stop,
    WarningInfo,
    budget_from_standing,
    plan_enforcement,
)
from eohub.domain.accounting.quota import WHOLE_GROUP
from eohub.domain.accounting.reconcile import belongs_to
from eohub.logs import get_logger

log = get_logger(__name__)

Outcome = Literal["stopped", "pending", "gone", "failed"]


@dataclass(frozen=True)
class EnforcementReport:
    """What one round did.

    Attributes
    ----------
    issued, cleared
        Warnings issued for the first time, and withdrawn.
    stopped
        Sessions whose servers the hub stopped; each was closed as ``quota``.
    pending
        Sessions whose stop the hub has not confirmed yet (retried next round).
    gone
        Sessions whose servers were already gone (reconcile closes them).
    failed
        Sessions whose stop request failed (retried next round).
    """

    issued: tuple[WarningInfo, ...] = ()
    cleared: tuple[Cleared, ...] = ()
    stopped: tuple[int, ...] = ()
    pending: tuple[int, ...] = ()
    gone: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


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
        self.stop_timeout = stop_timeout
        self.poll_interval = poll_interval
        self.slack = timedelta(seconds=slack)
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
            [
                RunningSession(r.id, r.user, r.server, r.group, r.started_at, r.resources.gpus)
                for r, _ in await store.read(store.open_sessions)
            ]
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
        outcomes = await asyncio.gather(*(self._stop(s) for s in plan.stops))
        done: dict[Outcome, list[int]] = {"stopped": [], "pending": [], "gone": [], "failed": []}
        for stop, outcome in zip(plan.stops, outcomes, strict=True):
            done[outcome].append(stop.session.id)
        return EnforcementReport(
            plan.issued,
            plan.cleared,
            tuple(done["stopped"]),
            tuple(done["pending"]),
            tuple(done["gone"]),
            tuple(done["failed"]),
        )

    async def _stop(self, stop: Stop) -> Outcome:
        s = stop.session
        try:
            server = await self.hub.server(s.user, s.server)
            if server is None or not belongs_to(s.started_at, server.started, self.slack):
                log.info(
                    "Not stopping server {server!r} of {user}: it no longer runs; "
                    "reconcile closes session {session}",
                    server=s.server,
                    user=s.user,
                    session=s.id,
                )
                return "gone"
            outcome = await self.hub.stop_server(s.user, s.server)
            if outcome is StopOutcome.GONE:
                return "gone"
            if outcome is StopOutcome.STOPPING and not await self._wait_until_gone(s):
                log.warning(
                    "The hub has not stopped server {server!r} of {user} within {timeout:g} s; "
                    "retrying next round",
                    server=s.server,
                    user=s.user,
                    timeout=self.stop_timeout,
                )
                return "pending"
        except HubAPIError as e:
            log.warning(
                "Could not stop server {server!r} of {user}: {error}",
                server=s.server,
                user=s.user,
                error=e,
            )
            return "failed"
        closed = await self.store.write(self.store.close_session, s.id, self.store.clock(), QUOTA)
        log.warning(
            "Stopped server {server!r} of {user} (session {session}{note}): {reason}",
            server=s.server,
            user=s.user,
            session=s.id,
            note="" if closed else ", closed already by the hub's stop event",
            reason=stop.reason,
        )
        return "stopped"

    async def _wait_until_gone(self, s: RunningSession) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout
        while loop.time() < deadline:
            await asyncio.sleep(self.poll_interval)
            server = await self.hub.server(s.user, s.server)
            if server is None or not belongs_to(s.started_at, server.started, self.slack):
                return True
        return False


__all__ = ["EnforcementReport", "Enforcer"]
