"""Events to queue in an outbox: starts and stops of alice's (or another user's) server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from eohub.domain.accounting.events import start_event_json, stop_event_json

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def start(i: int, user: str = "alice") -> dict[str, Any]:
    return start_event_json(
        user=user, server="", started_at=T0 + timedelta(seconds=i), group="climate", cpu=1
    )


def stop(i: int, user: str = "alice") -> dict[str, Any]:
    at = T0 + timedelta(seconds=i)
    return stop_event_json(user=user, server="", started_at=at, stopped_at=at + timedelta(hours=1))
