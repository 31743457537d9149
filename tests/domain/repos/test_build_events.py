"""BinderHub's build event stream: framing, outcomes, the log tail and progress lines.

The streams are written as BinderHub's ``BuildHandler.emit``/``keep_alive`` write them
(``data: <json>\\n\\n``, ``:keepalive\\n\\n``), with records taken from the recorded
``fullbuild.eventsource`` fixture of jupyterhub/binderhub's JavaScript client.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.repos.build_events import (
    BuildEvent,
    EventStreamError,
    EventStreamParser,
    LogTail,
    Outcome,
    clean_line,
    error_reason,
    event_from_data,
    failure_message,
    outcome,
    parse_stream,
    progress_message,
    push_summary,
    slot_wait_event,
)

IMAGE = "binder-2dexamples-2doctave-03025a:1479e0252b2e648bb755ee913292b79495931717"
# A build-only stream in BinderHub's order, with a keep-alive in the middle.
STREAM = (
    'data: {"phase": "waiting", "message": "Waiting for build to start...\\n"}\n\n'
    'data: {"message": "Picked Git content provider.\\n"}\n\n'
    ":keepalive\n\n"
    'data: {"message": "Step 1/51 : FROM docker.io/library/buildpack-deps:bionic", '
    '"phase": "building"}\n\n'
    'data: {"message": "\\n", "phase": "building"}\n\n'
    'data: {"message": "Fetching base image...\\r", "phase": "building"}\n\n'
    'data: {"message": " ---> 0707eec19ac4\\n", "phase": "building"}\n\n'
    f'data: {{"phase": "ready", "message": "Done! Image built\\n", "imageName": "{IMAGE}"}}\n\n'
)
PHASES = ["waiting", "", "building", "building", "building", "building", "ready"]


def phases(events: list[BuildEvent]) -> list[str]:
    return [e.phase for e in events]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ('data: {"phase": "waiting"}\n\n', [("waiting", "")]),
        ('data: {"phase": "waiting"}\r\n\r\n', [("waiting", "")]),  # CRLF
        ('data: {"phase": "waiting"}\r\r', [("waiting", "")]),  # CR alone
        ('data:{"phase": "waiting"}\n\n', [("waiting", "")]),  # no space after the colon
        (':keepalive\n\ndata: {"phase": "building"}\n\n', [("building", "")]),
        (': any comment\ndata: {"phase": "building"}\n\n', [("building", "")]),
        # several data lines are one value, joined by a newline: here one JSON object
        ('data: {"phase": "building",\ndata:  "message": "x"}\n\n', [("building", "x")]),
        ('event: message\nid: 7\nretry: 10\ndata: {"phase": "pushing"}\n\n', [("pushing", "")]),
        ('data: {"phase": "Built", "imageName": "i"}\n\n', [("built", "")]),  # case folded
        ("data: not json\n\n", [("unknown", "not json")]),  # as BinderHub wraps such lines
        ('data: ["a list"]\n\n', [("unknown", '["a list"]')]),
        ("data:\n\n", []),  # an empty value dispatches nothing
        ("\n\n\n", []),
        ('data: {"phase": "ready"}\n', []),  # no blank line before the end: dropped
        ('data: {"phase": "ready"}', []),
        ('\ufeffdata: {"phase": "waiting"}\n\n', [("waiting", "")]),  # a BOM at the start
    ],
)
def test_framing(stream: str, expected: list[tuple[str, str]]) -> None:
    assert [(e.phase, e.message) for e in parse_stream([stream])] == expected


def test_a_whole_stream_in_order_and_its_keepalive() -> None:
    parser = EventStreamParser()
    events = parser.feed(STREAM.encode()) + parser.close()
    assert phases(events) == PHASES
    assert events[-1].image_name == IMAGE
    assert (parser.comments, parser.events) == (1, len(PHASES))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_chunks_of_any_size_give_the_same_events(size: int) -> None:
    raw = STREAM.replace("\n", "\r\n").encode()
    chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
    assert parse_stream(chunks) == parse_stream([raw])
    assert phases(parse_stream(chunks)) == PHASES


def test_a_split_inside_crlf_is_one_line_end() -> None:
    parser = EventStreamParser()
    assert parser.feed(b'data: {"phase": "waiting"}\r') == []
    assert parser.feed(b"\n\r") == []  # the CR may still be the start of a CRLF
    assert phases(parser.feed(b"\n")) == ["waiting"]


def test_a_utf8_character_split_across_chunks() -> None:
    raw = 'data: {"message": "Gebäude ✓"}\n\n'.encode()
    cut = raw.index("✓".encode()) + 1
    assert parse_stream([raw[:cut], raw[cut:]])[0].message == "Gebäude ✓"


@given(
    messages=st.lists(st.text(max_size=30), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_any_chunking_of_any_events(messages: list[str], cuts: list[int], eol: str) -> None:
    raw = "".join(
        f"data: {json.dumps({'phase': 'building', 'message': m})}{eol}{eol}" for m in messages
    ).encode()
    bounds = sorted({0, len(raw), *(c for c in cuts if c < len(raw))})
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert [e.message for e in parse_stream(chunks)] == messages


def test_an_event_too_large_is_refused() -> None:
    parser = EventStreamParser(max_event_chars=100)
    with pytest.raises(EventStreamError):
        parser.feed("data: " + "x" * 200 + "\n")
    with pytest.raises(EventStreamError):
        EventStreamParser(max_event_chars=100).feed("data: " + "x" * 200)  # no line end yet


@pytest.mark.parametrize(
    ("data", "phase", "image", "status"),
    [
        (
            f'{{"phase": "ready", "imageName": "{IMAGE}", "message": "Done!"}}',
            "ready",
            IMAGE,
            None,
        ),
        ('{"phase": "ready", "imageName": ""}', "ready", None, None),
        ('{"phase": "ready", "imageName": 42}', "ready", None, None),
        (
            '{"phase": "failed", "status_code": 403, "message": "Forbidden\\n"}',
            "failed",
            None,
            403,
        ),
        ('{"phase": "failed", "status_code": true}', "failed", None, None),
        ('{"phase": 3, "message": ["x"]}', "", None, None),
        ("[" * 100_000, "unknown", None, None),  # nesting too deep for json
    ],
)
def test_fields(data: str, phase: str, image: str | None, status: int | None) -> None:
    event = event_from_data(data)
    assert (event.phase, event.image_name, event.status_code) == (phase, image, status)


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        ("ready", Outcome.SUCCESS),  # build-only: found or built
        ("built", Outcome.SUCCESS),  # a launch-mode BinderHub that ignored build_only
        ("failed", Outcome.FAILURE),  # BinderHub's own, and the build pod's
        ("failure", Outcome.FAILURE),  # repo2docker's record for a failed step
        ("waiting", None),
        ("fetching", None),
        ("building", None),
        ("pushing", None),
        ("unknown", None),
        ("launching", None),
        ("", None),
    ],
)
def test_outcomes(phase: str, expected: Outcome | None) -> None:
    event = BuildEvent(phase, "")
    assert outcome(event) is expected
    assert event.outcome is expected


def test_raw_is_read_only() -> None:
    event = event_from_data('{"phase": "pushing", "progress": {}}')
    with pytest.raises(TypeError):
        event.raw["phase"] = "ready"  # type: ignore[index]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        # a step and its newline arrive apart, as repo2docker sends them
        (["Step 1/3 : FROM x", "\n", " ---> 0707\n"], ["Step 1/3 : FROM x", "---> 0707"]),
        # a carriage return lets the next text overwrite the line
        (["Fetching base image...\r", "Fetching base image...\r", " ---> 1\n"], ["---> 1"]),
        (["a\r\nb\n"], ["a", "b"]),  # CRLF is one line end
        (["\x1b[31mred\x1b[0m\n"], ["red"]),  # colours go
        (["tab\there\x07\n"], ["tab here"]),  # a bell goes, a tab becomes a space
        (["evil\u202etxt.exe\n"], ["eviltxt.exe"]),  # a bidi override goes
        (["\n", "  \n"], []),  # blank lines are not kept
        (["unfinished"], ["unfinished"]),  # the last, unfinished line counts
    ],
)
def test_log_tail_lines(messages: list[str], expected: list[str]) -> None:
    tail = LogTail()
    for message in messages:
        tail.add(message)
    assert tail.lines() == expected


def test_log_tail_is_bounded() -> None:
    tail = LogTail(lines=3, line_chars=10)
    for i in range(100):
        tail.add(f"line {i} " + "x" * 50 + "\n")
    assert len(tail.lines()) == 3
    assert all(len(line) <= 10 for line in tail.lines())
    assert tail.lines()[-1] == "line 99 x\u2026"
    tail.add("partial")
    assert tail.lines() == ["line 98 x\u2026", "line 99 x\u2026", "partial"]


def test_failure_message_shows_the_tail_without_repeating_the_reason() -> None:
    tail = LogTail()
    for message in [
        "Step 2/3 : RUN pip install",
        "\n",
        "ERROR: no nosuchpkg\n",
        "The command x\n",
    ]:
        tail.add(message)
    assert failure_message("failed: The command x", tail) == (
        "failed: The command x\nLast lines of the build log:\n"
        "Step 2/3 : RUN pip install\nERROR: no nosuchpkg"
    )
    assert failure_message("failed: nothing logged", LogTail()) == "failed: nothing logged"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"phase": "waiting", "message": "Waiting for build to start...\\n"}',
         "waiting: Waiting for build to start..."),
        ('{"message": "Picked Git content provider.\\n"}', "Picked Git content provider."),
        ('{"message": "Fetching base image...\\r", "phase": "building"}',
         "building: Fetching base image..."),
        ('{"message": "\\n", "phase": "building"}', ""),  # nothing new to say
        ('{"phase": "failed"}', "failed"),
        ('{"message": "\\u001b[1;32mStep 1/3\\u001b[0m : FROM x", "phase": "building"}',
         "building: Step 1/3 : FROM x"),
        ('{"message": "a\\u0000b\\u202ec", "phase": "building"}', "building: abc"),
        # the first line of a long message
        ('{"message": "The following packages:\\n  libx libz\\n", "phase": "building"}',
         "building: The following packages:"),
        ('{"message": "Pushing image\\n", "phase": "pushing", "progress": '
         '{"a": "Pushed", "b": {"current": 1, "total": 2}, "c": "Layer already exists"}}',
         "pushing: Pushing image (2 of 3 layers pushed)"),
        (f'{{"phase": "ready", "message": "Done! Image built\\n", "imageName": "{IMAGE}"}}',
         "ready: Done! Image built"),
    ],
)  # fmt: skip
def test_progress_messages(data: str, expected: str) -> None:
    assert progress_message(event_from_data(data)) == expected


def test_progress_messages_are_bounded() -> None:
    event = BuildEvent("building", "y" * 1000)
    text = progress_message(event, limit=50)
    assert len(text) == 50
    assert text.startswith("building: yyy")
    assert text.endswith("\u2026")


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (
            {"a": "Pushed", "b": "Mounted from library/python", "c": "Waiting"},
            "2 of 3 layers pushed",
        ),
        ({"a": {"current": 1, "total": 9}}, "0 of 1 layers pushed"),
        ({}, ""),
        ("Pushed", ""),
        (None, ""),
    ],
)
def test_push_summary(progress: object, expected: str) -> None:
    assert push_summary(progress) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # BuildHandler.send_error's body, with the status code
        ('data: {"phase": "failed", "status_code": 403, "message": "Forbidden\\n"}\n\n',
         "Forbidden"),
        ('data: {"phase": "failed", "status_code": 400, "message": '
         '"Missing Accept header: text/event-stream\\n"}\n\n',
         "Missing Accept header: text/event-stream"),
        ('{"status": 403, "message": "Action is not authorized"}', "Action is not authorized"),
        ("<html><title>404: Not Found</title></html>", ""),
        ("", ""),
    ],
)  # fmt: skip
def test_error_reasons(body: str, expected: str) -> None:
    assert error_reason(body) == expected


def test_clean_line() -> None:
    assert clean_line("  a\n\tb\r\nc  ") == "a b c"
    assert clean_line("x" * 10, 5) == "xxxx\u2026"


def test_the_slot_wait_event_is_a_waiting_event_from_eohub() -> None:
    event = slot_wait_event(4)
    assert (event.phase, event.outcome, event.raw["source"]) == ("waiting", None, "eohub")
    assert (
        progress_message(event) == "waiting: Waiting for a free build slot (4 builds are running)"
    )
