"""A sampler's round as one batch of thousands of samples: stored a chunk per statement,
each sample once, each triple's latest kept, alike on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.models import StorageLatest
from eohub.adapters.accounting_db.models import StorageSample as StorageRow
from eohub.adapters.accounting_db.storage import CHUNK
from eohub.domain.accounting.session_record import StorageSample
from tests.support.accounting import Clock, fresh_store

T = datetime(2026, 4, 1, 12, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def store(database_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(database_url, Clock(T + 24 * H))
    yield s
    s.engine.dispose()


def _read(store: AccountingStore, table: type[StorageRow] | type[StorageLatest]) -> list[Any]:
    columns = (table.user, table.group, table.source, table.bytes, table.measured_at)
    with store.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.select(*columns))]


def rows(store: AccountingStore) -> list[tuple[str, str, str, int, datetime]]:
    return sorted(_read(store, StorageRow))


def latest(store: AccountingStore) -> dict[tuple[str, str, str], tuple[int, datetime]]:
    return {(u, g, s): (b, at) for u, g, s, b, at in _read(store, StorageLatest)}


def test_a_round_of_several_chunks_is_stored_once(store: AccountingStore) -> None:
    users = [f"user{i:04d}" for i in range(2 * CHUNK + 7)]
    round_one = [StorageSample(u, "climate", i, T, i, "/home") for i, u in enumerate(users)]
    # The same round again inside the batch, one sample written in another time zone:
    # the same instant, the same sample.
    east = timezone(timedelta(hours=2))
    again = [
        *round_one[:10],
        StorageSample(users[11], "climate", 11, T.astimezone(east), 11, "/home"),
    ]
    batch = [*round_one, *again]
    random.Random(7).shuffle(batch)

    assert store.add_storage_samples(batch) == len(users)
    assert store.add_storage_samples(batch) == 0  # a batch sent twice is no harm
    stored = rows(store)
    assert len(stored) == len(users)
    assert stored[11] == ("user0011", "climate", "/home", 11, T)
    assert len(latest(store)) == len(users)


def test_a_backfill_of_many_times_is_stored_once(store: AccountingStore) -> None:
    # One user's history, a sample an hour: the lookups go a chunk of times at a time.
    history = [StorageSample("ada", "", i, T - i * H, 0, "/home") for i in range(2 * CHUNK + 7)]
    assert store.add_storage_samples(history) == len(history)
    assert store.add_storage_samples(list(reversed(history))) == 0
    assert len(rows(store)) == len(history)
    assert latest(store) == {("ada", "", "/home"): (0, T)}


def test_each_triple_keeps_its_newest_sample(store: AccountingStore) -> None:
    store.add_storage_samples(
        [
            StorageSample("ada", "climate", 100, T + 5 * H, 0, "/home"),  # newer than the batch
            StorageSample("bob", "climate", 200, T - H, 0, "/home"),  # older than the batch
        ]
    )
    batch = [
        StorageSample("bob", "climate", 210, T + H, 0, "/home"),
        StorageSample("ada", "climate", 110, T + H, 0, "/home"),
        StorageSample("bob", "climate", 230, T + 3 * H, 0, "/home"),
        StorageSample("cy", "climate", 5, T, 0, "/scratch"),
        StorageSample("bob", "climate", 220, T + 2 * H, 0, "/home"),
        StorageSample("bob", "climate", 1, T + 2 * H, 0, "/scratch"),  # another source
    ]
    assert store.add_storage_samples(batch) == 6
    assert latest(store) == {
        ("ada", "climate", "/home"): (100, T + 5 * H),
        ("bob", "climate", "/home"): (230, T + 3 * H),
        ("bob", "climate", "/scratch"): (1, T + 2 * H),
        ("cy", "climate", "/scratch"): (5, T),
    }


def test_names_that_differ_only_in_case_or_a_trailing_space_are_other_samples(
    store: AccountingStore,
) -> None:
    batch = [StorageSample(name, "climate", 1, T) for name in ("bob", "Bob", "bob ", "böb")]
    assert store.add_storage_samples(batch) == 4
    assert store.add_storage_samples(batch) == 0
    assert [r[0] for r in rows(store)] == ["Bob", "bob", "bob ", "böb"]
    assert len(latest(store)) == 4
