"""The event schema and the other request bodies: every bad field named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eohub.domain.accounting.events import (
    END_REASONS,
    MAX_LIMIT_SECONDS,
    EventError,
    StartEvent,
    StopEvent,
    event_key,
    format_time,
    parse_batch,
    parse_time,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.requests import (
    parse_group_update,
    parse_quota_request,
    parse_storage_samples,
)
from eohub.domain.accounting.resources import MAX_CPU, MAX_GPUS, MAX_MEMORY_BYTES, MIN_CPU
from eohub.domain.accounting.stop_reasons import LEGACY_REASONS, STOP_REASONS

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


def test_the_environments_display_name_is_sent_only_when_there_is_one() -> None:
    assert "profile_name" not in START
    named = start_event_json(
        user="alice", server="", started_at=T0, group="climate", cpu=1, profile_name="Lab"
    )
    (event,) = parse_batch(named)
    assert isinstance(event, StartEvent)
    assert event.profile_name == "Lab"
    (plain,) = parse_batch(START)
    assert isinstance(plain, StartEvent)
    assert plain.profile_name == ""


@pytest.mark.parametrize(
    ("sent", "idle_timeout", "max_duration"),
    [
        ((None, None), None, None),  # no limits: none sent
        ((3600, None), 3600, None),
        ((None, 86_400), None, 86_400),
        ((1, MAX_LIMIT_SECONDS), 1, MAX_LIMIT_SECONDS),
        ((0, 0), None, None),  # 0: no limit, left out
    ],
)
def test_a_start_carries_the_sessions_limits(
    sent: tuple[int | None, int | None], idle_timeout: int | None, max_duration: int | None
) -> None:
    data = start_event_json(
        user="alice",
        server="",
        started_at=T0,
        group="climate",
        cpu=1,
        idle_timeout=sent[0],
        max_duration=sent[1],
    )
    assert ("idle_timeout" in data, "max_duration" in data) == (
        idle_timeout is not None,
        max_duration is not None,
    )
    (event,) = parse_batch(data)
    assert isinstance(event, StartEvent)
    assert (event.idle_timeout, event.max_duration) == (idle_timeout, max_duration)


LIMIT_ERRORS: list[tuple[object, str]] = [
    (0, "must be from 1 to 31622400 seconds (366 days); leave it out for no limit"),
    (-5, "must be from 1 to 31622400 seconds (366 days); leave it out for no limit"),
    (MAX_LIMIT_SECONDS + 1, "must be from 1 to 31622400 seconds (366 days); leave it out"),
    (10**40, "must be from 1 to 31622400 seconds (366 days); leave it out"),
    (1.5, "must be a whole number of seconds (leave it out for no limit)"),
    (float("inf"), "must be a whole number of seconds"),
    ("2h", "must be a whole number of seconds"),
    (None, "must be a whole number of seconds"),
    (True, "must be a whole number of seconds"),
]


@pytest.mark.parametrize("field", ["idle_timeout", "max_duration"])
@pytest.mark.parametrize(("value", "message"), LIMIT_ERRORS)
def test_a_bad_limit_names_its_field_in_the_batch(field: str, value: object, message: str) -> None:
    with pytest.raises(EventError) as error:
        parse_batch({"events": [START, {**START, field: value}]})
    assert error.value.errors.keys() == {f"events[1].{field}"}
    assert error.value.errors[f"events[1].{field}"].startswith(message)


def test_a_limit_written_as_a_whole_float_is_read() -> None:
    (event,) = parse_batch({**START, "max_duration": 7200.0})
    assert isinstance(event, StartEvent)
    assert event.max_duration == 7200
    assert isinstance(event.max_duration, int)


def test_a_stop_carries_no_limits() -> None:
    with pytest.raises(EventError) as error:
        parse_batch({**STOP, "max_duration": 60})
    assert set(error.value.errors) == {"max_duration"}


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        *((r, r) for r in STOP_REASONS),
        *LEGACY_REASONS.items(),  # an older hub's outbox: quota, reconciled, culled
        (None, "stopped"),  # left out
    ],
)
def test_stop_reasons_are_read_by_todays_name(sent: str | None, read: str) -> None:
    data = {k: v for k, v in STOP.items() if k != "reason"}
    if sent is not None:
        data["reason"] = sent
    (event,) = parse_batch(data)
    assert isinstance(event, StopEvent)
    assert event.reason == read


@pytest.mark.parametrize("reason", ["bored", "", "Idle", " idle", 3, None, ["idle"]])
def test_other_reasons_are_refused_with_the_list(reason: object) -> None:
    with pytest.raises(EventError) as error:
        parse_batch({"events": [{**STOP, "reason": reason}]})
    assert error.value.errors == {"events[0].reason": f"must be one of {', '.join(END_REASONS)}"}


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


# -- time, bounds and the service's clock ------------------------------------------
NOW = T0 + timedelta(hours=2)
SKEW = timedelta(minutes=5)

TIMES: list[tuple[str, str | None]] = [
    ("2026-05-01T08:00:00Z", "ok"),
    ("2026-05-01T08:00:00.123456Z", "ok"),
    ("2026-05-01T10:00:00+02:00", "ok"),
    ("2026-05-01T08:00:00", "offset"),
    ("2026-05-01 08:00:00Z", "timestamp"),  # fromisoformat takes a space for the T
    ("20260501T080000Z", "timestamp"),  # and the basic format
    ("2026-W18-5T08:00Z", "timestamp"),  # and week dates
    ("2026-05-01T08Z", "timestamp"),  # and hours alone
    ("2026-05-01T08:00:00.1234567Z", "timestamp"),
    ("2026-13-01T08:00:00Z", "timestamp"),
    ("\uff12\uff10\uff12\uff16-05-01T08:00:00Z", "timestamp"),  # fullwidth digits
    ("1999-12-31T23:59:59Z", "years"),
    ("2201-01-01T00:00:00Z", "years"),
    ("9999-12-31T23:59:59Z", "years"),
    ("", "timestamp"),
]


@pytest.mark.parametrize(("text", "outcome"), TIMES)
def test_times_are_rfc3339_in_range(text: str, outcome: str) -> None:
    if outcome == "ok":
        assert parse_time(text) == datetime.fromisoformat(text).astimezone(UTC)
        return
    with pytest.raises(ValueError, match=outcome):
        parse_time(text)


FUTURE: list[tuple[str, dict[str, Any], set[str]]] = [
    ("start within skew", {**START, "started_at": format_time(NOW + SKEW)}, set()),
    (
        "start beyond skew",
        {**START, "started_at": format_time(NOW + SKEW + timedelta(microseconds=1))},
        {"started_at"},
    ),
    ("stop now", {**STOP, "stopped_at": format_time(NOW)}, set()),
    ("stop next year", {**STOP, "stopped_at": "2027-05-01T08:00:00Z"}, {"stopped_at"}),
    (
        "both in the future",
        {**STOP, "started_at": "2100-01-01T00:00:00Z", "stopped_at": "2100-01-02T00:00:00Z"},
        {"started_at", "stopped_at"},
    ),
]


@pytest.mark.parametrize(("name", "data", "fields"), FUTURE, ids=[f[0] for f in FUTURE])
def test_future_times_are_refused_beyond_the_skew(
    name: str, data: dict[str, Any], fields: set[str]
) -> None:
    if not fields:
        assert parse_batch(data, now=NOW, max_clock_skew=SKEW)
        return
    with pytest.raises(EventError) as error:
        parse_batch({"events": [START, data]}, now=NOW, max_clock_skew=SKEW)
    assert set(error.value.errors) == {f"events[1].{f}" for f in fields}
    assert "future" in next(iter(error.value.errors.values()))


def test_the_skew_is_a_parameter_and_no_clock_means_no_check() -> None:
    late = {**STOP, "stopped_at": format_time(NOW + timedelta(hours=1))}
    assert parse_batch(late, now=NOW, max_clock_skew=timedelta(hours=2))
    assert parse_batch(late)  # the hub-side client checks shapes only
    with pytest.raises(EventError):
        parse_batch(late, now=NOW, max_clock_skew=timedelta(0))


SIZES: list[tuple[str, dict[str, Any], set[str]]] = [
    (
        "largest",
        {**START, "cpu": MAX_CPU, "memory_bytes": MAX_MEMORY_BYTES, "gpus": MAX_GPUS},
        set(),
    ),
    ("one millicore", {**START, "cpu": MIN_CPU}, set()),
    ("cpu over", {**START, "cpu": MAX_CPU + 0.001}, {"cpu"}),
    ("memory over", {**START, "memory_bytes": MAX_MEMORY_BYTES + 1}, {"memory_bytes"}),
    ("old memory limit", {**START, "memory_bytes": 64 * 1024**4}, {"memory_bytes"}),
    ("gpus over", {**START, "gpus": MAX_GPUS + 1}, {"gpus"}),
    ("memory 10**400", {**START, "memory_bytes": 10**400}, {"memory_bytes"}),
    ("cpu 10**400", {**START, "cpu": 10**400}, {"cpu"}),
    ("gpus -10**400", {**START, "gpus": -(10**400)}, {"gpus"}),
    ("cpu infinity", {**START, "cpu": float("inf")}, {"cpu"}),
    ("memory 1e300", {**START, "memory_bytes": 1e300}, {"memory_bytes"}),
    ("whole float", {**START, "memory_bytes": 1024.0}, set()),
    ("null server", {**START, "server": None}, {"server"}),
    ("null profile", {**START, "profile": None}, {"profile"}),
    ("profile name", {**START, "profile_name": "Python lab (CPU)"}, set()),
    ("profile name too long", {**START, "profile_name": "x" * 256}, {"profile_name"}),
    ("profile name with a newline", {**START, "profile_name": "a\nb"}, {"profile_name"}),
]


@pytest.mark.parametrize(("name", "data", "fields"), SIZES, ids=[s[0] for s in SIZES])
def test_sizes_are_bounded(name: str, data: dict[str, Any], fields: set[str]) -> None:
    if not fields:
        (event,) = parse_batch(data)
        assert isinstance(event, StartEvent)
        return
    with pytest.raises(EventError) as error:
        parse_batch(data)
    assert set(error.value.errors) == fields, error.value.errors


def test_a_batch_has_no_other_fields() -> None:
    with pytest.raises(EventError) as error:
        parse_batch({"events": [START], "x": 1})
    assert error.value.errors == {"x": "is not a field of this request"}
