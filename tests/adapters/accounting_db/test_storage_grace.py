"""Since when a group is over its storage quota, kept by every write that changes it, alike
on SQLite, PostgreSQL and MariaDB; sources, each one's latest sample, samples that stop
counting; file counts; and migration 0006."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import inspect

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.models import Group, StorageLatest
from eohub.adapters.accounting_db.models import StorageSample as StorageRow
from eohub.adapters.accounting_db.schema import alembic_config
from eohub.adapters.accounting_db.writer_process import WriterProcess
from eohub.domain.accounting.ledger import GIB, Resources
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.accounting.storage_quota import StoragePolicy
from tests.support.accounting import Clock, empty_database, fresh_store

T = datetime(2026, 4, 1, tzinfo=UTC)
H = timedelta(hours=1)
NOW = T + 4 * H


@pytest.fixture
def store(database_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(database_url, Clock(NOW))
    yield s
    s.engine.dispose()


def over_since(store: AccountingStore, group: str = "climate") -> datetime | None:
    with store.engine.connect() as connection:
        found: datetime | None = connection.execute(
            sa.select(Group.storage_over_since).where(Group.name == group)
        ).scalar_one()
        return found


def sample(user: str, gib: float, at: datetime, group: str = "climate") -> StorageSample:
    return StorageSample(user, group, int(gib * GIB), at)


def quota(gib: float | None, **more: object) -> Callable[[AccountingStore], object]:
    limits = Limits(storage_bytes=None if gib is None else int(gib * GIB), **more)  # type: ignore[arg-type]
    return lambda s: s.put_group("climate", quotas={"": limits})


def samples(*given: StorageSample) -> Callable[[AccountingStore], object]:
    return lambda s: s.add_storage_samples(given)


# What each write leaves as the group's storage_over_since: one scenario, in order, on
# every database. The quota is 10 GiB unless a step changes it.
STEPS: list[tuple[str, Callable[[AccountingStore], object], datetime | None]] = [
    ("a quota, no samples", quota(10), None),
    ("within", samples(sample("alice", 4, T)), None),
    ("a sample puts it over", samples(sample("bob", 7, T + H)), T + H),
    ("still over: the time stays", samples(sample("alice", 5, T + 2 * H)), T + H),
    ("an older sample of a member changes nothing", samples(sample("alice", 9, T)), T + H),
    ("a sample brings it under", samples(sample("bob", 1, T + 3 * H)), None),
    (
        "a late first sample puts it over: the newest sample it is measured by",
        samples(sample("carol", 6, T + 2.5 * H)),
        T + 3 * H,
    ),
    ("the limit raised", quota(20), None),
    ("the limit lowered: the grace starts at the change", quota(5), NOW),
    (
        "a member's row changes nothing",
        lambda s: s.put_group("climate", quotas={"*": Limits(storage_bytes=1)}),
        NOW,
    ),
    (
        "space charged to no group counts for none",
        samples(sample("carol", 99, NOW, "")),
        NOW,
    ),
    ("the row without a storage limit", quota(None, max_servers=3), None),
    ("the storage limit back", quota(5), NOW),
    ("the row removed", lambda s: s.put_group("climate", quotas={"": None}), None),
    ("exactly the quota is within it", quota(12), None),
]


def test_over_since_follows_every_write(store: AccountingStore) -> None:
    store.put_group("climate")
    for name, step, expected in STEPS:
        step(store)
        assert over_since(store) == expected, name


def test_a_batch_over_and_back_under_leaves_none(store: AccountingStore) -> None:
    store.put_group("climate", quotas={"": Limits(storage_bytes=10 * GIB)})
    store.add_storage_samples([sample("alice", 12, T), sample("alice", 2, T + H)])
    assert over_since(store) is None
    store.add_storage_samples([sample("alice", 11, T + 2 * H), sample("bob", 1, T + 2 * H)])
    assert over_since(store) == T + 2 * H


def test_samples_before_the_group_is_defined_count_once_it_is(store: AccountingStore) -> None:
    assert store.add_storage_samples([sample("alice", 3, T, "ocean")]) == 1  # no group row
    store.put_group("ocean", quotas={"": Limits(storage_bytes=GIB)})
    assert over_since(store, "ocean") == NOW  # its limit is new: the grace starts now


def test_the_quota_check_counts_the_grace_from_the_sample(store: AccountingStore) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    store.put_group("climate", quotas={"": Limits(storage_bytes=10 * GIB)})
    store.add_storage_samples([sample("alice", 12, T)])
    one_day = StoragePolicy(timedelta(days=1), 0.9)
    check = store.check_quota("bob", "climate", Resources.from_cpu(1), one_day)
    assert check.allowed
    assert check.warnings == (
        "Group climate stores 12.0 GiB, over its storage quota of 10 GiB since 2026-04-01 "
        "00:00 UTC. New servers charged to it will be refused from 2026-04-02 00:00 UTC "
        "unless space is freed.",
    )
    assert check.standing["group"]["storage"] == {
        "bytes": 12 * GIB,
        "limit": 10 * GIB,
        "over_since": "2026-04-01T00:00:00.000000Z",
        "refused_from": "2026-04-02T00:00:00.000000Z",
        "state": "grace",
    }
    clock.now = T + timedelta(days=1)
    check = store.check_quota("bob", "climate", Resources.from_cpu(1), one_day)
    assert not check.allowed
    assert check.reason.endswith(
        "(grace of 24 hours ended). Free some space to start servers charged to it; running "
        "servers are not stopped."
    )
    assert check.standing["group"]["storage_over"] is True
    # Freed: the next sample brings it under, and servers start again.
    store.add_storage_samples([sample("alice", 1, T + timedelta(days=1))])
    assert store.check_quota("bob", "climate", Resources.from_cpu(1), one_day).allowed


def test_a_limit_lowered_later_starts_the_grace_then_and_a_restart_keeps_it(
    store: AccountingStore,
) -> None:
    clock = store.clock
    assert isinstance(clock, Clock)
    store.put_group("climate", quotas={"": Limits(storage_bytes=20 * GIB)})
    store.add_storage_samples([sample("alice", 12, T)])
    changed = clock.advance(days=2)
    quota(10)(store)  # days after the sample: the grace counts from the change
    check = store.check_quota("bob", "climate", Resources.from_cpu(1), StoragePolicy())
    assert check.allowed
    assert check.standing["group"]["storage"]["over_since"] == "2026-04-03T04:00:00.000000Z"
    assert check.standing["group"]["storage"]["refused_from"] == "2026-04-06T04:00:00.000000Z"
    clock.advance(hours=5)
    quota(10)(store)  # the service restarted: the same row put again
    assert over_since(store) == changed


def sourced(source: str, gib: float, at: datetime, user: str = "alice") -> StorageSample:
    return StorageSample(user, "climate", int(gib * GIB), at, 1, source)


def stored_bytes(store: AccountingStore) -> int:
    standing = store.check_quota("bob", "climate", Resources.from_cpu(1), StoragePolicy())
    used: int = standing.standing["group"]["storage"]["bytes"]
    return used


def test_a_users_sources_in_a_group_add_up(store: AccountingStore) -> None:
    """/home on one server and /scratch on another, measured apart: both count."""
    store.put_group("climate", quotas={"": Limits(storage_bytes=10 * GIB)})
    store.add_storage_samples([sourced("/home", 6, T)])
    store.add_storage_samples([sourced("/scratch", 5, T + H)])
    assert stored_bytes(store) == 11 * GIB
    assert over_since(store) == T + H
    # Each source's latest: a newer /home figure replaces the old one, not /scratch's.
    store.add_storage_samples([sourced("/home", 2, T + 2 * H)])
    assert stored_bytes(store) == 7 * GIB
    assert over_since(store) is None
    # A late sample of a source (older than its latest) is kept, and changes nothing.
    assert store.add_storage_samples([sourced("/home", 9, T + 0.5 * H)]) == 1
    assert stored_bytes(store) == 7 * GIB
    # One round: several sources with one time, each its own sample.
    assert store.add_storage_samples([sourced("/home", 3, NOW), sourced("/scratch", 8, NOW)]) == 2
    assert stored_bytes(store) == 11 * GIB
    assert store.add_storage_samples([sourced("/home", 3, NOW)]) == 0  # sent again


def test_the_quota_check_reads_only_the_latest_samples(store: AccountingStore) -> None:
    store.put_group("climate", quotas={"": Limits(storage_bytes=10 * GIB)})
    store.add_storage_samples([sourced("/home", 4, T), sourced("/home", 6, T + H, "bob")])
    with store.engine.begin() as connection:
        connection.execute(sa.delete(StorageRow))  # the history gone: the check still counts
    assert stored_bytes(store) == 10 * GIB
    with store.engine.connect() as connection:
        latest = connection.execute(
            sa.select(StorageLatest.user, StorageLatest.source, StorageLatest.file_count)
        ).all()
    assert sorted(latest) == [("alice", "/home", 1), ("bob", "/home", 1)]


def test_a_sample_older_than_the_max_age_stops_counting(database_url: str) -> None:
    """Alice moved to ocean: her last climate figure stops counting after the max age,
    climate's grace ends with it, and going over again later starts a new grace."""
    clock = Clock(NOW)
    store = fresh_store(database_url, clock)
    store.storage_sample_max_age = timedelta(days=7)
    policy = StoragePolicy(timedelta(days=3), 0.9, timedelta(days=7))
    store.put_group("climate", quotas={"": Limits(storage_bytes=10 * GIB)})
    store.put_group("ocean")
    store.add_storage_samples([sample("alice", 12, NOW), sample("bob", 1, NOW)])
    assert over_since(store) == NOW
    for day in range(1, 8):  # from now on alice is measured in ocean, bob in climate
        at = clock.advance(days=1)
        store.add_storage_samples([sample("alice", 12, at, "ocean"), sample("bob", 1, at)])
        check = store.check_quota("bob", "climate", Resources.from_cpu(1), policy)
        assert check.allowed is (day < 3), day  # the grace ends on day 3
    clock.advance(days=2)  # no sample since: alice's climate figure is 9 days old
    assert stored_bytes(store) == GIB
    assert store.check_quota("bob", "climate", Resources.from_cpu(1), policy).allowed
    store.add_storage_samples([sample("carol", 10, clock.now)])
    assert over_since(store) == clock.now  # a new grace, not the old one long ended
    assert store.check_quota("bob", "climate", Resources.from_cpu(1), policy).allowed
    store.engine.dispose()


