"""Engines and the packaged migrations: schema checks, URL parsing, charsets, log-safe URLs."""

from __future__ import annotations

import re

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from eohub.adapters.accounting_db import (
    OutdatedSchemaError,
    create_engine_for,
    ensure_schema,
    upgrade,
)
from eohub.adapters.accounting_db.schema import (
    BAD_URL,
    POOL_SIZE,
    alembic_config,
    current_revision,
    head_revision,
    loggable_url,
    parse_db_url,
    with_utf8mb4,
)
from tests.support.accounting import empty_database


def test_schema_matches_models_after_upgrade(database_url: str) -> None:
    engine = empty_database(database_url)
    upgrade(engine)
    command.check(alembic_config(engine))  # raises if autogenerate finds differences
    engine.dispose()


def test_outdated_schema_names_the_upgrade_command(database_url: str) -> None:
    engine = empty_database(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('0000')"))
    with pytest.raises(OutdatedSchemaError, match="eohub-accounting upgrade-db"):
        ensure_schema(engine)
    engine.dispose()


def test_fresh_database_is_created_and_reopened(database_url: str) -> None:
    engine = empty_database(database_url)
    ensure_schema(engine)
    ensure_schema(engine)  # current: nothing to do
    engine.dispose()


def test_engine_url_without_tables_reports_no_revision(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url)
    ensure_schema(engine)
    with engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql+pymysql://u:p@db/acct", "mysql+pymysql://u:p@db/acct?charset=utf8mb4"),
        (
            "mysql+pymysql://u:p@db/acct?ssl_ca=/ca.pem",
            "mysql+pymysql://u:p@db/acct?charset=utf8mb4&ssl_ca=%2Fca.pem",
        ),
        (
            "mysql+pymysql://u:p@db/acct?charset=utf8mb4",
            "mysql+pymysql://u:p@db/acct?charset=utf8mb4",
        ),
        ("mysql+mysqldb://u@db/acct", "mysql+mysqldb://u@db/acct?charset=utf8mb4"),
        ("mariadb+pymysql://u@db/acct", "mariadb+pymysql://u@db/acct?charset=utf8mb4"),
        ("postgresql+psycopg://u:p@db/acct", "postgresql+psycopg://u:p@db/acct"),
        ("sqlite:////srv/acct.sqlite", "sqlite:////srv/acct.sqlite"),
    ],
)
def test_mysql_urls_get_utf8mb4_and_keep_the_rest(url: str, expected: str) -> None:
    from sqlalchemy.engine import make_url

    assert with_utf8mb4(make_url(url)).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize("charset", ["utf8", "utf8mb3", "latin1"])
def test_a_narrower_connection_charset_is_refused_clearly(charset: str) -> None:
    with pytest.raises(ValueError, match=f"charset={charset}.*use charset=utf8mb4"):
        create_engine_for(f"mysql+pymysql://u:secret@db/acct?charset={charset}")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://acct:p@ss@db/accounting",  # an unencoded @ in the password
        "postgresql://acct:pa:ss@db:notaport/accounting",
        "not a url",
    ],
)
def test_a_malformed_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError, match=re.escape(BAD_URL)) as refused:
        parse_db_url(url)
    assert str(refused.value) == BAD_URL
    assert loggable_url(url) == "(a database URL that does not parse)"


@pytest.mark.parametrize(
    ("url", "logged"),
    [
        ("sqlite:////srv/hub/acct.sqlite", "sqlite:////srv/hub/acct.sqlite"),
        (
            "postgresql+psycopg://acct:s3cret@db/accounting",
            "postgresql+psycopg://acct:***@db/accounting",
        ),
        (
            "postgresql+psycopg://acct@db/accounting?sslpassword=s3cret&sslmode=require",
            "postgresql+psycopg://acct@db/accounting?sslmode=require&sslpassword=%2A%2A%2A",
        ),
    ],
)
def test_loggable_url_masks_passwords_and_secret_query_values(url: str, logged: str) -> None:
    assert loggable_url(url) == logged
    assert loggable_url(make_url(url)) == logged


def test_a_sqlite_file_engine_is_pooled_for_the_store_threads(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url)
    try:
        assert engine.pool.size() == POOL_SIZE  # type: ignore[attr-defined]
        with engine.connect() as c:
            assert c.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_fresh_database_ends_at_the_head_revision(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url)
    try:
        assert current_revision(engine) is None
        ensure_schema(engine)
        assert current_revision(engine) == head_revision()
        assert "sessions" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
