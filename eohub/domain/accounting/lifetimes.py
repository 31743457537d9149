"""Session lifetimes: stop servers idle past their limit or running past their maximum.

A session carries the limits of the environment it was launched with (the hub's launch
config resolves them per group: :mod:`eohub.domain.launch.session_limits`): an idle
limit and a maximum duration, in seconds, either of which may be unset. This module is
pure: :func:`plan_lifetimes` takes the open sessions, what the hub says of each one's
server, the warnings issued so far and the time, and returns the warnings to keep, those
issued and withdrawn, and the servers to stop with their reason. The accounting
service's enforcement worker gathers the inputs and carries out the stops.

Idle
    A server is idle since its last activity as the hub records it (JupyterLab posts it
    while someone works; the proxy's traffic moves it too), or since the session
    started if that is later: the signal jupyterhub-idle-culler uses. It is stopped
    (reason ``idle``) once idle for its limit. No warning comes first: any activity
    resets the count, and the limit is shown on the launch form.
Maximum duration
    A warning is issued ``warning_period`` before ``started_at + max_duration``, and the
    server is stopped (reason ``max_duration``) at that time. The time is fixed: a
    warning issued late (the service was down) does not postpone the stop, so the
    Kubernetes backstop a little beyond the limit never fires first. When both limits
    are due, the maximum duration is the reason.

A session whose server the hub does not list is left alone (its warning kept): the
reconcile loop closes it once the server has been missing for a while. A server still
starting is left alone too, as the idle culler does.

A stop the service has asked for before (the session's ``stop_reason``, recorded with
the request) and the hub has not confirmed (it was restarting, or slow) is asked for
again, with the same reason, while that reason still holds: a ``max_duration`` request
always (the time only grows), an ``idle`` request while the server is still idle past
its limit, or while the hub is stopping it. An ``idle`` request whose server has been
used since is withdrawn (:attr:`LifetimePlan.withdrawn`): the server is not stopped, and
a later stop, by its user say, is not recorded as ``idle``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from eohub.domain.accounting.stop_reasons import IDLE, MAX_DURATION
from eohub.domain.wording import duration_text

#: The reasons this module stops servers for.
LIFETIME_REASONS: frozenset[str] = frozenset({IDLE, MAX_DURATION})


@dataclass(frozen=True)
class LimitedSession:
    """An open session and the limits it was launched with.

    Attributes
    ----------
    idle_timeout, max_duration
        Seconds; ``None`` is no limit.
    stop_reason
        The reason recorded when the service asked the hub to stop this server, while
        that stop is still under way; else ``None``.
    """

    id: int
    user: str
    server: str
    group: str
    started_at: datetime
    idle_timeout: int | None = None
    max_duration: int | None = None
    stop_reason: str | None = None

    @property
    def ends_at(self) -> datetime | None:
        """When its maximum duration is reached, if it has one."""
        if not self.max_duration:
            return None
        return self.started_at + timedelta(seconds=self.max_duration)

    @property
    def limited(self) -> bool:
        """Whether anything here may stop it."""
        asked = self.stop_reason is not None and self.stop_reason in LIFETIME_REASONS
        return bool(self.idle_timeout or self.max_duration or asked)


@dataclass(frozen=True)
class HubView:
    """What the hub lists for a session's server.

    Attributes
    ----------
    last_activity
        The hub's last activity of the server, if it has one.
    pending
        ``"spawn"`` or ``"stop"`` while the hub is starting or stopping it, else ``None``.
    """

    last_activity: datetime | None = None
    pending: str | None = None


@dataclass(frozen=True)
class LifetimeWarning:
    """A server will be stopped at ``stop_at`` for ``reason`` (its maximum duration).

    ``first_warned_at`` does not move while the warning stands.
    """

    session: int
    user: str
    server: str
    group: str
    reason: str
    stop_at: datetime
    first_warned_at: datetime

    def message(self, now: datetime) -> str:
        """The warning in words for people, e.g. for the log and the usage pages."""
        name = f"server {self.server!r}" if self.server else "default server"
        left = (self.stop_at - now).total_seconds()
        when = f"in {span_text(left)}" if left >= 1 else "now"
        return (
            f"The {name} of {self.user} reaches its maximum duration at "
            f"{self.stop_at.isoformat(timespec='seconds')} and will be stopped {when}."
        )


@dataclass(frozen=True)
class LifetimeCleared:
    """A warning withdrawn, and why."""

    warning: LifetimeWarning
    reason: str


@dataclass(frozen=True)
class LifetimeStop:
    """Stop this session's server for ``reason``; ``detail`` says why in a sentence."""

    session: LimitedSession
    reason: str
    detail: str


@dataclass(frozen=True)
class LifetimeWithdrawal:
    """Withdraw the stop asked for this session (its ``stop_reason``): ``detail`` says why."""

    session: LimitedSession
    detail: str


@dataclass(frozen=True)
class LifetimePlan:
    """The warnings to keep from now on, what changed, the servers to stop, and the
    stops asked for before that no longer apply."""

    warnings: Mapping[int, LifetimeWarning]
    issued: tuple[LifetimeWarning, ...] = ()
    cleared: tuple[LifetimeCleared, ...] = ()
    stops: tuple[LifetimeStop, ...] = ()
    withdrawn: tuple[LifetimeWithdrawal, ...] = ()