@pytest.mark.parametrize(("max_age", "counted"), [(timedelta(0), 12), (timedelta(days=1), 0)])
def test_a_max_age_of_zero_counts_samples_for_ever(
    store: AccountingStore, max_age: timedelta, counted: int
) -> None:
    store.storage_sample_max_age = max_age
    store.put_group("climate", quotas={"": Limits(storage_bytes=10 * GIB)})
    store.add_storage_samples([sample("alice", 12, NOW - timedelta(days=400))])
    assert stored_bytes(store) == counted * GIB
    assert (over_since(store) is not None) is bool(counted)


def test_the_writer_process_counts_samples_as_the_service_says(tmp_path: Path) -> None:
    """The writer process's store has no settings: the max age goes with each write."""
    url = f"sqlite:///{tmp_path / 'eohub.sqlite'}"
    engine = fresh_store(url).engine
    store = AccountingStore(
        engine, writer_process=WriterProcess(url), storage_sample_max_age=timedelta(0)
    )
    old = datetime.now(UTC) - timedelta(days=30)

    async def writes() -> None:
        limit = {"": Limits(storage_bytes=GIB)}
        await store.write(store.put_group, "climate", quotas=limit)
        await store.write(store.add_storage_samples, [sample("alice", 2, old)])

    try:
        asyncio.run(writes())
        assert over_since(store) == old
    finally:
        store.close()
        engine.dispose()


