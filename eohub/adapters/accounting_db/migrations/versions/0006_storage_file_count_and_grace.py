"""storage samples' file counts and sources, each source's latest sample, and the grace

``file_count`` is the number of files a storage sample counted: 0 for the samples
recorded before (XDMoD's storage realm requires the field, and 0 is what eohub exported
for them). ``source`` is where a sample was measured (a root path, a volume claim): a
user measured at two sources in one group holds the sum of both, so the unit of storage
is the (user, group, source) triple, and the unique key of a sample gains it. The
samples recorded before have the source ``""``.

``storage_latest`` holds each triple's latest sample, written with every samples write:
quota checks sum it for a group instead of finding each member's latest sample in the
whole history. The upgrade fills it from the samples.

``storage_over_since`` is when a group went over its whole-group ``storage_bytes`` quota
row, the start of its grace before new servers charged to it are refused; NULL while it
is within the row, or has none. The upgrade fills it for the groups already over (the
newest of the latest samples they are measured by), so that their grace starts from
what was measured, not from the first sample after the upgrade. It counts every latest
sample: the service's ``storage_sample_max_age`` is not known here, and a group that is
in fact within its row once old samples no longer count has its time cleared by the next
write that measures it. The rule is written out here: a migration must not change when
the store's code does.

The downgrade sums the samples that differ only by source into one (as the XDMoD export
does) so that the older unique key holds, and drops what the upgrade added. The
``groups`` column is dropped in place, as 0004's downgrade does: on SQLite a batch
operation would rebuild that table, which others refer to.

Revision ID: 0006
Revises: 0005
Create Date: 2027-02-01 10:00:00.000000
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

from eohub.adapters.accounting_db.models import ExactString, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The first SQLite that drops a column in place (ALTER TABLE ... DROP COLUMN).
SQLITE_DROP_COLUMN = (3, 35, 0)
_INDEX = "ix_storage_samples_group_user_at"
_UNIQUE = "uq_storage_samples_sample"

_samples = sa.table(
    "storage_samples",
    *(sa.column(n) for n in ("id", "user", "group", "source", "bytes", "file_count")),
    sa.column("measured_at", UTCDateTime()),
)
_latest = sa.table(
    "storage_latest",
    *(sa.column(n) for n in ("user", "group", "source", "bytes", "file_count")),
    sa.column("measured_at", UTCDateTime()),
)
_quotas = sa.table("quotas", *(sa.column(n) for n in ("group", "user", "storage_bytes")))
_groups = sa.table("groups", sa.column("name"), sa.column("storage_over_since", UTCDateTime()))


def upgrade() -> None:
    with op.batch_alter_table("storage_samples", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("file_count", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("source", ExactString(255), server_default="", nullable=False)
        )
        batch_op.drop_constraint(_UNIQUE, type_="unique")
        batch_op.create_unique_constraint(_UNIQUE, ["user", "group", "source", "measured_at"])
        batch_op.create_index(_INDEX, ["group", "user", "measured_at"], unique=False)
    op.create_table(
        "storage_latest",
        sa.Column("user", ExactString(255), nullable=False),
        sa.Column("group", ExactString(255), nullable=False),
        sa.Column("source", ExactString(255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.BigInteger(), nullable=False),
        sa.Column("measured_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("user", "group", "source", name=op.f("pk_storage_latest")),
    )
    op.create_index("ix_storage_latest_group", "storage_latest", ["group"], unique=False)
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_over_since", UTCDateTime(), nullable=True))
    _fill_the_latest_samples()
    _start_the_grace_of_groups_over()


def _fill_the_latest_samples() -> None:
    keys = ("user", "group", "source")
    at = (
        sa.select(*(_samples.c[k] for k in keys), sa.func.max(_samples.c.measured_at).label("at"))
        .group_by(*(_samples.c[k] for k in keys))
        .subquery()
    )
    rows = sa.select(
        *(_samples.c[k] for k in keys),
        _samples.c.bytes,
        _samples.c.file_count,
        _samples.c.measured_at,
    ).join(
        at,
        sa.and_(*(_samples.c[k] == at.c[k] for k in keys), _samples.c.measured_at == at.c.at),
    )
    columns = [*keys, "bytes", "file_count", "measured_at"]
    op.get_bind().execute(_latest.insert().from_select(columns, rows))


def _start_the_grace_of_groups_over() -> None:
    connection = op.get_bind()
    limits = connection.execute(
        sa.select(_quotas.c.group, _quotas.c.storage_bytes).where(
            _quotas.c.user == "", _quotas.c.storage_bytes.is_not(None)
        )
    ).all()
    for group, limit in limits:
        used, newest = connection.execute(
            sa.select(sa.func.sum(_latest.c.bytes), sa.func.max(_latest.c.measured_at)).where(
                _latest.c.group == group
            )
        ).one()
        if used is not None and int(used) > limit:
            connection.execute(
                _groups.update().where(_groups.c.name == group).values(storage_over_since=newest)
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < SQLITE_DROP_COLUMN:
        raise RuntimeError(
            f"Downgrading the accounting schema below 0006 needs SQLite 3.35 or newer "
            f"(this Python has {sqlite3.sqlite_version}); nothing was changed."
        )
    op.drop_index("ix_storage_latest_group", table_name="storage_latest")
    op.drop_table("storage_latest")
    _merge_the_sources()
    with op.batch_alter_table("storage_samples", schema=None) as batch_op:
        batch_op.drop_index(_INDEX)
        batch_op.drop_constraint(_UNIQUE, type_="unique")
        batch_op.create_unique_constraint(_UNIQUE, ["user", "group", "measured_at"])
        batch_op.drop_column("source")
        batch_op.drop_column("file_count")
    # Not batch_alter_table: on SQLite it would rebuild the table (see above).
    op.drop_column("groups", "storage_over_since")


def _merge_the_sources() -> None:
    """One sample per user, group and time: the sum of its sources, kept in the first."""
    connection = op.get_bind()
    keys = (_samples.c.user, _samples.c.group, _samples.c.measured_at)
    merged = connection.execute(
        sa.select(
            *keys,
            sa.func.min(_samples.c.id),
            sa.func.sum(_samples.c.bytes),
            sa.func.sum(_samples.c.file_count),
        )
        .group_by(*keys)
        .having(sa.func.count() > 1)
    ).all()
    for user, group, at, first, size, files in merged:
        same = sa.and_(
            _samples.c.user == user, _samples.c.group == group, _samples.c.measured_at == at
        )
        connection.execute(_samples.delete().where(same, _samples.c.id != first))
        connection.execute(
            _samples.update()
            .where(_samples.c.id == first)
            .values(bytes=int(size), file_count=int(files), source="")
        )
