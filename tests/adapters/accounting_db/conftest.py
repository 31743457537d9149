"""Databases for this folder's tests: SQLite at the current schema, and PostgreSQL through
each driver.

Every test here that takes ``postgres_url`` (or ``database_url``) runs on PostgreSQL once
through psycopg 3 and once through psycopg2 (the Zero to JupyterHub hub image's driver):
the same database, the same test body, with ``psycopg``/``psycopg2`` in the test's id.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from eohub.adapters.accounting_db import create_engine_for, ensure_schema
from tests.support.databases import PG_DRIVERS, postgres_database, with_pg_driver


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine_for(sqlite_url)
    ensure_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_urls() -> Iterator[dict[str, str]]:
    """One fresh PostgreSQL database for this folder, by driver: its URL through each."""
    with postgres_database() as url:
        yield {driver: with_pg_driver(url, driver) for driver in PG_DRIVERS}


# Session-scoped, so that module-scoped fixtures built on PostgreSQL are made per driver.
@pytest.fixture(scope="session", params=PG_DRIVERS)
def pg_driver(request: pytest.FixtureRequest) -> str:
    """Each PostgreSQL driver eohub supports, in turn."""
    driver: str = request.param
    return driver


@pytest.fixture(scope="session")
def postgres_url(postgres_urls: dict[str, str], pg_driver: str) -> str:
    """This folder's PostgreSQL database, through each driver in turn."""
    return postgres_urls[pg_driver]


@pytest.fixture(
    params=["sqlite", "psycopg", "psycopg2", "mariadb"],
    ids=["sqlite", "postgresql+psycopg", "postgresql+psycopg2", "mariadb"],
)
def database_url(request: pytest.FixtureRequest) -> str:
    """Each database eohub supports, in turn; PostgreSQL through each of its drivers."""
    if request.param in PG_DRIVERS:
        urls: dict[str, str] = request.getfixturevalue("postgres_urls")
        return urls[request.param]
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
