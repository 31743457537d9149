"""Members' running servers on a PI's page: their idle time, and stopping one.

The ledger knows which sessions are open and which group they are charged to; the hub's
REST API knows whether each server still runs and when it was last active. This module
puts the two together for the page (:func:`running_servers`) and stops a server for a
PI or an admin (:func:`stop_member_server`), recording in the ledger who asked for the
stop. The session itself is closed by the hub's own stop event, with the real stop time
(or by reconcile, if that event never comes); this module never closes it.

Who may stop what is decided by the handler (:func:`~eohub.domain.accounting.access.
may_stop_server`) before anything here runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from eohub.accounting.service.pages.session_view import SessionRow
from eohub.adapters.accounting_db.store import AccountingStore
from eohub.adapters.hub_api import HubAPI, HubAPIError, StopOutcome
from eohub.domain.accounting.access import Caller, Op, may_read_group
from eohub.domain.accounting.reconcile import HubServer, belongs_to
from eohub.domain.accounting.session_record import SessionRecord, current_session
from eohub.domain.reports.wording import whose_server
from eohub.logs import get_logger

log = get_logger(__name__)

#: How much earlier than the hub's start time a session may be recorded and still be
#: that server's life (the hub's and the service's clocks may differ a little).
SLACK = timedelta(seconds=60)
#: How long a stop request waits for the hub to finish stopping, and how often it looks.
STOP_WAIT = 20.0
STOP_POLL = 0.5
#: The longest a page waits for the hub to say which servers run (in seconds): past it,
#: the page shows their idle time as unknown rather than hang with the hub.
HUB_LIST_TIMEOUT = 5.0


@dataclass(frozen=True)
class RunningServer:
    """An open session, with what the hub says of its server.

    ``state`` is ``running`` (the hub lists it: ``idle_seconds`` since its last
    activity), ``gone`` (the hub no longer lists it; reconcile closes the session) or
    ``unknown`` (the hub was not asked, or did not answer).
    """

    session: SessionRow
    state: str
    last_activity: datetime | None = None
    idle_seconds: float | None = None

    @property
    def stoppable(self) -> bool:
        return self.state == "running"


def running_servers(
    rows: Iterable[SessionRow], listed: dict[str, list[HubServer]] | None, now: datetime
) -> tuple[RunningServer, ...]:
    """Match open sessions with the hub's servers (``listed`` by user; None: not asked)."""
    found = []
    for row in rows:
        if listed is None or row.user not in listed:
            found.append(RunningServer(row, "unknown"))
            continue
        server = next((s for s in listed[row.user] if s.name == row.server), None)
        if server is None or not belongs_to(row.started_at, server.started, SLACK):
            found.append(RunningServer(row, "gone"))
            continue
        active = server.last_activity or server.started
        idle = None if active is None else max(0.0, (now - active).total_seconds())
        found.append(RunningServer(row, "running", active, idle))
    return tuple(found)


async def hub_servers(
    hub: HubAPI | None, users: Iterable[str], *, within: float = HUB_LIST_TIMEOUT
) -> dict[str, list[HubServer]] | None:
    """The active servers of ``users`` on the hub, by user; None without an answer.

    One user is asked about directly; more come from one listing of the hub's active
    servers (``GET /users?state=active``, paged), not a request per member. The whole
    answer must come within ``within`` seconds.
    """
    if hub is None:
        return None
    names = sorted(set(users))
    if not names:
        return {}
    try:
        async with asyncio.timeout(within):
            if len(names) == 1:
                listed = await hub.user_servers(names[0])
            else:
                listed = await hub.list_servers()
    except HubAPIError as e:
        log.warning("Could not read members' servers from the hub: {error}", error=e)
        return None
    except TimeoutError:
        log.warning("The hub did not list members' servers within {seconds} s", seconds=within)
        return None
    found: dict[str, list[HubServer]] = {name: [] for name in names}
    for server in listed:
        if server.user in found:
            found[server.user].append(server)
    return found


