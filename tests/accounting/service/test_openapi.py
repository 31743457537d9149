"""The OpenAPI description is valid and documents exactly the routes the service serves."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

import eohub.accounting.service
from eohub.accounting.service.api import api_routes, session_json
from eohub.accounting.service.routes import extra_routes
from eohub.domain.accounting.events import (
    EventError,
    format_time,
    parse_batch,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.requests import (
    parse_group_update,
    parse_quota_request,
    parse_storage_samples,
)
from eohub.domain.accounting.session_record import SessionRecord
from eohub.domain.accounting.stop_reasons import LEGACY_REASONS, STOP_REASONS

SPEC = Path(eohub.accounting.service.__file__).with_name("openapi.yaml")


def _spec() -> dict:  # type: ignore[type-arg]
    data: dict = yaml.safe_load(SPEC.read_text())  # type: ignore[type-arg]
    return data


def test_openapi_file_is_valid() -> None:
    validate(_spec())


def test_every_api_route_is_documented_and_nothing_else() -> None:
    prefix = "/services/eohub-accounting/"
    served = set()
    for route in [*api_routes(prefix), *extra_routes(prefix)]:
        path = "/" + route[0][len(prefix) :]
        if path.startswith(("/api/", "/metrics")):
            served.add(re.sub(r"\(\[\^/\]\+\)", "{param}", path))
    documented = {re.sub(r"\{[^}]+\}", "{param}", p) for p in _spec()["paths"]}
    assert served == documented


def test_every_operation_documents_403() -> None:
    for path, item in _spec()["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put"):
                assert "403" in operation["responses"], f"{method.upper()} {path}"


# -- request bodies: the spec and the code agree --------------------------------------
# (method, path, body, valid): the spec's answer; test_input_limits_hub.py sends each to
# the real service on every database, which must answer 2xx exactly for the valid ones
# and 400 (writing nothing) for the others. Times are an hour before the test starts, so
# that the service's clock accepts them.
RECENT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
_START = start_event_json(user="alice", server="", started_at=RECENT, group="climate", cpu=1)
_STOP = stop_event_json(
    user="alice", server="", started_at=RECENT, stopped_at=RECENT + timedelta(minutes=30)
)
_QUOTA = {"user": "alice", "group": "climate", "cpu": 1}
_SAMPLE = {"user": "alice", "bytes": 10, "measured_at": format_time(RECENT)}
BodyCase = tuple[str, str, str, Any, bool]
REQUEST_BODIES: list[BodyCase] = [
    ("start", "POST", "api/events", _START, True),
    ("batch", "POST", "api/events", {"events": [_START, _STOP]}, True),
    (
        "largest start",
        "POST",
        "api/events",
        {**_START, "cpu": 4096, "memory_bytes": 4 * 1024**4, "gpus": 1024},
        True,
    ),
    ("one millicore", "POST", "api/events", {**_START, "cpu": 0.001}, True),
    (
        "offset time",
        "POST",
        "api/events",
        {**_STOP, "stopped_at": format_time(RECENT + timedelta(hours=1))[:19] + "+01:00"},
        True,
    ),
    ("batch extra field", "POST", "api/events", {"events": [_START], "x": 1}, False),
    ("start extra field", "POST", "api/events", {**_START, "colour": "red"}, False),
    ("stop with a group", "POST", "api/events", {**_STOP, "group": "climate"}, False),
    (
        "start without cpu",
        "POST",
        "api/events",
        {k: v for k, v in _START.items() if k != "cpu"},
        False,
    ),
    (
        "stop without stopped_at",
        "POST",
        "api/events",
        {k: v for k, v in _STOP.items() if k != "stopped_at"},
        False,
    ),
    ("kind pause", "POST", "api/events", {**_START, "kind": "pause"}, False),
    ("cpu 0", "POST", "api/events", {**_START, "cpu": 0}, False),
    ("cpu below a millicore", "POST", "api/events", {**_START, "cpu": 0.0009}, False),
    ("cpu over", "POST", "api/events", {**_START, "cpu": 4096.5}, False),
    ("cpu a string", "POST", "api/events", {**_START, "cpu": "1"}, False),
    ("memory over", "POST", "api/events", {**_START, "memory_bytes": 4 * 1024**4 + 1}, False),
    ("memory 10**30", "POST", "api/events", {**_START, "memory_bytes": 10**30}, False),
    ("gpus fraction", "POST", "api/events", {**_START, "gpus": 1.5}, False),
    ("empty user", "POST", "api/events", {**_START, "user": ""}, False),
    ("user with a newline", "POST", "api/events", {**_START, "user": "al\nice"}, False),
    ("user too long", "POST", "api/events", {**_START, "user": "a" * 256}, False),
    ("server with a slash", "POST", "api/events", {**_START, "server": "a/b"}, False),
    ("server null", "POST", "api/events", {**_START, "server": None}, False),
    ("id with a space", "POST", "api/events", {**_START, "id": "a b"}, False),
    (
        "time with a space",
        "POST",
        "api/events",
        {**_START, "started_at": format_time(RECENT).replace("T", " ")},
        False,
    ),
    (
        "time without offset",
        "POST",
        "api/events",
        {**_START, "started_at": format_time(RECENT)[:-1]},
        False,
    ),
    ("year 1999", "POST", "api/events", {**_START, "started_at": "1999-12-31T00:00:00Z"}, False),
    ("reason bored", "POST", "api/events", {**_STOP, "reason": "bored"}, False),
    ("reason idle", "POST", "api/events", {**_STOP, "reason": "idle"}, True),
    ("reason max_duration", "POST", "api/events", {**_STOP, "reason": "max_duration"}, True),
    (
        "reason culled, as older hubs sent",
        "POST",
        "api/events",
        {**_STOP, "reason": "culled"},
        True,
    ),
    ("reason Idle", "POST", "api/events", {**_STOP, "reason": "Idle"}, False),
    ("reason null", "POST", "api/events", {**_STOP, "reason": None}, False),
    (
        "start with limits",
        "POST",
        "api/events",
        {**_START, "idle_timeout": 1800, "max_duration": 86_400},
        True,
    ),
    ("longest limit", "POST", "api/events", {**_START, "max_duration": 366 * 86_400}, True),
    ("limit 0", "POST", "api/events", {**_START, "idle_timeout": 0}, False),
    ("limit over", "POST", "api/events", {**_START, "max_duration": 366 * 86_400 + 1}, False),
    ("limit fraction", "POST", "api/events", {**_START, "idle_timeout": 1.5}, False),
    ("limit a string", "POST", "api/events", {**_START, "idle_timeout": "2h"}, False),
    ("limit null", "POST", "api/events", {**_START, "max_duration": None}, False),
    ("stop with a limit", "POST", "api/events", {**_STOP, "max_duration": 60}, False),
    ("no events", "POST", "api/events", {"events": []}, False),
    ("a list", "POST", "api/events", [_START], False),
    ("quota check", "POST", "api/quota/check", _QUOTA, True),
    ("quota extra field", "POST", "api/quota/check", {**_QUOTA, "x": 1}, False),
    ("quota without cpu", "POST", "api/quota/check", {"user": "alice", "group": "climate"}, False),
    ("quota memory over", "POST", "api/quota/check", {**_QUOTA, "memory_bytes": 2**50}, False),
    ("storage", "POST", "api/storage", {"samples": [_SAMPLE, {**_SAMPLE, "group": ""}]}, True),
    (
        "storage largest",
        "POST",
        "api/storage",
        {"samples": [{**_SAMPLE, "user": "bob", "bytes": 2**50}]},
        True,
    ),
    ("storage extra field", "POST", "api/storage", {"samples": [_SAMPLE], "x": 1}, False),
    ("sample files", "POST", "api/storage", {"samples": [{**_SAMPLE, "file_count": 7}]}, True),
    (
        "sample most files",
        "POST",
        "api/storage",
        {"samples": [{**_SAMPLE, "user": "carol", "file_count": 2**63 - 1}]},
        True,
    ),
    (
        "sample files over",
        "POST",
        "api/storage",
        {"samples": [{**_SAMPLE, "file_count": 2**63}]},
        False,
    ),
    (
        "sample files negative",
        "POST",
        "api/storage",
        {"samples": [{**_SAMPLE, "file_count": -1}]},
        False,
    ),
    (
        "sample files fractional",
        "POST",
        "api/storage",
        {"samples": [{**_SAMPLE, "file_count": 1.5}]},
        False,
    ),
    ("sample extra field", "POST", "api/storage", {"samples": [{**_SAMPLE, "x": 1}]}, False),
    (
        "sample bytes over",
        "POST",
        "api/storage",
        {"samples": [{**_SAMPLE, "bytes": 2**50 + 1}]},
        False,
    ),
    (
        "sample without time",
        "POST",
        "api/storage",
        {"samples": [{"user": "alice", "bytes": 1}]},
        False,
    ),
    (
        "group",
        "PUT",
        "api/groups/climate",
        {
            "display_name": "Climate",
            "allocation": "rolling:3660",
            "pis": ["carol"],
            "quotas": {"": {"core_hours": 1e9}, "*": None},
        },
        True,
    ),
    ("group null allocation", "PUT", "api/groups/climate", {"allocation": None}, True),
    ("group nothing", "PUT", "api/groups/climate", {}, True),
    ("group extra field", "PUT", "api/groups/climate", {"x": 1}, False),
    ("allocation Month", "PUT", "api/groups/climate", {"allocation": "Month"}, False),
    (
        "allocation rolling:3661",
        "PUT",
        "api/groups/climate",
        {"allocation": "rolling:3661"},
        False,
    ),
    ("display name null", "PUT", "api/groups/climate", {"display_name": None}, False),
    ("pis not names", "PUT", "api/groups/climate", {"pis": ["carol", 5]}, False),
    ("limits extra field", "PUT", "api/groups/climate", {"quotas": {"": {"cores": 1}}}, False),
    (
        "core hours over",
        "PUT",
        "api/groups/climate",
        {"quotas": {"": {"core_hours": 1e9 + 1}}},
        False,
    ),
    (
        "max servers fraction",
        "PUT",
        "api/groups/climate",
        {"quotas": {"": {"max_servers": 1.5}}},
        False,
    ),
    ("quota owner with a newline", "PUT", "api/groups/climate", {"quotas": {"a\nb": None}}, False),
]


@functools.cache
def _cached_spec() -> dict[str, Any]:
    return _spec()


def body_schema(method: str, path: str) -> dict[str, Any]:
    """The request body schema of an operation, with the spec's components to resolve."""
    spec = _cached_spec()
    template = "/" + re.sub(r"^api/groups/[^/]+$", "api/groups/{name}", path)
    schema = spec["paths"][template][method.lower()]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return {**schema, "components": spec["components"]}


