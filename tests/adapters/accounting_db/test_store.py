"""The accounting store on SQLite, PostgreSQL and MariaDB: ingest, totals and quotas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import func, select

from eohub.adapters.accounting_db.models import Event, PendingStop, Session, UsageTotal
from eohub.domain.accounting.events import (
    EventError,
    parse_batch,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.ledger import GIB, Resources
from eohub.domain.accounting.periods import Allocation, PeriodKind
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.accounting.storage_quota import StoragePolicy
from tests.support.accounting import Clock, fresh_store

T0 = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)
NO_GRACE = StoragePolicy(timedelta(0))
NO_STORAGE = {"bytes": 0, "limit": None, "over_since": None, "refused_from": None, "state": "ok"}


def start(user: str = "alice", server: str = "", at: datetime = T0, group: str = "climate", **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("cpu", 0.25)
    return start_event_json(user=user, server=server, started_at=at, group=group, **kw)


def stop(user: str = "alice", server: str = "", at: datetime = T0, end: datetime = T0, **kw):  # type: ignore[no-untyped-def]
    return stop_event_json(user=user, server=server, started_at=at, stopped_at=end, **kw)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 4, 2, tzinfo=UTC))


@pytest.fixture
def store(database_url: str, clock: Clock):  # type: ignore[no-untyped-def]
    s = fresh_store(database_url, clock)
    s.put_group("climate", allocation=Allocation.parse("month"), pis={"carol"})
    yield s
    s.engine.dispose()


def test_session_across_month_boundary_is_split_exactly(store) -> None:  # type: ignore[no-untyped-def]
    end = T0 + timedelta(hours=2)  # 23:00 Mar 31 -> 01:00 Apr 1
    result = store.ingest(
        parse_batch({"events": [start(memory_bytes=2 * GIB, gpus=1), stop(end=end)]})
    )
    assert (result.accepted, result.duplicates) == (2, 0)
    march = store.usage(
        PeriodKind.MONTH, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    )
    assert [(r.period_start.month, r.usage.core_hours) for r in march] == [
        (3, Fraction(1, 4)),
        (4, Fraction(1, 4)),
    ]
    assert march[0].usage.memory_gib_hours == 2
    assert march[1].usage.gpu_hours == 1
    year = store.usage(
        PeriodKind.YEAR, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert year[0].usage.core_hours == Fraction(1, 2)


def test_replayed_events_change_nothing(store) -> None:  # type: ignore[no-untyped-def]
    batch = parse_batch({"events": [start(), stop(end=T0 + timedelta(hours=1))]})
    store.ingest(batch)
    again = store.ingest(batch)
    assert (again.accepted, again.duplicates) == (0, 2)
    with store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(Session)).scalar_one() == 1
        assert c.execute(select(func.count()).select_from(Event)).scalar_one() == 2
    usage = store.usage(PeriodKind.MONTH, T0 - timedelta(days=40), T0 + timedelta(days=40))
    assert usage[0].usage.core_hours == Fraction(1, 4)


def test_bad_batch_writes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    good = start(user="bob")
    unknown_group = start(user="dave", group="nope")
    early_stop = stop(user="erin", end=T0 + timedelta(hours=1))  # held, unless refused
    with pytest.raises(EventError) as e:
        store.ingest(parse_batch({"events": [good, unknown_group, early_stop]}))
    assert set(e.value.errors) == {"events[1].group"}
    with store.engine.connect() as c:
        for model in (Session, UsageTotal, PendingStop, Event):
            assert c.execute(select(func.count()).select_from(model)).scalar_one() == 0


def test_stop_before_start_is_held_and_charged_once(store) -> None:  # type: ignore[no-untyped-def]
    end = T0 + timedelta(hours=2)
    held = store.ingest(parse_batch(stop(end=end)))
    assert (held.accepted, held.duplicates, held.held) == (1, 0, 1)
    assert store.sessions() == []  # nothing to charge before the start says what ran
    again = store.ingest(parse_batch(stop(end=end)))  # the outbox resends it
    assert (again.accepted, again.duplicates, again.held) == (0, 1, 0)
    paired = store.ingest(parse_batch(start(cpu=1)))
    assert (paired.accepted, paired.held) == (1, 0)
    [session] = store.sessions()
    assert (session.stopped_at, session.end_reason) == (end, "stopped")
    assert store.sessions(open_only=True) == []
    late = store.ingest(parse_batch({"events": [start(cpu=1), stop(end=end)]}))
    assert (late.accepted, late.duplicates) == (0, 2)
    with store.engine.connect() as c:
        assert c.execute(select(func.count()).select_from(PendingStop)).scalar_one() == 0
        assert c.execute(select(func.count()).select_from(Event)).scalar_one() == 2
    usage = store.usage(
        PeriodKind.YEAR, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert usage[0].usage.core_hours == 2


def test_open_sessions_count_up_to_now(store, clock) -> None:  # type: ignore[no-untyped-def]
    store.ingest(parse_batch(start(at=clock.now - timedelta(hours=4), cpu=2)))
    rows = store.usage(
        PeriodKind.DAY, clock.now - timedelta(days=1), clock.now + timedelta(days=1)
    )
    assert sum(r.usage.core_hours for r in rows) == 8
    clock.advance(hours=1)
    rows = store.usage(
        PeriodKind.DAY, clock.now - timedelta(days=1), clock.now + timedelta(days=1)
    )
    assert sum(r.usage.core_hours for r in rows) == 10


def test_quota_check_denies_a_spent_budget_with_reason(store, clock) -> None:  # type: ignore[no-untyped-def]
    store.put_group("climate", quotas={"": Limits(core_hours=Fraction(10))})
    at = clock.now - timedelta(hours=30)
    store.ingest(
        parse_batch(
            {"events": [start(at=at, cpu=0.25), stop(at=at, end=at + timedelta(hours=24))]}
        )
    )
    ok = store.check_quota("alice", "climate", Resources.from_cpu(1))
    # Only the 18 h that fall in April count against April's budget: 4.5 core-hours.
    assert ok.allowed
    assert ok.budget_left["core_hours"] == 5.5
    store.ingest(parse_batch(start(user="bob", at=clock.now - timedelta(hours=4), cpu=2)))
    denied = store.check_quota("alice", "climate", Resources.from_cpu(1))
    assert not denied.allowed
    assert "core-hours budget of group climate is spent" in denied.reason
    assert denied.budget_left["core_hours"] == 0


def test_concurrent_limits_per_group_and_member(store, clock) -> None:  # type: ignore[no-untyped-def]
    store.put_group(
        "climate",
        quotas={"": Limits(max_cores=Fraction(3)), "*": Limits(max_servers=1)},
    )
    store.ingest(parse_batch(start(user="bob", at=clock.now, cpu=2)))
    assert store.check_quota("alice", "climate", Resources.from_cpu(1)).allowed
    decision = store.check_quota("alice", "climate", Resources.from_cpu(2))
    assert not decision.allowed
    assert "at most 3 cores" in decision.reason
    second = store.check_quota("bob", "climate", Resources.from_cpu(0.5))
    assert not second.allowed
    assert "1 of at most 1 server at once" in second.reason


def test_the_quota_answer_carries_each_rows_room_alike_on_every_database(store, clock) -> None:  # type: ignore[no-untyped-def]
    store.put_group(
        "climate",
        display_name="Climate modelling",
        quotas={
            "": Limits(max_cores=Fraction(3), core_hours=Fraction(10)),
            "*": Limits(max_servers=2),
        },
    )
    at = clock.now - timedelta(hours=2)
    store.ingest(parse_batch(start(user="bob", at=at, cpu=2, memory_bytes=3 * GIB, gpus=1)))
    store.ingest(parse_batch(start(user="alice", server="a", at=at, cpu=0.5)))
    standing = store.check_quota("alice", "climate", Resources.from_cpu(0.5)).standing
    assert standing == {
        "group": {
            "servers_left": None,
            "millicores_left": 500,
            "core_hours_left": 5.0,
            "gpu_hours_left": None,
            "memory_gib_hours_left": None,
            "storage_over": False,
            "storage": NO_STORAGE,
            "running": {"servers": 2, "millicores": 2500, "memory_bytes": 3 * GIB, "gpus": 1},
        },
        "member": {
            "servers_left": 1,
            "millicores_left": None,
            "core_hours_left": None,
            "gpu_hours_left": None,
            "memory_gib_hours_left": None,
            "storage_over": False,
            "storage": NO_STORAGE,
            "running": {"servers": 1, "millicores": 500, "memory_bytes": 0, "gpus": 0},
        },
        # What the budgets left are out of, and the name the form shows for the group.
        "budget_limit": {"core_hours": 10.0, "gpu_hours": None, "memory_gib_hours": None},
        "display_name": "Climate modelling",
    }
    assert store.check_quota("erin", "ghosts", Resources.from_cpu(1)).standing == {}


def test_rolling_allocation_sums_daily_buckets(store, clock) -> None:  # type: ignore[no-untyped-def]
    store.put_group(
        "climate",
        allocation=Allocation.parse("rolling:7"),
        quotas={"": Limits(core_hours=Fraction(100))},
    )
    old = clock.now - timedelta(days=10)
    recent = clock.now - timedelta(days=2)
    store.ingest(
        parse_batch(
            {
                "events": [
                    start(at=old, cpu=1),
                    stop(at=old, end=old + timedelta(hours=5)),
                    start(at=recent, cpu=1),
                    stop(at=recent, end=recent + timedelta(hours=3)),
                ]
            }
        )
    )
    decision = store.check_quota("alice", "climate", Resources.from_cpu(1))
    assert decision.budget_left["core_hours"] == 97.0


def test_unknown_group_is_denied_in_words(store) -> None:  # type: ignore[no-untyped-def]
    decision = store.check_quota("alice", "ghosts", Resources.from_cpu(1))
    assert not decision.allowed
    assert "'ghosts' has no allocation" in decision.reason


def test_storage_over_quota_denies_once_the_grace_ends(store, clock) -> None:  # type: ignore[no-untyped-def]
    store.put_group("climate", quotas={"": Limits(storage_bytes=10 * GIB)})
    store.add_storage_samples(
        [
            StorageSample("alice", "climate", 6 * GIB, clock.now - timedelta(days=2)),
            StorageSample("alice", "climate", 4 * GIB, clock.now - timedelta(days=1)),
            StorageSample("bob", "climate", 5 * GIB, clock.now - timedelta(days=1)),
        ]
    )
    assert store.check_quota("alice", "climate", Resources.from_cpu(1)).allowed
    store.add_storage_samples([StorageSample("bob", "climate", 7 * GIB, clock.now)])
    # Over: allowed, with a warning, until the grace (3 days by default) ends.
    decision = store.check_quota("alice", "climate", Resources.from_cpu(1))
    assert decision.allowed
    assert decision.warnings == (
        "Group climate stores 11.0 GiB, over its storage quota of 10 GiB since "
        f"{clock.now:%Y-%m-%d %H:%M} UTC. New servers charged to it will be refused from "
        f"{clock.now + timedelta(days=3):%Y-%m-%d %H:%M} UTC unless space is freed.",
    )
    assert not store.check_quota("alice", "climate", Resources.from_cpu(1), NO_GRACE).allowed
    clock.advance(days=3)
    decision = store.check_quota("alice", "climate", Resources.from_cpu(1))
    assert not decision.allowed
    assert "over its storage quota of 10 GiB since" in decision.reason
    assert "(grace of 3 days ended)" in decision.reason


def test_reconciles_close_is_replaced_by_the_real_stop(store, clock) -> None:  # type: ignore[no-untyped-def]
    store.ingest(parse_batch(start(at=T0, cpu=1)))
    ((record, _),) = store.open_sessions()
    assert store.close_session(record.id, T0 + timedelta(hours=1), "reconcile")
    result = store.ingest(parse_batch(stop(end=T0 + timedelta(hours=3))))
    assert result.corrected == 1
    rows = store.usage(
        PeriodKind.YEAR, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert rows[0].usage.core_hours == 3


def test_sessions_page_newest_first(store) -> None:  # type: ignore[no-untyped-def]
    store.ingest(
        parse_batch(
            {"events": [start(user=f"u{i}", at=T0 + timedelta(minutes=i)) for i in range(5)]}
        )
    )
    first = store.sessions(limit=2)
    second = store.sessions(limit=2, before_id=first[-1].id)
    assert [s.user for s in first + second] == ["u4", "u3", "u2", "u1"]
    assert [s.user for s in store.sessions(users={"u0"})] == ["u0"]


def _events_strategy():  # type: ignore[no-untyped-def]
    from hypothesis import strategies as st

    session = st.tuples(
        st.sampled_from(["alice", "bob", "carol"]),
        st.sampled_from(["", "gpu"]),
        st.integers(0, 24 * 90),  # start, hours after T0
        st.integers(0, 24 * 40),  # length in hours
        st.integers(1, 8000),  # millicores
    )
    return st.lists(session, min_size=1, max_size=12, unique_by=lambda s: (s[0], s[1], s[2]))


def test_replays_are_idempotent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from hypothesis import given, settings

    counter = iter(range(10_000))

    @settings(max_examples=25, deadline=None)
    @given(_events_strategy(), st_random())
    def check(sessions, rnd) -> None:  # type: ignore[no-untyped-def]
        store = fresh_store(f"sqlite:///{tmp_path / f'r{next(counter)}.sqlite'}")
        store.put_group("climate")
        events = []
        for user, server, start_h, length_h, mcores in sessions:
            at = T0 + timedelta(hours=start_h)
            events.append(start(user=user, server=server, at=at, cpu=mcores / 1000))
            events.append(
                stop(user=user, server=server, at=at, end=at + timedelta(hours=length_h))
            )
        store.ingest(parse_batch({"events": events}))
        first = _totals(store)
        replay = events[:]
        rnd.shuffle(replay)
        # Replays in any order, and in pieces, change nothing.
        store.ingest(parse_batch({"events": replay}))
        for event in replay[: len(replay) // 2]:
            store.ingest(parse_batch(event))
        assert _totals(store) == first
        store.engine.dispose()

    check()


def st_random():  # type: ignore[no-untyped-def]
    from hypothesis import strategies as st

    return st.randoms(use_true_random=False)


def _totals(store) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    with store.engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                select(UsageTotal.__table__).order_by(*UsageTotal.__table__.primary_key)
            )
        ]
