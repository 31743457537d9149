"""PostgreSQL's batch statements, one by one, on a real PostgreSQL database.

That a whole ingest gives the same ledger as the portable statements is
``test_ingest_equivalence.py``'s to show.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select

from eohub.adapters.accounting_db import ensure_schema
from eohub.adapters.accounting_db.groups import put_group
from eohub.adapters.accounting_db.models import Event, Session, UsageTotal
from eohub.adapters.accounting_db.postgresql_batch import (
    SESSION_COLUMNS,
    close_sessions,
    fill_limits,
    insert_events,
    insert_sessions,
    known_keys,
    sessions_started_at,
    upsert_totals,
)
from eohub.domain.accounting.events import SessionKey
from tests.support.accounting import empty_database

T0 = datetime(2026, 4, 1, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = empty_database(postgres_url)
    ensure_schema(engine)
    with engine.begin() as c:
        put_group(c, "climate", display_name=None, allocation=None, pis=None, now=T0)
    yield engine
    engine.dispose()


def session_row(user: str, started_at: datetime, **changes: Any) -> dict[str, Any]:
    row = {
        "user": user,
        "server": "",
        "group": "climate",
        "profile": "lab",
        "image": "",
        "millicores": 1000,
        "memory_bytes": 2**30,
        "gpus": 0,
        "started_at": started_at,
        "stopped_at": None,
        "end_reason": None,
        "last_seen_at": started_at,
    }
    return {**row, **changes}


def test_sessions_are_inserted_found_by_start_and_closed(engine: Engine) -> None:
    # A start in another zone is stored as the same UTC instant.
    elsewhere = (T0 + HOUR).astimezone(timezone(timedelta(hours=-5)))
    with engine.begin() as c:
        ids = insert_sessions(c, [session_row("ada", T0), session_row("bob", elsewhere)])
        assert set(ids) == {SessionKey("ada", "", T0), SessionKey("bob", "", T0 + HOUR)}
        found = sessions_started_at(c, [T0, T0 + 5 * HOUR]).all()
        assert [(r.user, r.started_at, r.stopped_at) for r in found] == [("ada", T0, None)]
        assert list(found[0]._fields) == list(SESSION_COLUMNS)
        ada = ids[SessionKey("ada", "", T0)]
        end = T0 + 2 * HOUR
        close_sessions(c, {ada: {"stopped_at": end, "end_reason": "stopped", "last_seen_at": end}})
        closed = c.execute(select(Session.stopped_at, Session.end_reason).where(Session.id == ada))
        assert closed.one() == (end, "stopped")


def test_limits_are_filled_only_where_there_are_none(engine: Engine) -> None:
    with engine.begin() as c:
        ids = insert_sessions(
            c,
            [
                session_row("ada", T0, idle_timeout=None, max_duration=None),
                session_row("bob", T0, idle_timeout=60, max_duration=None),
            ],
        )
        ada, bob = ids[SessionKey("ada", "", T0)], ids[SessionKey("bob", "", T0)]
        fill_limits(
            c,
            {
                ada: {"idle_timeout": 3600, "max_duration": 7200},
                bob: {"idle_timeout": 1, "max_duration": 2},
            },
        )
        rows = c.execute(select(Session.user, Session.idle_timeout, Session.max_duration))
        assert sorted(rows) == [("ada", 3600, 7200), ("bob", 60, None)]


def test_event_keys_are_recorded_and_known(engine: Engine) -> None:
    with engine.begin() as c:
        ids = insert_sessions(c, [session_row("ada", T0)])
        session_id = next(iter(ids.values()))
        insert_events(c, [("k1", "start", session_id), ("k2", "stop", session_id)], T0)
        assert known_keys(c, ["k1", "k3", "K2"]) == {"k1"}  # keys compare exactly
        received = c.scalars(select(Event.received_at).where(Event.key == "k2")).one()
        assert received == T0


def test_totals_are_added_to_what_is_there(engine: Engine) -> None:
    def total(user: str, cpu: int) -> dict[str, Any]:
        units = {"cpu_mcore_ms": cpu, "mem_mib_ms": 1, "gpu_ms": 0}
        return {"group": "climate", "user": user, "kind": "day", "period_start": T0, **units}

    with engine.begin() as c:
        upsert_totals(c, [total("bob", 5), total("ada", 10)])
        upsert_totals(c, [total("ada", 7)])
        rows = c.execute(
            select(UsageTotal.user, UsageTotal.cpu_mcore_ms, UsageTotal.mem_mib_ms).order_by(
                UsageTotal.user
            )
        ).all()
    assert [tuple(r) for r in rows] == [("ada", 17, 2), ("bob", 5, 1)]


def test_a_value_json_cannot_hold_is_refused(engine: Engine) -> None:
    with engine.begin() as c, pytest.raises(TypeError, match="cannot write"):
        insert_sessions(c, [session_row("ada", T0, image=object())])
