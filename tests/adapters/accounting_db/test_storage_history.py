"""Storage over time: each (user, group, source)'s latest sample carried forward, summed
over the sources and dropped once older than the max age, the same on every database.

The store's answers are checked against a plain reading of the samples (the latest of
each triple at or before each instant, if it is not older than the max age) on SQLite,
PostgreSQL and MariaDB, with samples exactly at the instants, before the range, first
seen inside it, charged to no group, several sources measured in one round (the same
time) and a source left out of a round, triples that stop being measured, and names and
sources that MariaDB's default collations would merge.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.storage import MaxAge
from eohub.adapters.accounting_db.storage_history import (
    MAX_POINTS,
    Held,
    Holding,
    Triple,
    default_step,
    latest_holdings,
    series_points,
    total_series,
)
from eohub.domain.accounting.session_record import StorageSample
from tests.support.accounting import Clock, three_stores

NOW = datetime(2026, 4, 20, 15, 30, tzinfo=UTC)
START = datetime(2026, 4, 1, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
WEEK = 7 * DAY
HOME, SCRATCH = "/export/home", "/export/scratch"
# Each (user, group) and the sources it is measured at. "Ada" and "ada " are other users
# than "ada", "/Export/home" another source than HOME (MariaDB's default collations
# merge them); "" is no group, or a sampler that named no source.
MEASURED: dict[tuple[str, str], tuple[str, ...]] = {
    ("ada", "climate"): (HOME, SCRATCH, "/Export/home"),
    ("ada", "ocean"): ("",),
    ("ada", ""): (HOME,),
    ("Ada", "climate"): (HOME,),
    ("ada ", "climate"): (HOME, "pvc:hub/claim-ada"),
    ("bob", "climate"): ("pvc:hub/claim-bob",),
    ("o'brien", "ocean"): ("", SCRATCH),
}
# These stop being measured (the user moved, the folder was deleted) on this day.
STOPPED = {("ada", "ocean"): START + 3 * DAY, ("bob", "climate"): START + 9 * DAY}
TRIPLES = [(user, group, src) for (user, group), srcs in MEASURED.items() for src in srcs]


def samples() -> list[StorageSample]:
    """Rounds from before the range to now, some exactly on the days' midnights: a
    round measures each source of a (user, group) at one time, sometimes but one."""
    rng = random.Random(18)
    made = []
    for (user, group), sources in MEASURED.items():
        # Some pairs first show inside the range; those that stop, before it.
        first = START - DAY * rng.randint(1 if (user, group) in STOPPED else -10, 12)
        t = first + timedelta(minutes=rng.choice([0, 0, 17, 59]))
        while t <= min(NOW, STOPPED.get((user, group), NOW)):
            measured = sources if rng.random() < 0.8 else rng.sample(sources, 1)
            made += [
                StorageSample(
                    user, group, rng.randint(0, 2**40), t, rng.randint(0, 10**6), source=src
                )
                for src in measured
            ]
            t += rng.choice([HOUR, 5 * HOUR, DAY, 3 * DAY])
    return made


SAMPLES = samples()


def wanted(users: set[str] | None, groups: set[str] | None) -> list[Triple]:
    return [
        t
        for t in TRIPLES
        if (users is None or t[0] in users) and (groups is None or t[1] in groups)
    ]


def latest_at(triple: Triple, at: datetime, max_age: MaxAge) -> StorageSample | None:
    """The triple's latest sample at or before ``at``, if it still counts then."""
    before = [s for s in SAMPLES if (s.user, s.group, s.source) == triple and s.measured_at <= at]
    latest = max(before, key=lambda s: s.measured_at, default=None)
    oldest = at - max_age if max_age else None
    return None if latest is None or (oldest and latest.measured_at < oldest) else latest


def expected(
    points: list[datetime],
    users: set[str] | None = None,
    groups: set[str] | None = None,
    max_age: MaxAge = None,
) -> Held:
    """The bytes of each triple's latest sample that counts at each point, read the
    plain way; the triples counted at none of them are left out."""
    found: Held = {}
    for triple in wanted(users, groups):
        latest = [latest_at(triple, p, max_age) for p in points]
        if any(latest):
            found[triple] = [s.bytes if s else 0 for s in latest]
    return found


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, mariadb_url: str
) -> Iterator[dict[str, AccountingStore]]:
    with three_stores(
        tmp_path_factory.mktemp("storage"), postgres_url, mariadb_url, Clock(NOW)
    ) as made:
        for store in made.values():
            assert store.add_storage_samples(SAMPLES) == len(SAMPLES)
        yield made


