"""BinderHub's build event stream, parsed and summarised; pure, no I/O.

A repository launch whose image is not in the registry asks BinderHub to build it
(:mod:`eohub.adapters.binderhub_build`). BinderHub answers with a ``text/event-stream``;
this module turns the bytes into :class:`BuildEvent` objects, says which events end the
build (:func:`outcome`), keeps the last log lines for a failure message
(:class:`LogTail`), and writes the one-line progress text a user sees
(:func:`progress_message`).

What BinderHub sends, and where each rule comes from. The sources are the
jupyterhub/binderhub main branch of the BinderHub 1.0 era (2024-2025, when
``enable_api_only_mode`` and ``build_only`` exist) and the repo2docker it runs:

* Framing (``binderhub/builder.py``, ``BuildHandler.emit``): every event is one line
  ``data: <json>`` followed by a blank line. ``BuildHandler.keep_alive`` writes the
  comment ``:keepalive`` and a blank line every ``KEEPALIVE_INTERVAL`` (25) seconds.
  The parser follows the WHATWG event-stream rules anyway (CR, LF or CRLF line ends, a
  space after the colon is optional, several ``data:`` lines join with a newline,
  comments and unknown fields are ignored, an unterminated last event is dropped),
  because a proxy may re-frame the stream.
* Fields (``builder.py``; the recorded stream
  ``js/packages/binderhub-client/tests/fixtures/fullbuild.eventsource``;
  ``docs/source/api.rst``): ``phase`` and ``message``, plus ``imageName`` on success,
  ``status_code`` on a failure written by ``BuildHandler.send_error``, and ``progress``
  / ``layers`` while pushing. Build log lines are repo2docker's JSON log records passed
  through unchanged: some have no ``phase`` (``"Picked Git content provider."``), a
  message may be part of a line (``"Step 1/51 : FROM ..."`` then ``"\\n"``) or end in a
  carriage return (``"Fetching base image...\\r"``). ``binder_ref_url``,
  ``binder_launch_host``, ``binder_request`` and ``binder_persistent_request`` only
  come with the ``ready`` event of a *launch*, never in build-only mode.
* Phases in build-only mode (``builder.py``, ``BuildHandler.get``): ``waiting`` (first,
  ``"Waiting for build to start..."``), then log phases ``fetching``, ``building``,
  ``pushing`` (``repo2docker/app.py``, ``push_image``), ``unknown`` (a pod in phase
  Unknown, or a log line that was not JSON, ``binderhub/build_local.py``
  ``_handle_log``), and finally ``ready`` with ``imageName``: ``"Done! Image built"``
  after a build, ``"Done! Found built image"`` when the image already existed. A launch
  (no ``build_only``) sends ``built`` with ``imageName`` instead, then ``launching``.
* Failure: repo2docker logs ``phase: "failure"`` (a failed Docker step) or ``"failed"``
  (push error, uncaught exception); BinderHub forwards it and counts the build failed
  on either, then sends ``{"phase": "failed"}`` when the build pod fails
  (``binderhub/build.py``, the pod watch). After that BinderHub keeps the stream open
  with keep-alives until the client closes it (``docs/source/api.rst``: "You *must*
  close your EventStream" on ``failed``). Errors found before a build, such as an
  unknown provider prefix, a banned repository or a ref that does not resolve, are a
  single ``{"phase": "failed", "message": ...}``.
"""

from __future__ import annotations

import codecs
import enum
import json
import re
import unicodedata
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Phases that end a build with an image: ``ready`` (build-only), ``built`` (launch).
SUCCESS_PHASES = frozenset({"ready", "built"})
#: Phases that end a build without one (``failure`` comes from repo2docker's log).
FAILURE_PHASES = frozenset({"failed", "failure"})
#: The largest event (data characters) a stream may carry before it is refused.
MAX_EVENT_CHARS = 1 << 20
#: Log lines a :class:`LogTail` keeps by default.
LOG_TAIL_LINES = 50
#: The longest single log line kept in a tail.
MAX_LINE_CHARS = 400
#: The longest progress message shown to a user.
MAX_PROGRESS_CHARS = 200
# Docker push statuses of a layer that is done.
_LAYER_DONE = ("Pushed", "Layer already exists", "Mounted from")
_EOL = re.compile(r"\r\n|\r|\n")
# CSI (colours, cursor moves), OSC (titles, links) and two-character escape sequences.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC
    r"|\x1b[@-Z\\-_]"  # two characters
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_SPACE = re.compile(r"\s+")
_ELLIPSIS = "\u2026"


class EventStreamError(ValueError):
    """The stream cannot be parsed safely: one event is larger than the parser accepts."""


