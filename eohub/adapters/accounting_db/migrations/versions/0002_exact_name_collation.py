"""names compare exactly on MariaDB and MySQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 00:20:00

Revision 0001 created the name columns in the database's default character set and
collation. On MariaDB that is often ``utf8mb4_general_ci`` (or ``latin1``), which makes
``BiUser`` and ``biuser``, ``climate`` and ``CLIMATE``, NFC and NFD ``zoë``, and ``bob``
and ``bob `` one name in keys, ``WHERE`` and ``GROUP BY``: two hub users would share a
ledger, and the second of two such groups could not be created. Every name column, and
the events' idempotency key, becomes ``utf8mb4`` with a binary no-pad collation.
Converting to a finer collation cannot create duplicates, so the upgrade cannot fail on
existing data.

SQLite and PostgreSQL already compare these columns exactly: nothing to do there.
The downgrade returns the columns to the table's default collation; it fails if the
database now holds names that only differ in a way that collation ignores.
"""

from __future__ import annotations

from alembic import op

from eohub.adapters.accounting_db.models import name_collation

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Every column of the ``Name`` type in revision 0001, per table.
NAME_COLUMNS = {
    "groups": ("name", "display_name"),
    "group_pis": ("group", "user"),
    "quotas": ("group", "user"),
    "sessions": ("user", "server", "group", "profile", "image"),
    "usage_totals": ("group", "user"),
    "storage_samples": ("user", "group"),
}

#: The foreign keys on name columns: MariaDB refuses to change a column's collation
#: while a foreign key uses it, so they are dropped and made again around the change.
FOREIGN_KEYS = (
    ("fk_group_pis_group_groups", "group_pis", "CASCADE"),
    ("fk_quotas_group_groups", "quotas", "CASCADE"),
    ("fk_sessions_group_groups", "sessions", None),
)


def _retype(collation: str) -> None:
    for name, table, _ in FOREIGN_KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
    for table, columns in NAME_COLUMNS.items():
        changes = ", ".join(f"MODIFY `{c}` VARCHAR(255){collation} NOT NULL" for c in columns)
        op.execute(f"ALTER TABLE `{table}` {changes}")
    # Idempotency keys are compared by equality too: ``Ab`` and ``ab`` are two events.
    op.execute(f"ALTER TABLE `events` MODIFY `key` VARCHAR(128){collation} NOT NULL")
    for name, table, ondelete in FOREIGN_KEYS:
        op.create_foreign_key(name, table, "groups", ["group"], ["name"], ondelete=ondelete)


def upgrade() -> None:
    dialect = op.get_bind().dialect
    if dialect.name not in ("mysql", "mariadb"):
        return
    _retype(f" CHARACTER SET utf8mb4 COLLATE {name_collation(dialect)}")


def downgrade() -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    _retype("")  # the table's default character set and collation