def test_the_samples_have_rounds_of_several_sources_and_sources_left_out() -> None:
    """The cases the tests below rely on are in the samples."""
    rounds: dict[tuple[str, str, datetime], int] = {}
    for s in SAMPLES:
        key = (s.user, s.group, s.measured_at)
        rounds[key] = rounds.get(key, 0) + 1
    counts = set(rounds.values())
    assert {1, 2, 3} <= counts
    assert len({s.source for s in SAMPLES}) == 6


# -- the instants a series is read at --------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "step", "now", "count", "last"),
    [
        # A range up to now ends with now, whatever the step.
        (START, NOW + DAY, DAY, NOW, 21, NOW),
        (START, START + 3 * DAY, DAY, NOW, 3, START + 2 * DAY),  # a past range: no "now"
        (START, START + DAY, DAY, START, 1, START),  # now is the start: one point
        (START + DAY, START + 2 * DAY, HOUR, START, 0, None),  # all in the future
        (START, START + 2 * DAY, DAY, START + 2 * DAY, 2, START + DAY),  # end is exclusive
    ],
)
def test_series_points(
    start: datetime,
    end: datetime,
    step: timedelta,
    now: datetime,
    count: int,
    last: datetime | None,
) -> None:
    points = series_points(start, end, step, now)
    assert len(points) == count
    assert (points[-1] if points else None) == last
    assert points == sorted(set(points))
    assert all(start <= p < end and p <= now for p in points)


def test_a_step_must_be_positive() -> None:
    with pytest.raises(ValueError, match="step must be positive"):
        series_points(START, NOW, timedelta(0), NOW)


@pytest.mark.parametrize(
    ("span", "step"),
    [
        (timedelta(hours=12), HOUR),
        (DAY * 4, HOUR),
        (DAY * 5, 6 * HOUR),
        (DAY * 31, DAY),  # the usage page's last 31 days
        (DAY * 366, 7 * DAY),  # its last 12 months
        (DAY * 365 * 5, 30 * DAY),
        (DAY * 365 * 200, 365 * DAY),  # never more finely than a year can give
    ],
)
def test_the_default_step_keeps_a_range_to_about_a_hundred_points(
    span: timedelta, step: timedelta
) -> None:
    assert default_step(START, START + span) == step


# -- the same answers on every database ---------------------------------------------------

NEVER = timedelta(0)  # samples never stop counting
AGES = [NEVER, 2 * DAY, WEEK]


@pytest.mark.parametrize("max_age", AGES)
@pytest.mark.parametrize(
    ("users", "groups"),
    [
        (None, None),
        ({"ada"}, None),
        (None, {"climate"}),
        ({"ada"}, {"climate", ""}),
        ({"nobody"}, None),
    ],
)
def test_holdings_over_time_carry_each_latest_sample_forward_per_source(
    stores: dict[str, AccountingStore],
    users: set[str] | None,
    groups: set[str] | None,
    max_age: MaxAge,
) -> None:
    points = series_points(START, NOW + DAY, 6 * HOUR, NOW)
    want = expected(points, users, groups, max_age)
    for name, store in stores.items():
        assert store.storage_holdings(points, users, groups, sample_max_age=max_age) == want, name


def test_every_source_of_a_round_counts_and_a_source_left_out_keeps_its_last(
    stores: dict[str, AccountingStore],
) -> None:
    """ada's climate space is the sum of her three sources' latest samples, though they
    share their times: one source does not overwrite another."""
    points = series_points(START, NOW + DAY, HOUR, NOW)[-MAX_POINTS:]
    ada = [t for t in TRIPLES if t[:2] == ("ada", "climate")]
    sums = [sum(s.bytes for t in ada if (s := latest_at(t, p, None))) for p in points]
    for name, store in stores.items():
        held = store.storage_holdings(points, {"ada"}, {"climate"}, sample_max_age=NEVER)
        assert set(held) == set(ada), name
        assert total_series(held.values(), len(points)) == sums, name


def test_a_sample_older_than_the_max_age_stops_counting(
    stores: dict[str, AccountingStore],
) -> None:
    """ada's ocean space was last measured on day 3: it counts for two days after, then
    the series drops to 0 and the latest figures leave it out."""
    last = max(s.measured_at for s in SAMPLES if (s.user, s.group) == ("ada", "ocean"))
    points = [last - HOUR, last, last + 2 * DAY, last + 2 * DAY + timedelta(microseconds=1)]
    figure = latest_at(("ada", "ocean", ""), last, None)
    assert figure is not None
    for name, store in stores.items():
        held = store.storage_holdings(points, {"ada"}, {"ocean"}, sample_max_age=2 * DAY)
        assert held[("ada", "ocean", "")][1:] == [figure.bytes, figure.bytes, 0], name
        assert (
            store.storage_holdings(points[-1:], {"ada"}, {"ocean"}, sample_max_age=2 * DAY) == {}
        )
        assert store.latest_storage(groups={"ocean"}, users={"ada"}, sample_max_age=WEEK) == []
        assert (
            len(store.latest_storage(groups={"ocean"}, users={"ada"}, sample_max_age=NEVER)) == 1
        )