class Outcome(enum.Enum):
    """How an event ends a build, if it does."""

    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class BuildEvent:
    """One event of BinderHub's build stream.

    Parameters
    ----------
    phase
        ``phase`` in lower case, or ``""`` when the event has none (a repo2docker log
        record without one).
    message
        ``message`` as sent, newlines and escape sequences included; ``""`` if absent.
    image_name
        ``imageName``, sent with ``ready`` and ``built``; None otherwise.
    raw
        The whole JSON object, read-only, for fields this class does not name.
    """

    phase: str
    message: str
    image_name: str | None = None
    raw: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    @property
    def outcome(self) -> Outcome | None:
        """Whether this event ends the build, and how."""
        return outcome(self)

    @property
    def status_code(self) -> int | None:
        """The HTTP status ``BuildHandler.send_error`` put in a failure, if any."""
        code = self.raw.get("status_code")
        return code if isinstance(code, int) and not isinstance(code, bool) else None


def outcome(event: BuildEvent) -> Outcome | None:
    """:attr:`Outcome.SUCCESS` for ``ready``/``built``, FAILURE for ``failed``/``failure``."""
    if event.phase in SUCCESS_PHASES:
        return Outcome.SUCCESS
    if event.phase in FAILURE_PHASES:
        return Outcome.FAILURE
    return None


def event_from_data(data: str) -> BuildEvent:
    """The event an event-stream ``data`` value describes.

    Data that is not a JSON object becomes an ``unknown`` event holding the text, which
    is what BinderHub itself does with a build log line that is not JSON.
    """
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        obj = None
    if not isinstance(obj, dict):
        return BuildEvent("unknown", data, None, MappingProxyType({"message": data}))
    phase = obj.get("phase")
    message = obj.get("message")
    image = obj.get("imageName")
    return BuildEvent(
        phase=phase.strip().lower() if isinstance(phase, str) else "",
        message=message if isinstance(message, str) else "",
        image_name=image if isinstance(image, str) and image else None,
        raw=MappingProxyType(obj),
    )


class EventStreamParser:
    """An incremental ``text/event-stream`` parser: feed it chunks, get whole events.

    Chunks may split anywhere: inside a UTF-8 character, inside a CRLF, inside a line.

    Parameters
    ----------
    max_event_chars
        The most data one event may carry; beyond it :class:`EventStreamError`.
    """

    def __init__(self, *, max_event_chars: int = MAX_EVENT_CHARS) -> None:
        self.max_event_chars = max_event_chars
        #: Comment lines seen (BinderHub's ``:keepalive``).
        self.comments = 0
        #: Events dispatched.
        self.events = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text after the last complete line
        self._data: list[str] = []
        self._data_chars = 0
        self._started = False

    def feed(self, chunk: bytes | str) -> list[BuildEvent]:
        """The events completed by ``chunk``."""
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        return self._consume(text, final=False)

    def close(self) -> list[BuildEvent]:
        """The events completed at the end of the stream; an unfinished one is dropped."""
        events = self._consume(self._decoder.decode(b"", final=True), final=True)
        self._pending = ""
        self._data = []
        self._data_chars = 0
        return events

    def _consume(self, text: str, *, final: bool) -> list[BuildEvent]:
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        buffer = self._pending + text
        events: list[BuildEvent] = []
        start = 0
        for end in _EOL.finditer(buffer):
            if end.group() == "\r" and end.end() == len(buffer) and not final:
                break  # maybe the first half of a CRLF split across chunks
            event = self._line(buffer[start : end.start()])
            start = end.end()
            if event is not None:
                events.append(event)
        self._pending = buffer[start:]
        if len(self._pending) > self.max_event_chars:
            raise EventStreamError(f"an event-stream line is longer than {self.max_event_chars}")
        return events

    def _line(self, line: str) -> BuildEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":  # event, id, retry: BinderHub sends none, and they change nothing
            self._data_chars += len(value) + 1
            if self._data_chars > self.max_event_chars:
                raise EventStreamError(f"an event is larger than {self.max_event_chars}")
            self._data.append(value)
        return None

    def _dispatch(self) -> BuildEvent | None:
        data = "\n".join(self._data)
        self._data = []
        self._data_chars = 0
        if not data:
            return None
        self.events += 1
        return event_from_data(data)


def parse_stream(chunks: Iterable[bytes | str]) -> list[BuildEvent]:
    """Every event of a whole stream given as chunks."""
    parser = EventStreamParser()
    events: list[BuildEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.close())
    return events


def strip_controls(text: str) -> str:
    """``text`` without escape sequences and control or format characters.

    Newlines, carriage returns and tabs stay; bidirectional overrides and zero-width
    characters go, so a log line cannot disguise itself.
    """
    text = _ANSI.sub("", text)
    return "".join(
        c
        for c in text
        if c in "\n\r\t" or unicodedata.category(c) not in ("Cc", "Cf", "Co", "Cs", "Cn")
    )


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, an ellipsis marking the cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1].rstrip() + _ELLIPSIS


def clean_line(text: str, limit: int = MAX_PROGRESS_CHARS) -> str:
    """``text`` as one printable line: no controls, whitespace runs made one space."""
    return truncate(_SPACE.sub(" ", strip_controls(text)).strip(), limit)


def first_line(text: str) -> str:
    """The first line of ``text`` that has something on it, or ``""``."""
    for line in _EOL.split(strip_controls(text)):
        if line.strip():
            return line
    return ""


