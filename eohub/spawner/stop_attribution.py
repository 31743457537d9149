"""Who asked the hub to stop a server, so the ledger can say why it stopped.

JupyterHub's spawner ``stop()`` is not told who asked for it. eohub's handler for the
hub's stop routes (:mod:`eohub.spawner.stop_routes`) records the API caller in a
context variable around JupyterHub's own ``DELETE``; the hub runs the stop in a task it
creates from there (``asyncio.ensure_future`` in ``stop_single_user``), and a task
starts with a copy of its creator's context, so the spawner's ``stop()`` sees that
caller, and no other request's. The servers-first shutdown
(:mod:`eohub.spawner.accounting`) marks its stops the same way.

:func:`current_stop_reason` turns what is known into a stop reason
(:mod:`eohub.domain.accounting.stop_reasons`): the owner is ``user``, an idle culler's
service is ``idle``, any other user or service (an admin, the admin page, the
accounting service) is ``admin``, the hub shutting down is ``shutdown``, and a stop
nobody is known to have asked for (the hub on its own, a route eohub does not serve)
is ``stopped``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from eohub.domain.accounting.stop_reasons import SHUTDOWN, STOPPED, reason_for_caller

#: The kind of :class:`StopCaller` for the hub stopping its servers as it shuts down.
SHUTDOWN_KIND = "shutdown"


@dataclass(frozen=True)
class StopCaller:
    """Who asked for the stops made in this context.

    ``kind`` is JupyterHub's kind of API caller, ``"user"`` or ``"service"``, or
    :data:`SHUTDOWN_KIND`; ``name`` is the user's or service's name.
    """

    kind: str
    name: str


_caller: ContextVar[StopCaller | None] = ContextVar("eohub_stop_caller", default=None)


def current_caller() -> StopCaller | None:
    """Who asked for a stop made now, if known."""
    return _caller.get()


@contextmanager
def stops_asked_by(kind: str | None, name: str | None) -> Iterator[None]:
    """Stops started inside this block (and in tasks created in it) were asked for by
    the API caller ``kind``/``name``; nothing is recorded when either is unknown."""
    if not kind or not name:
        yield
        return
    token = _caller.set(StopCaller(kind, name))
    try:
        yield
    finally:
        _caller.reset(token)


@contextmanager
def stops_at_shutdown() -> Iterator[None]:
    """Stops started inside this block are the hub's own, as it shuts down."""
    token = _caller.set(StopCaller(SHUTDOWN_KIND, SHUTDOWN_KIND))
    try:
        yield
    finally:
        _caller.reset(token)


def current_stop_reason(*, owner: str, culler_services: Collection[str] = ()) -> str:
    """The reason for the stop being carried out now (``stopped`` when unknown).

    ``owner`` is the server's user; ``culler_services`` names the hub services whose
    stops are idle culls (``QuotaSpawnerMixin.idle_culler_services``).
    """
    caller = _caller.get()
    if caller is None:
        return STOPPED
    if caller.kind == SHUTDOWN_KIND:
        return SHUTDOWN
    return reason_for_caller(
        owner=owner,
        caller_kind=caller.kind,
        caller_name=caller.name,
        culler_services=culler_services,
    )


__all__ = [
    "SHUTDOWN_KIND",
    "StopCaller",
    "current_caller",
    "current_stop_reason",
    "stops_asked_by",
    "stops_at_shutdown",
]
