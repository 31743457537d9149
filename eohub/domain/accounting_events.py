"""The accounting event schema: what the hub sends when a server starts or stops.

A server's session is identified by ``(user, server, started_at)``. Every event also
carries an idempotency key ``id``; the service stores each key once, so an event sent
twice (a retry, an outbox replay) changes nothing. :func:`event_key` derives the key the
hub-side client uses.

Parsing collects every problem as ``{field: message}`` so the API can answer one 400
that lists them all.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eohub.domain.ledger import Resources

NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")
SERVER_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{0,255}$")
KEY = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
MAX_BATCH = 5000
MAX_CPU = 4096
MAX_GPUS = 1024
MAX_MEMORY_BYTES = 64 * 1024**4  # 64 TiB
END_REASONS = ("stopped", "culled", "failed", "quota", "reconciled", "unknown")


class EventError(ValueError):
    """Bad input: ``errors`` maps each field (``events[3].cpu``) to what is wrong with it."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class SessionKey:
    user: str
    server: str
    started_at: datetime


@dataclass(frozen=True)
class StartEvent:
    id: str
    session: SessionKey
    group: str
    resources: Resources
    profile: str = ""
    image: str = ""


@dataclass(frozen=True)
class StopEvent:
    id: str
    session: SessionKey
    stopped_at: datetime
    reason: str = "stopped"


Event = StartEvent | StopEvent


