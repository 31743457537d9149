"""The accounting service's SQL storage: models, alembic migrations and the store.

SQLite (WAL) by default; PostgreSQL and MariaDB in production. Times are stored as naive
UTC and come back timezone-aware.
"""

from eohub.adapters.accounting_db.schema import (
    OutdatedSchemaError,
    create_engine_for,
    ensure_schema,
    upgrade,
)
from eohub.adapters.accounting_db.store import AccountingStore, UnknownGroupError

__all__ = [
    "AccountingStore",
    "OutdatedSchemaError",
    "UnknownGroupError",
    "create_engine_for",
    "ensure_schema",
    "upgrade",
]
