"""The ledger's records as reports and exports read them: sessions, usage rows and
storage samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from eohub.domain.accounting.ledger import Resources, Usage, session_usage

#: A stop a PI or an admin asked for is theirs only if the server stopped within this
#: long after the request: a stop that the hub never finished, and that the member made
#: later themselves (or reconcile closed), is not the PI's.
PI_STOP_WINDOW = timedelta(minutes=10)
#: How much earlier than the request the hub's stop may be recorded and still be the
#: one asked for (the hub's clock and the service's may differ a little).
PI_STOP_CLOCK_SLACK = timedelta(seconds=60)


def stop_was_requested(requested_at: datetime, stopped_at: datetime) -> bool:
    """Whether a server already recorded as stopped at ``stopped_at`` stopped because of
    a request made at ``requested_at`` (see :data:`PI_STOP_WINDOW`)."""
    return requested_at - PI_STOP_CLOCK_SLACK <= stopped_at and not stopped_too_late(
        requested_at, stopped_at
    )


def stopped_too_late(requested_at: datetime, stopped_at: datetime) -> bool:
    """Whether a session closed at ``stopped_at`` closed too long after a stop request
    made at ``requested_at`` for the stop to be the request's.

    Only the late side counts when a session closes after the request: reconcile closes
    a session at the last time it saw the server running, which may be a reconcile
    round before the request.
    """
    return stopped_at > requested_at + PI_STOP_WINDOW


class SessionFields(Protocol):
    """The fields of a session, as a :class:`SessionRecord` or a database row has them.

    Exports read a million sessions; taking rows as they come, without building a
    record for each, is what keeps them fast.
    """

    @property
    def id(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def profile(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def millicores(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def gpus(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def stopped_at(self) -> datetime | None: ...
    @property
    def end_reason(self) -> str | None: ...
    @property
    def idle_timeout(self) -> int | None: ...
    @property
    def max_duration(self) -> int | None: ...


@dataclass(frozen=True)
class SessionRecord:
    """A server's life from start to stop, as the accounting store holds it.

    ``id`` is the store's primary key: it never changes, so exports derive stable job ids
    from it. ``stopped_at`` is ``None`` while the server runs. ``stopped_by`` names the
    person (a PI or an admin) who asked the hub to stop it from the pages, at
    ``stop_requested_at``; ``None`` for any other stop. While the session is open, that
    stop is still under way (:attr:`stop_asked_by`); once closed, it is who stopped it.
    ``stop_reason`` is the reason the accounting service recorded when it asked the hub
    to stop the server (``idle``, ``max_duration``, ``budget``, ``admin``), at
    ``stop_requested_at``; the ledger keeps it as ``end_reason`` when the server stops
    (:func:`~eohub.domain.accounting.stop_reasons.final_reason`). ``idle_timeout`` and
    ``max_duration`` are the session's limits in seconds (``None``: no limit).
    """

    id: int
    user: str
    server: str
    group: str
    resources: Resources
    started_at: datetime
    stopped_at: datetime | None = None
    end_reason: str | None = None
    profile: str = ""
    image: str = ""
    stopped_by: str | None = None
    profile_name: str = ""  # the environment's display name, when the hub sent one
    stop_requested_at: datetime | None = None
    idle_timeout: int | None = None
    max_duration: int | None = None
    stop_reason: str | None = None

    @property
    def stop_asked_by(self) -> str | None:
        """Who asked for a stop still under way (the session is open), if anyone."""
        return self.stopped_by if self.stopped_at is None else None

    def stop_under_way(self, now: datetime) -> str | None:
        """Who asked for a stop that may still be under way at ``now``: the session is
        open and the request is recent (one the hub never carried out is not shown as
        under way for ever)."""
        asked = self.stop_asked_by
        if asked is None or self.stop_requested_at is None:
            return None
        return asked if now - self.stop_requested_at <= PI_STOP_WINDOW else None

    @property
    def millicores(self) -> int:
        return self.resources.millicores

    @property
    def memory_bytes(self) -> int:
        return self.resources.memory_bytes

    @property
    def gpus(self) -> int:
        return self.resources.gpus

    def usage(self, now: datetime) -> Usage:
        """Usage so far: an open session counts up to ``now``."""
        return session_usage(self.resources, self.started_at, self.stopped_at or now)


def current_session(
    open_sessions: list[SessionRecord], server_started: datetime | None, slack: timedelta
) -> SessionRecord | None:
    """Which of one server's open sessions is the life the hub runs now, if any.

    As reconcile matches them: among the sessions recorded no earlier than ``slack``
    before the hub's start time, the one that started nearest to it (the lowest id on
    a tie). An older open session (a restart whose stop has not arrived yet) is not.
    """
    current = [
        s
        for s in open_sessions
        if s.stopped_at is None
        and (server_started is None or s.started_at >= server_started - slack)
    ]
    if not current:
        return None

    def distance(s: SessionRecord) -> tuple[timedelta, int]:
        gap = timedelta(0) if server_started is None else abs(s.started_at - server_started)
        return gap, s.id

    return min(current, key=distance)


@dataclass(frozen=True)
class UsageRow:
    """Usage of one user in one group over one period; ``user`` is empty for a group's total."""

    period_start: datetime
    group: str
    user: str
    usage: Usage


@dataclass(frozen=True)
class StorageSample:
    """One measurement of a user's storage use, charged to a group (``""`` if none).

    ``file_count`` is 0 when it was not counted: XDMoD requires the field. ``source`` is
    where it was measured (a root path, ``pvc:<namespace>/<claim>``; ``""``: not said):
    a user's space in a group is the sum over sources of each one's latest sample.
    """

    user: str
    group: str
    bytes: int
    measured_at: datetime
    file_count: int = 0
    source: str = ""
