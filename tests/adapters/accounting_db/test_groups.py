"""Groups, their PIs and quota rows: stored, changed, and read back as GroupInfo."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from types import SimpleNamespace

import pytest
from sqlalchemy import Engine

from eohub.adapters.accounting_db.groups import (
    limits_from_row,
    limits_to_columns,
    load_groups,
    pi_groups,
    put_group,
    put_quota,
    quota_group,
)
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import Limits

NOW = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "limits",
    [
        Limits(),
        Limits(core_hours=Fraction(10), gpu_hours=Fraction(1, 2), memory_gib_hours=Fraction(64)),
        Limits(max_servers=2, max_cores=Fraction(3, 2), storage_bytes=10**12),
    ],
)
def test_limits_survive_their_columns(limits: Limits) -> None:
    columns = limits_to_columns(limits)
    assert limits_from_row(SimpleNamespace(**columns)) == limits  # type: ignore[arg-type]


def test_limits_are_stored_in_whole_units() -> None:
    columns = limits_to_columns(Limits(core_hours=Fraction(1), max_cores=Fraction(1, 4)))
    assert columns["cpu_mcore_ms"] == 1000 * 3_600_000
    assert columns["max_millicores"] == 250
    assert columns["gpu_ms"] is None


def test_put_group_creates_then_changes_only_what_it_is_given(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as c:
        assert put_group(c, "ocean", display_name=None, allocation=None, pis=None, now=NOW)
        created = load_groups(c)[0]
        assert (created.display_name, str(created.allocation), created.pis) == (
            "",
            "month",
            frozenset(),
        )
        assert not put_group(
            c, "ocean", display_name="Ocean", allocation=None, pis={"carol", "dan"}, now=NOW
        )
        assert not put_group(
            c, "ocean", display_name=None, allocation=Allocation.parse("year"), pis=None, now=NOW
        )
        changed = load_groups(c)[0]
    assert changed.display_name == "Ocean"
    assert str(changed.allocation) == str(Allocation.parse("year"))
    assert changed.pis == frozenset({"carol", "dan"})


def test_groups_pis_and_quotas_are_read_back(sqlite_engine: Engine) -> None:
    limits = Limits(core_hours=Fraction(5), max_servers=1)
    with sqlite_engine.begin() as c:
        for name in ("climate", "CLIMATE", "Ärzte", "b"):
            put_group(c, name, display_name=None, allocation=None, pis={"carol"}, now=NOW)
        put_quota(c, "climate", "", limits)
        put_quota(c, "climate", "ada", Limits(max_servers=3))
        put_quota(c, "climate", "ada", None)  # removed again
    with sqlite_engine.connect() as c:
        # Sorted by code point, whatever the database's collation.
        assert [g.name for g in load_groups(c)] == ["CLIMATE", "b", "climate", "Ärzte"]
        assert [g.name for g in load_groups(c, {"b", "nope"})] == ["b"]
        assert load_groups(c, set()) == []
        assert load_groups(c, {"climate"})[0].quotas == {"": limits}
        assert pi_groups(c, "carol") == {"climate", "CLIMATE", "Ärzte", "b"}
        assert pi_groups(c, "ada") == set()
        found = quota_group(c, "climate")
        assert found is not None
        assert (found.quotas, found.pis) == ({"": limits}, frozenset())
        assert quota_group(c, "b") is not None
        assert quota_group(c, "b").quotas == {}  # type: ignore[union-attr]
        assert quota_group(c, "nope") is None
