"""sessions.idle_timeout, max_duration and stop_reason; stop reasons by today's names

``idle_timeout`` and ``max_duration`` are a session's limits in seconds, as the hub sent
them with the start; NULL for sessions recorded before, or without a limit.
``stop_reason`` is the reason the accounting service recorded when it asked the hub to
stop the server (``idle``, ``max_duration``, ``budget``, ``admin``); the ledger keeps it
as the session's ``end_reason`` once the server stops.

Stored reasons are renamed to the vocabulary of
:mod:`eohub.domain.accounting.stop_reasons`: ``quota`` is ``budget``, ``reconciled`` is
``reconcile`` and ``culled`` is ``idle``, in ``sessions.end_reason`` and in the stops
held for their start (``pending_stops.reason``). The downgrade renames them back; the
reasons only this version writes (``user``, ``admin``, ``max_duration``, ``shutdown``)
stay as they are, which older versions show as written.

The downgrade drops the columns in place, as 0004's does, for the same reason: on SQLite
a batch operation would rebuild ``sessions`` and cascade into ``events``.

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-12 10:00:00.000000
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The renames, written out: a migration must not change when the domain's names do.
RENAMED = {"quota": "budget", "reconciled": "reconcile", "culled": "idle"}
#: The first SQLite that drops a column in place (ALTER TABLE ... DROP COLUMN).
SQLITE_DROP_COLUMN = (3, 35, 0)
_ADDED = ("idle_timeout", "max_duration", "stop_reason")


def _rename(table: str, column: str, names: dict[str, str]) -> None:
    """``old -> new`` for every row of ``table.column`` holding one of ``names``: one
    statement, so a large ledger is read once."""
    t = sa.table(table, sa.column(column, sa.String(32)))
    c = t.c[column]
    op.execute(
        t.update().where(c.in_(sorted(names))).values({column: sa.case(names, value=c, else_=c)})
    )


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idle_timeout", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_duration", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("stop_reason", sa.String(length=32), nullable=True))
    _rename("sessions", "end_reason", RENAMED)
    _rename("pending_stops", "reason", RENAMED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < SQLITE_DROP_COLUMN:
        # The only other way, rebuilding the table, would delete every event (see above).
        raise RuntimeError(
            f"Downgrading the accounting schema below 0005 needs SQLite 3.35 or newer "
            f"(this Python has {sqlite3.sqlite_version}); nothing was changed."
        )
    back = {new: old for old, new in RENAMED.items()}
    _rename("sessions", "end_reason", back)
    _rename("pending_stops", "reason", back)
    # Not batch_alter_table: on SQLite it would rebuild sessions and cascade (see above).
    for column in reversed(_ADDED):
        op.drop_column("sessions", column)
