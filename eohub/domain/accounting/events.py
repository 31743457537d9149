"""The accounting event schema: what the hub sends when a server starts or stops.

A server's session is identified by ``(user, server, started_at)``. Every event also
carries an idempotency key ``id``; the service stores each key once, so an event sent
twice (a retry, an outbox replay) changes nothing. :func:`event_key` derives the key the
hub-side client uses.

Parsing collects every problem as ``{field: message}`` so the API can answer one 400
that lists them all.

The size limits (:mod:`eohub.domain.accounting.resources`) say why every total fits the
columns on all three databases.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.resources import MAX_CPU, MAX_GPUS, MAX_MEMORY_BYTES, MIN_CPU
from eohub.domain.accounting.stop_reasons import STOP_REASONS, STOPPED, is_reason, normalise
from eohub.domain.fields import FieldErrors

# Names are compared exactly, code point for code point, and never normalised here:
# ``BiUser``/``biuser``, NFC/NFD ``zoë`` and ``bob``/``bob `` are different names on every
# database. Accounting must use the hub's names unchanged (JupyterHub and its reconcile
# API tell those apart too); folding case or Unicode form is the authenticator's job.
NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")
SERVER_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{0,255}$")
KEY = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
MAX_BATCH = 5000
# How far ahead of the service's clock an event's times may be: the hub's clock and the
# service's drift apart a little, but a time far in the future is a bug or a forgery.
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=5)
# RFC 3339, the shape the OpenAPI description's pattern for times gives: plain
# datetime.fromisoformat also takes week dates, a space for the T, hours alone.
TIME_FORMAT = re.compile(
    r"(?P<year>[0-9]{4})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?"
)
#: The reasons a stop event may carry (legacy names are read too: see
#: :mod:`eohub.domain.accounting.stop_reasons`).
END_REASONS = STOP_REASONS
#: The longest session limit (``idle_timeout``, ``max_duration``) a start may carry, in
#: seconds: 366 days. Limits are whole seconds, from 1; a session without one has none.
MAX_LIMIT_SECONDS = 366 * 86_400


class EventError(FieldErrors):
    """Bad input: ``errors`` maps each field (``events[3].cpu``) to what is wrong with it."""


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
    profile_name: str = ""  # the environment's display name, for the pages
    # The session's limits in seconds, as the hub resolved them (None: no limit).
    idle_timeout: int | None = None
    max_duration: int | None = None


@dataclass(frozen=True)
class StopEvent:
    id: str
    session: SessionKey
    stopped_at: datetime
    reason: str = STOPPED  # one of STOP_REASONS, legacy names already mapped


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
    """An RFC 3339 timestamp with an explicit offset (``Z`` or ``+00:00``), as UTC.

    Years 2000 to 2200 only: every database stores them, and no period computed from
    them overflows.
    """
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string")
    shape = TIME_FORMAT.fullmatch(value)
    if shape is None:
        raise ValueError("must be an ISO 8601 timestamp, like 2026-01-31T12:00:00Z")
    if shape["offset"] is None:
        raise ValueError("must include a UTC offset, like Z or +00:00")
    if not 2000 <= int(shape["year"]) <= 2200:
        raise ValueError("must be between the years 2000 and 2200")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:  # a 13th month, a 25th hour
        raise ValueError("must be an ISO 8601 timestamp, like 2026-01-31T12:00:00Z") from None
    return t.astimezone(UTC)


def latest_time(now: datetime | None, max_clock_skew: timedelta) -> datetime | None:
    """The latest time an event may carry, given the service's clock (None: no limit)."""
    return None if now is None else now + max_clock_skew


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
        if name not in self.data:
            if required:
                self.fail(name, "is required")
            return default
        value = self.data[name]
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return default
        if not pattern.fullmatch(value) and (required or value):
            self.fail(name, "has characters or a length that are not allowed")
            return default
        return value

    def time(self, name: str, latest: datetime | None = None) -> datetime | None:
        """A required time; one after ``latest`` (the service's clock and skew) is refused."""
        if name not in self.data:
            self.fail(name, "is required")
            return None
        try:
            t = parse_time(self.data[name])
        except ValueError as e:
            self.fail(name, str(e))
            return None
        if latest is not None and t > latest:
            self.fail(name, f"is in the future (later than {format_time(latest)})")
            return None
        return t

    def number(
        self, name: str, *, maximum: float, integer: bool, positive: bool, default: float = 0
    ) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(name, "must be a number")
            return default
        # A JSON integer may have thousands of digits: compare it as an int, since
        # float() of it raises OverflowError.
        if isinstance(value, float) and integer and not value.is_integer():
            self.fail(name, "must be a whole number")
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(name, "must be a finite number")
            return default
        if value < 0 or (positive and value == 0):
            self.fail(name, "must be greater than 0" if positive else "must not be negative")
            return default
        if value > maximum:
            self.fail(name, f"must be at most {maximum:g}")
            return default
        return value

    def seconds(self, name: str) -> int | None:
        """An optional limit: whole seconds from 1 to :data:`MAX_LIMIT_SECONDS`."""
        if name not in self.data:
            return None
        value = self.data[name]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "must be a whole number of seconds (leave it out for no limit)")
            return None
        if not 1 <= value <= MAX_LIMIT_SECONDS:
            self.fail(
                name,
                f"must be from 1 to {MAX_LIMIT_SECONDS} seconds (366 days); "
                "leave it out for no limit",
            )
            return None
        return value


