"""The accounting commands' shared base: the database URL, the config file, ``upgrade-db``.

:class:`DatabaseApp` is the parent of the service (:mod:`eohub.accounting.app`) and of
the ``export`` subcommand (:mod:`eohub.accounting.exports.cli`), which so need not import
the service to share its options.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy import Engine, make_url
from sqlalchemy.exc import ArgumentError
from traitlets import Unicode, default
from traitlets.config import Application

from eohub import logs
from eohub.adapters.accounting_db import create_engine_for
from eohub.adapters.accounting_db.schema import current_revision, loggable_url, upgrade
from eohub.logs import get_logger

log = get_logger(__name__)

DEFAULT_DB_URL = "sqlite:///eohub-accounting.sqlite"


class DatabaseApp(Application):
    """Shared by the subcommands: the database URL and an engine on it."""

    db_url = Unicode(
        DEFAULT_DB_URL,
        help="""SQLAlchemy URL of the accounting database.

        SQLite (the default, a file in the working directory) suits one hub; use
        PostgreSQL or MariaDB in production. PostgreSQL works through psycopg 3
        (``postgresql+psycopg://user@host/db``, extra ``eohub[postgres]``) or psycopg2
        (``postgresql+psycopg2://user@host/db``, extra ``eohub[postgres2]``; the Zero to
        JupyterHub hub image ships psycopg2); a bare ``postgresql://user@host/db`` uses
        whichever of the two is installed, psycopg 3 when both are. MariaDB:
        ``mysql+pymysql://user@host/db?charset=utf8mb4`` (extra ``eohub[mysql]``). A URL
        whose driver is not installed stops the command with the package to install.
        Read from ``$EOHUB_ACCOUNTING_DB_URL`` when set. The URL's password is never
        logged.
        """,
    ).tag(config=True)

    @default("db_url")
    def _db_url_default(self) -> str:
        return os.environ.get("EOHUB_ACCOUNTING_DB_URL", DEFAULT_DB_URL)

    @default("log_level")
    def _log_level_default(self) -> int:
        return logging.INFO

    # JupyterHub's own line prefix (level, time, logger), so that the service's lines read
    # like the hub's in the hub's log, where a managed service writes.
    @default("log_format")
    def _log_format_default(self) -> str:
        return "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s] %(message)s"

    @default("log_datefmt")
    def _log_datefmt_default(self) -> str:
        return "%Y-%m-%d %H:%M:%S"

    config_file = Unicode(
        help="The config file to load (Python, like jupyterhub_config.py): "
        "``$EOHUB_ACCOUNTING_CONFIG``, else ``eohub_accounting_config.py`` in the working "
        "directory. A missing default file is fine; a missing named one is an error.",
    ).tag(config=True)

    @default("config_file")
    def _config_file_default(self) -> str:
        return os.environ.get("EOHUB_ACCOUNTING_CONFIG", "eohub_accounting_config.py")

    aliases = {"db-url": "DatabaseApp.db_url", "config": "DatabaseApp.config_file"}  # noqa: RUF012

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Before any config is loaded: its observers log through the module loggers too.
        logs.attach(self.log)

    def initialize(self, argv: Any = None) -> None:
        super().initialize(argv)
        if self.subapp is not None:
            return
        named = "EOHUB_ACCOUNTING_CONFIG" in os.environ or "config_file" in self.cli_config.get(
            "DatabaseApp", {}
        )
        if os.path.exists(self.config_file):
            self.load_config_file(self.config_file)
        elif named:
            log.critical("The config file {path} does not exist", path=self.config_file)
            self.exit(1)
        self.update_config(self.cli_config)

    def open_engine(self) -> Engine:
        """An engine on :attr:`db_url`; a URL that cannot be used (malformed, or its
        driver not installed) ends the command with the reason, not a traceback."""
        try:
            return create_engine_for(self.db_url)
        except ValueError as e:  # the message never echoes the password
            log.critical("{error}", error=e)
            self.exit(1)
            raise  # exit() returns only where a test replaced sys.exit

    def safe_url(self) -> str:
        """The database URL as the log shows it: passwords masked, and a relative SQLite
        path made absolute, so the log says which file it is."""
        try:
            url = make_url(self.db_url)
        except (ArgumentError, ValueError):  # not echoed: it may hold a password
            return loggable_url(self.db_url)
        path = url.database or ""
        relative = path not in ("", ":memory:") and not path.startswith("file:")
        if url.get_backend_name() == "sqlite" and relative and not os.path.isabs(path):
            return loggable_url(url.set(database=os.path.abspath(path)))
        return loggable_url(self.db_url)


class UpgradeDBApp(DatabaseApp):
    name = "eohub-accounting upgrade-db"
    description = "Apply the accounting database migrations (back up the database first)."

    def start(self) -> None:
        engine = self.open_engine()
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
        log.info(
            "Accounting database at revision {revision} (was {before}): {database}",
            revision=after,
            before=before,
            database=self.safe_url(),
        )
        engine.dispose()


__all__ = ["DEFAULT_DB_URL", "DatabaseApp", "UpgradeDBApp"]
