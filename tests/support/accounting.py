"""Accounting test helpers: a clock to travel in time, and a store on an empty schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, MetaData, text

from eohub.adapters.accounting_db import AccountingStore, create_engine_for, ensure_schema


class Clock:
    """A settable "now" for the store and the service."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def empty_database(url: str) -> Engine:
    """An engine on ``url`` with every table dropped (the server databases are shared)."""
    engine = create_engine_for(url)
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        if engine.dialect.name in ("mysql", "mariadb"):
            connection.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        metadata.drop_all(connection)
        if engine.dialect.name in ("mysql", "mariadb"):
            connection.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    return engine


def fresh_store(url: str, clock: Clock | None = None) -> AccountingStore:
    engine = empty_database(url)
    ensure_schema(engine)
    return AccountingStore(engine, clock=clock or Clock())


@contextmanager
def three_stores(
    sqlite_dir: Path, postgres_url: str, mariadb_url: str, clock: Clock
) -> Iterator[dict[str, AccountingStore]]:
    """A fresh store on SQLite (in ``sqlite_dir``), PostgreSQL and MariaDB, by name."""
    made = {
        name: fresh_store(url, clock)
        for name, url in (
            ("sqlite", f"sqlite:///{sqlite_dir / 'eohub.sqlite'}"),
            ("postgresql", postgres_url),
            ("mariadb", mariadb_url),
        )
    }
    try:
        yield made
    finally:
        for store in made.values():
            store.engine.dispose()