def format_time(t: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``, the form events and the API use.

    A naive ``t`` is taken to be UTC already (as the store hands times to exports).
    """
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    # Plain isoformat() is much the quickest, and exports format two per row; it leaves
    # out a zero fraction, which the fixed form keeps.
    text = t.isoformat()
    return text + "Z" if t.microsecond else text + ".000000Z"


def parse_time(value: object) -> datetime:
    """An ISO 8601 timestamp with an explicit offset (``Z`` or ``+00:00``), as UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp, like 2026-01-31T12:00:00Z") from None
    if t.tzinfo is None:
        raise ValueError("must include a UTC offset, like Z or +00:00")
    if not 2000 <= t.year <= 2200:
        raise ValueError("must be between the years 2000 and 2200")
    return t.astimezone(UTC)


def event_key(kind: str, user: str, server: str, started_at: datetime) -> str:
    """The idempotency key of the ``kind`` event of a session: stable across retries."""
    raw = "\x1f".join((kind, user, server, format_time(started_at)))
    return f"{kind}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


class FieldReader:
    """Collects field errors while reading one JSON object."""

    def __init__(self, data: Mapping[str, Any], prefix: str) -> None:
        self.data = data
        self.prefix = prefix
        self.errors: dict[str, str] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(self.prefix + name, message)

    def text(
        self, name: str, pattern: re.Pattern[str], required: bool = True, default: str = ""
    ) -> str:
        value = self.data.get(name, None)
        if value is None:
            if required:
                self.fail(name, "is required")
            return default
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return default
        if not pattern.fullmatch(value) and (required or value):
            self.fail(name, "has characters or a length that are not allowed")
            return default
        return value

    def time(self, name: str) -> datetime | None:
        if name not in self.data:
            self.fail(name, "is required")
            return None
        try:
            return parse_time(self.data[name])
        except ValueError as e:
            self.fail(name, str(e))
            return None

    def number(
        self, name: str, *, maximum: float, integer: bool, positive: bool, default: float = 0
    ) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(name, "must be a number")
            return default
        if integer and not float(value).is_integer():
            self.fail(name, "must be a whole number")
            return default
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            self.fail(name, "must be greater than 0" if positive else "must not be negative")
            return default
        if value > maximum:
            self.fail(name, f"must be at most {maximum:g}")
            return default
        return value


def parse_event(data: object, prefix: str = "") -> Event:
    """Validate one event object; raise :class:`EventError` listing every bad field."""
    if not isinstance(data, Mapping):
        raise EventError({prefix.rstrip(".") or "body": "must be a JSON object"})
    f = FieldReader(data, prefix)
    kind = data.get("kind")
    if kind not in ("start", "stop"):
        f.fail("kind", "must be 'start' or 'stop'")
    event_id = f.text("id", KEY)
    user = f.text("user", NAME)
    server = f.text("server", SERVER_NAME, required=False)
    started_at = f.time("started_at")
    unknown = sorted(set(data) - _ALLOWED.get(str(kind), set(data)))
    for name in unknown:
        f.fail(name, "is not a field of this event")
    if kind == "start":
        group = f.text("group", NAME)
        cpu = f.number("cpu", maximum=MAX_CPU, integer=False, positive=True)
        memory = f.number("memory_bytes", maximum=MAX_MEMORY_BYTES, integer=True, positive=False)
        gpus = f.number("gpus", maximum=MAX_GPUS, integer=True, positive=False)
        profile = f.text("profile", NAME, required=False)
        image = f.text("image", NAME, required=False)
        resources = Resources.from_cpu(cpu, int(memory), int(gpus)) if not f.errors else None
        if resources is not None and resources.millicores == 0:
            f.fail("cpu", "must be at least 0.001 (one millicore)")
        if f.errors or started_at is None or resources is None:
            raise EventError(f.errors)
        return StartEvent(
            event_id, SessionKey(user, server, started_at), group, resources, profile, image
        )
    stopped_at = f.time("stopped_at") if kind == "stop" else None
    reason = f.text("reason", NAME, required=False, default="stopped")
    if reason not in END_REASONS:
        f.fail("reason", f"must be one of {', '.join(END_REASONS)}")
    if started_at is not None and stopped_at is not None and stopped_at < started_at:
        f.fail("stopped_at", "is before started_at")
    if f.errors or started_at is None or stopped_at is None:
        raise EventError(f.errors)
    return StopEvent(event_id, SessionKey(user, server, started_at), stopped_at, reason)


_COMMON = {"id", "kind", "user", "server", "started_at"}
_ALLOWED = {
    "start": _COMMON | {"group", "cpu", "memory_bytes", "gpus", "profile", "image"},
    "stop": _COMMON | {"stopped_at", "reason"},
}


def parse_batch(data: object) -> list[Event]:
    """Validate ``{"events": [...]}`` or a single event object; all-or-nothing."""
    if isinstance(data, Mapping) and "events" in data:
        items = data["events"]
        if not isinstance(items, list) or not items:
            raise EventError({"events": "must be a non-empty list"})
        if len(items) > MAX_BATCH:
            raise EventError({"events": f"at most {MAX_BATCH} events per request"})
        events: list[Event] = []
        errors: dict[str, str] = {}
        for i, item in enumerate(items):
            try:
                events.append(parse_event(item, f"events[{i}]."))
            except EventError as e:
                errors.update(e.errors)
        if errors:
            raise EventError(errors)
        return events
    return [parse_event(data)]


def start_event_json(
    *,
    user: str,
    server: str,
    started_at: datetime,
    group: str,
    cpu: float,
    memory_bytes: int = 0,
    gpus: int = 0,
    profile: str = "",
    image: str = "",
) -> dict[str, Any]:
    """The JSON of a start event, with its idempotency key."""
    return {
        "id": event_key("start", user, server, started_at),
        "kind": "start",
        "user": user,
        "server": server,
        "started_at": format_time(started_at),
        "group": group,
        "cpu": cpu,
        "memory_bytes": memory_bytes,
        "gpus": gpus,
        "profile": profile,
        "image": image,
    }


def stop_event_json(
    *, user: str, server: str, started_at: datetime, stopped_at: datetime, reason: str = "stopped"
) -> dict[str, Any]:
    """The JSON of a stop event, with its idempotency key."""
    return {
        "id": event_key("stop", user, server, started_at),
        "kind": "stop",
        "user": user,
        "server": server,
        "started_at": format_time(started_at),
        "stopped_at": format_time(stopped_at),
        "reason": reason,
    }
