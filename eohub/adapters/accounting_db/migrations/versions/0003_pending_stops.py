"""pending stops: stops that arrived before their start

A stop whose start the service has not received is held here (not refused, not lost)
and applied when the start arrives; see eohub.domain.accounting.ingest_rules.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import eohub.adapters.accounting_db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_stops",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", eohub.adapters.accounting_db.models.ExactString(128), nullable=False),
        # The models' name type: names compare exactly, as in every other table.
        sa.Column("user", eohub.adapters.accounting_db.models.Name, nullable=False),
        sa.Column("server", eohub.adapters.accounting_db.models.Name, nullable=False),
        sa.Column("started_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column(
            "received_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_stops")),
        sa.UniqueConstraint("key", name=op.f("uq_pending_stops_key")),
    )
    with op.batch_alter_table("pending_stops", schema=None) as batch_op:
        batch_op.create_index("ix_pending_stops_started_at", ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pending_stops", schema=None) as batch_op:
        batch_op.drop_index("ix_pending_stops_started_at")
    op.drop_table("pending_stops")
