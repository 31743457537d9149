"""sessions.stopped_by, stop_requested_at and profile_name: who stopped a server, and what it ran

``stopped_by`` names the person (a PI or an admin) who asked the hub to stop a server
from the pages, and ``stop_requested_at`` when; NULL for every other stop (the hub's own
stop events, reconcile's closes and enforcement's stops). ``profile_name`` is the
environment's display name, as the hub sent it with the start; NULL for sessions
recorded before, or without one.

The downgrade drops the columns with a plain ``ALTER TABLE ... DROP COLUMN`` on every
database. On SQLite a batch operation would rebuild ``sessions`` (``DROP TABLE``), and
with ``PRAGMA foreign_keys=ON`` (which eohub's engines set) that drop cascades through
``events.session_id`` and deletes every event: the idempotency keys of the whole ledger.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 13:30:00.000000
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

import eohub.adapters.accounting_db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        # The models' name type: a user name compares exactly, as in every other column.
        batch_op.add_column(
            sa.Column("profile_name", eohub.adapters.accounting_db.models.Name, nullable=True)
        )
        batch_op.add_column(
            sa.Column("stopped_by", eohub.adapters.accounting_db.models.Name, nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "stop_requested_at",
                eohub.adapters.accounting_db.models.UTCDateTime(),
                nullable=True,
            )
        )


#: The first SQLite that drops a column in place (ALTER TABLE ... DROP COLUMN).
SQLITE_DROP_COLUMN = (3, 35, 0)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < SQLITE_DROP_COLUMN:
        # The only other way, rebuilding the table, would delete every event (see above).
        raise RuntimeError(
            f"Downgrading the accounting schema below 0004 needs SQLite 3.35 or newer "
            f"(this Python has {sqlite3.sqlite_version}); nothing was changed."
        )
    # Not batch_alter_table: on SQLite it would rebuild sessions and cascade (see above).
    for column in ("stop_requested_at", "stopped_by", "profile_name"):
        op.drop_column("sessions", column)
