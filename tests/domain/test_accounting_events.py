"""The event schema and the other request bodies: every bad field named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eohub.domain.accounting_events import (
    EventError,
    StartEvent,
    StopEvent,
    event_key,
    parse_batch,
    parse_time,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting_requests import (
    parse_group_update,
    parse_quota_request,
    parse_storage_samples,
)

T0 = datetime(2026, 5, 1, 8, tzinfo=UTC)
START = start_event_json(
    user="alice", server="gpu", started_at=T0, group="climate", cpu=0.25, gpus=1
)
STOP = stop_event_json(
    user="alice", server="gpu", started_at=T0, stopped_at=T0 + timedelta(hours=1)
)


def test_good_events_parse() -> None:
    start, stop = parse_batch({"events": [START, STOP]})
    assert isinstance(start, StartEvent)
    assert start.resources.millicores == 250
    assert isinstance(stop, StopEvent)
    assert stop.session == start.session


def test_keys_are_stable_and_distinct() -> None:
    assert event_key("start", "a", "", T0) == event_key("start", "a", "", T0.astimezone())
    assert event_key("start", "a", "", T0) != event_key("stop", "a", "", T0)
    assert event_key("start", "a", "b", T0) != event_key("start", "ab", "", T0)


BAD: list[tuple[str, Any, set[str]]] = [
    ("not an object", 3, {"body"}),
    ("kind", {**START, "kind": "pause"}, {"kind"}),
    ("missing user", {k: v for k, v in START.items() if k != "user"}, {"user"}),
    ("user type", {**START, "user": 5}, {"user"}),
    ("control chars", {**START, "user": "a\nb"}, {"user"}),
    ("trailing newline", {**START, "user": "eve\n"}, {"user"}),
    ("server slash", {**START, "server": "a/b"}, {"server"}),
    ("bool cpu", {**START, "cpu": True}, {"cpu"}),
    ("zero cpu", {**START, "cpu": 0}, {"cpu"}),
    ("tiny cpu", {**START, "cpu": 0.0001}, {"cpu"}),
    ("huge cpu", {**START, "cpu": 1e9}, {"cpu"}),
    ("nan memory", {**START, "memory_bytes": float("nan")}, {"memory_bytes"}),
    ("fractional gpus", {**START, "gpus": 0.5}, {"gpus"}),
    ("bad key", {**START, "id": "has space"}, {"id"}),
    ("naive time", {**START, "started_at": "2026-05-01T08:00:00"}, {"started_at"}),
    ("not a time", {**START, "started_at": "yesterday"}, {"started_at"}),
    ("year 1900", {**START, "started_at": "1900-01-01T00:00:00Z"}, {"started_at"}),
    ("extra field", {**STOP, "group": "climate"}, {"group"}),
    ("stop before start", {**STOP, "stopped_at": "2026-05-01T07:00:00Z"}, {"stopped_at"}),
    ("bad reason", {**STOP, "reason": "bored"}, {"reason"}),
    ("empty batch", {"events": []}, {"events"}),
    ("batch not a list", {"events": {}}, {"events"}),
]


@pytest.mark.parametrize(("name", "data", "fields"), BAD, ids=[b[0] for b in BAD])
def test_bad_events_name_their_fields(name: str, data: Any, fields: set[str]) -> None:
    with pytest.raises(EventError) as error:
        parse_batch(data)
    assert fields <= set(error.value.errors), error.value.errors


def test_batch_errors_are_indexed() -> None:
    with pytest.raises(EventError) as error:
        parse_batch({"events": [START, {**START, "cpu": -1}, "x"]})
    assert set(error.value.errors) == {"events[1].cpu", "events[2]"}


def test_parse_time_accepts_offsets() -> None:
    assert parse_time("2026-05-01T10:00:00+02:00") == T0


def test_quota_request() -> None:
    request = parse_quota_request({"user": "a", "group": "g", "cpu": 1.5, "memory_bytes": 1024})
    assert request.resources.millicores == 1500
    with pytest.raises(EventError) as error:
        parse_quota_request({"user": "a", "cpu": "x", "extra": 1})
    assert set(error.value.errors) == {"group", "cpu", "extra"}


def test_storage_samples() -> None:
    (sample,) = parse_storage_samples(
        {"samples": [{"user": "a", "bytes": 10, "measured_at": "2026-01-01T00:00:00Z"}]}
    )
    assert sample.group == ""
    with pytest.raises(EventError) as error:
        parse_storage_samples({"samples": [{"user": "a", "bytes": -1}, 7]})
    assert set(error.value.errors) == {"samples[0].bytes", "samples[0].measured_at", "samples[1]"}


def test_group_update() -> None:
    update = parse_group_update(
        {
            "allocation": "rolling:30",
            "pis": ["carol"],
            "quotas": {"": {"core_hours": 12.5}, "bob": None},
        }
    )
    assert str(update.allocation) == "rolling:30"
    assert update.quotas[""] is not None
    assert update.quotas[""].core_hours == 12.5
    assert update.quotas["bob"] is None
    assert parse_group_update({}).pis is None  # left out: unchanged
    with pytest.raises(EventError) as error:
        parse_group_update(
            {"allocation": 3, "pis": [1], "quotas": {"": {"cores": 1, "max_servers": 1.5}}, "x": 1}
        )
    assert set(error.value.errors) == {
        "allocation",
        "pis",
        "quotas[''].cores",
        "quotas[''].max_servers",
        "x",
    }
