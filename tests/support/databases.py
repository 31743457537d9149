"""Fresh databases on the PostgreSQL and MariaDB servers that run on this machine.

A PostgreSQL database is reached through either driver eohub supports: the same
database, a URL per driver (:func:`with_pg_driver`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

from .process import ServiceStartError

# The servers services.md promises on every machine of this project and in CI.
# Override the admin URLs to point the tests at other servers.
POSTGRES_ADMIN_URL = os.environ.get(
    "EOHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get("EOHUB_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")
# The PostgreSQL drivers eohub supports: psycopg 3, and psycopg2, which the Zero to
# JupyterHub hub image ships.
PG_DRIVERS = ("psycopg", "psycopg2")


def _with_database(url: str, scheme: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, parts.netloc, f"/{database}", parts.query, ""))


def _unreachable(what: str, url: str, error: Exception, start_hint: str) -> ServiceStartError:
    parts = urlsplit(url)
    # Name the server, never the credentials.
    where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    safe = parts._replace(netloc=where).geturl()
    return ServiceStartError(
        f"{what} is not reachable at {safe} ({error}). It should be running on this "
        f"machine; start it with: {start_hint}"
    )


def with_pg_driver(url: str, driver: str) -> str:
    """The PostgreSQL ``url`` through ``driver`` (one of :data:`PG_DRIVERS`)."""
    if driver not in PG_DRIVERS:
        raise ValueError(f"driver: {driver!r} is not one of {', '.join(PG_DRIVERS)}")
    parts = urlsplit(url)
    return urlunsplit((f"postgresql+{driver}", *parts[1:]))


@contextmanager
def postgres_database(driver: str = "psycopg") -> Iterator[str]:
    """Create ``eohub_test_<random>`` on PostgreSQL; yield its SQLAlchemy URL through
    ``driver``; drop it."""
    import psycopg

    name = f"eohub_test_{secrets.token_hex(4)}"
    url = with_pg_driver(_with_database(POSTGRES_ADMIN_URL, "postgresql", name), driver)
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        raise _unreachable(
            "PostgreSQL",
            POSTGRES_ADMIN_URL,
            e,
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        ) from e
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield url
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def mariadb_database() -> Iterator[str]:
    """Create ``eohub_test_<random>`` on MariaDB; yield its SQLAlchemy URL; drop it."""
    import pymysql

    name = f"eohub_test_{secrets.token_hex(4)}"
    parts = urlsplit(MARIADB_ADMIN_URL)
    try:
        admin = pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            connect_timeout=5,
            autocommit=True,
        )
    except pymysql.err.OperationalError as e:
        raise _unreachable(
            "MariaDB",
            MARIADB_ADMIN_URL,
            e,
            "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
        ) from e
    with admin:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        try:
            url = _with_database(MARIADB_ADMIN_URL, "mysql+pymysql", name)
            yield url + "?charset=utf8mb4"
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
