"""Names compare exactly even on databases whose defaults fold case, accents or spaces.

An admin may create the MariaDB database with the server's default collation
(``utf8mb4_general_ci``, or ``latin1`` on older servers) or PostgreSQL with a linguistic
locale. The migrations must still give every name column an exact comparison, keep the
rows of a database created by revision 0001, and talk ``utf8mb4`` on the connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from alembic import command
from sqlalchemy import Engine, String, text
from sqlalchemy.exc import IntegrityError

from eohub.adapters.accounting_db import AccountingStore, create_engine_for, ensure_schema
from eohub.adapters.accounting_db.models import Base, ExactString, name_collation
from eohub.adapters.accounting_db.schema import alembic_config, upgrade
from eohub.domain.accounting.events import parse_batch, start_event_json
from eohub.domain.accounting.periods import Allocation, PeriodKind
from tests.support.accounting import Clock
from tests.support.accounting_names import check_names_kept_apart, name_outcome
from tests.support.databases import MARIADB_ADMIN_URL, POSTGRES_ADMIN_URL

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _url(admin_url: str, scheme: str, database: str, query: str = "") -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((scheme, parts.netloc, f"/{database}", query, ""))


@contextmanager
def mariadb_with_default(charset: str, collation: str) -> Iterator[str]:
    """A MariaDB database whose default is ``charset``/``collation``; its URL, without a
    ``charset`` query (the engine must add one)."""
    import pymysql

    parts = urlsplit(MARIADB_ADMIN_URL)
    name = f"eohub_test_{secrets.token_hex(4)}"
    admin = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
        connect_timeout=5,
    )
    with admin:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET {charset} COLLATE {collation}")
        try:
            yield _url(MARIADB_ADMIN_URL, "mysql+pymysql", name)
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@contextmanager
def postgres_with_icu_locale() -> Iterator[str]:
    """A PostgreSQL database sorting by the ICU English locale (``climate`` < ``CLIMATE``)."""
    import psycopg

    name = f"eohub_test_{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'"
        )
        try:
            yield _url(POSTGRES_ADMIN_URL, "postgresql+psycopg", name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


FOLDING_DEFAULTS = {
    "mariadb utf8mb4_general_ci": lambda: mariadb_with_default("utf8mb4", "utf8mb4_general_ci"),
    "mariadb latin1": lambda: mariadb_with_default("latin1", "latin1_swedish_ci"),
    "postgresql icu en": postgres_with_icu_locale,
}


def _store(url: str) -> AccountingStore:
    engine = create_engine_for(url)
    ensure_schema(engine)
    return AccountingStore(engine, clock=Clock(NOW))


@pytest.mark.parametrize("database", sorted(FOLDING_DEFAULTS))
def test_names_stay_apart_whatever_the_database_default(database: str, tmp_path: Path) -> None:
    outcomes = {}
    with FOLDING_DEFAULTS[database]() as url:
        for name, db_url in (("sqlite", f"sqlite:///{tmp_path / 'n.sqlite'}"), (database, url)):
            store = _store(db_url)
            try:
                outcomes[name] = name_outcome(store)
            finally:
                store.close()
                store.engine.dispose()
    check_names_kept_apart(outcomes["sqlite"])
    assert outcomes[database] == outcomes["sqlite"]


def _collations(engine: Engine) -> dict[tuple[str, str], tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT table_name, column_name, character_set_name, collation_name "
                "FROM information_schema.columns WHERE table_schema = DATABASE() "
                "AND collation_name IS NOT NULL AND table_name != 'alembic_version'"
            )
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def _text_columns() -> dict[tuple[str, str], bool]:
    """Every text column of the models, and whether it must compare exactly."""
    return {
        (table.name, column.name): isinstance(column.type, ExactString)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, ExactString | String)
    }


@pytest.mark.parametrize(
    ("charset", "collation"), [("utf8mb4", "utf8mb4_general_ci"), ("latin1", "latin1_swedish_ci")]
)
def test_every_name_column_is_utf8mb4_binary_on_mariadb(charset: str, collation: str) -> None:
    """Migrations and models agree on collations too (``alembic check`` cannot see them)."""
    with (
        mariadb_with_default(charset, collation) as migrated_url,
        mariadb_with_default(charset, collation) as created_url,
    ):
        migrated = create_engine_for(migrated_url)
        created = create_engine_for(created_url)
        try:
            upgrade(migrated)
            Base.metadata.create_all(created)
            exact = name_collation(migrated.dialect)
            assert exact == "utf8mb4_nopad_bin"
            columns = _text_columns()
            found = _collations(migrated)
            assert set(found) == set(columns)
            for column, must_be_exact in columns.items():
                expected = ("utf8mb4", exact) if must_be_exact else (charset, collation)
                assert found[column] == expected, column
            assert _collations(created) == found
        finally:
            migrated.dispose()
            created.dispose()


def test_upgrade_from_0001_keeps_the_rows_and_separates_the_names() -> None:
    with mariadb_with_default("utf8mb4", "utf8mb4_general_ci") as url:
        engine = create_engine_for(url)
        try:
            upgrade(engine, "0001")
            with engine.begin() as c:
                c.execute(
                    text(
                        "INSERT INTO `groups` VALUES ('climate', 'Zoë''s group', 'month', "
                        "'2026-03-01 00:00:00')"
                    )
                )
                c.execute(text("INSERT INTO group_pis VALUES ('climate', 'zoë')"))
            # Revision 0001 on a case-insensitive default: the look-alike is refused.
            with pytest.raises(IntegrityError), engine.begin() as c:
                c.execute(
                    text("INSERT INTO `groups` VALUES ('CLIMATE', '', 'month', '2026-03-01')")
                )
            upgrade(engine)
            store = AccountingStore(engine, clock=Clock(NOW))
            try:
                [group] = store.groups()
                assert (group.name, group.display_name, group.pis) == (
                    "climate",
                    "Zoë's group",
                    frozenset({"zoë"}),
                )
                assert store.put_group("CLIMATE", allocation=Allocation.parse("month"))
                assert [g.name for g in store.groups()] == ["CLIMATE", "climate"]
            finally:
                store.close()
            with engine.begin() as c:  # the foreign keys are back, with their actions
                c.execute(text("DELETE FROM `groups` WHERE name = 'climate'"))
                assert c.execute(text("SELECT COUNT(*) FROM group_pis")).scalar_one() == 0
            with pytest.raises(IntegrityError), engine.begin() as c:
                c.execute(text("INSERT INTO group_pis VALUES ('nope', 'zoë')"))
            # Down and up again: back to the table default, then exact once more.
            with engine.begin() as c:
                c.execute(text("DELETE FROM `groups`"))
            command.downgrade(alembic_config(engine), "0001")
            assert _collations(engine)[("groups", "name")] == ("utf8mb4", "utf8mb4_general_ci")
            upgrade(engine)
            assert _collations(engine)[("groups", "name")] == ("utf8mb4", "utf8mb4_nopad_bin")
        finally:
            engine.dispose()


def test_the_connection_talks_utf8mb4_and_keeps_four_byte_names() -> None:
    satellite = "🛰 sentinel"  # outside the Basic Multilingual Plane: 4 bytes in UTF-8
    with mariadb_with_default("latin1", "latin1_swedish_ci") as url:
        store = _store(url)
        try:
            with store.engine.connect() as c:
                assert c.execute(text("SELECT @@character_set_client")).scalar_one() == "utf8mb4"
            store.put_group(satellite, allocation=Allocation.parse("month"))
            event = start_event_json(
                user=satellite, server="", started_at=NOW, group=satellite, cpu=1
            )
            store.ingest(parse_batch({"events": [event]}))
            store.clock.advance(hours=1)  # type: ignore[attr-defined]
            [row] = store.usage(PeriodKind.MONTH, NOW, NOW.replace(month=4), by_user=True)
            assert (row.group, row.user) == (satellite, satellite)
        finally:
            store.close()
            store.engine.dispose()
