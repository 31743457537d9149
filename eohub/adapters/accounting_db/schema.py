"""Engines, and the alembic migrations shipped inside the package.

A fresh, empty database is created at the latest revision. A database at an older
revision is refused until an admin runs ``eohub-accounting upgrade-db``, as JupyterHub
does for its own database: a schema change is a step someone should choose to take.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from eohub.adapters.accounting_db.drivers import installed_driver
from eohub.logs import get_logger

log = get_logger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# The store's threads (see store.py): one writer, these readers, these quota checkers.
READ_THREADS = 4
QUOTA_THREADS = 2
# A connection for each of them, and two for calls on the event loop itself (the
# request's caller lookup, the reconcile loop); exports in threads use the overflow.
POOL_SIZE = 1 + READ_THREADS + QUOTA_THREADS + 2
UPGRADE_COMMAND = "eohub-accounting upgrade-db"


class OutdatedSchemaError(RuntimeError):
    """The database's schema is not the one this version of eohub expects."""


BAD_URL = (
    "The accounting database URL does not parse as dialect+driver://user:password@host/db; "
    "percent-encode @, : and / in the user name and password (as %40, %3A and %2F)"
)


def parse_db_url(url: str | URL) -> URL:
    """``url`` parsed; a malformed one is refused with a message that does not echo it.

    ``postgresql://u:p@ss@db/x`` parses as host ``ss@db``, and a stray ``:`` as a port:
    the driver's error would then print part of the password, so both are refused here.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a "port" that is not a number
        raise ValueError(BAD_URL) from None
    if parsed.host is not None and "@" in parsed.host:
        raise ValueError(BAD_URL)
    return parsed


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``, tuned for the accounting service.

    SQLite gets WAL and a busy timeout, so readers (pages, exports) never block the
    writer. Server databases handle lost connections optimistically: a statement that
    meets a dead connection fails (the API answers 503 and the hub's client resends) and
    the whole pool is renewed, instead of a ping round trip before every request, which
    would double the latency of a quota check.

    A bare ``postgresql://`` gets psycopg 3 or psycopg2, whichever is installed; a driver
    that is not installed raises
    :class:`~eohub.adapters.accounting_db.drivers.DriverNotInstalledError` (a
    ``ValueError``, as for a malformed URL) naming what to install.
    """
    parsed = installed_driver(parse_db_url(url))
    if parsed.get_backend_name() == "sqlite":
        kwargs.setdefault("connect_args", {"timeout": 30})
        if parsed.database not in (None, "", ":memory:"):
            # A file database is pooled (QueuePool) and shared between threads.
            kwargs.setdefault("pool_size", POOL_SIZE)
        engine = create_engine(parsed, **kwargs)

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
    kwargs.setdefault("pool_size", POOL_SIZE)
    return create_engine(with_utf8mb4(parsed), **kwargs)


# The MySQL drivers that take the connection character set as ``?charset=``.
_CHARSET_DRIVERS = ("pymysql", "mysqldb")


def with_utf8mb4(url: URL) -> URL:
    """``url``, talking ``utf8mb4`` to MariaDB/MySQL: any name must reach its column intact.

    A URL without ``charset`` gets ``charset=utf8mb4``; the admin's other choices stay as
    they are. A narrower charset (``utf8``, which is 3-byte ``utf8mb3``, or ``latin1``)
    would turn names the hub accepts into errors or question marks, so it is refused.
    """
    if url.get_backend_name() not in ("mysql", "mariadb"):
        return url
    if url.get_driver_name() not in _CHARSET_DRIVERS:
        return url
    charset = url.query.get("charset")
    if charset is None:
        return url.update_query_dict({"charset": "utf8mb4"})
    if str(charset).lower() != "utf8mb4":
        raise ValueError(
            f"The accounting database URL asks for charset={charset}, which cannot hold "
            "every user and group name; use charset=utf8mb4 or leave it out"
        )
    return url


def loggable_url(url: str | URL) -> str:
    """``url`` as it may appear in a log: the password and secret query values masked.

    A URL without secrets is shown as the admin wrote it, so an SQLite path keeps every
    slash (``sqlite:////srv/hub/acct.sqlite`` is an absolute path) and ``:memory:`` stays
    readable. A URL that does not parse is not echoed at all: it may hold a password.
    """
    try:
        parsed = parse_db_url(url)
    except ValueError:
        return "(a database URL that does not parse)"
    secret = {
        key: "***"
        for key in parsed.query
        if any(word in key.lower() for word in ("password", "passwd", "secret", "token"))
    }
    if parsed.password is None and not secret:
        return url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return parsed.update_query_dict(secret).render_as_string(hide_password=True)


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


def ensure_schema(engine: Engine) -> None:
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
        log.info("Creating the accounting database schema at revision {head}", head=head)
        upgrade(engine)
        return
    raise OutdatedSchemaError(
        f"The accounting database is at schema revision {current or 'none (unversioned)'}, "
        f"but this version of eohub needs {head}. Back up the database, then run "
        f"`{UPGRADE_COMMAND}` with the same configuration to upgrade it."
    )
