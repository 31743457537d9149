"""Reconcile the ledger's open sessions with the servers the hub says are running.

The hub's own start and stop events keep the ledger right almost always. This module
decides what to do when they did not: a server that died behind the hub's back (its stop
was never sent), or a server that started while the accounting service could not hear
about it. It is pure: :func:`plan_reconcile` compares two lists and returns a plan, and
:func:`session_start` says how to charge a server that has no session. The accounting
service's reconcile loop gathers the lists and applies the plan.

A session belongs to the hub's server of the same user and server name unless it began
before that server did: then it is an earlier life of the server, which has ended. A
session that lost its server is closed at the last time the loop saw the server running
(never later), so a missed stop is never charged beyond what was observed; the hub's
real stop event, should it arrive later, replaces that estimate (see
:mod:`eohub.domain.accounting.ingest_rules`). A session is closed only once its server
has been missing for a while (:mod:`.reconcile_grace`): the hub's own stop may still be on
its way, in the hub's outbox while the service was down, and it carries the real time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from eohub.domain.accounting.resources import (
    CHARGED_KEY,
    CPU_KEYS,
    GPU_KEYS,
    GROUP_KEY,
    IMAGE_KEY,
    MAX_CPU,
    MAX_GPUS,
    MEMORY_KEYS,
    PROFILE_KEY,
    parse_bytes,
)
from eohub.domain.accounting.stop_reasons import RECONCILE

#: The end reason the ledger records for a session closed by reconciliation.
RECONCILED = RECONCILE


@dataclass(frozen=True)
class HubServer:
    """A server as the hub's REST API lists it.

    Attributes
    ----------
    user, name
        Its owner and its name (``""`` for the default server).
    started
        When the hub began spawning it; ``None`` only for a server the hub has not
        started.
    ready
        Whether it answers; ``pending`` is ``"spawn"`` or ``"stop"`` while the hub is
        starting or stopping it, else ``None``.
    user_options
        What the user asked for at launch (group, cpu, memory...).
    """

    user: str
    name: str
    started: datetime | None
    ready: bool = True
    pending: str | None = None
    last_activity: datetime | None = None
    user_options: Mapping[str, object] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class OpenSession:
    """An open session of the ledger and the last time its server was seen running."""

    id: int
    user: str
    server: str
    started_at: datetime
    last_seen: datetime | None = None

    @property
    def seen_until(self) -> datetime:
        """The last time the server is known to have run (its start if never seen)."""
        return max(self.started_at, self.last_seen or self.started_at)


@dataclass(frozen=True)
class Close:
    """Close a session at ``stopped_at``: its server is gone. ``reason`` says why."""

    session: OpenSession
    stopped_at: datetime
    reason: str


@dataclass(frozen=True)
class Touch:
    """The session's server still runs: record it as seen at the plan's time."""

    session: OpenSession
    reason: str


@dataclass(frozen=True)
class Open:
    """A running server with no session: open one from the hub's start time."""

    server: HubServer
    started_at: datetime
    reason: str


@dataclass(frozen=True)
class Skip:
    """A running server with no session that is left alone this time, and why."""

    server: HubServer
    reason: str


@dataclass(frozen=True)
class ReconcilePlan:
    """What to change so that the ledger's open sessions match the hub."""

    seen_at: datetime
    close: tuple[Close, ...] = ()
    touch: tuple[Touch, ...] = ()
    open: tuple[Open, ...] = ()
    skip: tuple[Skip, ...] = ()


def belongs_to(
    session_started: datetime, server_started: datetime | None, slack: timedelta
) -> bool:
    """Whether a session that began at ``session_started`` is a life of this server.

    A session may be recorded later than the hub's start time (the hub's client may
    record it once the server is ready), never much earlier: ``slack`` allows for the
    clocks of the hub and the service to differ a little.
    """
    return server_started is None or session_started >= server_started - slack


def _fmt(t: datetime) -> str:
    return t.isoformat(timespec="seconds")