class StopResult(StrEnum):
    """What came of a stop a person asked for."""

    STOPPED = "stopped"  # the hub stopped it; the ledger names who asked
    STOPPING = "stopping"  # the hub is still stopping it; the ledger names who asked
    NOT_RUNNING = "not-running"  # the hub no longer runs it; nothing was done
    ALREADY_CLOSED = "already-closed"  # the ledger had closed it already
    NOT_CURRENT = "not-current"  # the server runs another session now; nothing was done


async def stop_member_server(
    store: AccountingStore,
    hub: HubAPI,
    session: SessionRecord,
    who: str,
    *,
    wait: float = STOP_WAIT,
    poll: float = STOP_POLL,
) -> StopResult:
    """Stop the server of ``session`` through the hub and record that ``who`` asked.

    The server must be running ``session`` now: its current session (see
    :func:`~eohub.domain.accounting.session_record.current_session`) is the one named,
    so a server the user restarted since (perhaps charged to another group) is left
    alone. The session is not closed here: the hub's own stop event closes it with the
    real stop time. Raises :class:`HubAPIError` when the hub cannot be asked (nothing is
    recorded then).
    """
    if session.stopped_at is not None:
        return StopResult.ALREADY_CLOSED
    server = await hub.server(session.user, session.server)
    if server is None or not belongs_to(session.started_at, server.started, SLACK):
        return StopResult.NOT_RUNNING
    open_sessions = await store.read(store.sessions, users={session.user}, open_only=True)
    current = current_session(
        [s for s in open_sessions if s.server == session.server], server.started, SLACK
    )
    if current is None or current.id != session.id:
        return StopResult.NOT_CURRENT
    requested_at = store.clock()
    outcome = await hub.stop_server(session.user, session.server)
    if outcome is StopOutcome.GONE:
        return StopResult.NOT_RUNNING
    gone = outcome is StopOutcome.STOPPED or await _gone_within(hub, session, wait, poll)
    await store.write(store.stop_by, session.id, who, requested_at)
    log.info(
        "{who} stopped server {server!r} of {user} (session {session}, group {group}){note}",
        who=who,
        server=session.server,
        user=session.user,
        session=session.id,
        group=session.group,
        note="" if gone else "; the hub is still stopping it",
    )
    return StopResult.STOPPED if gone else StopResult.STOPPING


async def _gone_within(hub: HubAPI, session: SessionRecord, wait: float, poll: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        await asyncio.sleep(poll)
        server = await hub.server(session.user, session.server)
        if server is None or not belongs_to(session.started_at, server.started, SLACK):
            return True
    return False


async def stop_note(
    store: AccountingStore, caller: Caller, session_id: int, result: str
) -> str | None:
    """What the groups page says after a stop (``?stopped=N&result=...``), if anything.

    Only to someone who may see the session's group, from what the ledger holds now.
    """
    session = await store.read(store.session, session_id)
    if session is None or not may_read_group(caller, Op.PAGE_GROUPS, session.group):
        return None
    whose = whose_server(session.user, session.server)
    if result == StopResult.NOT_RUNNING:
        return f"Nothing was stopped: {whose} was no longer running."
    if result == StopResult.ALREADY_CLOSED:
        return f"Nothing was stopped: {whose} had already stopped."
    if result == StopResult.NOT_CURRENT:
        return (
            f"Nothing was stopped: {whose} was restarted since, and runs another session "
            "now. Look at the running servers again."
        )
    if session.stopped_by is None:
        return None
    if result == StopResult.STOPPING:
        return (
            f"The hub is stopping {whose}. The ledger records {session.stopped_by} as who "
            "asked for the stop."
        )
    return f"Stopped {whose}. The ledger records {session.stopped_by} as who stopped it."


__all__ = [
    "RunningServer",
    "StopResult",
    "hub_servers",
    "running_servers",
    "stop_member_server",
    "stop_note",
]
