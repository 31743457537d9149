"""Alembic environment: runs the packaged migrations on the engine the caller passes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from eohub.adapters.accounting_db.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through eohub-accounting upgrade-db")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        transaction_per_migration=True,
        compare_type=True,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
