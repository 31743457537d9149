"""A session as the store holds it: its size, and its usage so far."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from eohub.domain.accounting.ledger import GIB, Resources, Usage, session_usage
from eohub.domain.accounting.session_record import SessionRecord, StorageSample, UsageRow

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
