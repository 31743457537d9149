"""XDMoD exports: tables of cases, and lines read back as the shredder reads them.

:func:`~tests.domain.reports.shredder.shred` re-implements, independently of the code
under test, the rules of XDMoD's Slurm shredder (see the module docstring of
:mod:`eohub.domain.reports.xdmod`). Hypothesis feeds it sessions with fractional CPUs,
odd names and times in any offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eohub.domain.accounting.ledger import GIB, MIB, Resources
from eohub.domain.accounting.session_record import SessionRecord
from eohub.domain.accounting.stop_reasons import LEGACY_REASONS, STOP_REASONS
from eohub.domain.reports.xdmod import (
    DEFAULT_SACCT_OPTIONS,
    ENDED_STATES,
    MAX_NAME,
    SACCT_FIELDS,
    SacctOptions,
    pseudo_id,
    sacct_fields,
    sacct_line,
    sacct_lines,
    slurm_duration,
    xdmod_text,
)
from tests.domain.reports.shredder import EPOCH, seconds, shred

T0 = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


def session(**changes: Any) -> SessionRecord:
    base: dict[str, Any] = {
        "id": 42,
        "user": "alice",
        "server": "",
        "group": "climate",
        "resources": Resources.from_cpu("0.25", 4 * GIB, 0),
        "started_at": T0,
        "stopped_at": T0 + timedelta(hours=2, minutes=3, seconds=4),
        "end_reason": "stopped",
        "profile": "eo-python",
        "image": "quay.io/eo/python:1",
    }
    base.update(changes)
    return SessionRecord(**base)


def fields_of(
    record: SessionRecord, options: SacctOptions = DEFAULT_SACCT_OPTIONS
) -> dict[str, str]:
    return dict(zip(SACCT_FIELDS, sacct_fields(record, options), strict=True))


# ---------------------------------------------------------------------------------------
# Hypothesis: sessions with fractional CPUs, odd names, and times in any offset.

names = st.text(
    alphabet=st.one_of(
        st.sampled_from("|\n\r\t%=+-@ ,[]._~\\\"'"),
        st.characters(codec="utf-8"),
    ),
    min_size=1,
    max_size=300,
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
starts = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1))


REASONS = (*STOP_REASONS, *LEGACY_REASONS)
MAX_LIMIT = 366 * 86_400


@st.composite
def sessions(draw: st.DrawFn) -> SessionRecord:
    start = draw(starts).replace(tzinfo=UTC).astimezone(draw(offsets))
    duration = draw(st.integers(min_value=0, max_value=95 * 86_400 * 1_000_000))
    stop = (start + timedelta(microseconds=duration)).astimezone(draw(offsets))
    return SessionRecord(
        id=draw(st.integers(min_value=1, max_value=2**31)),
        user=draw(names),
        server=draw(st.one_of(st.just(""), names)),
        group=draw(names),
        resources=Resources(
            millicores=draw(st.integers(min_value=1, max_value=4_096_000)),
            memory_bytes=draw(st.integers(min_value=0, max_value=64 * 1024**4)),
            gpus=draw(st.integers(min_value=0, max_value=1024)),
        ),
        started_at=start,
        stopped_at=stop,
        profile=draw(st.one_of(st.just(""), names)),
        image=draw(names),
        end_reason=draw(st.one_of(st.none(), st.sampled_from(REASONS), names)),
        max_duration=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=MAX_LIMIT))),
    )


@settings(max_examples=400, deadline=None)
@given(sessions())
def test_every_exported_session_passes_the_shredder(record: SessionRecord) -> None:
    job = shred(sacct_line(record))
    assert record.stopped_at is not None
    # Whole seconds since the epoch, in integers: float timestamps can round up.
    start = (record.started_at - EPOCH) // timedelta(seconds=1)
    end = (record.stopped_at - EPOCH) // timedelta(seconds=1)
    assert (job.start, job.end, job.submit) == (start, max(start, end), start)
    assert job.job_id == record.id
    assert job.gpus == record.resources.gpus
    assert job.ncpus * 1000 >= record.resources.millicores > (job.ncpus - 1) * 1000
    assert job.req_mem_mib * MIB >= record.resources.memory_bytes
    assert (job.req_mem_mib - 1) * MIB < record.resources.memory_bytes or job.req_mem_mib == 0
    # XDMoD's CPU hours (whole CPUs x wall time) never undercount ours, bar the part of
    # a second that whole-second timestamps drop.
    exact = record.usage(record.stopped_at).core_hours * 3600
    assert job.ncpus * (job.end - job.start) + job.ncpus >= exact
    # Cut as the storage export cuts them: the realms join by user name.
    assert job.user == xdmod_text(record.user, MAX_NAME)
    assert job.group == job.account == xdmod_text(record.group, MAX_NAME)
    assert len(job.user) <= MAX_NAME
    assert job.timelimit == record.max_duration


@settings(max_examples=200, deadline=None)
@given(names, names)
def test_encoded_names_are_distinct_and_safe(a: str, b: str) -> None:
    ea, eb = xdmod_text(a), xdmod_text(b)
    assert (ea == eb) == (a == b)
    for encoded in (ea, eb, xdmod_text(a, 30)):
        assert encoded.isascii()
        assert encoded.isprintable()
        assert "|" not in encoded
    assert len(xdmod_text(a, 30)) <= 30


# ---------------------------------------------------------------------------------------
# Tables of cases.


def test_a_line_field_by_field() -> None:
    record = session(resources=Resources.from_cpu("2.5", 3 * GIB + 1, 2))
    fields = fields_of(record)
    assert fields == {
        "jobid": "42",
        "jobidraw": "42",
        "cluster": "eohub",
        "partition": "eo-python",
        "qos": "normal",
        "account": "climate",
        "group": "climate",
        "gid": str(pseudo_id("climate")),
        "user": "alice",
        "uid": str(pseudo_id("alice")),
        "submit": "2026-01-31T23:00:00",
        "eligible": "2026-01-31T23:00:00",
        "start": "2026-01-31T23:00:00",
        "end": "2026-02-01T01:03:04",
        "elapsed": "02:03:04",
        "exitcode": "0:0",
        "state": "COMPLETED",
        "nnodes": "1",
        "ncpus": "3",
        "reqcpus": "3",
        "reqmem": "3073M",
        "reqtres": "billing=3,cpu=3,gres/gpu=2,mem=3073M,node=1",
        "alloctres": "billing=3,cpu=3,gres/gpu=2,mem=3073M,node=1",
        "timelimit": "UNLIMITED",
        "nodelist": "jupyter",
        "jobname": "jupyter",
    }


@pytest.mark.parametrize(
    ("millicores", "ncpus"),
    [(1, 1), (250, 1), (999, 1), (1000, 1), (1001, 2), (2500, 3), (64_000, 64)],
)
def test_cpus_round_up_to_whole_cpus(millicores: int, ncpus: int) -> None:
    job = shred(sacct_line(session(resources=Resources(millicores, GIB))))
    assert job.ncpus == ncpus


@pytest.mark.parametrize(
    ("memory", "reqmem", "tres_mem"),
    [(0, "0M", None), (1, "1M", "1M"), (MIB, "1M", "1M"), (4 * GIB, "4096M", "4096M")],
)
def test_memory_is_whole_mib(memory: int, reqmem: str, tres_mem: str | None) -> None:
    fields = fields_of(session(resources=Resources(500, memory)))
    assert fields["reqmem"] == reqmem
    tres = dict(item.split("=") for item in fields["alloctres"].split(","))
    assert tres.get("mem") == tres_mem
    assert "gres/gpu" not in tres, "no GPU item for a session without GPUs"


@pytest.mark.parametrize(
    ("secs", "text"),
    [
        (0, "00:00:00"),
        (59, "00:00:59"),
        (3600, "01:00:00"),
        (86_399, "23:59:59"),
        (86_400, "1-00:00:00"),
        (40 * 86_400 + 3723, "40-01:02:03"),
    ],
)
def test_durations_read_back_as_the_shredder_reads_them(secs: int, text: str) -> None:
    assert slurm_duration(secs) == text
    assert seconds(text) == secs


@pytest.mark.parametrize(
    ("started_at", "stopped_at", "start", "end"),
    [
        # +02:00 on 1 March is still February in UTC.
        (
            datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 3, 1, 3, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2))),
            "2026-02-28T23:30:00",
            "2026-03-01T01:00:00",
        ),
        # Naive times are UTC, as SQL returns them.
        (
            datetime(2026, 6, 1, 12),
            datetime(2026, 6, 2, 12),
            "2026-06-01T12:00:00",
            "2026-06-02T12:00:00",
        ),
        # A year boundary crossed from the west.
        (
            datetime(2025, 12, 31, 20, tzinfo=timezone(timedelta(hours=-5))),
            datetime(2026, 1, 1, 2, tzinfo=UTC),
            "2026-01-01T01:00:00",
            "2026-01-01T02:00:00",
        ),
    ],
)
def test_times_are_written_in_utc(
    started_at: datetime, stopped_at: datetime, start: str, end: str
) -> None:
    fields = fields_of(session(started_at=started_at, stopped_at=stopped_at))
    assert fields["start"] == fields["submit"] == fields["eligible"] == start
    assert fields["end"] == end
    shred(sacct_line(session(started_at=started_at, stopped_at=stopped_at)))


def test_a_stop_before_the_start_is_a_zero_length_job() -> None:
    job = shred(sacct_line(session(stopped_at=T0 - timedelta(minutes=5))))
    assert job.start == job.end
    assert job.elapsed == 0


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"user": "a|b\nc"}, "user", "a%7Cb%0Ac"),
        ({"group": "zoë"}, "group", "zo%C3%AB"),
        ({"group": "50%"}, "account", "50%25"),
        ({"profile": ""}, "partition", "default"),
        ({"profile": "gpu|big"}, "partition", "gpu%7Cbig"),
        ({"server": "analysis"}, "jobname", "analysis"),
        ({"server": "trailing "}, "jobname", "trailing%20"),
        ({"server": "日本"}, "jobname", "%E6%97%A5%E6%9C%AC"),
    ],
)
def test_free_text_is_made_safe(changes: dict[str, str], field: str, value: str) -> None:
    line = sacct_line(session(**changes))
    shred(line)
    assert dict(zip(SACCT_FIELDS, line.split("|"), strict=True))[field] == value


def test_trailing_space_in_the_last_field_survives_the_shredders_rtrim() -> None:
    assert xdmod_text("x  ") == "x%20%20"
    assert xdmod_text(" x") == " x"
    assert shred(sacct_line(session(server="x "))).job_name == "x%20"


def test_long_names_are_cut_with_a_hash() -> None:
    long_a, long_b = "ü" * 200, "ü" * 199 + "u"
    ea, eb = xdmod_text(long_a), xdmod_text(long_b)
    assert len(ea) <= 255
    assert len(eb) <= 255
    assert ea != eb
    assert re.fullmatch(r"(%C3%BC)+~[0-9a-f]{8}", ea), "no escape is cut in half"


def test_options_shape_the_line() -> None:
    options = SacctOptions(
        cluster="hub-a",
        node="jupyter01",
        partition="interactive",
        qos="low",
        timelimit="1-00:00:00",
        job_id_offset=1_000_000,
        uids={"alice": 10001},
        gids={"climate": 20001},
    )
    fields = fields_of(session(profile=""), options)
    assert fields["jobid"] == fields["jobidraw"] == "1000042"
    assert (fields["cluster"], fields["nodelist"], fields["partition"]) == (
        "hub-a",
        "jupyter01",
        "interactive",
    )
    assert (fields["qos"], fields["timelimit"]) == ("low", "1-00:00:00")
    assert (fields["uid"], fields["gid"]) == ("10001", "20001")
    assert shred(sacct_line(session(), options)).timelimit == 86_400


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"node": "node[1-3]"}, "node"),
        ({"node": "a,b"}, "node"),
        ({"cluster": ""}, "cluster"),
        ({"timelimit": "forever"}, "timelimit"),
        ({"timelimit": "1:00"}, "timelimit"),
        ({"job_id_offset": -1}, "job_id_offset"),
        ({"job_id_offset": 2**32}, "job_id_offset"),
        ({"uids": {"alice": -1}}, "uids"),
        ({"gids": {"climate": 2**32}}, "gids"),
    ],
)
def test_bad_options_fail_naming_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SacctOptions(**options)


def test_job_ids_must_fit_the_shredders_column() -> None:
    with pytest.raises(ValueError, match="outside"):
        sacct_line(session(id=10), SacctOptions(job_id_offset=2**32 - 10))
    with pytest.raises(ValueError, match="outside"):
        sacct_line(session(id=0))
    assert shred(sacct_line(session(id=9), SacctOptions(job_id_offset=2**32 - 10))).job_id == (
        2**32 - 1
    )


def test_open_sessions_are_skipped_and_refused() -> None:
    records = [session(id=1), session(id=2, stopped_at=None), session(id=3)]
    lines = list(sacct_lines(records))
    assert [shred(line).job_id for line in lines] == [1, 3]
    with pytest.raises(ValueError, match="still running"):
        sacct_line(records[1])


def test_job_ids_are_stable_across_exports() -> None:
    records = [session(id=i, user=f"u{i}") for i in (7, 3, 11)]
    first = list(sacct_lines(records))
    # A later export sees more sessions, in another order: old jobs keep their lines, so
    # XDMoD's duplicate key skips them instead of counting them twice.
    second = list(sacct_lines([session(id=12), *reversed(records)]))
    assert set(first) <= set(second)
    assert [shred(line).job_id for line in first] == [7, 3, 11]


# ---------------------------------------------------------------------------------------
# Why a session stopped: the job's state, exit code and time limit.

STATES = [
    ("user", "COMPLETED", "0:0"),
    ("stopped", "COMPLETED", "0:0"),
    ("reconcile", "COMPLETED", "0:0"),
    ("unknown", "COMPLETED", "0:0"),
    ("admin", "CANCELLED", "0:0"),
    ("shutdown", "CANCELLED", "0:0"),
    ("budget", "CANCELLED", "0:0"),
    ("idle", "TIMEOUT", "0:0"),
    ("max_duration", "TIMEOUT", "0:0"),
    ("failed", "FAILED", "1:0"),
    # earlier versions' names, as a ledger not yet migrated (or a CSV import) has them
    ("quota", "CANCELLED", "0:0"),
    ("culled", "TIMEOUT", "0:0"),
    ("reconciled", "COMPLETED", "0:0"),
    (None, "COMPLETED", "0:0"),
    ("", "COMPLETED", "0:0"),
    ("something new", "COMPLETED", "0:0"),
]


def test_the_state_table_covers_every_reason() -> None:
    assert {r for r, _, _ in STATES} >= set(STOP_REASONS) | set(LEGACY_REASONS)


@pytest.mark.parametrize(("reason", "state", "exit_code"), STATES)
def test_the_end_reason_gives_the_state_and_exit_code(
    reason: str | None, state: str, exit_code: str
) -> None:
    line = sacct_line(session(end_reason=reason))
    fields = dict(zip(SACCT_FIELDS, line.split("|"), strict=True))
    assert (fields["state"], fields["exitcode"]) == (state, exit_code)
    assert state in ENDED_STATES
    job = shred(line)
    assert (job.state, job.exit_code) == (state, exit_code)


@pytest.mark.parametrize(
    ("max_duration", "option", "timelimit", "seconds_read"),
    [
        (None, "UNLIMITED", "UNLIMITED", None),
        (None, "02:00:00", "02:00:00", 7200),
        (3600, "UNLIMITED", "01:00:00", 3600),
        (90, "02:00:00", "00:01:30", 90),  # the session's own limit wins
        (86_400, "UNLIMITED", "1-00:00:00", 86_400),
        (366 * 86_400 - 1, "UNLIMITED", "365-23:59:59", 366 * 86_400 - 1),
    ],
)
def test_the_sessions_maximum_duration_is_its_time_limit(
    max_duration: int | None, option: str, timelimit: str, seconds_read: int | None
) -> None:
    record = session(max_duration=max_duration, idle_timeout=600)
    options = SacctOptions(timelimit=option)
    assert fields_of(record, options)["timelimit"] == timelimit
    assert shred(sacct_line(record, options)).timelimit == seconds_read