class LogTail:
    """The last log lines of a build, for the message a failed build shows.

    Messages arrive in pieces (a step, then its newline); pieces are joined into lines.
    A carriage return lets the next text overwrite the line, as a terminal would.

    Parameters
    ----------
    lines
        How many complete lines to keep.
    line_chars
        The longest line kept; longer lines are cut.
    """

    def __init__(self, lines: int = LOG_TAIL_LINES, *, line_chars: int = MAX_LINE_CHARS) -> None:
        self.line_chars = line_chars
        self._lines: deque[str] = deque(maxlen=lines)
        self._current = ""
        self._overwrite = False

    def add(self, message: str) -> None:
        """Append a message, which may hold part of a line or several lines."""
        text = strip_controls(message).replace("\r\n", "\n")
        for piece in re.split(r"([\r\n])", text):
            if piece == "\n":
                self._commit()
            elif piece == "\r":
                self._overwrite = True
            elif piece:
                if self._overwrite:
                    self._current, self._overwrite = "", False
                # keep one character more than shown, so truncate() marks the cut
                self._current = (self._current + piece)[: self.line_chars + 1]

    def _commit(self) -> None:
        line = clean_line(self._current, self.line_chars)
        if line:
            self._lines.append(line)
        self._current, self._overwrite = "", False

    def lines(self) -> list[str]:
        """The kept lines, oldest first, the unfinished last line included."""
        lines = list(self._lines)
        current = clean_line(self._current, self.line_chars)
        if current:
            lines.append(current)
        return lines[-self._lines.maxlen :] if self._lines.maxlen else lines

    def text(self) -> str:
        """The kept lines joined by newlines."""
        return "\n".join(self.lines())


def push_summary(progress: object) -> str:
    """``"3 of 5 layers pushed"`` from the ``progress`` of a ``pushing`` event."""
    if not isinstance(progress, Mapping) or not progress:
        return ""
    done = sum(
        1
        for status in progress.values()
        if isinstance(status, str) and status.startswith(_LAYER_DONE)
    )
    return f"{done} of {len(progress)} layers pushed"


def progress_message(event: BuildEvent, limit: int = MAX_PROGRESS_CHARS) -> str:
    """The line a user sees for ``event``: ``"building: Step 1/3 : FROM ..."``.

    The phase, then the first line of the message, without escape sequences or
    control characters, at most ``limit`` characters; ``""`` if there is nothing to say.
    """
    message = clean_line(first_line(event.message), limit)
    if event.phase == "pushing":
        summary = push_summary(event.raw.get("progress"))
        if summary:
            message = f"{message} ({summary})" if message else summary
    if not message and isinstance(event.raw.get("message"), str):
        return ""  # a bare newline or carriage return finishing an earlier line
    phase = clean_line(event.phase, 40)
    text = f"{phase}: {message}" if phase and message else phase or message
    return truncate(text, limit)


def failure_message(reason: str, tail: LogTail) -> str:
    """The text of a failed build: the reason, then the last lines of its log.

    A last log line that the reason already says is not repeated.
    """
    lines = tail.lines()
    if lines and lines[-1].removesuffix(_ELLIPSIS) in reason:
        lines.pop()
    if not lines:
        return reason
    return f"{reason}\nLast lines of the build log:\n" + "\n".join(lines)


def error_reason(body: str) -> str:
    """BinderHub's words in the body of an error response, or ``""``.

    ``BuildHandler.send_error`` writes its error as a ``failed`` event even when the
    status is an error; JupyterHub-style JSON (``{"message": ...}``) is read too. HTML
    pages say nothing useful to a scientist and give ``""``.
    """
    try:
        events = parse_stream([body])
    except EventStreamError:
        events = []
    for event in events:
        if event.message and event.phase in FAILURE_PHASES:
            return clean_line(event.message, MAX_LINE_CHARS)
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    message = obj.get("message") if isinstance(obj, dict) else None
    return clean_line(message, MAX_LINE_CHARS) if isinstance(message, str) else ""


def slot_wait_event(limit: int) -> BuildEvent:
    """The event a build gets while it waits for one of eohub's ``limit`` build slots."""
    message = f"Waiting for a free build slot ({limit} builds are running)\n"
    return BuildEvent(
        "waiting",
        message,
        None,
        MappingProxyType({"phase": "waiting", "message": message, "source": "eohub"}),
    )


__all__ = [
    "FAILURE_PHASES",
    "LOG_TAIL_LINES",
    "MAX_EVENT_CHARS",
    "MAX_LINE_CHARS",
    "MAX_PROGRESS_CHARS",
    "SUCCESS_PHASES",
    "BuildEvent",
    "EventStreamError",
    "EventStreamParser",
    "LogTail",
    "Outcome",
    "clean_line",
    "error_reason",
    "event_from_data",
    "failure_message",
    "first_line",
    "outcome",
    "parse_stream",
    "progress_message",
    "push_summary",
    "slot_wait_event",
    "strip_controls",
    "truncate",
]
