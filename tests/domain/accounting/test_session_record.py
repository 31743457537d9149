"""A session as the store holds it: its size, and its usage so far."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from eohub.domain.accounting.ledger import GIB, Resources, Usage, session_usage
from eohub.domain.accounting.session_record import (
    PI_STOP_WINDOW,
    SessionRecord,
    StorageSample,
    UsageRow,
    current_session,
    stop_was_requested,
    stopped_too_late,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_an_open_session_counts_up_to_now() -> None:
    record = SessionRecord(1, "alice", "", "climate", Resources.from_cpu(0.5), T0)
    assert record.usage(T0 + timedelta(hours=4)).core_hours == 2


def test_a_stopped_session_counts_up_to_its_stop() -> None:
    resources = Resources.from_cpu(2, 4 * GIB, 1)
    stop = T0 + timedelta(hours=3)
    record = SessionRecord(7, "bob", "gpu", "ml", resources, T0, stop, "stopped")
    later = T0 + timedelta(days=30)
    assert record.usage(later) == session_usage(resources, T0, stop)
    assert (record.usage(later).core_hours, record.usage(later).gpu_hours) == (
        Fraction(6),
        Fraction(3),
    )


def test_usage_before_the_start_is_zero() -> None:
    record = SessionRecord(1, "alice", "", "climate", Resources.from_cpu(1), T0)
    assert record.usage(T0 - timedelta(hours=1)) == Usage()


def test_the_size_columns_come_from_the_resources() -> None:
    record = SessionRecord(3, "carol", "", "eo", Resources(1500, 2 * GIB, 2), T0)
    assert (record.millicores, record.memory_bytes, record.gpus) == (1500, 2 * GIB, 2)
    assert (record.stopped_at, record.end_reason, record.profile, record.image) == (
        None,
        None,
        "",
        "",
    )


def test_a_session_without_limits_or_a_requested_stop() -> None:
    record = SessionRecord(1, "alice", "", "climate", Resources.from_cpu(1), T0)
    assert (record.idle_timeout, record.max_duration, record.stop_reason) == (None, None, None)


def test_records_are_frozen() -> None:
    record = SessionRecord(1, "alice", "", "climate", Resources.from_cpu(1), T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.group = "other"  # type: ignore[misc]
    row = UsageRow(T0, "climate", "", Usage(1, 2, 3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.user = "alice"  # type: ignore[misc]


def test_a_storage_sample_without_a_file_count() -> None:
    sample = StorageSample("alice", "", 10 * GIB, T0)
    assert sample.file_count == 0
    assert StorageSample("alice", "", 10 * GIB, T0, 5) != sample


# the server stopped this long after the request -> was it the request's stop?
ATTRIBUTIONS = [
    (timedelta(seconds=3), True),
    (timedelta(0), True),
    (-timedelta(seconds=30), True),  # the hub's clock a little behind the service's
    (-timedelta(minutes=5), False),  # it had stopped before anyone asked
    (PI_STOP_WINDOW, True),
    (PI_STOP_WINDOW + timedelta(seconds=1), False),  # the member stopped it later
]


@pytest.mark.parametrize(("after", "theirs"), ATTRIBUTIONS)
def test_a_stop_is_the_requests_only_soon_after_it(after: timedelta, theirs: bool) -> None:
    assert stop_was_requested(T0, T0 + after) is theirs
    # A close after the request (the hub's event, reconcile) is judged on lateness only.
    assert stopped_too_late(T0, T0 + after) is (after > PI_STOP_WINDOW)


def test_who_asked_for_a_stop_still_under_way() -> None:
    asked = SessionRecord(1, "alice", "", "climate", Resources.from_cpu(1), T0, stopped_by="carol")
    assert asked.stop_asked_by == "carol"
    closed = dataclasses.replace(asked, stopped_at=T0 + timedelta(hours=1))
    assert closed.stop_asked_by is None


def _open(sid: int, started: datetime) -> SessionRecord:
    return SessionRecord(sid, "alice", "", "climate", Resources.from_cpu(1), started)


SLACK = timedelta(seconds=60)
SERVER_START = T0 + timedelta(hours=1)
# the server's open sessions (id, start offset from the hub's start) -> the current one
CURRENT = [
    ([], None),
    ([(1, timedelta(0))], 1),
    ([(1, timedelta(seconds=20))], 1),  # recorded once ready: later than the hub's start
    ([(1, -timedelta(hours=1))], None),  # an earlier life whose stop has not come yet
    # restarted with another group within the slack: the nearest start is the current
    ([(1, -timedelta(seconds=30)), (2, timedelta(seconds=1))], 2),
    ([(1, timedelta(seconds=2)), (2, -timedelta(seconds=40))], 1),
    ([(1, timedelta(seconds=5)), (2, -timedelta(seconds=5))], 1),  # a tie: the lower id
]


@pytest.mark.parametrize(("sessions", "expected"), CURRENT)
def test_the_current_session_of_a_server(
    sessions: list[tuple[int, timedelta]], expected: int | None
) -> None:
    found = current_session([_open(i, SERVER_START + d) for i, d in sessions], SERVER_START, SLACK)
    assert (found.id if found else None) == expected
    # A hub that gives no start time: any open session, the lowest id first.
    if sessions:
        assert current_session([_open(i, T0) for i, _ in sessions], None, SLACK) is not None


def test_a_stop_is_shown_under_way_only_while_the_request_is_recent() -> None:
    asked = SessionRecord(
        1,
        "alice",
        "",
        "climate",
        Resources.from_cpu(1),
        T0,
        stopped_by="carol",
        stop_requested_at=T0,
    )
    assert asked.stop_under_way(T0 + PI_STOP_WINDOW) == "carol"
    assert asked.stop_under_way(T0 + PI_STOP_WINDOW + timedelta(seconds=1)) is None
    closed = dataclasses.replace(asked, stopped_at=T0 + timedelta(minutes=1))
    assert closed.stop_under_way(T0 + timedelta(minutes=2)) is None
