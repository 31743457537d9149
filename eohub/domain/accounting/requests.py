"""Validation of the accounting API's input: JSON bodies (size and nesting), quota
checks, storage samples, group updates and report query parameters. Every problem is
reported per field, so the API answers one 400 naming them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from eohub.domain.accounting.events import (
    DEFAULT_MAX_CLOCK_SKEW,
    NAME,
    EventError,
    FieldReader,
    latest_time,
    parse_time,
    read_resources,
)
from eohub.domain.accounting.ledger import MAX_STORAGE_BYTES, Resources
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.resources import MAX_CPU
from eohub.domain.accounting.session_record import StorageSample

MAX_SAMPLES = 10_000
# Limits are stored in BIGINT ledger units: 1e9 core-hours is 3.6e18 millicore-ms and
# 1e9 GiB-hours 3.7e18 MiB-ms, both under 2**63 - 1 (9.22e18).
MAX_HOURS = 10**9
# One user's storage sample. A group's storage is the SQL SUM of its users' latest
# samples, which SQLite refuses past 2**63 - 1: at 1 PiB each, 8192 users still fit.
MAX_SAMPLE_BYTES = 2**50
# A sample's file count: a BIGINT column on every database.
MAX_FILE_COUNT = 2**63 - 1
# The largest request body (413 past it). A full batch of 5000 events is about 1.5 MiB;
# one of very long names can be more, and the hub's client then sends it in halves.
MAX_BODY_BYTES = 16 * 1024 * 1024
# The deepest valid body nests three levels (group quotas: body, owner, limits).
# json.loads recurses once per level and raises RecursionError near 1000, so depth is
# checked before it runs.
MAX_BODY_DEPTH = 16
# Row ids are 64-bit on every database; a larger number would overflow the driver.
MAX_ID = 2**63 - 1


def nesting_depth(value: object, limit: int) -> int:
    """How deep a decoded JSON ``value``'s arrays and objects nest, up to ``limit + 1``.

    Counted on the decoded value, without recursion, so that the service never runs one
    long pass over the raw bytes: a regular expression or ``bytes.replace`` over a
    megabyte holds the interpreter lock for milliseconds, and quota checks, answered on
    other threads of the same process, would wait that long. ``json.loads`` itself
    refuses bodies nested past the interpreter's recursion limit (``RecursionError``).
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return limit + 1
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _not_json(constant: str) -> object:
    raise ValueError(f"{constant} is not a JSON value")


def decode_json_body(body: bytes, *, max_depth: int = MAX_BODY_DEPTH) -> object:
    """The JSON value of a request body (empty: ``None``), or :class:`EventError`.

    The size is the handler's to check (it answers 413, before reading the body).
    """
    if not body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise EventError({"body": "is not UTF-8 text"}) from None
    too_deep = EventError({"body": f"nests arrays and objects more than {max_depth} deep"})
    try:
        value = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise too_deep from None
    except ValueError as e:  # also >4300-digit integers, NaN
        raise EventError({"body": f"is not valid JSON ({str(e)[:200]})"}) from None
    if nesting_depth(value, max_depth) > max_depth:
        raise too_deep
    return value


def int_param(
    name: str, value: str | None, *, default: int | None, minimum: int, maximum: int
) -> int | None:
    """A whole-number query parameter within ``[minimum, maximum]`` (ASCII digits only)."""
    if value is None:
        return default
    problem = f"must be a whole number from {minimum} to {maximum}"
    # Plain int() takes "1_000", " 7 " and other scripts' digits, and any length.
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(maximum)):
        raise EventError({name: problem})
    number = int(value)
    if not minimum <= number <= maximum:
        raise EventError({name: problem})
    return number


def time_param(name: str, value: str | None, default: datetime) -> datetime:
    """A time query parameter: RFC 3339, or a bare date meaning its midnight, UTC."""
    if value is None:
        return default
    if len(value) == 10:
        value += "T00:00:00Z"
    try:
        return parse_time(value)
    except ValueError as e:
        raise EventError({name: str(e)}) from None


def choice_param(name: str, value: str | None, choices: tuple[str, ...], default: str) -> str:
    """One of ``choices``; anything else is refused rather than read as the default."""
    if value is None:
        return default
    if value not in choices:
        raise EventError({name: f"must be one of {', '.join(choices)}"})
    return value


QUOTA_OWNER_HELP = '"" (the whole group), "*" (each member) or a user name'


@dataclass(frozen=True)
class QuotaRequest:
    user: str
    group: str
    resources: Resources


def _object(data: object, where: str = "body") -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise EventError({where: "must be a JSON object"})
    return data


def _unknown(reader: FieldReader, data: Mapping[str, object], allowed: set[str]) -> None:
    for name in sorted(set(data) - allowed):
        reader.fail(name, "is not a field of this request")


def parse_quota_request(data: object) -> QuotaRequest:
    body = _object(data)
    f = FieldReader(body, "")
    _unknown(f, body, {"user", "group", "cpu", "memory_bytes", "gpus"})
    user = f.text("user", NAME)
    group = f.text("group", NAME)
    resources = read_resources(f)
    if f.errors or resources is None:
        raise EventError(f.errors)
    return QuotaRequest(user, group, resources)