def test_file_counts_are_stored_and_read_back(store: AccountingStore) -> None:
    stored = [
        StorageSample("alice", "climate", 10, T, 2**63 - 1),
        StorageSample("bob", "", 20, T + H),
        StorageSample("alice", "climate", 30, T + 2 * H, 7),
    ]
    assert store.add_storage_samples(stored) == 3
    assert list(store.iter_storage(T, NOW)) == stored
    sources = [StorageSample("alice", "climate", 1, NOW, 0, s) for s in ("/home", "pvc:hub/a")]
    assert store.add_storage_samples(sources) == 2
    assert list(store.iter_storage(NOW, NOW + H)) == sources


# -- migration 0006 ------------------------------------------------------------------------

_GROUPS = sa.table(
    "groups", *(sa.column(n) for n in ("name", "display_name", "allocation", "created_at"))
)
_QUOTAS = sa.table("quotas", *(sa.column(n) for n in ("group", "user", "storage_bytes")))
_SAMPLES = sa.table(
    "storage_samples", *(sa.column(n) for n in ("user", "group", "bytes", "measured_at"))
)


def _legacy_storage(connection: sa.Connection) -> None:
    """Groups, quota rows and samples as eohub before 0006 wrote them."""
    naive = T.replace(tzinfo=None)
    for name in ("over", "under", "unlimited"):
        connection.execute(
            _GROUPS.insert().values(
                name=name, display_name="", allocation="month", created_at=naive
            )
        )
    connection.execute(
        _QUOTAS.insert(),
        [
            {"group": "over", "user": "", "storage_bytes": 10},
            {"group": "under", "user": "", "storage_bytes": 100},
            {"group": "unlimited", "user": "*", "storage_bytes": 1},
        ],
    )
    connection.execute(
        _SAMPLES.insert(),
        [
            {"user": u, "group": g, "bytes": b, "measured_at": naive + i * H}
            for i, (u, g, b) in enumerate(
                [
                    ("alice", "over", 50),
                    ("alice", "over", 8),  # alice's latest
                    ("bob", "over", 5),  # over: 13 > 10, newest at T + 2 h
                    ("alice", "under", 50),
                    ("alice", "unlimited", 50),
                    ("alice", "", 500),
                ]
            )
        ],
    )


