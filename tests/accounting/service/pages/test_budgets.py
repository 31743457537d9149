"""Budgets as the pages word them: meters, allocations, and the notices people read."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from eohub.accounting.service.pages.budgets import (
    Meter,
    Notice,
    describe_allocation,
    enforcement_notices,
    group_budget,
    group_standing,
    num,
    undefined_budget,
)
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.enforcement import WarningInfo
from eohub.domain.accounting.periods import Allocation
from tests.accounting.service.pages.pages_support import EVIL, NOW, pages_store


@pytest.fixture
def store(tmp_path: Path) -> AccountingStore:
    return pages_store(tmp_path)


@pytest.mark.parametrize(
    ("used", "limit", "left", "percent", "level"),
    [
        (5.0, None, None, None, "secondary"),
        (0.0, 10.0, 10.0, 0.0, "success"),
        (7.9, 10.0, 2.1, 79.0, "success"),
        (8.0, 10.0, 2.0, 80.0, "warning"),
        (9.99, 10.0, 0.01, 99.9, "warning"),
        (10.0, 10.0, 0.0, 100.0, "danger"),
        (12.0, 10.0, 0.0, 100.0, "danger"),
        (0.0, 0.0, 0.0, 100.0, "danger"),  # a zero budget is spent from the start
    ],
)
def test_a_meter(
    used: float, limit: float | None, left: float | None, percent: float | None, level: str
) -> None:
    meter = Meter("core-hours", used, limit)
    assert meter.left == pytest.approx(left)
    assert meter.percent == pytest.approx(percent)
    assert meter.level == level


@pytest.mark.parametrize(
    ("allocation", "words"),
    [
        ("month", "monthly"),
        ("quarter", "quarterly"),
        ("year", "yearly"),
        ("rolling:30", "rolling 30 days"),
    ],
)
def test_allocations_in_words(allocation: str, words: str) -> None:
    assert describe_allocation(Allocation.parse(allocation)) == words


def test_num_keeps_none() -> None:
    assert (num(None), num(3), num(1)) == (None, 3.0, 1.0)


def test_enforcement_warnings_say_what_happens_next() -> None:
    warnings = [
        WarningInfo("climate", "", "The budget is spent.", NOW, NOW + timedelta(hours=1), (1,)),
        WarningInfo("astro", "bob", "Bob's share is spent.", NOW, None, ()),
    ]
    assert enforcement_notices(warnings) == [
        Notice(
            "danger", "The budget is spent. Its servers will be stopped at 2026-03-15 13:00 UTC."
        ),
        Notice(
            "danger", "Bob's share is spent. Its servers keep running, but new ones are refused."
        ),
    ]
    assert enforcement_notices([]) == []


def test_a_group_without_an_allocation_warns_that_servers_are_refused() -> None:
    budget = undefined_budget("astro")
    assert (budget.group, budget.defined, budget.scopes) == ("astro", False, ())
    (notice,) = budget.notices
    assert notice.level == "warning"
    assert notice.text.startswith("The group astro has no allocation in accounting")


def test_a_members_budget_holds_the_group_and_their_share(store: AccountingStore) -> None:
    (climate,) = store.groups({"climate"})
    budget = group_budget(store, "alice", climate, NOW, as_member=True)
    assert (budget.group, budget.display_name, budget.defined) == ("climate", "Climate", True)
    assert budget.allocation == "monthly"
    assert budget.window is not None
    assert [s.scope for s in budget.scopes] == [
        "Climate's budget",
        "your share of Climate's budget",
    ]
    group, share = budget.scopes
    assert [(m.what, m.used, m.limit) for m in group.limited] == [("core-hours", 18.0, 100.0)]
    assert (share.servers, share.cores) == (1, 1.0)
    assert budget.left["core_hours"] == 2  # the share runs out first
    assert [n.text for n in budget.notices] == [
        "Your share of Climate's budget is 90% used: 18 of 20 core-hours this month."
    ]


def test_the_groups_own_budget_leaves_the_members_shares_out(store: AccountingStore) -> None:
    (climate,) = store.groups({"climate"})
    budget = group_budget(store, "carol", climate, NOW, as_member=False)
    assert [s.scope for s in budget.scopes] == ["Climate's budget"]
    assert budget.left["core_hours"] == 82
    assert budget.notices == ()


def test_the_group_standing_is_none_without_a_group_quota(store: AccountingStore) -> None:
    (climate,) = store.groups({"climate"})
    (evil,) = store.groups({EVIL})
    standing = group_standing(store, climate, NOW)
    assert standing is not None
    assert standing.scope == "group climate"
    assert float(standing.used.core_hours) == 18
    assert group_standing(store, evil, NOW) is None
