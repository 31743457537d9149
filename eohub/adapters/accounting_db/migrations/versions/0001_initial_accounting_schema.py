"""initial accounting schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 01:58:34.801186
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import eohub.adapters.accounting_db.models

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_groups()
    _create_storage_samples()
    _create_usage_totals()
    _create_group_pis()
    _create_quotas()
    _create_sessions()
    _create_events()


def _create_groups() -> None:
    op.create_table(
        "groups",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("allocation", sa.String(length=32), nullable=False),
        sa.Column("created_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_groups")),
    )


def _create_storage_samples() -> None:
    op.create_table(
        "storage_samples",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "measured_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_samples")),
        sa.UniqueConstraint("user", "group", "measured_at", name="uq_storage_samples_sample"),
    )
    with op.batch_alter_table("storage_samples", schema=None) as batch_op:
        batch_op.create_index("ix_storage_samples_measured_at", ["measured_at"], unique=False)


def _create_usage_totals() -> None:
    op.create_table(
        "usage_totals",
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "period_start", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=False
        ),
        sa.Column("cpu_mcore_ms", sa.BigInteger(), nullable=False),
        sa.Column("mem_mib_ms", sa.BigInteger(), nullable=False),
        sa.Column("gpu_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "group", "user", "kind", "period_start", name=op.f("pk_usage_totals")
        ),
    )
    with op.batch_alter_table("usage_totals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_totals_kind_period", ["kind", "period_start"], unique=False
        )


def _create_group_pis() -> None:
    op.create_table(
        "group_pis",
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["group"], ["groups.name"], name=op.f("fk_group_pis_group_groups"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group", "user", name=op.f("pk_group_pis")),
    )
    with op.batch_alter_table("group_pis", schema=None) as batch_op:
        batch_op.create_index("ix_group_pis_user", ["user"], unique=False)


def _create_quotas() -> None:
    op.create_table(
        "quotas",
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("cpu_mcore_ms", sa.BigInteger(), nullable=True),
        sa.Column("mem_mib_ms", sa.BigInteger(), nullable=True),
        sa.Column("gpu_ms", sa.BigInteger(), nullable=True),
        sa.Column("max_servers", sa.Integer(), nullable=True),
        sa.Column("max_millicores", sa.BigInteger(), nullable=True),
        sa.Column("storage_bytes", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group"], ["groups.name"], name=op.f("fk_quotas_group_groups"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group", "user", name=op.f("pk_quotas")),
    )


def _create_sessions() -> None:
    op.create_table(
        "sessions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("group", sa.String(length=255), nullable=False),
        sa.Column("profile", sa.String(length=255), nullable=False),
        sa.Column("image", sa.String(length=255), nullable=False),
        sa.Column("millicores", sa.Integer(), nullable=False),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("started_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column(
            "last_seen_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=True
        ),
        sa.ForeignKeyConstraint(["group"], ["groups.name"], name=op.f("fk_sessions_group_groups")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint(
            "user", "server", "started_at", name="uq_sessions_user_server_started"
        ),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index("ix_sessions_group_stopped", ["group", "stopped_at"], unique=False)
        batch_op.create_index("ix_sessions_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_sessions_user_stopped", ["user", "stopped_at"], unique=False)


def _create_events() -> None:
    op.create_table(
        "events",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "received_at", eohub.adapters.accounting_db.models.UTCDateTime(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_events_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_session_id", ["session_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_session_id")

    op.drop_table("events")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_user_stopped")
        batch_op.drop_index("ix_sessions_started_at")
        batch_op.drop_index("ix_sessions_group_stopped")

    op.drop_table("sessions")
    op.drop_table("quotas")
    with op.batch_alter_table("group_pis", schema=None) as batch_op:
        batch_op.drop_index("ix_group_pis_user")

    op.drop_table("group_pis")
    with op.batch_alter_table("usage_totals", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_totals_kind_period")

    op.drop_table("usage_totals")
    with op.batch_alter_table("storage_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_storage_samples_measured_at")

    op.drop_table("storage_samples")
    op.drop_table("groups")
