"""Engines, and the alembic migrations shipped inside the package.

A fresh, empty database is created at the latest revision. A database at an older
revision is refused until an admin runs ``eohub-accounting upgrade-db``, as JupyterHub
does for its own database: a schema change is a step someone should choose to take.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_COMMAND = "eohub-accounting upgrade-db"


class OutdatedSchemaError(RuntimeError):
    """The database's schema is not the one this version of eohub expects."""


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``, tuned for the accounting service.

    SQLite gets WAL and a busy timeout, so readers (pages, exports) never block the
    writer. Server databases handle lost connections optimistically: a statement that
    meets a dead connection fails (the API answers 503 and the hub's client resends) and
    the whole pool is renewed, instead of a ping round trip before every request, which
    would double the latency of a quota check.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if parsed.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    kwargs.setdefault("pool_recycle", 3600)
    return create_engine(url, **kwargs)


def alembic_config(engine: Engine) -> Config:
    """An alembic configuration that runs the packaged migrations on ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config_without_engine()).get_current_head()
    assert head is not None
    return head


def alembic_config_without_engine() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the packaged migrations up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def ensure_schema(engine: Engine, log: logging.Logger) -> None:
    """Create a fresh database, accept a current one, refuse an outdated one.

    Raises
    ------
    OutdatedSchemaError
        The database holds tables at another revision; the message names the command
        that upgrades it.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None and not inspect(engine).get_table_names():
        log.info("Creating the accounting database schema at revision %s", head)
        upgrade(engine)
        return
    raise OutdatedSchemaError(
        f"The accounting database is at schema revision {current or 'none (unversioned)'}, "
        f"but this version of eohub needs {head}. Back up the database, then run "
        f"`{UPGRADE_COMMAND}` with the same configuration to upgrade it."
    )