def test_migration_0006_adds_the_columns_and_starts_the_grace_of_groups_over(
    database_url: str,
) -> None:
    engine = empty_database(database_url)
    config = alembic_config(engine)
    command.upgrade(config, "0005")
    with engine.begin() as connection:
        _legacy_storage(connection)

    command.upgrade(config, "0006")
    columns = {c["name"]: c for c in inspect(engine).get_columns("storage_samples")}
    assert not columns["file_count"]["nullable"]
    assert inspect(engine).get_columns("groups")[-1]["name"] == "storage_over_since"
    store = AccountingStore(engine, clock=Clock(NOW))
    assert {(s.file_count, s.source) for s in store.iter_storage(T, NOW)} == {(0, "")}
    assert {g: over_since(store, g) for g in ("over", "under", "unlimited")} == {
        "over": T + 2 * H,
        "under": None,
        "unlimited": None,
    }
    with engine.connect() as connection:
        latest = connection.execute(
            sa.select(StorageLatest.user, StorageLatest.group, StorageLatest.bytes)
        ).all()
    assert sorted(latest) == [
        ("alice", "", 500),
        ("alice", "over", 8),
        ("alice", "under", 50),
        ("alice", "unlimited", 50),
        ("bob", "over", 5),
    ]
    # One round measured at two sources: one sample again below 0006, their sum.
    two = [
        StorageSample("carol", "over", b, NOW, f, s) for b, f, s in ((3, 1, "/a"), (4, 2, "/b"))
    ]
    assert store.add_storage_samples(two) == 2

    command.downgrade(config, "0005")
    assert "file_count" not in {c["name"] for c in inspect(engine).get_columns("storage_samples")}
    assert "source" not in {c["name"] for c in inspect(engine).get_columns("storage_samples")}
    assert "storage_over_since" not in {c["name"] for c in inspect(engine).get_columns("groups")}
    assert "storage_latest" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT COUNT(*) FROM storage_samples")) == 7
        assert connection.scalar(sa.text("SELECT COUNT(*) FROM quotas")) == 3
        carol = sa.select(_SAMPLES.c.bytes).where(_SAMPLES.c.user == "carol")
        assert connection.execute(carol).scalars().all() == [7]
    command.upgrade(config, "head")
    engine.dispose()
