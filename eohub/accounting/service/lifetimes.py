"""The session-lifetime worker: stop servers idle past their limit or past their maximum.

Each round reads the open sessions, and when any carries a limit, lists the hub's
servers once (``GET /users?state=active``, paged), matches each server to the open
session that is its current life as reconcile does (among all open sessions, limited or
not, so a server restarted soon after an older life is never judged by that life's
limits), asks :func:`eohub.domain.accounting.lifetimes.plan_lifetimes` what to do, and
does it. Stops go through the same :class:`~.enforce.ServerStopper` as budget stops: the
reason is recorded on the session first, the hub is asked to stop the server, and the
session is closed with that reason once the hub confirms. A stop that fails (the hub
restarting) or is not confirmed in time is asked for again next round while its reason
holds, and the ledger records it once; an ``idle`` stop whose server was used since is
withdrawn (:meth:`~.enforce.ServerStopper.withdraw`).

Warnings of a coming max-duration stop live in memory, for the usage pages
(:meth:`LifetimeEnforcer.warnings`); after a restart they are issued again. The stop
time never moves, so a restart cannot postpone a stop.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from eohub.accounting.service.enforce import ServerStopper, StopTarget
from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI
from eohub.domain.accounting.lifetimes import (
    HubView,
    LifetimeCleared,
    LifetimeStop,
    LifetimeWarning,
    LimitedSession,
    plan_lifetimes,
)
from eohub.domain.accounting.reconcile import HubServer
from eohub.domain.accounting.session_record import SessionRecord, current_session
from eohub.domain.accounting.stop_reasons import IDLE
from eohub.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class LifetimeReport:
    """What one round did.

    Attributes
    ----------
    issued, cleared
        Max-duration warnings issued for the first time, and withdrawn.
    stops
        The stops planned, with their reasons.
    stopped, pending, gone, failed
        Their sessions by outcome (see :class:`~.enforce.StopOutcomes`).
    withdrawn
        Sessions whose ``idle`` stop, asked for before, was withdrawn.
    """

    issued: tuple[LifetimeWarning, ...] = ()
    cleared: tuple[LifetimeCleared, ...] = ()
    stops: tuple[LifetimeStop, ...] = ()
    stopped: tuple[int, ...] = ()
    pending: tuple[int, ...] = ()
    gone: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()
    withdrawn: tuple[int, ...] = ()


def limited_session(record: SessionRecord) -> LimitedSession:
    """The plan's view of a session: its limits and any stop asked for."""
    return LimitedSession(
        record.id,
        record.user,
        record.server,
        record.group,
        record.started_at,
        idle_timeout=record.idle_timeout,
        max_duration=record.max_duration,
        stop_reason=record.stop_reason,
    )


def hub_views(
    records: list[SessionRecord], servers: list[HubServer], slack: timedelta
) -> dict[int, HubView]:
    """Each session's server as the hub lists it, by session id.

    ``records`` are all the open sessions, limited or not: a server is matched to the
    one that is its current life (as reconcile matches them); an older open session of
    the same server is not listed.
    """
    by_server: dict[tuple[str, str], list[SessionRecord]] = defaultdict(list)
    for record in records:
        by_server[(record.user, record.server)].append(record)
    views: dict[int, HubView] = {}
    for server in servers:
        mine = by_server.get((server.user, server.name))
        found = current_session(mine, server.started, slack) if mine else None
        if found is not None:
            views[found.id] = HubView(server.last_activity, server.pending)
    return views


class LifetimeEnforcer:
    """Warns before max-duration stops, and stops servers past their limits.

    Parameters
    ----------
    store
        The accounting store; its ``clock`` says what time it is.
    hub
        The hub's REST API.
    warning_period
        Seconds before a max-duration stop that its warning is issued.
    stop_timeout, poll_interval, slack
        As :class:`~.enforce.ServerStopper` takes them.
    """

    def __init__(
        self,
        store: AccountingStore,
        hub: HubAPI,
        *,
        warning_period: float = 900,
        stop_timeout: float = 60.0,
        poll_interval: float = 1.0,
        slack: float = 60.0,
    ) -> None:
        self.store = store
        self.hub = hub
        self.warning_period = timedelta(seconds=warning_period)
        self.slack = timedelta(seconds=slack)
        self.stopper = ServerStopper(
            store, hub, stop_timeout=stop_timeout, poll_interval=poll_interval, slack=slack
        )
        self._warnings: dict[int, LifetimeWarning] = {}

    def warnings(self) -> dict[int, LifetimeWarning]:
        """The max-duration warnings in force, by session id."""
        return dict(sorted(self._warnings.items()))

    def warnings_by_user(self) -> dict[str, tuple[LifetimeWarning, ...]]:
        """The warnings in force, by user, each user's by session id."""
        by_user: dict[str, list[LifetimeWarning]] = defaultdict(list)
        for _, warning in sorted(self._warnings.items()):
            by_user[warning.user].append(warning)
        return {user: tuple(found) for user, found in sorted(by_user.items())}

    async def run_once(self) -> LifetimeReport:
        """One round: warn, withdraw and stop as the plan says."""
        store = self.store
        records = [r for r, _ in await store.read(store.open_sessions)]
        limited = [s for s in map(limited_session, records) if s.limited]
        if not limited and not self._warnings:
            return LifetimeReport()  # nothing to judge: the hub is not asked
        servers = await self.hub.list_servers() if limited else []
        now = store.clock()
        plan = plan_lifetimes(
            sessions=limited,
            hub=hub_views(records, servers, self.slack),
            warnings=self._warnings,
            warning_period=self.warning_period,
            now=now,
        )
        self._warnings = dict(plan.warnings)
        for w in plan.issued:
            log.warning(
                "Session {session} ({group}) will be stopped at its maximum duration: {message}",
                session=w.session,
                group=w.group,
                message=w.message(now),
            )
        for c in plan.cleared:
            log.info(
                "Max-duration warning for session {session} withdrawn: {reason}",
                session=c.warning.session,
                reason=c.reason,
            )
        done = await self.stopper.stop_all(
            StopTarget.of(s.session, s.reason, s.detail) for s in plan.stops
        )
        withdrawn = [
            w.session.id
            for w in plan.withdrawn
            if await self.stopper.withdraw(StopTarget.of(w.session, IDLE, w.detail))
        ]
        return LifetimeReport(
            plan.issued,
            plan.cleared,
            plan.stops,
            done.stopped,
            done.pending,
            done.gone,
            done.failed,
            tuple(withdrawn),
        )


__all__ = ["LifetimeEnforcer", "LifetimeReport", "hub_views", "limited_session"]