def plan_reconcile(
    sessions: Iterable[OpenSession],
    servers: Iterable[HubServer],
    *,
    now: datetime,
    open_after: timedelta = timedelta(0),
    slack: timedelta = timedelta(minutes=1),
) -> ReconcilePlan:
    """Compare open sessions with the hub's servers, listed at ``now``.

    Parameters
    ----------
    sessions
        Every open session, read *before* the hub was listed: a session that opens
        after the listing must not look like one whose server has gone.
    servers
        Every server the hub lists as active (ready, starting or stopping).
    now
        When the listing began; matched sessions are touched at this time.
    open_after
        How long a server must have run before it is opened here, so that the hub's
        own start event, still on its way, is not raced.
    slack
        See :func:`belongs_to`.
    """
    by_server: dict[tuple[str, str], list[OpenSession]] = defaultdict(list)
    for s in sessions:
        by_server[(s.user, s.server)].append(s)
    hub: dict[tuple[str, str], HubServer] = {}
    for server in servers:
        hub.setdefault((server.user, server.name), server)  # a page listed twice
    close: list[Close] = []
    touch: list[Touch] = []
    to_open: list[Open] = []
    skip: list[Skip] = []
    for key, server in sorted(hub.items()):
        kept = _match(server, by_server.pop(key, []), slack, close)
        if kept is not None:
            touch.append(kept)
            continue
        unmatched = _unmatched(server, now, open_after)
        if isinstance(unmatched, Open):
            to_open.append(unmatched)
        else:
            skip.append(unmatched)
    for sessions_left in by_server.values():
        for s in sessions_left:
            at = s.seen_until
            close.append(
                Close(s, at, f"the hub no longer lists the server; last seen at {_fmt(at)}")
            )
    close.sort(key=lambda c: c.session.id)
    return ReconcilePlan(now, tuple(close), tuple(touch), tuple(to_open), tuple(skip))


def _match(
    server: HubServer, sessions: list[OpenSession], slack: timedelta, close: list[Close]
) -> Touch | None:
    """The session kept for a listed ``server``, if any; the others of its name go to
    ``close``."""
    candidates = sorted(sessions, key=lambda s: (s.started_at, s.id))
    current = [s for s in candidates if belongs_to(s.started_at, server.started, slack)]
    for s in candidates:
        if s in current:
            continue
        # An earlier life of this server: it ended before the hub started it again.
        assert server.started is not None  # belongs_to is true for any session else
        at = min(s.seen_until, server.started)
        close.append(
            Close(
                s,
                at,
                f"the hub restarted the server at {_fmt(server.started)}; closed at "
                f"{_fmt(at)}, when the earlier server was last seen",
            )
        )
    if not current:
        return None
    kept = min(current, key=lambda s: (_distance(s, server), s.id))
    for s in current:
        if s is not kept:
            # Two sessions for one server would charge it twice.
            close.append(
                Close(
                    s,
                    s.started_at,
                    f"a second session for the server of session {kept.id}; "
                    "closed at its start so that nothing is charged twice",
                )
            )
    return Touch(kept, "the hub lists the server as running")


def _unmatched(server: HubServer, now: datetime, open_after: timedelta) -> Open | Skip:
    """What to do with a listed server that has no open session."""
    if server.started is None:
        return Skip(server, "the hub gives no start time")
    if server.pending is not None or not server.ready:
        state = f"pending {server.pending}" if server.pending else "not ready"
        return Skip(server, f"the server is {state}; its own event will record it")
    if now - server.started < open_after:
        return Skip(
            server,
            f"started at {_fmt(server.started)}, less than "
            f"{open_after.total_seconds():g} s ago; waiting for the hub's own event",
        )
    return Open(
        server, server.started, f"running since {_fmt(server.started)} with no open session"
    )


def _distance(session: OpenSession, server: HubServer) -> timedelta:
    if server.started is None:
        return timedelta(0)
    return abs(session.started_at - server.started)


# -- how to charge a server that has no session ------------------------------------


class CannotOpenError(ValueError):
    """A running server cannot be charged to any known group; the message says why."""


@dataclass(frozen=True)
class StartDefaults:
    """What to charge when a server's ``user_options`` do not say.

    Attributes
    ----------
    group
        The group charged when the options name none, or one accounting does not know;
        ``""``: such a server is not opened.
    cpu, memory_bytes, gpus
        The resources charged where the options do not say.
    """

    group: str = ""
    cpu: float = 1.0
    memory_bytes: int = 0
    gpus: int = 0


@dataclass(frozen=True)
class SessionStart:
    """How to record a running server's session, and what was guessed (``notes``)."""

    user: str
    server: str
    started_at: datetime
    group: str
    cpu: float
    memory_bytes: int
    gpus: int
    profile: str = ""
    image: str = ""
    notes: tuple[str, ...] = ()


