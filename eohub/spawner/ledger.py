"""SessionLedger: each server's start and stop, recorded with accounting.

A spawn that started queues its start in the accounting outbox, with the session's
limits (``Launch.limits``); a stop, or a ``poll`` that finds the server gone, queues its
stop with the reason. The open session is kept in the spawner's state, so that a hub
restarted in between still records the stop, with the same key
(:meth:`SessionLedger._started_at`).

The reason of a stop (:mod:`eohub.domain.accounting.stop_reasons`):

- a ``poll`` that finds the server gone, from the exit status it returned
  (:meth:`SessionLedger._gone_reason`): ``stopped`` for a clean exit (status 0:
  JupyterLab's File > Shut Down, or the server's own idle shutdown; who asked is not
  known), ``failed`` for any other, or what the backend knows better (a Kubernetes pod
  past its deadline is ``max_duration``); a ``stop`` the backend calls from inside that
  poll (KubeSpawner deletes a pod whose container ended) carries the same reason;
- a stop while the spawn is still pending (the hub cleans up a server that never came
  up): ``failed``;
- any other stop: who asked the hub for it (:mod:`eohub.spawner.stop_attribution`).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from eohub.domain.accounting.stop_reasons import FAILED, STOPPED
from eohub.domain.launch.policy import Launch
from eohub.logs import get_logger
from eohub.spawner.metrics import timed
from eohub.spawner.stop_attribution import current_stop_reason

log = get_logger(__name__)

STATE_KEY = "eohub_session"
LAST_OPTIONS_KEY = "eohub_last_options"
# The spawner whose poll() is running in this task: a stop() the backend calls from
# inside it ends a server the poll found gone. A contextvar, not a flag on the
# spawner, so that a stop the hub runs meanwhile in another task is not mistaken for it.
_POLLING: ContextVar[object | None] = ContextVar("eohub_polling", default=None)


def utcnow() -> datetime:
    """Now, in UTC; module-level so tests can travel in time."""
    return datetime.now(UTC)


class SessionLedger:
    """The accounting records of a spawner's servers; mixed into QuotaSpawnerMixin."""

    launch: Launch | None = None
    accounting: Any
    _spawn_started_at: datetime | None = None

    async def stop(self, now: bool = False) -> None:
        # Decided before the backend removes the server (and with it what it knew).
        reason = self._stop_reason()
        # Backends poll while they stop; the server ending then is this stop, not a crash.
        self._stopping = True
        try:
            await super().stop(now=now)  # type: ignore[misc]
        finally:
            self._stopping = False
        await self._record_stop(reason)

    async def poll(self) -> int | None:
        token = _POLLING.set(self)
        try:
            status: int | None = await super().poll()  # type: ignore[misc]
            stopping = getattr(self, "_stopping", False)
            if status is not None and self._session is not None and not stopping:
                # The hub found the server gone (it crashed, hit a deadline, or ended
                # while the hub was down).
                reason = self._gone_reason(status)
                # The hub logs no exit status for a server that dies while it starts:
                # this line is where an admin finds it (a negative one is a signal).
                # A clean exit (JupyterLab's File > Shut Down) is no cause for a warning.
                say = log.warning if status else log.info
                say(
                    "{server} was found gone with exit status {status}; its session ends {reason}",
                    server=self._log_name,  # type: ignore[attr-defined]
                    status=status,
                    reason=reason,
                )
                await self._record_stop(reason)
        finally:
            _POLLING.reset(token)
        return status

    def _gone_reason(self, status: int | None) -> str:
        """Why a server that poll() found gone ended, from the exit status poll() returned.

        ``status`` is None for a stop the backend calls from inside its poll, before
        that poll returns a status; backends that can read it then, or that know more,
        override this. A clean exit is not a failure: the user shut the server down from
        JupyterLab, or the server shut itself down when idle, and the hub cannot tell
        which.
        """
        return STOPPED if status == 0 else FAILED

    def _stop_reason(self) -> str:
        """The reason to record for the stop that starts now (see the module docstring)."""
        if _POLLING.get() is self:
            return self._gone_reason(None)
        spawning: asyncio.Future[Any] | None = getattr(self, "_spawn_future", None)
        if spawning is not None and not spawning.done():
            # The hub stops a server whose start failed, or that never answered.
            return FAILED
        return current_stop_reason(
            owner=self.user.name,  # type: ignore[attr-defined]
            culler_services=getattr(self, "idle_culler_services", ()),
        )

    # The open session survives clear_state(), which backends call from poll() when they
    # find the server gone: it is dropped only once its stop is queued.
    @property
    def _session(self) -> dict[str, Any] | None:
        return getattr(self, "_eohub_session", None)

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()  # type: ignore[misc]
        if self._session is not None:
            state[STATE_KEY] = self._session
        last = getattr(self, "_eohub_last_options", None)
        if last:
            state[LAST_OPTIONS_KEY] = last
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        session = state.get(STATE_KEY)
        self._eohub_session = session if isinstance(session, dict) else None
        last = state.get(LAST_OPTIONS_KEY)
        self._eohub_last_options = last if isinstance(last, dict) else None

    def _started_at(self) -> datetime:
        """When this spawn started, as the session's key; the same for the whole spawn.

        The hub's own start time (``orm_spawner.started``, set before the options are
        applied) is used where there is one: the reconcile loop opens sessions with it
        too, so both records of one server are one session.
        """
        known: datetime | None = getattr(self, "_spawn_started_at", None)
        if known is not None:
            return known
        orm_spawner = getattr(self, "orm_spawner", None)
        started = getattr(orm_spawner, "started", None)
        if started is None:
            started = utcnow()
        elif started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        self._spawn_started_at = started
        return started

    def _begin_start_record(self) -> None:
        """Record the start, queueing it in the background: the backend has started the
        server (JupyterHub still waits for it to answer), and the user need not wait for
        the outbox's disk sync as well. A stop waits for it, so the
        outbox always holds a server's start before its stop; if the hub dies before
        the start is queued, the reconcile loop opens the session from the hub's list of
        servers."""
        self._recording = asyncio.ensure_future(self._queue_start(*self._note_start()))

    def _note_start(self) -> tuple[Launch, datetime]:
        """Keep the open session in the state now, for a hub that restarts."""
        launch = self.launch
        assert launch is not None
        started_at = self._started_at()
        self._eohub_session = {
            "started_at": started_at.isoformat(),
            "group": launch.group,
            **launch.limits.as_dict(),  # the limits it runs under, for a restarted hub
        }
        # The form prefills the last choices that started a server; JupyterHub's own
        # saved options are the last ones asked for, refused or not.
        self._eohub_last_options = dict(self.user_options)  # type: ignore[attr-defined]
        return launch, started_at

    async def _queue_start(self, launch: Launch, started_at: datetime) -> None:
        resources = launch.size.charged
        try:
            with timed("record"):
                await self.accounting.record_start(
                    user=self.user.name,  # type: ignore[attr-defined]
                    server=self.name,  # type: ignore[attr-defined]
                    started_at=started_at,
                    group=launch.group,
                    cpu=resources.millicores / 1000,
                    memory_bytes=resources.memory_bytes,
                    gpus=resources.gpus,
                    profile=launch.environment.name,
                    profile_name=launch.environment.display_name,
                    image=launch.environment.image or (launch.repo and launch.repo.image) or "",
                    **launch.limits.as_dict(),
                )
        except Exception:
            # The reconcile loop opens the session from the hub's list of servers.
            log.exception(
                "Could not queue the accounting start of {server}",
                server=self._log_name,  # type: ignore[attr-defined]
            )

    async def start_recorded(self) -> None:
        """Wait until the start of the server is queued (or failed to be, and logged)."""
        recording: asyncio.Future[None] | None = getattr(self, "_recording", None)
        if recording is not None:
            await asyncio.shield(recording)

    async def _record_stop(self, reason: str) -> None:
        await self.start_recorded()
        session = self._session
        if session is None:
            return
        self._eohub_session = None
        try:
            await self.accounting.record_stop(
                user=self.user.name,  # type: ignore[attr-defined]
                server=self.name,  # type: ignore[attr-defined]
                started_at=datetime.fromisoformat(session["started_at"]),
                stopped_at=utcnow(),
                reason=reason,
            )
        except Exception:
            log.exception(
                "Could not queue the accounting stop of {server}",
                server=self._log_name,  # type: ignore[attr-defined]
            )


__all__ = ["LAST_OPTIONS_KEY", "STATE_KEY", "SessionLedger", "utcnow"]