#: Why a stop asked for before is asked for again.
UNCONFIRMED = "its stop was asked for and is not confirmed yet"


def span_text(seconds: float) -> str:
    """A limit or a span in words: ``45 s`` below a minute, else as the pages say it."""
    if seconds < 60:
        return f"{max(int(seconds), 0)} s"
    return duration_text(seconds)


def idle_since(session: LimitedSession, view: HubView) -> datetime:
    """Since when the server has been idle: its last activity, or its start if later."""
    last = view.last_activity
    return session.started_at if last is None else max(last, session.started_at)


def _max_due(session: LimitedSession, now: datetime) -> LifetimeStop | None:
    ends_at = session.ends_at
    if ends_at is None or not session.max_duration or now < ends_at:
        return None
    ran = (now - session.started_at).total_seconds()
    detail = f"ran for {span_text(ran)} (maximum {span_text(session.max_duration)})"
    return LifetimeStop(session, MAX_DURATION, detail)


def _idle_due(session: LimitedSession, view: HubView, now: datetime) -> LifetimeStop | None:
    if not session.idle_timeout:
        return None
    idle = (now - idle_since(session, view)).total_seconds()
    if idle < session.idle_timeout:
        return None
    detail = f"idle for {span_text(idle)} (limit {span_text(session.idle_timeout)})"
    return LifetimeStop(session, IDLE, detail)


def _due_stop(session: LimitedSession, view: HubView, now: datetime) -> LifetimeStop | None:
    """The stop due now, if any: the maximum duration first, then the idle limit."""
    return _max_due(session, now) or _idle_due(session, view, now)


def _warning_due(
    session: LimitedSession,
    before: LifetimeWarning | None,
    warning_period: timedelta,
    now: datetime,
) -> LifetimeWarning | None:
    ends_at = session.ends_at
    if ends_at is None or warning_period <= timedelta(0) or now < ends_at - warning_period:
        return None  # a period of 0 is no warning, not one issued with the stop
    if before is not None and before.stop_at == ends_at:
        return before
    return LifetimeWarning(
        session.id, session.user, session.server, session.group, MAX_DURATION, ends_at, now
    )


def plan_lifetimes(
    *,
    sessions: Iterable[LimitedSession],
    hub: Mapping[int, HubView],
    warnings: Mapping[int, LifetimeWarning],
    warning_period: timedelta,
    now: datetime,
) -> LifetimePlan:
    """Decide this round's warnings and stops (see the module docstring).

    ``hub`` maps a session's id to its server as the hub lists it; a session missing
    from it is not listed. A ``warning_period`` of 0 issues no warning.
    """
    kept: dict[int, LifetimeWarning] = {}
    issued: list[LifetimeWarning] = []
    stops: list[LifetimeStop] = []
    withdrawn: list[LifetimeWithdrawal] = []
    cleared: list[LifetimeCleared] = []
    open_ids: set[int] = set()
    for session in sorted(sessions, key=lambda s: s.id):
        open_ids.add(session.id)
        before = warnings.get(session.id)
        view = hub.get(session.id)
        if view is None or view.pending == "spawn":
            if before is not None:
                kept[session.id] = before  # not listed, or not up yet: left alone
            continue
        warning = _warning_due(session, before, warning_period, now)
        if warning is not None:
            kept[session.id] = warning
            if warning is not before:
                issued.append(warning)
        elif before is not None:
            cleared.append(LifetimeCleared(before, "the server is not due to stop any more"))
        stop = _stop_for(session, view, now)
        if isinstance(stop, LifetimeStop):
            stops.append(stop)
        elif stop is not None:
            withdrawn.append(stop)
    cleared.extend(
        LifetimeCleared(w, "the server no longer runs")
        for session_id, w in sorted(warnings.items())
        if session_id not in open_ids
    )
    return LifetimePlan(kept, tuple(issued), tuple(cleared), tuple(stops), tuple(withdrawn))


def _stop_for(
    session: LimitedSession, view: HubView, now: datetime
) -> LifetimeStop | LifetimeWithdrawal | None:
    """The stop due now, the one asked for before while its reason holds, or the
    withdrawal of one whose reason no longer does."""
    asked = session.stop_reason if session.stop_reason in LIFETIME_REASONS else None
    if asked is not None and (
        asked == MAX_DURATION
        or view.pending == "stop"  # the hub is carrying out our request: it ends as asked
        or _idle_due(session, view, now) is not None
    ):
        return LifetimeStop(session, asked, UNCONFIRMED)
    if view.pending == "stop":
        return None  # someone else is stopping it: theirs is the reason
    due = _due_stop(session, view, now)
    if due is None and asked is not None:
        idle = (now - idle_since(session, view)).total_seconds()
        limit = f"limit {span_text(session.idle_timeout)}" if session.idle_timeout else "no limit"
        return LifetimeWithdrawal(
            session, f"the server was used since: idle for {span_text(idle)} ({limit})"
        )
    return due


__all__ = [
    "LIFETIME_REASONS",
    "UNCONFIRMED",
    "HubView",
    "LifetimeCleared",
    "LifetimePlan",
    "LifetimeStop",
    "LifetimeWarning",
    "LifetimeWithdrawal",
    "LimitedSession",
    "idle_since",
    "plan_lifetimes",
    "span_text",
]