def parse_event(data: object, prefix: str = "", *, latest: datetime | None = None) -> Event:
    """Validate one event object; raise :class:`EventError` listing every bad field.

    ``latest`` is the latest time an event may carry (see :func:`latest_time`); None
    checks no clock (the hub-side client, which validates before it sends).
    """
    if not isinstance(data, Mapping):
        raise EventError({prefix.rstrip(".") or "body": "must be a JSON object"})
    f = FieldReader(data, prefix)
    kind = data.get("kind")
    if kind not in ("start", "stop"):
        f.fail("kind", "must be 'start' or 'stop'")
    event_id = f.text("id", KEY)
    user = f.text("user", NAME)
    server = f.text("server", SERVER_NAME, required=False)
    started_at = f.time("started_at", latest)
    unknown = sorted(set(data) - _ALLOWED.get(str(kind), set(data)))
    for name in unknown:
        f.fail(name, "is not a field of this event")
    if kind == "start":
        group = f.text("group", NAME)
        resources = read_resources(f)
        profile = f.text("profile", NAME, required=False)
        image = f.text("image", NAME, required=False)
        profile_name = f.text("profile_name", NAME, required=False)
        idle_timeout = f.seconds("idle_timeout")
        max_duration = f.seconds("max_duration")
        if f.errors or started_at is None or resources is None:
            raise EventError(f.errors)
        key = SessionKey(user, server, started_at)
        return StartEvent(
            event_id,
            key,
            group,
            resources,
            profile,
            image,
            profile_name,
            idle_timeout,
            max_duration,
        )
    stopped_at = f.time("stopped_at", latest) if kind == "stop" else None
    reason = read_reason(f)
    if started_at is not None and stopped_at is not None and stopped_at < started_at:
        f.fail("stopped_at", "is before started_at")
    if f.errors or started_at is None or stopped_at is None:
        raise EventError(f.errors)
    return StopEvent(event_id, SessionKey(user, server, started_at), stopped_at, reason)


_COMMON = {"id", "kind", "user", "server", "started_at"}
_ALLOWED = {
    "start": _COMMON
    | {
        "group",
        "cpu",
        "memory_bytes",
        "gpus",
        "profile",
        "image",
        "profile_name",
        "idle_timeout",
        "max_duration",
    },
    "stop": _COMMON | {"stopped_at", "reason"},
}


def read_reason(f: FieldReader) -> str:
    """A stop's ``reason`` (``stopped`` when left out), by today's name.

    Older hubs' outboxes may still hold ``culled``, ``quota`` or ``reconciled``: they are
    read as ``idle``, ``budget`` and ``reconcile``.
    """
    reason = f.data.get("reason", STOPPED)
    if not is_reason(reason):
        f.fail("reason", f"must be one of {', '.join(END_REASONS)}")
        return STOPPED
    return normalise(reason)


def read_resources(f: FieldReader) -> Resources | None:
    """``cpu``, ``memory_bytes`` and ``gpus`` within the bounds of the module docstring."""
    cpu = f.number("cpu", maximum=MAX_CPU, integer=False, positive=True)
    if f.prefix + "cpu" not in f.errors and 0 < cpu < MIN_CPU:
        f.fail("cpu", f"must be at least {MIN_CPU} (one millicore)")
    memory = f.number("memory_bytes", maximum=MAX_MEMORY_BYTES, integer=True, positive=False)
    gpus = f.number("gpus", maximum=MAX_GPUS, integer=True, positive=False)
    if f.errors:
        return None
    return Resources.from_cpu(cpu, int(memory), int(gpus))


def parse_batch(
    data: object,
    *,
    now: datetime | None = None,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> list[Event]:
    """Validate ``{"events": [...]}`` or a single event object; all-or-nothing.

    With ``now`` (the service's clock), times later than ``now + max_clock_skew`` are
    refused: a server cannot have started or stopped in the future.
    """
    latest = latest_time(now, max_clock_skew)
    if isinstance(data, Mapping) and "events" in data:
        extra = sorted(set(data) - {"events"})
        if extra:
            raise EventError({name: "is not a field of this request" for name in extra})
        items = data["events"]
        if not isinstance(items, list) or not items:
            raise EventError({"events": "must be a non-empty list"})
        if len(items) > MAX_BATCH:
            raise EventError({"events": f"at most {MAX_BATCH} events per request"})
        events: list[Event] = []
        errors: dict[str, str] = {}
        for i, item in enumerate(items):
            try:
                events.append(parse_event(item, f"events[{i}].", latest=latest))
            except EventError as e:
                errors.update(e.errors)
        if errors:
            raise EventError(errors)
        return events
    return [parse_event(data, latest=latest)]


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
    profile_name: str = "",
    idle_timeout: int | None = None,
    max_duration: int | None = None,
) -> dict[str, Any]:
    """The JSON of a start event, with its idempotency key.

    ``profile_name`` (the environment's display name) and the session's limits
    (``idle_timeout``, ``max_duration``, in seconds) are sent only when there are some,
    so events of hubs that do not know them read as before.
    """
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
        **({"profile_name": profile_name} if profile_name else {}),
        # None or 0: no limit, which an absent field says.
        **({"idle_timeout": idle_timeout} if idle_timeout else {}),
        **({"max_duration": max_duration} if max_duration else {}),
    }


def stop_event_json(
    *, user: str, server: str, started_at: datetime, stopped_at: datetime, reason: str = STOPPED
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
