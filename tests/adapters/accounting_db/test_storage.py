"""Storage samples: stored once, summed per group from each user's latest, read by time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from eohub.adapters.accounting_db.storage import add_samples, group_storage, iter_samples
from eohub.domain.accounting.session_record import StorageSample

T0 = datetime(2026, 4, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_samples_are_stored_once_and_summed_from_each_latest(sqlite_engine: Engine) -> None:
    samples = [
        StorageSample("ada", "climate", 100, T0),
        StorageSample("ada", "climate", 300, T0 + HOUR),
        StorageSample("bob", "climate", 50, T0),
        StorageSample("ada", "ocean", 7, T0 + HOUR),
    ]
    with sqlite_engine.begin() as c:
        assert add_samples(c, samples) == 4
        assert add_samples(c, [*samples[:2], StorageSample("bob", "climate", 60, T0 + HOUR)]) == 1
    with sqlite_engine.connect() as c:
        assert group_storage(c, "climate") == 300 + 60
        assert group_storage(c, "ocean") == 7
        assert group_storage(c, "nobody") == 0


def test_samples_are_read_oldest_first_in_a_half_open_range(sqlite_engine: Engine) -> None:
    samples = [StorageSample("ada", "climate", i, T0 + i * HOUR) for i in (3, 0, 1, 2)]
    with sqlite_engine.begin() as c:
        add_samples(c, samples)
    with sqlite_engine.connect() as c:
        found = list(iter_samples(c, T0 + HOUR, T0 + 3 * HOUR))
    assert [s.bytes for s in found] == [1, 2]
    assert found[0] == StorageSample("ada", "climate", 1, T0 + HOUR)
