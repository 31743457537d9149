"""Sessions by time range for exports: counted, bounded by id, streamed as plain values.

On SQLite and on PostgreSQL through each driver: the stream reads the driver's own
values, in chunks (a server-side cursor on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.session_rows import count, id_bounds, stream
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from tests.support.accounting import Clock, fresh_store

T0 = datetime(2026, 4, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
# (user, group, started after T0, stopped after T0 or None)
SESSIONS = [
    ("ada", "climate", 0, 1),
    ("bob", "climate", 1, None),
    ("ada", "ocean", 2, 5),
    ("carl", "climate", 3, 4),
]


@pytest.fixture(params=["sqlite", "psycopg", "psycopg2"])
def store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[AccountingStore]:
    url = (
        sqlite_url
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_urls")[request.param]
    )
    store = fresh_store(url, Clock(T0 + 10 * HOUR))
    for group in ("climate", "ocean"):
        store.put_group(group, allocation=Allocation.parse("month"))
    events = []
    for user, group, started, stopped in SESSIONS:
        at = T0 + started * HOUR
        events.append(start_event_json(user=user, server="", started_at=at, group=group, cpu=1))
        if stopped is not None:
            end = T0 + stopped * HOUR
            events.append(stop_event_json(user=user, server="", started_at=at, stopped_at=end))
    store.ingest(parse_batch({"events": events}))
    yield store
    store.close()
    store.engine.dispose()


@pytest.mark.parametrize(
    ("start", "end", "group", "ended", "users"),
    [
        (0, 10, None, False, ["ada", "bob", "ada", "carl"]),
        (1, 3, None, False, ["bob", "ada"]),  # started in [1h, 3h)
        (0, 10, "climate", False, ["ada", "bob", "carl"]),
        (0, 10, None, True, ["ada", "ada", "carl"]),  # stopped in range, by id
        (4, 5, None, True, ["carl"]),
        (6, 10, None, False, []),
    ],
)
def test_count_bounds_and_stream_agree(
    store: AccountingStore, start: int, end: int, group: str | None, ended: bool, users: list[str]
) -> None:
    window = (T0 + start * HOUR, T0 + end * HOUR)
    with store.engine.connect() as c:
        assert count(c, *window, group, ended) == len(users)
        bounds = id_bounds(c, *window, group, ended)
        rows = list(stream(c, *window, group, ended, bounds, chunk=2))
        unbounded = list(stream(c, *window, group, ended, None, chunk=1))
    assert [r.user for r in rows] == users
    assert rows == unbounded
    if users:
        assert bounds == (rows[0].id, rows[-1].id)
    else:
        assert bounds is None


def test_streamed_values_have_naive_utc_times(store: AccountingStore) -> None:
    with store.engine.connect() as c:
        first, second = list(stream(c, T0, T0 + 2 * HOUR, None, False, None, chunk=10))
    assert (first.user, first.group, first.millicores) == ("ada", "climate", 1000)
    assert first.started_at == T0.replace(tzinfo=None)
    assert first.stopped_at == (T0 + HOUR).replace(tzinfo=None)
    assert second.stopped_at is None
