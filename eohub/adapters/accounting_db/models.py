"""SQLAlchemy 2.0 models of the accounting ledger.

Usage and limits are integers in the ledger's units (millicore-ms, MiB-ms, GPU-ms; see
:mod:`eohub.domain.accounting.ledger`), so totals are exact in every dialect. Index and constraint
names are explicit, so migrations name the same objects everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def stored_time(value: datetime) -> datetime:
    """A time as the columns hold it: naive UTC. Naive input is refused, not guessed."""
    if value.tzinfo is None:
        raise ValueError("accounting times must be timezone-aware")
    return value.astimezone(UTC).replace(tzinfo=None)


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC instant stored as a naive datetime with microseconds (MariaDB needs fsp=6)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else stored_time(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


#: The MariaDB and MySQL collations that compare names code point by code point, trailing
#: spaces included (the ``*_bin`` ones are PAD SPACE: ``'bob' = 'bob '`` there).
MARIADB_NAME_COLLATION = "utf8mb4_nopad_bin"
MYSQL_NAME_COLLATION = "utf8mb4_0900_bin"  # MySQL 8.0.17 and later


def name_collation(dialect: Dialect) -> str:
    return (
        MARIADB_NAME_COLLATION if getattr(dialect, "is_mariadb", False) else MYSQL_NAME_COLLATION
    )


class ExactString(TypeDecorator[str]):
    """A name or key compared exactly on every database: the same code points, or different.

    Users, groups, servers, profiles and images (see :mod:`eohub.domain.accounting.events`),
    and idempotency keys. SQLite's ``=`` and PostgreSQL's deterministic collations already
    compare so. MariaDB's default collations fold case and accents (``BiUser`` = ``biuser``,
    NFC ``zoë`` = NFD ``zoë``) and ignore trailing spaces, which would merge two hub users'
    rows in keys, ``WHERE`` and ``GROUP BY``; there these columns are ``utf8mb4`` with a
    binary no-pad collation, whatever the database's default.
    """

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        length = cast(String, self.impl_instance).length
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(
                mysql.VARCHAR(length, charset="utf8mb4", collation=name_collation(dialect))
            )
        return dialect.type_descriptor(String(length))


# SQLite only autoincrements an INTEGER PRIMARY KEY, which is 64-bit there anyway.
Id = BigInteger().with_variant(Integer(), "sqlite")
Name = ExactString(255)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Group(Base):
    """A group that sessions are charged to, with its allocation period."""

    __tablename__ = "groups"

    name: Mapped[str] = mapped_column(Name, primary_key=True)
    display_name: Mapped[str] = mapped_column(Name, default="")
    allocation: Mapped[str] = mapped_column(String(32), default="month")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Since when the group stores more than its whole-group storage_bytes row allows (the
    # newest sample that showed it over); NULL while it is within it, or has no such row.
    # Kept by the writes that change either (see storage.refresh_over_since).
    storage_over_since: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GroupPI(Base):
    """A principal investigator of a group: may read the group's usage."""

    __tablename__ = "group_pis"

    group: Mapped[str] = mapped_column(
        Name, ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[str] = mapped_column(Name, primary_key=True)

    __table_args__ = (Index("ix_group_pis_user", "user"),)


class Quota(Base):
    """Limits for a group (``user == ""``), each member (``"*"``) or one member (a name)."""

    __tablename__ = "quotas"

    group: Mapped[str] = mapped_column(
        Name, ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True
    )
    user: Mapped[str] = mapped_column(Name, primary_key=True, default="")
    cpu_mcore_ms: Mapped[int | None] = mapped_column(BigInteger)
    mem_mib_ms: Mapped[int | None] = mapped_column(BigInteger)
    gpu_ms: Mapped[int | None] = mapped_column(BigInteger)
    max_servers: Mapped[int | None] = mapped_column(Integer)
    max_millicores: Mapped[int | None] = mapped_column(BigInteger)
    storage_bytes: Mapped[int | None] = mapped_column(BigInteger)


class Session(Base):
    """One server's life: what it held, from its start to its stop."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(Name)
    server: Mapped[str] = mapped_column(Name, default="")
    group: Mapped[str] = mapped_column(Name, ForeignKey("groups.name"))
    profile: Mapped[str] = mapped_column(Name, default="")
    image: Mapped[str] = mapped_column(Name, default="")
    millicores: Mapped[int] = mapped_column(Integer)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # The environment's display name, as the hub sent it (NULL: it sent none).
    profile_name: Mapped[str | None] = mapped_column(Name)
    # Who asked the hub to stop the server from the pages (a PI or an admin), and when;
    # NULL for any other stop. Dropped if the session closes long after the request.
    stopped_by: Mapped[str | None] = mapped_column(Name)
    stop_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The session's limits in seconds, as the hub sent them with the start (NULL: none).
    idle_timeout: Mapped[int | None] = mapped_column(Integer)
    max_duration: Mapped[int | None] = mapped_column(Integer)
    # Why the accounting service asked the hub to stop the server (at stop_requested_at):
    # the end reason once the server stops, if it stops in time for the request.
    stop_reason: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("user", "server", "started_at", name="uq_sessions_user_server_started"),
        Index("ix_sessions_group_stopped", "group", "stopped_at"),
        Index("ix_sessions_user_stopped", "user", "stopped_at"),
        Index("ix_sessions_started_at", "started_at"),
    )


class Event(Base):
    """An event already applied, by idempotency key: the same key is applied once."""

    __tablename__ = "events"

    key: Mapped[str] = mapped_column(ExactString(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[int] = mapped_column(Id, ForeignKey("sessions.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_events_session_id", "session_id"),)


class PendingStop(Base):
    """A stop that arrived before its session's start, held until the start arrives
    (see :mod:`eohub.domain.accounting.ingest_rules`); ``id`` keeps their arrival order."""

    __tablename__ = "pending_stops"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(ExactString(128), unique=True)
    user: Mapped[str] = mapped_column(Name)
    server: Mapped[str] = mapped_column(Name, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_pending_stops_started_at", "started_at"),)


class UsageTotal(Base):
    """Closed-session usage per (group, user, period): ``user == ""`` is the whole group."""

    __tablename__ = "usage_totals"

    group: Mapped[str] = mapped_column(Name, primary_key=True)
    user: Mapped[str] = mapped_column(Name, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    cpu_mcore_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    mem_mib_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu_ms: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_usage_totals_kind_period", "kind", "period_start"),)


class StorageSample(Base):
    """A measurement of a user's storage at one source, optionally attributed to a group."""

    __tablename__ = "storage_samples"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(Name)
    group: Mapped[str] = mapped_column(Name, default="")
    bytes: Mapped[int] = mapped_column(BigInteger)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # 0 when the sampler did not count files (XDMoD's storage realm requires the field).
    file_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Where it was measured (a root path, a volume claim): "" for samplers that did not say.
    source: Mapped[str] = mapped_column(Name, default="", server_default="")

    __table_args__ = (
        UniqueConstraint(
            "user", "group", "source", "measured_at", name="uq_storage_samples_sample"
        ),
        Index("ix_storage_samples_measured_at", "measured_at"),
        # The pages' series by group read each member's samples by group first.
        Index("ix_storage_samples_group_user_at", "group", "user", "measured_at"),
    )


class StorageLatest(Base):
    """The latest sample of each (user, group, source): what quota checks sum.

    Written with every samples write, in its transaction (see :mod:`.storage`), so a
    quota check reads one row per source of the group's members, not their history.
    """

    __tablename__ = "storage_latest"

    user: Mapped[str] = mapped_column(Name, primary_key=True)
    group: Mapped[str] = mapped_column(Name, primary_key=True)
    source: Mapped[str] = mapped_column(Name, primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(BigInteger, default=0)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_storage_latest_group", "group"),)
