"""Validation of the accounting API's other request bodies: quota checks, storage
samples, group updates and report queries. Every problem is reported per field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from eohub.domain.accounting_events import (
    MAX_CPU,
    MAX_GPUS,
    MAX_MEMORY_BYTES,
    NAME,
    EventError,
    FieldReader,
)
from eohub.domain.ledger import MAX_STORAGE_BYTES, Resources
from eohub.domain.periods import Allocation
from eohub.domain.quota import Limits
from eohub.domain.session_record import StorageSample

MAX_SAMPLES = 10_000
MAX_HOURS = 10**9
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
    cpu = f.number("cpu", maximum=MAX_CPU, integer=False, positive=True)
    memory = f.number("memory_bytes", maximum=MAX_MEMORY_BYTES, integer=True, positive=False)
    gpus = f.number("gpus", maximum=MAX_GPUS, integer=True, positive=False)
    if f.errors:
        raise EventError(f.errors)
    return QuotaRequest(user, group, Resources.from_cpu(cpu, int(memory), int(gpus)))


def parse_storage_samples(data: object) -> list[StorageSample]:
    body = _object(data)
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
        _unknown(f, item, {"user", "group", "bytes", "measured_at"})
        user = f.text("user", NAME)
        group = f.text("group", NAME, required=False)
        size = f.number("bytes", maximum=MAX_STORAGE_BYTES, integer=True, positive=False)
        at = f.time("measured_at")
        errors.update(f.errors)
        if not f.errors and at is not None:
            samples.append(StorageSample(user, group, int(size), at))
    if errors:
        raise EventError(errors)
    return samples


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
    if body.get("allocation") is not None:
        try:
            allocation = (
                Allocation.parse(str(body["allocation"]))
                if isinstance(body["allocation"], str)
                else None
            )
            if allocation is None:
                f.fail("allocation", "must be a string: month, quarter, year or rolling:N")
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