def parse_storage_samples(
    data: object,
    *,
    now: datetime | None = None,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> list[StorageSample]:
    """``{"samples": [...]}``; with ``now``, a sample measured in the future is refused."""
    body = _object(data)
    extra = sorted(set(body) - {"samples"})
    if extra:
        raise EventError({name: "is not a field of this request" for name in extra})
    latest = latest_time(now, max_clock_skew)
    items = body.get("samples")
    if not isinstance(items, list) or not items:
        raise EventError({"samples": "must be a non-empty list"})
    if len(items) > MAX_SAMPLES:
        raise EventError({"samples": f"at most {MAX_SAMPLES} samples per request"})
    errors: dict[str, str] = {}
    samples: list[StorageSample] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            errors[f"samples[{i}]"] = "must be a JSON object"
            continue
        f = FieldReader(item, f"samples[{i}].")
        _unknown(f, item, {"user", "group", "bytes", "measured_at", "file_count", "source"})
        user = f.text("user", NAME)
        group = f.text("group", NAME, required=False)
        source = f.text("source", NAME, required=False)
        size = f.number("bytes", maximum=MAX_SAMPLE_BYTES, integer=True, positive=False)
        at = f.time("measured_at", latest)
        files = _file_count(f, item.get("file_count", 0))
        errors.update(f.errors)
        if not f.errors and at is not None:
            samples.append(StorageSample(user, group, int(size), at, files, source))
    if errors:
        raise EventError(errors)
    return samples


def _file_count(f: FieldReader, value: object) -> int:
    """A sample's ``file_count``: a whole number that fits the 64-bit column (``3.0`` is
    3, as JSON Schema's integers and the sample's ``bytes`` have it)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FILE_COUNT:
        f.fail("file_count", f"must be a whole number from 0 to {MAX_FILE_COUNT}")
        return 0
    return value


@dataclass(frozen=True)
class GroupUpdate:
    display_name: str | None
    allocation: Allocation | None
    pis: set[str] | None
    quotas: dict[str, Limits | None]


_LIMIT_FIELDS = {
    "core_hours": (MAX_HOURS, False),
    "gpu_hours": (MAX_HOURS, False),
    "memory_gib_hours": (MAX_HOURS, False),
    "max_servers": (100_000, True),
    "max_cores": (MAX_CPU * 1000, False),
    "storage_bytes": (MAX_STORAGE_BYTES, True),
}


def parse_limits(data: object, prefix: str) -> tuple[Limits | None, dict[str, str]]:
    if data is None:
        return None, {}
    if not isinstance(data, Mapping):
        return None, {prefix.rstrip("."): "must be an object of limits, or null to remove"}
    f = FieldReader(data, prefix)
    _unknown(f, data, set(_LIMIT_FIELDS))
    values: dict[str, Fraction | int | None] = {}
    for name, (maximum, integer) in _LIMIT_FIELDS.items():
        if data.get(name) is None:
            values[name] = None
            continue
        number = f.number(name, maximum=maximum, integer=integer, positive=False)
        values[name] = int(number) if integer else Fraction(str(number))
    if f.errors:
        return None, f.errors
    return Limits(**values), {}  # type: ignore[arg-type]


def parse_group_update(data: object) -> GroupUpdate:
    body = _object(data)
    f = FieldReader(body, "")
    _unknown(f, body, {"display_name", "allocation", "pis", "quotas"})
    display_name = (
        f.text("display_name", NAME, required=False, default="")
        if "display_name" in body
        else None
    )
    allocation = None
    raw_allocation = body.get("allocation")
    if raw_allocation is not None:  # null: unchanged
        try:
            if not isinstance(raw_allocation, str) or raw_allocation != raw_allocation.strip():
                raise ValueError("must be a string: month, quarter, year or rolling:N")
            allocation = Allocation.parse(raw_allocation)
            if str(allocation) != raw_allocation:  # the spec's pattern: lower case only
                raise ValueError(f"must be written {str(allocation)!r}")
        except ValueError as e:
            f.fail("allocation", str(e))
    pis: set[str] | None = None
    if "pis" in body:
        raw = body["pis"]
        if not isinstance(raw, list) or not all(
            isinstance(p, str) and NAME.fullmatch(p) for p in raw
        ):
            f.fail("pis", "must be a list of user names")
        else:
            pis = set(raw)
    quotas: dict[str, Limits | None] = {}
    raw_quotas = body.get("quotas", {})
    if not isinstance(raw_quotas, Mapping):
        f.fail("quotas", f"must be an object keyed by {QUOTA_OWNER_HELP}")
    else:
        for owner, limits in raw_quotas.items():
            if owner not in ("", "*") and not NAME.fullmatch(owner):
                f.fail(f"quotas.{owner}", f"keys must be {QUOTA_OWNER_HELP}")
                continue
            parsed, errors = parse_limits(limits, f"quotas[{owner!r}].")
            f.errors.update(errors)
            quotas[owner] = parsed
    if f.errors:
        raise EventError(f.errors)
    return GroupUpdate(display_name, allocation, pis, quotas)
