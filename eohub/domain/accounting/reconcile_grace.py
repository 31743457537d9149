"""How long reconcile waits before it closes a session whose server has gone.

The hub's own stop event carries the real stop time; reconcile can only estimate it (the
last time it saw the server run). The hub's event may be late: it waits in the hub's
outbox while the accounting service is down, and is delivered when the service is back
or the hub starts again. So reconcile closes a session only once its server has been
missing for a while, counted from the first round that missed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from eohub.domain.accounting.reconcile import ReconcilePlan


def hold_closes(
    plan: ReconcilePlan, missing_since: Mapping[int, datetime], close_after: timedelta
) -> tuple[ReconcilePlan, dict[int, datetime]]:
    """The plan with only the closes that are due, and when each session went missing.

    A session is closed once it has been missing from the hub's list for
    ``close_after`` (counted from the first round that missed it, ``missing_since``
    from the previous round); until then the hub's own stop event, with the real stop
    time, may still arrive. The map returned holds the sessions still waiting, for the
    next round: a session found again, or closed, is forgotten.
    """
    now = plan.seen_at
    since = {c.session.id: missing_since.get(c.session.id, now) for c in plan.close}
    due = tuple(c for c in plan.close if now - since[c.session.id] >= close_after)
    closed = {c.session.id for c in due}
    waiting = {sid: t for sid, t in since.items() if sid not in closed}
    return replace(plan, close=due), waiting


__all__ = ["hold_closes"]
