"""An SQLite accounting database at the current schema, for tests of one module's queries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from eohub.adapters.accounting_db import create_engine_for, ensure_schema


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = create_engine_for(sqlite_url)
    ensure_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()
