"""The API's input limits: JSON bodies, query parameters, storage samples, group updates.

Each is a table: the input, and what the service must answer (a value, or the field
its 400 names).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eohub.domain.accounting.events import EventError
from eohub.domain.accounting.requests import (
    MAX_BODY_DEPTH,
    MAX_ID,
    MAX_SAMPLE_BYTES,
    choice_param,
    decode_json_body,
    int_param,
    nesting_depth,
    parse_group_update,
    parse_quota_request,
    parse_storage_samples,
    time_param,
)

DEPTHS: list[tuple[str, int]] = [
    ("{}", 1),
    ("[]", 1),
    ("1", 0),
    ('"[[[["', 0),
    ('{"a": "x\\"[[[["}', 1),  # brackets inside strings are text
    ('{"a": "x\\\\", "b": [[1]]}', 3),
    ('{"q": {"": {"core_hours": 1}}}', 3),
    ("[[[]], [[[]]]]", 4),
    ("[" * 500 + "]" * 500, MAX_BODY_DEPTH + 1),  # capped: never counted further
    ('[{"a":' * 100 + "1" + "}]" * 100, MAX_BODY_DEPTH + 1),
    ("[[]," * 100 + "1" + "]" * 100, MAX_BODY_DEPTH + 1),
]


@pytest.mark.parametrize(("text", "depth"), DEPTHS)
def test_nesting_depth(text: str, depth: int) -> None:
    assert nesting_depth(json.loads(text), MAX_BODY_DEPTH) == depth


BODIES: list[tuple[str, bytes, Any]] = [
    ("object", b'{"a": [1, 2.5, "x"]}', {"a": [1, 2.5, "x"]}),
    ("empty", b"", None),
    ("utf-8", '{"user": "zoë"}'.encode(), {"user": "zoë"}),
    ("16 deep", b"[" * 16 + b"]" * 16, json.loads(b"[" * 16 + b"]" * 16)),
    ("17 deep", b"[" * 17 + b"]" * 17, "nests"),
    ("100k deep", b"[" * 100_000 + b"]" * 100_000, "nests"),
    ("1 MiB deep", b"[" * 2**20, "nests"),
    ("deep objects", b'{"a":' * 5000 + b"1" + b"}" * 5000, "nests"),
    ("not json", b"{", "not valid JSON"),
    ("latin-1", '{"user": "zoë"}'.encode("latin-1"), "UTF-8"),
    ("NaN", b'{"cpu": NaN}', "not valid JSON"),
    ("Infinity", b'{"cpu": -Infinity}', "not valid JSON"),
    ("5000 digits", b'{"gpus": ' + b"9" * 5000 + b"}", "not valid JSON"),
    ("trailing data", b"{} {}", "not valid JSON"),
]


@pytest.mark.parametrize(("name", "body", "expected"), BODIES, ids=[b[0] for b in BODIES])
def test_bodies_decode_or_name_the_body(name: str, body: bytes, expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(EventError) as error:
            decode_json_body(body)
        assert set(error.value.errors) == {"body"}
        assert expected in error.value.errors["body"]
    else:
        assert decode_json_body(body) == expected


def test_the_largest_hostile_bodies_are_refused_naming_the_body() -> None:
    size = 16 * 1024 * 1024
    for body in (b"[" * size, b"[[]," * (size // 4), b'{"a":' * (size // 5), b"[[]" * (size // 3)):
        with pytest.raises(EventError) as error:
            decode_json_body(body)
        assert set(error.value.errors) == {"body"}


INTS: list[tuple[str | None, int, int, int | str | None]] = [
    (None, 1, 500, 100),  # the default
    ("1", 1, 500, 1),
    ("500", 1, 500, 500),
    ("0", 1, 500, "limit"),
    ("501", 1, 500, "limit"),
    ("10" + "0" * 30, 1, 500, "limit"),
    ("-1", 1, 500, "limit"),
    ("1_0", 1, 500, "limit"),
    (" 7", 1, 500, "limit"),
    ("\u0667", 1, 500, "limit"),  # int() takes other scripts' digits
    ("²", 1, 500, "limit"),
    ("1e3", 1, 500, "limit"),
    ("", 1, 500, "limit"),
    (str(MAX_ID), 1, MAX_ID, MAX_ID),
    (str(MAX_ID + 1), 1, MAX_ID, "limit"),
    (str(10**26), 1, MAX_ID, "limit"),
    ("9" * 5000, 1, MAX_ID, "limit"),
]


@pytest.mark.parametrize(("value", "low", "high", "expected"), INTS)
def test_int_params_are_range_checked(
    value: str | None, low: int, high: int, expected: int | str
) -> None:
    if isinstance(expected, str):
        with pytest.raises(EventError) as error:
            int_param("limit", value, default=100, minimum=low, maximum=high)
        assert set(error.value.errors) == {"limit"}
        assert f"from {low} to {high}" in error.value.errors["limit"]
    else:
        assert int_param("limit", value, default=100, minimum=low, maximum=high) == expected


DEFAULT = datetime(2026, 1, 1, tzinfo=UTC)
TIME_PARAMS: list[tuple[str | None, datetime | str]] = [
    (None, DEFAULT),
    ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
    ("2026-03-01T12:00:00+01:00", datetime(2026, 3, 1, 11, tzinfo=UTC)),
    ("9999-12-31", "years"),
    ("9999-12-31T23:59:59Z", "years"),
    ("1970-01-01", "years"),
    ("2026-02-30", "timestamp"),
    ("tomorrow", "timestamp"),
    ("2026-03-01T12:00:00", "offset"),
]


@pytest.mark.parametrize(("value", "expected"), TIME_PARAMS)
def test_time_params(value: str | None, expected: datetime | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(EventError) as error:
            time_param("from", value, DEFAULT)
        assert expected in error.value.errors["from"]
    else:
        assert time_param("from", value, DEFAULT) == expected


def test_choice_params_refuse_what_they_do_not_know() -> None:
    assert choice_param("by", None, ("group", "user"), "group") == "group"
    assert choice_param("by", "user", ("group", "user"), "group") == "user"
    with pytest.raises(EventError) as error:
        choice_param("by", "User", ("group", "user"), "group")
    assert error.value.errors == {"by": "must be one of group, user"}


NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
SAMPLE = {"user": "a", "bytes": 10, "measured_at": "2026-05-01T12:00:00Z"}
SAMPLES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("good", {"samples": [SAMPLE]}, set()),
    ("largest", {"samples": [{**SAMPLE, "bytes": MAX_SAMPLE_BYTES}]}, set()),
    ("too large", {"samples": [{**SAMPLE, "bytes": MAX_SAMPLE_BYTES + 1}]}, {"samples[0].bytes"}),
    ("extra top field", {"samples": [SAMPLE], "x": 1}, {"x"}),
    ("extra sample field", {"samples": [{**SAMPLE, "x": 1}]}, {"samples[0].x"}),
    (
        "future",
        {"samples": [{**SAMPLE, "measured_at": "2026-05-01T12:06:00Z"}]},
        {"samples[0].measured_at"},
    ),
    ("within skew", {"samples": [{**SAMPLE, "measured_at": "2026-05-01T12:05:00Z"}]}, set()),
    ("null group", {"samples": [{**SAMPLE, "group": None}]}, {"samples[0].group"}),
    ("no files counted", {"samples": [{**SAMPLE, "file_count": 0}]}, set()),
    ("most files", {"samples": [{**SAMPLE, "file_count": 2**63 - 1}]}, set()),
    (
        "files past 64 bits",
        {"samples": [{**SAMPLE, "file_count": 2**63}]},
        {"samples[0].file_count"},
    ),
    ("negative files", {"samples": [{**SAMPLE, "file_count": -1}]}, {"samples[0].file_count"}),
    ("fractional files", {"samples": [{**SAMPLE, "file_count": 1.5}]}, {"samples[0].file_count"}),
    ("float files", {"samples": [{**SAMPLE, "file_count": 3.0}]}, set()),
    ("infinite files", {"samples": [{**SAMPLE, "file_count": 1e400}]}, {"samples[0].file_count"}),
    ("text files", {"samples": [{**SAMPLE, "file_count": "3"}]}, {"samples[0].file_count"}),
    ("boolean files", {"samples": [{**SAMPLE, "file_count": True}]}, {"samples[0].file_count"}),
    ("null files", {"samples": [{**SAMPLE, "file_count": None}]}, {"samples[0].file_count"}),
    ("huge files", {"samples": [{**SAMPLE, "file_count": 10**400}]}, {"samples[0].file_count"}),
    ("a source", {"samples": [{**SAMPLE, "source": "/export/home"}]}, set()),
    ("an empty source", {"samples": [{**SAMPLE, "source": ""}]}, set()),
    ("the longest source", {"samples": [{**SAMPLE, "source": "s" * 255}]}, set()),
    ("too long a source", {"samples": [{**SAMPLE, "source": "s" * 256}]}, {"samples[0].source"}),
    ("a control character", {"samples": [{**SAMPLE, "source": "/a\nb"}]}, {"samples[0].source"}),
    ("a number as source", {"samples": [{**SAMPLE, "source": 3}]}, {"samples[0].source"}),
    ("null source", {"samples": [{**SAMPLE, "source": None}]}, {"samples[0].source"}),
    (
        "every bad sample named",
        {"samples": [SAMPLE, {**SAMPLE, "file_count": -1}, {**SAMPLE, "bytes": -1}]},
        {"samples[1].file_count", "samples[2].bytes"},
    ),
]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({}, 0),
        ({"file_count": 0}, 0),
        ({"file_count": 123_456}, 123_456),
        ({"file_count": 3.0}, 3),
    ],
)
def test_the_file_count_is_kept(given: dict[str, Any], kept: int) -> None:
    (sample,) = parse_storage_samples({"samples": [{**SAMPLE, **given}]}, now=NOW)
    assert (sample.user, sample.group, sample.bytes, sample.file_count) == ("a", "", 10, kept)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ({}, ""),
        ({"source": "/export/home"}, "/export/home"),
        ({"source": "pvc:hub/a"}, "pvc:hub/a"),
    ],
)
def test_the_source_is_kept_and_optional(given: dict[str, Any], kept: str) -> None:
    (sample,) = parse_storage_samples({"samples": [{**SAMPLE, **given}]}, now=NOW)
    assert sample.source == kept


def test_a_bad_file_count_names_the_range() -> None:
    with pytest.raises(EventError) as error:
        parse_storage_samples({"samples": [{**SAMPLE, "file_count": -1}]}, now=NOW)
    assert error.value.errors == {
        "samples[0].file_count": "must be a whole number from 0 to 9223372036854775807"
    }


@pytest.mark.parametrize(("name", "data", "fields"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_storage_samples(name: str, data: dict[str, Any], fields: set[str]) -> None:
    def parse() -> object:
        return parse_storage_samples(data, now=NOW, max_clock_skew=timedelta(minutes=5))

    if not fields:
        assert parse()
        return
    with pytest.raises(EventError) as error:
        parse()
    assert set(error.value.errors) == fields


QUOTA = {"user": "a", "group": "g", "cpu": 1}
QUOTAS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("good", QUOTA, set()),
    ("below a millicore", {**QUOTA, "cpu": 0.0009}, {"cpu"}),
    ("memory over", {**QUOTA, "memory_bytes": 5 * 1024**4}, {"memory_bytes"}),
    ("huge int", {**QUOTA, "gpus": 10**400}, {"gpus"}),
    ("null group", {**QUOTA, "group": None}, {"group"}),
]


@pytest.mark.parametrize(("name", "data", "fields"), QUOTAS, ids=[q[0] for q in QUOTAS])
def test_quota_requests(name: str, data: dict[str, Any], fields: set[str]) -> None:
    if not fields:
        assert parse_quota_request(data).resources.millicores == 1000
        return
    with pytest.raises(EventError) as error:
        parse_quota_request(data)
    assert set(error.value.errors) == fields


GROUPS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("null allocation keeps it", {"allocation": None}, set()),
    ("upper case allocation", {"allocation": "Month"}, {"allocation"}),
    ("padded allocation", {"allocation": " month"}, {"allocation"}),
    ("rolling too long", {"allocation": "rolling:3661"}, {"allocation"}),
    ("hours over", {"quotas": {"": {"core_hours": 10**9 + 1}}}, {"quotas[''].core_hours"}),
    ("hours 10**400", {"quotas": {"": {"gpu_hours": 10**400}}}, {"quotas[''].gpu_hours"}),
    ("null display name", {"display_name": None}, {"display_name"}),
]


@pytest.mark.parametrize(("name", "data", "fields"), GROUPS, ids=[g[0] for g in GROUPS])
def test_group_updates(name: str, data: dict[str, Any], fields: set[str]) -> None:
    if not fields:
        assert parse_group_update(data).allocation is None
        return
    with pytest.raises(EventError) as error:
        parse_group_update(data)
    assert set(error.value.errors) == fields
