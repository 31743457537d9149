"""The accounting tables: their names, UTC times, and exact names on every dialect.

How names compare on real MariaDB and PostgreSQL is in ``test_names.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

from eohub.adapters.accounting_db.models import (
    MARIADB_NAME_COLLATION,
    MYSQL_NAME_COLLATION,
    Base,
    ExactString,
    UTCDateTime,
    name_collation,
    stored_time,
)

NAIVE = datetime(2026, 4, 1, 10, 0, 0, 123456)


def test_the_tables() -> None:
    assert set(Base.metadata.tables) == {
        "groups",
        "group_pis",
        "quotas",
        "sessions",
        "events",
        "pending_stops",
        "usage_totals",
        "storage_samples",
        "storage_latest",
    }


@pytest.mark.parametrize(
    "value",
    [
        NAIVE.replace(tzinfo=UTC),
        (NAIVE + timedelta(hours=2)).replace(tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_times_are_stored_as_naive_utc_and_read_back_aware(value: datetime) -> None:
    column = UTCDateTime()
    stored = column.process_bind_param(value, sqlite.dialect())
    assert stored == NAIVE
    assert column.process_result_value(stored, sqlite.dialect()) == NAIVE.replace(tzinfo=UTC)
    assert column.process_bind_param(None, sqlite.dialect()) is None


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        stored_time(NAIVE)


def test_mariadb_keeps_microseconds() -> None:
    dialect = mysql.dialect()
    assert UTCDateTime().load_dialect_impl(dialect).fsp == 6


def test_names_are_binary_utf8mb4_on_mysql_and_mariadb_only() -> None:
    mariadb = mysql.dialect()
    mariadb.is_mariadb = True
    assert name_collation(mariadb) == MARIADB_NAME_COLLATION
    assert name_collation(mysql.dialect()) == MYSQL_NAME_COLLATION
    column = ExactString(255).load_dialect_impl(mariadb)
    assert (column.length, column.charset, column.collation) == (
        255,
        "utf8mb4",
        MARIADB_NAME_COLLATION,
    )
    plain = ExactString(64).load_dialect_impl(postgresql.dialect())
    assert (plain.length, getattr(plain, "collation", None)) == (64, None)