def spec_valid(method: str, path: str, body: Any) -> bool:
    validator = OAS31Validator(
        body_schema(method, path), format_checker=OAS31Validator.FORMAT_CHECKER
    )
    return bool(validator.is_valid(body))


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "valid"), REQUEST_BODIES, ids=[c[0] for c in REQUEST_BODIES]
)
def test_the_spec_judges_request_bodies(
    name: str, method: str, path: str, body: Any, valid: bool
) -> None:
    assert spec_valid(method, path, body) is valid


def _code_valid(method: str, path: str, body: Any) -> bool:
    parse: Any = {
        "api/events": parse_batch,
        "api/quota/check": parse_quota_request,
        "api/storage": parse_storage_samples,
    }.get(path, parse_group_update)
    try:
        if path in ("api/events", "api/storage"):
            parse(body, now=datetime.now(UTC))
        else:
            parse(body)
    except EventError:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "valid"), REQUEST_BODIES, ids=[c[0] for c in REQUEST_BODIES]
)
def test_the_domain_judges_request_bodies_as_the_spec_does(
    name: str, method: str, path: str, body: Any, valid: bool
) -> None:
    assert _code_valid(method, path, body) is valid


def test_every_request_body_refuses_unknown_fields() -> None:
    """additionalProperties: false on every object a client sends."""

    def objects(schema: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
        found = []
        if isinstance(schema, dict):
            if schema.get("type") == "object" or "properties" in schema:
                found.append((where, schema))
            for key, value in schema.items():
                found += objects(value, f"{where}.{key}")
        elif isinstance(schema, list):
            for i, value in enumerate(schema):
                found += objects(value, f"{where}[{i}]")
        return found

    spec = _spec()
    bodies = [
        operation["requestBody"]["content"]["application/json"]["schema"]
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    schemas = spec["components"]["schemas"]
    sent = [*bodies, *(schemas[n] for n in ("StartEvent", "StopEvent", "Limits"))]
    for where, schema in objects(sent, "body"):
        if where.endswith(".quotas"):  # keyed by owner: additionalProperties is the limits
            assert "propertyNames" in schema, where
            continue
        assert schema.get("additionalProperties") is False, where


def test_the_stop_reasons_are_the_domains() -> None:
    enum = _spec()["components"]["schemas"]["StopReason"]["enum"]
    assert enum == [*STOP_REASONS, *LEGACY_REASONS]


def test_a_session_has_the_fields_the_spec_documents() -> None:
    record = SessionRecord(
        7,
        "alice",
        "",
        "climate",
        Resources.from_cpu(1),
        RECENT,
        RECENT + timedelta(hours=1),
        "idle",
        idle_timeout=1800,
        stop_reason="idle",
    )
    documented = _spec()["components"]["schemas"]["Session"]["properties"]
    shown = session_json(record, RECENT + timedelta(hours=2))
    assert set(shown) == set(documented)
    assert (shown["idle_timeout"], shown["max_duration"], shown["stop_reason"]) == (
        1800,
        None,
        "idle",
    )
