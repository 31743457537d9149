"""Why a server stopped: the one vocabulary the ledger, the pages and the exports use.

Every closed session in the ledger carries one of :data:`STOP_REASONS` as its
``end_reason``. The hub's spawner sends what it knows (who asked the hub to stop the
server, or that the server died); the accounting service knows better for the stops it
asks for itself (``idle``, ``max_duration``, ``budget``) and for a PI's stop from its pages
(``admin``), so a reason it recorded with the request replaces the hub's
(:func:`final_reason`).

Reasons written by earlier eohub versions are still read: :func:`normalise` maps them
onto today's names, and migration 0005 rewrote the stored ones.
"""

from __future__ import annotations

from collections.abc import Collection

from eohub.domain.wording import span_text

USER = "user"  # the server's own user stopped it (the hub's page, the REST API)
ADMIN = "admin"  # a hub admin, a PI from the usage pages, or another service
IDLE = "idle"  # idle past its limit: stopped by eohub's enforcement or by an idle culler
MAX_DURATION = "max_duration"  # ran for its maximum duration
BUDGET = "budget"  # the budget it was charged to was spent
FAILED = "failed"  # the server died (a non-zero exit), or never came up
RECONCILE = "reconcile"  # the hub no longer listed it; closed by the reconcile loop
SHUTDOWN = "shutdown"  # the hub stopped its servers as it shut down
# Stopped, by whom not known: through the hub for an unnamed caller (older hubs, no
# route), or the server exited cleanly, status 0 (JupyterLab's File > Shut Down, or
# its own idle shutdown: the hub cannot tell which).
STOPPED = "stopped"
UNKNOWN = "unknown"

STOP_REASONS: tuple[str, ...] = (
    USER,
    ADMIN,
    IDLE,
    MAX_DURATION,
    BUDGET,
    FAILED,
    RECONCILE,
    SHUTDOWN,
    STOPPED,
    UNKNOWN,
)

#: Reasons earlier versions wrote, and today's name for each.
LEGACY_REASONS: dict[str, str] = {"quota": BUDGET, "reconciled": RECONCILE, "culled": IDLE}

#: The reasons the accounting service may record with a stop it asks the hub for.
REQUESTED_REASONS: frozenset[str] = frozenset({ADMIN, IDLE, MAX_DURATION, BUDGET})

#: The Slurm state each reason is exported as: states the XDMoD shredder accepts
#: (``eohub.domain.reports.xdmod.ENDED_STATES``). ``TIMEOUT`` is Slurm's "reached its
#: time limit"; an idle stop is a time limit on inactivity.
XDMOD_STATES: dict[str, str] = {
    USER: "COMPLETED",
    STOPPED: "COMPLETED",
    RECONCILE: "COMPLETED",
    UNKNOWN: "COMPLETED",
    ADMIN: "CANCELLED",
    SHUTDOWN: "CANCELLED",
    BUDGET: "CANCELLED",
    IDLE: "TIMEOUT",
    MAX_DURATION: "TIMEOUT",
    FAILED: "FAILED",
}

#: What the usage pages and the hub's home page say, after "Stopped: ".
REASON_WORDS: dict[str, str] = {
    USER: "stopped by its user",
    ADMIN: "stopped by an admin or a PI",
    IDLE: "stopped after being idle for its limit",
    MAX_DURATION: "reached its maximum duration",
    BUDGET: "the budget it was charged to was spent",
    FAILED: "the server failed or could not start",
    RECONCILE: "found stopped by the accounting service",
    SHUTDOWN: "the hub shut down",
    STOPPED: "stopped (by whom is not known)",
    UNKNOWN: "unknown",
}


def normalise(reason: str) -> str:
    """Today's name for ``reason`` (a legacy name is mapped; others are kept)."""
    return LEGACY_REASONS.get(reason, reason)


def is_reason(reason: object) -> bool:
    """Whether ``reason`` is a stop reason, today's or a legacy one."""
    return isinstance(reason, str) and (reason in STOP_REASONS or reason in LEGACY_REASONS)


def final_reason(sent: str, requested: str | None, stopped_by: str | None) -> str:
    """The reason the ledger keeps for a stop the hub sent as ``sent``.

    ``requested`` is the reason the accounting service recorded when it asked the hub to
    stop the server; ``stopped_by`` names the PI or admin who asked from the usage pages.
    A stop the service asked for keeps the service's reason; a failure is kept as one.
    """
    sent = normalise(sent)
    if sent == FAILED:
        return FAILED
    if requested:
        return normalise(requested)
    if stopped_by:
        return ADMIN
    return sent


def reason_for_caller(
    *,
    owner: str,
    caller_kind: str | None,
    caller_name: str | None,
    culler_services: Collection[str] = (),
) -> str:
    """The reason for a stop the hub carried out for an API caller.

    ``caller_kind`` is ``"user"`` or ``"service"`` (None: no caller, such as the hub
    stopping servers on its own). The owner stopping their own server is ``user``; an
    idle culler's service is ``idle``; anyone else (an admin, another service) is
    ``admin``.
    """
    if caller_kind is None or caller_name is None:
        return STOPPED
    if caller_kind == "user" and caller_name == owner:
        return USER
    if caller_kind == "service" and caller_name in culler_services:
        return IDLE
    return ADMIN


def stop_reason_text(
    reason: str | None,
    *,
    idle_timeout: int | None = None,
    max_duration: int | None = None,
    stopped_by: str = "",
) -> str:
    """Why a session stopped, as the pages say it; empty while it runs or when unknown.

    A stop at a limit names the limit ("stopped after being idle for its limit
    (2 hours)"); a stop a person asked for from the usage pages names them ("stopped by
    carol"), unless the server failed first.
    """
    if not reason:
        return ""
    reason = normalise(reason)
    if stopped_by and reason != FAILED:
        return f"stopped by {stopped_by}"
    words = reason_words(reason)
    limit = {IDLE: idle_timeout, MAX_DURATION: max_duration}.get(reason)
    return f"{words} ({span_text(limit)})" if limit else words


def xdmod_state(reason: str | None) -> str:
    """The Slurm state a session stopped for ``reason`` is exported with."""
    return XDMOD_STATES.get(normalise(reason or UNKNOWN), "COMPLETED")


def reason_words(reason: str | None) -> str:
    """``reason`` in words for people (an unknown value is shown as it is)."""
    if not reason:
        return ""
    reason = normalise(reason)
    return REASON_WORDS.get(reason, reason)


__all__ = [
    "ADMIN",
    "BUDGET",
    "FAILED",
    "IDLE",
    "LEGACY_REASONS",
    "MAX_DURATION",
    "REASON_WORDS",
    "RECONCILE",
    "REQUESTED_REASONS",
    "SHUTDOWN",
    "STOPPED",
    "STOP_REASONS",
    "UNKNOWN",
    "USER",
    "XDMOD_STATES",
    "final_reason",
    "is_reason",
    "normalise",
    "reason_for_caller",
    "reason_words",
    "stop_reason_text",
    "xdmod_state",
]
