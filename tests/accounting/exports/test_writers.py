"""Export writers: streams, counts, progress, and the terminal bar (no database)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.accounting.exports.writers import (
    PROGRESS_EVERY,
    TerminalProgress,
    counted,
    write_csv_rows,
    write_sacct,
    write_sessions_csv,
    write_storage_json,
    write_usage_csv,
)
from eohub.domain.accounting.ledger import GIB, Resources, Usage
from eohub.domain.accounting.session_record import SessionRecord, StorageSample, UsageRow
from eohub.domain.reports.csv_report import SESSION_HEADER, USAGE_HEADER
from eohub.domain.reports.xdmod import SacctOptions, sacct_line
from eohub.domain.reports.xdmod_storage import StorageOptions

T0 = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


def session(i: int, *, open_: bool = False) -> SessionRecord:
    return SessionRecord(
        id=i,
        user=f"user{i % 7}",
        server="",
        group="climate",
        resources=Resources.from_cpu("0.5", GIB),
        started_at=T0 + timedelta(minutes=i),
        stopped_at=None if open_ else T0 + timedelta(minutes=i + 30),
    )


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, [0]),
        (1, [0, 1]),
        (PROGRESS_EVERY, [0, PROGRESS_EVERY]),
        (2500, [0, 1000, 2000, 2500]),
    ],
)
def test_progress_is_reported_every_thousand_and_at_the_end(
    count: int, expected: list[int]
) -> None:
    recorder = Recorder()
    assert list(counted(range(count), count, recorder)) == list(range(count))
    assert recorder.calls == [(done, count) for done in expected]


def test_sacct_writes_stopped_sessions_and_counts_every_record() -> None:
    records = [session(i, open_=i % 4 == 0) for i in range(1, 2001)]
    out, recorder = io.StringIO(), Recorder()
    written = write_sacct(
        iter(records), out, total=len(records), progress=recorder, options=SacctOptions()
    )
    lines = out.getvalue().splitlines()
    assert written == len(lines) == 1500
    assert lines[0] == sacct_line(records[0])
    assert out.getvalue().endswith("\n")
    assert out.getvalue().isascii()
    assert recorder.calls == [(0, 2000), (1000, 2000), (2000, 2000)]


def test_sacct_exports_are_repeatable() -> None:
    records = [session(i) for i in range(1, 50)]
    first, second = io.StringIO(), io.StringIO()
    write_sacct(records, first)
    write_sacct(records, second)
    assert first.getvalue() == second.getvalue()


def test_sessions_csv() -> None:
    out = io.StringIO(newline="")
    now = T0 + timedelta(days=1)
    assert write_sessions_csv([session(1), session(2, open_=True)], out, now=now) == 2
    header, *rows = csv.reader(io.StringIO(out.getvalue(), newline=""))
    assert tuple(header) == SESSION_HEADER
    assert [row[0] for row in rows] == ["1", "2"]
    assert rows[1][SESSION_HEADER.index("stopped_at")] == ""


def test_usage_csv() -> None:
    out, recorder = io.StringIO(newline=""), Recorder()
    rows = [
        UsageRow(
            datetime(2026, 2, 1, tzinfo=UTC), "climate", "", Usage(cpu_mcore_ms=3_600_000_000)
        )
    ]
    assert write_usage_csv(rows, out, total=1, progress=recorder) == 1
    header, row = csv.reader(io.StringIO(out.getvalue(), newline=""))
    assert tuple(header) == USAGE_HEADER
    assert row[3] == "1.000000"
    assert recorder.calls == [(0, 1), (1, 1)]


@pytest.mark.parametrize("count", [0, 1, 3])
def test_storage_json_is_one_valid_array(count: int) -> None:
    samples = [StorageSample(f"u{i}", "climate", i * GIB, T0) for i in range(count)]
    out = io.StringIO()
    options = StorageOptions(resource="home", hard_thresholds={"climate": 10 * GIB})
    assert write_storage_json(samples, out, options=options) == count
    entries: list[dict[str, Any]] = json.loads(out.getvalue())
    assert [e["user"] for e in entries] == [f"u{i}" for i in range(count)]
    assert all(e["hard_threshold"] == 10 * GIB for e in entries)


class FakeTerminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_the_bar_draws_on_a_terminal() -> None:
    stream = FakeTerminal(tty=True)
    with TerminalProgress("sacct", stream=stream, width=10) as bar:
        bar(0, 200)
        bar(100, 200)
        bar(200, 200)
    text = stream.getvalue()
    assert "\rsacct [#####-----]  50% 100/200" in text
    assert "\rsacct [##########] 100% 200/200" in text
    assert text.endswith("\n")


def test_the_bar_counts_without_a_total() -> None:
    stream = FakeTerminal(tty=True)
    bar = TerminalProgress(stream=stream)
    bar(3000, None)
    bar.close()
    assert stream.getvalue() == "\rexport 3000 records\n"


@pytest.mark.parametrize("stream", [FakeTerminal(tty=False), io.StringIO()])
def test_the_bar_is_silent_off_a_terminal(stream: io.StringIO) -> None:
    with TerminalProgress(stream=stream) as bar:
        write_sacct([session(1)], io.StringIO(), total=1, progress=bar)
    assert stream.getvalue() == ""


def test_a_closed_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    stream.close()
    bar = TerminalProgress(stream=stream)
    bar(1, 1)
    bar.close()
    assert not bar.enabled


CELL = st.text(alphabet=st.sampled_from(list("ab ,\"\r\n'=-é")), max_size=6)


@given(st.lists(st.lists(CELL, min_size=1, max_size=5), max_size=8))
def test_fast_csv_rows_match_the_csv_writer(rows: list[list[str]]) -> None:
    expected = io.StringIO()
    csv.writer(expected).writerows(rows)
    ours = io.StringIO()
    assert write_csv_rows(csv.writer(ours), ours, rows) == len(rows)
    assert ours.getvalue() == expected.getvalue()
