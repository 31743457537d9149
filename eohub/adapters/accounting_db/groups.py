"""Groups, their PIs, allocation periods and quota rows: the admin side of the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any, cast

from sqlalchemy import Connection, Row, bindparam, delete, insert, select, update

from eohub.adapters.accounting_db.models import Group, GroupPI, Quota
from eohub.adapters.accounting_db.storage import MaxAge, refresh_over_since
from eohub.domain.accounting.ledger import MS_PER_HOUR
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import WHOLE_GROUP, Limits


@dataclass(frozen=True)
class GroupInfo:
    name: str
    display_name: str
    allocation: Allocation
    pis: frozenset[str] = frozenset()
    quotas: dict[str, Limits] = field(default_factory=dict)


def limits_from_row(row: Row[Any]) -> Limits:
    def hours(units: int | None, per_hour: int) -> Fraction | None:
        return None if units is None else Fraction(units, per_hour)

    return Limits(
        core_hours=hours(row.cpu_mcore_ms, 1000 * MS_PER_HOUR),
        gpu_hours=hours(row.gpu_ms, MS_PER_HOUR),
        memory_gib_hours=hours(row.mem_mib_ms, 1024 * MS_PER_HOUR),
        max_servers=row.max_servers,
        max_cores=None if row.max_millicores is None else Fraction(row.max_millicores, 1000),
        storage_bytes=row.storage_bytes,
    )


def limits_to_columns(limits: Limits) -> dict[str, int | None]:
    def units(hours: Fraction | None, per_hour: int) -> int | None:
        return None if hours is None else round(hours * per_hour)

    return {
        "cpu_mcore_ms": units(limits.core_hours, 1000 * MS_PER_HOUR),
        "gpu_ms": units(limits.gpu_hours, MS_PER_HOUR),
        "mem_mib_ms": units(limits.memory_gib_hours, 1024 * MS_PER_HOUR),
        "max_servers": limits.max_servers,
        "max_millicores": None if limits.max_cores is None else round(limits.max_cores * 1000),
        "storage_bytes": limits.storage_bytes,
    }


def load_groups(connection: Connection, names: set[str] | None = None) -> list[GroupInfo]:
    query = select(Group)
    if names is not None:
        query = query.where(Group.name.in_(names))
    # Sorted here, by code point: PostgreSQL's ORDER BY follows the database's locale
    # (``CLIMATE`` after ``climate`` in en_US), and every database must list the same.
    groups = sorted(connection.execute(query), key=lambda g: g.name)
    wanted = [g.name for g in groups]
    pis: dict[str, set[str]] = {n: set() for n in wanted}
    quotas: dict[str, dict[str, Limits]] = {n: {} for n in wanted}
    if wanted:
        for pi in connection.execute(select(GroupPI).where(GroupPI.group.in_(wanted))):
            pis[pi.group].add(pi.user)
        for q in connection.execute(select(Quota).where(Quota.group.in_(wanted))):
            quotas[q.group][q.user] = limits_from_row(q)
    return [
        GroupInfo(
            g.name,
            g.display_name,
            Allocation.parse(g.allocation),
            frozenset(pis[g.name]),
            quotas[g.name],
        )
        for g in groups
    ]


def put_group(
    connection: Connection,
    name: str,
    *,
    display_name: str | None,
    allocation: Allocation | None,
    pis: set[str] | None,
    now: datetime,
) -> bool:
    """Create or change a group; fields left as None keep their value. True if created."""
    exists = connection.execute(select(Group.name).where(Group.name == name)).first()
    values: dict[str, str] = {}
    if display_name is not None:
        values["display_name"] = display_name
    if allocation is not None:
        values["allocation"] = str(allocation)
    if exists is None:
        connection.execute(
            insert(Group).values(
                name=name,
                display_name=values.get("display_name", ""),
                allocation=values.get("allocation", "month"),
                created_at=now,
            )
        )
    elif values:
        connection.execute(update(Group).where(Group.name == name).values(**values))
    if pis is not None:
        connection.execute(delete(GroupPI).where(GroupPI.group == name))
        if pis:
            connection.execute(insert(GroupPI), [{"group": name, "user": u} for u in sorted(pis)])
    return exists is None


def put_quota(
    connection: Connection,
    group: str,
    user: str,
    limits: Limits | None,
    *,
    now: datetime | None = None,
    max_age: MaxAge = None,
) -> None:
    """Set (or, with ``None``, remove) the quota row of ``user`` in ``group``.

    The whole group's row limits its storage: a new limit may put the group over it,
    or bring it back within, so its ``storage_over_since`` is brought up to date in the
    same transaction. A limit that puts it over starts its grace ``now``, the change's
    time: the people charged to it learn of the limit from now. ``now`` and ``max_age``
    also say which storage samples still count (see :mod:`.storage`).
    """
    if user == WHOLE_GROUP:
        # Samples that stopped counting since the last write may have brought the group
        # within its old row: its old time must not carry over to the new one.
        refresh_over_since(connection, [group], now=now, max_age=max_age)
    connection.execute(delete(Quota).where(Quota.group == group, Quota.user == user))
    if limits is not None:
        connection.execute(
            insert(Quota).values(group=group, user=user, **limits_to_columns(limits))
        )
    if user == WHOLE_GROUP:
        refresh_over_since(connection, [group], now=now, max_age=max_age, changed_at=now)


def pi_groups(connection: Connection, user: str) -> set[str]:
    return set(connection.scalars(select(GroupPI.group).where(GroupPI.user == user)))


_QUOTA_GROUP = (
    select(Group.allocation, Group.display_name, Quota)
    .outerjoin(Quota, Quota.group == Group.name)
    .where(Group.name == bindparam("group"))
)


def quota_group(connection: Connection, name: str) -> GroupInfo | None:
    """A group's allocation and quota rows in one query (no PIs: quota checks need none)."""
    rows = connection.execute(_QUOTA_GROUP, {"group": name}).all()
    if not rows:
        return None
    quotas = {r.user: limits_from_row(cast(Row[Any], r)) for r in rows if r.user is not None}
    first = rows[0]
    return GroupInfo(
        name, first.display_name, Allocation.parse(first.allocation), frozenset(), quotas
    )