def test_the_first_point_counts_samples_taken_exactly_then(
    stores: dict[str, AccountingStore],
) -> None:
    at = next(s.measured_at for s in SAMPLES if s.measured_at > START)
    points = [at - timedelta(microseconds=1), at, at + timedelta(microseconds=1)]
    for name, store in stores.items():
        for i in range(len(points)):
            assert store.storage_holdings(points[i:], sample_max_age=NEVER) == expected(
                points[i:]
            ), name


@pytest.mark.parametrize("max_age", AGES)
def test_the_latest_figures_are_storage_latests_and_agree_with_the_samples(
    stores: dict[str, AccountingStore], max_age: MaxAge
) -> None:
    """The figures the pages list (read from ``storage_latest``, as the quota check) are
    each triple's latest sample that counts now, read from the samples."""
    want = [
        Holding(t[0], t[1], t[2], s.bytes, s.file_count, s.measured_at)
        for t in sorted(TRIPLES)
        if (s := latest_at(t, NOW, max_age))
    ]
    assert [h.key for h in want if h.group == "climate"] != []
    for name, store in stores.items():
        assert store.latest_storage(sample_max_age=max_age) == want, name
        with store.engine.connect() as connection:
            assert latest_holdings(connection, at=NOW, max_age=max_age) == want, name
        climate = store.latest_storage(groups={"climate"}, sample_max_age=max_age)
        assert climate == [h for h in want if h.group == "climate"], name
        mine = store.latest_storage(users={"ada "}, sample_max_age=max_age)
        assert mine == [h for h in want if h.user == "ada "], name
        assert store.latest_storage(users={"nobody"}, sample_max_age=max_age) == [], name


def test_a_users_and_a_groups_series_are_the_sums_of_their_triples(
    stores: dict[str, AccountingStore],
) -> None:
    points = series_points(START, NOW + DAY, DAY, NOW)
    ada = expected(points, {"ada"}, None, WEEK)
    climate = expected(points, None, {"climate"}, WEEK)
    for name, store in stores.items():
        by_user = store.storage_series(
            user="ada", start=START, end=NOW + DAY, step=DAY, sample_max_age=WEEK
        )
        assert [t for t, _ in by_user] == points, name
        assert [b for _, b in by_user] == total_series(ada.values(), len(points)), name
        by_group = store.storage_series(
            group="climate", start=START, end=NOW + DAY, step=DAY, sample_max_age=WEEK
        )
        assert [b for _, b in by_group] == total_series(climate.values(), len(points)), name


def test_a_series_reads_each_step_in_one_grouped_query(
    stores: dict[str, AccountingStore],
) -> None:
    """One query for the first instant and one per step after it, each grouped by
    triple in SQL: Python never reads every sample of the range."""
    store = stores["sqlite"]
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.lower())

    points = series_points(START, NOW + DAY, DAY, NOW)
    event.listen(store.engine, "before_cursor_execute", record)
    try:
        held = store.storage_holdings(points)  # the store's own max age
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert len(statements) == len(points)
    assert all("max(" in s and "group by" in s for s in statements)
    assert store.storage_sample_max_age == WEEK
    assert held == expected(points, max_age=WEEK)


def test_total_series_sums_point_by_point() -> None:
    assert total_series([[1, 2, 3], [10, 0, 30]], 3) == [11, 2, 33]
    assert total_series([], 2) == [0, 0]
    with pytest.raises(ValueError, match="zip"):
        total_series([[1, 2]], 3)


def test_points_must_ascend_and_be_few(stores: dict[str, AccountingStore]) -> None:
    store = stores["sqlite"]
    with pytest.raises(ValueError, match="ascending"):
        store.storage_holdings([NOW, START], sample_max_age=NEVER)
    with pytest.raises(ValueError, match=str(MAX_POINTS)):
        store.storage_holdings(
            [START + i * HOUR for i in range(MAX_POINTS + 1)], sample_max_age=NEVER
        )
    assert store.storage_holdings([], sample_max_age=NEVER) == {}
