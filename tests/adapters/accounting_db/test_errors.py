"""database_unavailable: real errors of SQLite, PostgreSQL and MariaDB, sorted into
"retry later" (the API's 503) and everything else (a 500 that a resend cannot fix)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from eohub.adapters.accounting_db.errors import database_unavailable
from eohub.adapters.accounting_db.schema import create_engine_for
from tests.support.process import free_port


def _error(engine: Engine, sql: str) -> DBAPIError:
    with pytest.raises(DBAPIError) as caught, engine.connect() as c:
        c.execute(text(sql))
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:{port}/test",
        "postgresql+psycopg2://postgres@127.0.0.1:{port}/test",
        "mysql+pymysql://root@127.0.0.1:{port}/test",
    ],
    ids=["postgresql+psycopg", "postgresql+psycopg2", "mariadb"],
)
def test_a_database_nobody_answers_is_unavailable(url: str) -> None:
    engine = create_engine(url.format(port=free_port()))
    assert database_unavailable(_error(engine, "SELECT 1"))
    engine.dispose()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT CAST(2147483647 AS INTEGER) + CAST(1 AS INTEGER)",  # out of range
        "SELECT * FROM no_such_table",
        "SELEC 1",  # a syntax error: a bug, never "unavailable"
    ],
)
def test_errors_a_resend_cannot_fix_are_not_unavailable(database_url: str, sql: str) -> None:
    engine = create_engine_for(database_url)
    if "2147483647" in sql:  # the same overflow, as each dialect has it
        sql = {
            "sqlite": "SELECT abs(-9223372036854775807 - 1)",
            "mariadb": "SELECT 18446744073709551615 + 1",  # error 1690
            "mysql": "SELECT 18446744073709551615 + 1",
        }.get(engine.dialect.name, sql)
    error = _error(engine, sql)
    assert not database_unavailable(error), repr(error.orig)
    engine.dispose()


def test_mariadb_out_of_range_insert_is_not_unavailable(mariadb_url: str) -> None:
    engine = create_engine_for(mariadb_url)
    with engine.connect() as c:
        c.execute(text("CREATE TEMPORARY TABLE t (x INT)"))
        with pytest.raises(DBAPIError) as caught:
            c.execute(text("INSERT INTO t VALUES (99999999999)"))  # error 1264
    assert caught.value.orig.args[0] == 1264
    assert not database_unavailable(caught.value)
    engine.dispose()


def test_postgresql_connection_killed_mid_session_is_unavailable(postgres_url: str) -> None:
    engine = create_engine_for(postgres_url)
    with engine.connect() as victim, engine.connect() as killer:
        pid = victim.execute(text("SELECT pg_backend_pid()")).scalar_one()
        killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as caught:
            victim.execute(text("SELECT 1"))
    assert database_unavailable(caught.value)
    engine.dispose()


def test_sqlite_locked_by_another_writer_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite"
    holder = sqlite3.connect(path)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.commit()
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine_for(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    try:
        error = _error(engine, "INSERT INTO t VALUES (1)")
    finally:
        holder.rollback()
    assert database_unavailable(error)
    engine.dispose()
    holder.close()
