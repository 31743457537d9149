"""Which database errors mean "unavailable, send it again" and which are real failures.

The API answers 503 only when the database could not do the work at all: it cannot be
reached, the connection broke, it is shutting down, or it is too busy (a lock or
deadlock timeout, a full connection pool). The transaction rolled back then, so the
hub's client may safely resend. Any other error (an out-of-range value, a constraint, a
missing table) is a bug or bad data that a resend cannot fix, and must never be
reported as "unavailable", or the client would retry it forever.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# MariaDB/MySQL client and server error codes (PyMySQL puts them in args[0]).
MYSQL_UNAVAILABLE = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1205,  # lock wait timeout exceeded
        1213,  # deadlock found
        1927,  # connection was killed
        2002,  # can't connect through the socket
        2003,  # can't connect to the server
        2005,  # unknown server host
        2006,  # server has gone away
        2013,  # lost connection during query
        2055,  # lost connection (system error)
    }
)
# PostgreSQL SQLSTATEs besides class 08 (connection exception).
POSTGRESQL_UNAVAILABLE = frozenset(
    {
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, recovering)
        "53300",  # too_many_connections
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
    }
)
SQLITE_BUSY = ("database is locked", "database table is locked", "unable to open database file")
# A running total past the 64-bit columns: PostgreSQL's numeric_value_out_of_range,
# MariaDB's "out of range value" (1264, 1690), SQLite's sum() "integer overflow", and
# the NOT NULL refusal that totals.apply_totals provokes on SQLite, whose + would
# otherwise turn the total into an inexact REAL without a word.
POSTGRESQL_OUT_OF_RANGE = "22003"
MYSQL_OUT_OF_RANGE = frozenset({1264, 1690})
SQLITE_OVERFLOW = ("integer overflow", "NOT NULL constraint failed: usage_totals.")


# What a batch refused by ledger_overflow is told (as the ``events`` field's error).
LEDGER_FULL = (
    "would take a running total of the ledger (a group's or user's milli-core, MiB or "
    "GPU milliseconds in one period) past 2**63 - 1; nothing was written"
)


class DatabaseUnavailable(Exception):
    """The database could not do the work now, as decided where the error happened.

    Raised by the store's writer process (:mod:`.writer_process`) in place of the
    driver's own error, which does not always survive the way back.
    """


def database_unavailable(error: BaseException) -> bool:
    """True if ``error`` says the database could not do the work now (see module doc)."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, PoolTimeoutError):
        return True  # every pooled connection busy for the pool's whole timeout
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    if isinstance(orig, sqlite3.OperationalError):
        return str(orig).startswith(SQLITE_BUSY)
    module = type(orig).__module__
    if module.startswith("psycopg"):
        sqlstate = _sqlstate(orig)
        if sqlstate is None:
            # No answer from a server at all (refused, reset, timed out).
            return type(orig).__name__ == "OperationalError"
        return sqlstate.startswith("08") or sqlstate in POSTGRESQL_UNAVAILABLE
    if module.startswith("pymysql"):
        return _mysql_code(orig) in MYSQL_UNAVAILABLE
    return False


def ledger_overflow(error: BaseException) -> bool:
    """True if ``error`` says a ledger total would pass what a 64-bit column holds."""
    if not isinstance(error, DBAPIError):
        return False
    orig = error.orig
    if isinstance(orig, sqlite3.Error):
        return str(orig).startswith(SQLITE_OVERFLOW)
    module = type(orig).__module__
    if module.startswith("psycopg"):
        return _sqlstate(orig) == POSTGRESQL_OUT_OF_RANGE
    if module.startswith("pymysql"):
        return _mysql_code(orig) in MYSQL_OUT_OF_RANGE
    return False


def _sqlstate(orig: BaseException | None) -> str | None:
    """The PostgreSQL SQLSTATE of a psycopg 3 (``sqlstate``) or psycopg2 (``pgcode``)
    error; None when no server answered."""
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def _mysql_code(orig: BaseException | None) -> int | None:
    """PyMySQL's error code (its first argument), None without one."""
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    return args[0] if args and isinstance(args[0], int) else None


__all__ = ["LEDGER_FULL", "DatabaseUnavailable", "database_unavailable", "ledger_overflow"]
