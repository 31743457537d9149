"""The reconcile worker: make the ledger's open sessions match the hub's running servers.

Each round reads the open sessions, then lists the hub's servers, and applies the plan of
:func:`eohub.domain.accounting.reconcile.plan_reconcile`:

- a session whose server still runs is touched (its last-seen time moves to the round's
  time, which bounds what a later missed stop can cost);
- a session whose server is gone is closed at its last-seen time with the end reason
  ``reconcile``, once it has been missing for ``close_after`` seconds (the hub's own
  stop event, with the real time, may wait in the hub's outbox while the service was
  down); if the hub's stop event arrives later still, the ledger replaces that estimate
  with the real stop time;
- a running server with no session is opened from the hub's start time, charged as its
  ``user_options`` say, else to the configured fallback group.

Every correction is logged with its reason.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI
from eohub.domain.accounting.events import EventError, parse_batch, start_event_json
from eohub.domain.accounting.reconcile import (
    RECONCILED,
    CannotOpenError,
    Close,
    HubServer,
    OpenSession,
    ReconcilePlan,
    SessionStart,
    Skip,
    StartDefaults,
    plan_reconcile,
    session_start,
)
from eohub.domain.accounting.reconcile_grace import hold_closes
from eohub.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    """What one round did.

    Attributes
    ----------
    seen_at
        When the hub was listed.
    servers
        How many active servers the hub listed.
    touched
        Ids of the sessions whose servers still run.
    closed
        The sessions closed, each with when and why.
    opened
        The sessions opened for running servers, with what was guessed.
    skipped
        Running servers without a session that were left alone, and why.
    """

    seen_at: datetime
    servers: int = 0
    touched: tuple[int, ...] = ()
    closed: tuple[Close, ...] = ()
    opened: tuple[SessionStart, ...] = ()
    skipped: tuple[Skip, ...] = ()


class Reconciler:
    """Compares open sessions with the hub's servers and corrects the ledger.

    Parameters
    ----------
    store
        The accounting store; its ``clock`` says what time it is.
    hub
        The hub's REST API.
    fallback_group
        The group charged for a running server that has no session and whose
        ``user_options`` name no group accounting knows; ``""``: such servers are only
        logged.
    default_cpu, default_memory_bytes, default_gpus
        What such a server is charged where its options do not say.
    open_after
        Seconds a server must have run before it is opened here; the hub's own start
        event usually arrives first, with the group and size the user chose.
    close_after
        Seconds a session's server must have been missing before the session is closed
        here; the hub's own stop event usually arrives first,
        with the real stop time, even when it waited in the hub's outbox.
    slack
        Seconds the clocks of the hub and the service may differ by.
    """

    def __init__(
        self,
        store: AccountingStore,
        hub: HubAPI,
        *,
        fallback_group: str = "",
        default_cpu: float = 1.0,
        default_memory_bytes: int = 0,
        default_gpus: int = 0,
        open_after: float = 120.0,
        close_after: float = 120.0,
        slack: float = 60.0,
    ) -> None:
        self.store = store
        self.hub = hub
        self.defaults = StartDefaults(
            fallback_group, default_cpu, default_memory_bytes, default_gpus
        )
        self.open_after = timedelta(seconds=open_after)
        self.close_after = timedelta(seconds=close_after)
        # Sessions whose servers the hub no longer lists, and since when (hold_closes).
        self._missing_since: dict[int, datetime] = {}
        self.slack = timedelta(seconds=slack)
        # Servers already reported as impossible to open: warn once per server's life.
        self._reported: set[tuple[str, str, datetime | None]] = set()

    async def run_once(self) -> ReconcileReport:
        """One round. Raises :class:`~eohub.adapters.hub_api.HubAPIError` (changing
        nothing) when the hub cannot be listed."""
        store = self.store
        now = store.clock()
        # Sessions first, then the hub: a session opened after the listing must not look
        # like one whose server has gone.
        sessions = [
            OpenSession(r.id, r.user, r.server, r.started_at, seen)
            for r, seen in await store.read(store.open_sessions)
        ]
        servers = await self.hub.list_servers()
        plan = plan_reconcile(
            sessions, servers, now=now, open_after=self.open_after, slack=self.slack
        )
        plan = await self._confirm_gone(plan, {(s.user, s.name) for s in servers})
        plan = self._hold_closes(plan)

        touched = [t.session.id for t in plan.touch]
        if touched:
            await store.write(store.touch_sessions, touched, now)
        closed = [c for c in plan.close if await self._close(c)]
        opened: list[SessionStart] = []
        skipped = list(plan.skip)
        known_groups = {g.name for g in await store.read(store.groups)} if plan.open else set()
        for item in plan.open:
            try:
                start = session_start(item.server, self.defaults, known_groups)
            except CannotOpenError as e:
                skipped.append(Skip(item.server, str(e)))
                self._report_unopenable(item.server, str(e))
                continue
            if await self._open(start, item.reason):
                opened.append(start)
        current = {(s.user, s.name, s.started) for s in servers}
        self._reported &= current  # forget servers that have gone
        for skip in plan.skip:
            log.debug(
                "Reconcile left server {server!r} of {user} alone: {reason}",
                server=skip.server.name,
                user=skip.server.user,
                reason=skip.reason,
            )
        return ReconcileReport(
            now, len(servers), tuple(touched), tuple(closed), tuple(opened), tuple(skipped)
        )

    async def _confirm_gone(
        self, plan: ReconcilePlan, listed: set[tuple[str, str]]
    ) -> ReconcilePlan:
        """Ask the hub about each server the listing missed before closing its session.

        The listing pages by offset, so a server can be missed when another stops
        between two pages; one more request per missing server rules that out.
        """
        missing = [c for c in plan.close if (c.session.user, c.session.server) not in listed]
        if not missing:
            return plan
        found = await asyncio.gather(
            *(self.hub.server(c.session.user, c.session.server) for c in missing)
        )
        close = [c for c in plan.close if c not in missing]
        touch = list(plan.touch)
        for c, server in zip(missing, found, strict=True):
            again = plan_reconcile(
                [c.session], [server] if server else [], now=plan.seen_at, slack=self.slack
            )
            close.extend(again.close)
            touch.extend(again.touch)
        return ReconcilePlan(plan.seen_at, tuple(close), tuple(touch), plan.open, plan.skip)

    def _hold_closes(self, plan: ReconcilePlan) -> ReconcilePlan:
        """Only the closes that are due; the others wait for the hub's own stop."""
        due, self._missing_since = hold_closes(plan, self._missing_since, self.close_after)
        for session_id, since in self._missing_since.items():
            log.debug(
                "Reconcile waits for the hub's stop of session {session}, missing since {since}",
                session=session_id,
                since=since.isoformat(),
            )
        return due

    async def _close(self, item: Close) -> bool:
        s = item.session
        if not await self.store.write(self.store.close_session, s.id, item.stopped_at, RECONCILED):
            # Its stop event arrived while this round ran.
            log.debug("Reconcile found session {session} closed already", session=s.id)
            return False
        log.warning(
            "Reconcile closed session {session} of {user} (server {server!r}, started "
            "{started}) at {stopped}: {reason}",
            session=s.id,
            user=s.user,
            server=s.server,
            started=s.started_at.isoformat(),
            stopped=item.stopped_at.isoformat(),
            reason=item.reason,
        )
        return True

    async def _open(self, start: SessionStart, reason: str) -> bool:
        event = start_event_json(
            user=start.user,
            server=start.server,
            started_at=start.started_at,
            group=start.group,
            cpu=start.cpu,
            memory_bytes=start.memory_bytes,
            gpus=start.gpus,
            profile=start.profile,
            image=start.image,
        )
        try:
            result = await self.store.write(self.store.ingest, parse_batch(event), single=True)
        except EventError as e:
            log.error(
                "Reconcile could not open a session for server {server!r} of {user}: {error}",
                server=start.server,
                user=start.user,
                error=e,
            )
            return False
        if not result.accepted:
            # The hub's own start event (same key) was recorded while this round ran.
            log.debug(
                "Reconcile found server {server!r} of {user} recorded",
                server=start.server,
                user=start.user,
            )
            return False
        log.warning(
            "Reconcile opened a session for server {server!r} of {user} (group {group}, "
            "{cpu:g} CPU, started {started}): {reason}{notes}",
            server=start.server,
            user=start.user,
            group=start.group,
            cpu=start.cpu,
            started=start.started_at.isoformat(),
            reason=reason,
            notes="".join(f"; {note}" for note in start.notes),
        )
        return True

    def _report_unopenable(self, server: HubServer, why: str) -> None:
        key = (server.user, server.name, server.started)
        level = logging.DEBUG if key in self._reported else logging.WARNING
        self._reported.add(key)
        log.log(
            level,
            "Reconcile cannot charge server {server!r} of {user}, running since {since}: {why}",
            server=server.name,
            user=server.user,
            since=server.started.isoformat() if server.started else "?",
            why=why,
        )


__all__ = ["ReconcileReport", "Reconciler"]