def _number(value: object, maximum: float) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, str):
        value = float(value)  # a ValueError names the text
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a number")
    if not 0 <= value <= maximum:
        raise ValueError(f"must be between 0 and {maximum:g}")
    return float(value)


def _option(options: Mapping[str, object], keys: tuple[str, ...]) -> tuple[str, object] | None:
    record = options.get(CHARGED_KEY)
    for source in (record, options) if isinstance(record, Mapping) else (options,):
        for key in keys:
            if source.get(key) not in (None, ""):
                return key, source[key]
    return None


def session_start(
    server: HubServer, defaults: StartDefaults, known_groups: Collection[str]
) -> SessionStart:
    """The session to open for ``server``: from its options, else from ``defaults``.

    Raises :class:`CannotOpenError` when neither names a group accounting knows.
    """
    if server.started is None:
        raise CannotOpenError("the hub gives no start time")
    options = server.user_options
    notes: list[str] = []
    group = _charged_group(options, defaults, known_groups, notes)
    cpu = _charged_cpu(options, defaults, notes)
    memory = _charged_memory(options, defaults, notes)
    gpus = _charged_gpus(options, defaults, notes)

    def text(key: str) -> str:
        found = _option(options, (key,))
        value = found[1] if found is not None else None
        return value if isinstance(value, str) and len(value) <= 255 else ""

    return SessionStart(
        user=server.user,
        server=server.name,
        started_at=server.started,
        group=group,
        cpu=cpu,
        memory_bytes=memory,
        gpus=gpus,
        profile=text(PROFILE_KEY),
        image=text(IMAGE_KEY),
        notes=tuple(notes),
    )


def _charged_group(
    options: Mapping[str, object],
    defaults: StartDefaults,
    known_groups: Collection[str],
    notes: list[str],
) -> str:
    group = options.get(GROUP_KEY)
    if isinstance(group, str) and group in known_groups:
        return group
    fallback = defaults.group
    if not fallback or fallback not in known_groups:
        asked = f"group {group!r}, which accounting does not know" if group else "no group"
        why = (
            f"the fallback group {fallback!r} is not defined either"
            if fallback
            else "no fallback group is configured"
        )
        raise CannotOpenError(f"its options name {asked}, and {why}")
    notes.append(
        f"charged to the fallback group {fallback!r}"
        + (f" (options name unknown group {group!r})" if group else "")
    )
    return fallback


def _charged_cpu(
    options: Mapping[str, object], defaults: StartDefaults, notes: list[str]
) -> float:
    found = _option(options, CPU_KEYS)
    if found is None:
        notes.append(f"no CPU in its options; charged {defaults.cpu:g} CPU")
        return defaults.cpu
    try:
        cpu = _number(found[1], MAX_CPU)
        if cpu == 0:
            raise ValueError("must be above 0")
    except ValueError as e:
        notes.append(f"option {found[0]!r} {e}; charged {defaults.cpu:g} CPU")
        return defaults.cpu
    return cpu


def _charged_memory(
    options: Mapping[str, object], defaults: StartDefaults, notes: list[str]
) -> int:
    found = _option(options, MEMORY_KEYS)
    if found is None:
        return defaults.memory_bytes
    try:
        return parse_bytes(found[1])
    except ValueError as e:
        notes.append(f"option {found[0]!r} {e}; charged {defaults.memory_bytes} bytes")
        return defaults.memory_bytes


def _charged_gpus(options: Mapping[str, object], defaults: StartDefaults, notes: list[str]) -> int:
    found = _option(options, GPU_KEYS)
    if found is None:
        return defaults.gpus
    try:
        value = _number(found[1], MAX_GPUS)
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    except ValueError as e:
        notes.append(f"option {found[0]!r} {e}; charged {defaults.gpus} GPUs")
        return defaults.gpus


__all__ = [
    "RECONCILED",
    "CannotOpenError",
    "Close",
    "HubServer",
    "Open",
    "OpenSession",
    "ReconcilePlan",
    "SessionStart",
    "Skip",
    "StartDefaults",
    "Touch",
    "belongs_to",
    "parse_bytes",
    "plan_reconcile",
    "session_start",
]
