"""plan_enforcement and budget_from_standing: tables of budgets, sessions and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from eohub.domain.accounting.enforcement import (
    BUDGET,
    UNCONFIRMED,
    WITHDRAWN,
    Budget,
    BudgetKey,
    Mode,
    RunningSession,
    WarningInfo,
    budget_from_standing,
    plan_enforcement,
)
from eohub.domain.accounting.ledger import MS_PER_HOUR, Usage
from eohub.domain.accounting.quota import Limits, Running, Standing
from eohub.domain.accounting.stop_reasons import IDLE

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)
SPENT = "The core-hours budget of group climate is spent: 10 of 10 used this period."
GPU_SPENT = "The GPU-hours budget of group climate is spent: 2 of 2 used this period."


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


ALICE = RunningSession(1, "alice", "", "climate", T0)
BOB_GPU = RunningSession(2, "bob", "gpu", "climate", T0, gpus=1)
CAROL_ASTRO = RunningSession(3, "carol", "", "astro", T0)

CLIMATE_SPENT = Budget("climate", spent=SPENT)
CLIMATE_GPU_SPENT = Budget("climate", gpu_spent=GPU_SPENT)
CLIMATE_OK = Budget("climate")
ALICE_SPENT = Budget("climate", "alice", spent="alice's share is spent.")
# A budget stop asked for, not confirmed yet (the hub was restarting).
ALICE_ASKED = RunningSession(1, "alice", "", "climate", T0, stop_reason=BUDGET)


def warned(key: BudgetKey, minute: float, *ids: int, reason: str = SPENT) -> WarningInfo:
    return WarningInfo(key[0], key[1], reason, at(minute), at(minute) + GRACE, ids)


GROUP: BudgetKey = ("climate", "")

# (case, mode, budgets, sessions, warnings before, now (min),
#  issued keys, warnings after {key: first minute}, cleared {key: reason words}, stopped ids)
CASES = [
    ("nothing spent", Mode.STOP, [CLIMATE_OK], [ALICE], {}, 0, [], {}, {}, []),
    ("spent: first warning", Mode.STOP, [CLIMATE_SPENT], [ALICE, BOB_GPU], {}, 0,
     [GROUP], {GROUP: 0}, {}, []),
    ("still spent within the grace: no new warning, no stop", Mode.STOP, [CLIMATE_SPENT],
     [ALICE], {GROUP: warned(GROUP, 0, 1)}, 14, [], {GROUP: 0}, {}, []),
    ("grace over: stop every server charged to it", Mode.STOP, [CLIMATE_SPENT],
     [ALICE, BOB_GPU, CAROL_ASTRO], {GROUP: warned(GROUP, 0, 1, 2)}, 15, [], {GROUP: 0}, {},
     [1, 2]),
    ("warn mode never stops", Mode.WARN, [CLIMATE_SPENT], [ALICE],
     {GROUP: warned(GROUP, 0, 1)}, 600, [], {GROUP: 0}, {}, []),
    ("off mode clears and does nothing", Mode.OFF, [CLIMATE_SPENT], [ALICE],
     {GROUP: warned(GROUP, 0, 1)}, 600, [], {}, {GROUP: "off"}, []),
    ("budget back (new period, raised quota): cleared", Mode.STOP, [CLIMATE_OK], [ALICE],
     {GROUP: warned(GROUP, 0, 1)}, 20, [], {}, {GROUP: "available again"}, []),
    ("servers gone: cleared", Mode.STOP, [], [], {GROUP: warned(GROUP, 0, 1)}, 20, [], {},
     {GROUP: "no server"}, []),
    ("GPU hours spent: GPU servers only", Mode.STOP, [CLIMATE_GPU_SPENT], [ALICE, BOB_GPU],
     {GROUP: warned(GROUP, 0, 2, reason=GPU_SPENT)}, 30, [], {GROUP: 0}, {}, [2]),
    ("GPU hours spent, no GPU server: no warning", Mode.STOP, [CLIMATE_GPU_SPENT], [ALICE],
     {}, 0, [], {}, {}, []),
    ("GPU warning, GPU server gone: cleared", Mode.STOP, [CLIMATE_GPU_SPENT], [ALICE],
     {GROUP: warned(GROUP, 0, 2, reason=GPU_SPENT)}, 5, [], {}, {GROUP: "no server"}, []),
    ("a member's own budget: only their servers", Mode.STOP, [CLIMATE_OK, ALICE_SPENT],
     [ALICE, BOB_GPU], {("climate", "alice"): warned(("climate", "alice"), 0, 1)}, 15, [],
     {("climate", "alice"): 0}, {}, [1]),
    ("group and member both spent: one stop per server", Mode.STOP,
     [CLIMATE_SPENT, ALICE_SPENT], [ALICE],
     {GROUP: warned(GROUP, 0, 1), ("climate", "alice"): warned(("climate", "alice"), 5, 1)},
     15, [], {GROUP: 0, ("climate", "alice"): 5}, {}, [1]),
    ("a stop asked for is asked again while the budget is spent", Mode.STOP, [CLIMATE_SPENT],
     [ALICE_ASKED, BOB_GPU], {}, 20, [GROUP], {GROUP: 20}, {}, [1]),
    ("a stop asked for is not asked again once the budget is back", Mode.STOP, [CLIMATE_OK],
     [ALICE_ASKED, BOB_GPU], {}, 20, [], {}, {}, []),
    ("warn mode does not carry out a stop asked for in stop mode", Mode.WARN, [CLIMATE_SPENT],
     [ALICE_ASKED], {}, 20, [GROUP], {GROUP: 20}, {}, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "budgets", "sessions", "before", "now", "issued", "after", "cleared", "stopped"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_enforcement(
    mode: Mode,
    budgets: list[Budget],
    sessions: list[RunningSession],
    before: dict[BudgetKey, WarningInfo],
    now: float,
    issued: list[BudgetKey],
    after: dict[BudgetKey, float],
    cleared: dict[BudgetKey, str],
    stopped: list[int],
) -> None:
    plan = plan_enforcement(
        budgets=budgets, sessions=sessions, warnings=before, mode=mode, grace=GRACE, now=at(now)
    )
    assert [w.key for w in plan.issued] == issued
    assert {k: w.first_warned_at for k, w in plan.warnings.items()} == {
        k: at(m) for k, m in after.items()
    }
    assert {c.warning.key: c.reason for c in plan.cleared}.keys() == cleared.keys()
    for c in plan.cleared:
        assert cleared[c.warning.key] in c.reason
    assert [s.session.id for s in plan.stops] == stopped
    for s in plan.stops:
        assert s.reason
    for key, w in plan.warnings.items():
        assert w.stop_at == (w.first_warned_at + GRACE if mode is Mode.STOP else None)
        assert w.reason
        assert w.key == key


def test_a_stop_asked_for_again_says_so() -> None:
    plan = plan_enforcement(
        budgets=[CLIMATE_SPENT],
        sessions=[ALICE_ASKED],
        warnings={},
        mode=Mode.STOP,
        grace=GRACE,
        now=T0,
    )
    assert [(s.session, s.reason) for s in plan.stops] == [(ALICE_ASKED, UNCONFIRMED)]
    assert plan.withdrawn == ()
    assert BUDGET == "budget"


BOB_ASKED = RunningSession(2, "bob", "gpu", "climate", T0, gpus=1, stop_reason=BUDGET)
ALICE_IDLE_ASKED = RunningSession(1, "alice", "", "climate", T0, stop_reason=IDLE)

# A budget stop asked for and not confirmed (the hub was restarting): asked again while
# the budget is still spent, else withdrawn.
# (case, mode, budgets, sessions, stopped ids, withdrawn ids)
ASKED_CASES = [
    ("still spent: asked again at once, before any grace", Mode.STOP, [CLIMATE_SPENT],
     [ALICE_ASKED, BOB_GPU], [1], []),
    ("budget back (new period, raised quota): withdrawn", Mode.STOP, [CLIMATE_OK],
     [ALICE_ASKED, BOB_GPU], [], [1]),
    ("GPU hours spent, no GPU held: withdrawn", Mode.STOP, [CLIMATE_GPU_SPENT], [ALICE_ASKED],
     [], [1]),
    ("GPU hours spent, GPU held: asked again", Mode.STOP, [CLIMATE_GPU_SPENT], [BOB_ASKED],
     [2], []),
    ("the member's own budget spent: asked again", Mode.STOP, [CLIMATE_OK, ALICE_SPENT],
     [ALICE_ASKED], [1], []),
    ("no budget left to enforce (allocation gone): withdrawn", Mode.STOP, [], [ALICE_ASKED],
     [], [1]),
    ("warn mode never carries it out: withdrawn", Mode.WARN, [CLIMATE_SPENT], [ALICE_ASKED],
     [], [1]),
    ("another reason recorded: not ours to withdraw", Mode.STOP, [CLIMATE_OK],
     [ALICE_IDLE_ASKED], [], []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "budgets", "sessions", "stopped", "withdrawn"),
    [c[1:] for c in ASKED_CASES],
    ids=[c[0] for c in ASKED_CASES],
)
def test_a_budget_stop_asked_for_is_seen_through_only_while_the_budget_is_spent(
    mode: Mode,
    budgets: list[Budget],
    sessions: list[RunningSession],
    stopped: list[int],
    withdrawn: list[int],
) -> None:
    plan = plan_enforcement(
        budgets=budgets, sessions=sessions, warnings={}, mode=mode, grace=GRACE, now=at(20)
    )
    assert [s.session.id for s in plan.stops] == stopped
    assert [w.session.id for w in plan.withdrawn] == withdrawn
    for w in plan.withdrawn:
        assert w.reason == WITHDRAWN[mode]


def test_zero_grace_warns_and_stops_in_one_round() -> None:
    plan = plan_enforcement(
        budgets=[CLIMATE_SPENT],
        sessions=[ALICE],
        warnings={},
        mode=Mode.STOP,
        grace=timedelta(0),
        now=T0,
    )
    assert [w.key for w in plan.issued] == [GROUP]
    assert [s.session for s in plan.stops] == [ALICE]


def test_a_budget_over_time() -> None:
    """Spent at 13:00, warned; stopped after the grace; a new period clears the warning."""
    rounds = [
        # (minute, budget, sessions running) -> (issued?, stopped ids, warning in force?)
        (0, CLIMATE_OK, [ALICE], False, [], False),
        (60, CLIMATE_SPENT, [ALICE], True, [], True),
        (70, CLIMATE_SPENT, [ALICE, BOB_GPU], False, [], True),
        (75, CLIMATE_SPENT, [ALICE, BOB_GPU], False, [1, 2], True),
        (76, CLIMATE_SPENT, [], False, [], False),
        # A quota check that failed open let a server start again: a new, full grace.
        (80, CLIMATE_SPENT, [ALICE], True, [], True),
        (90, CLIMATE_OK, [ALICE], False, [], False),
    ]
    warnings: dict[BudgetKey, WarningInfo] = {}
    for minute, budget, sessions, issued, stopped, in_force in rounds:
        plan = plan_enforcement(
            budgets=[budget] if sessions else [],
            sessions=sessions,
            warnings=warnings,
            mode=Mode.STOP,
            grace=GRACE,
            now=at(minute),
        )
        assert bool(plan.issued) is issued, minute
        assert [s.session.id for s in plan.stops] == stopped, minute
        assert (GROUP in plan.warnings) is in_force, minute
        warnings = dict(plan.warnings)
        if in_force:
            assert warnings[GROUP].sessions == tuple(s.id for s in sessions)
    assert not warnings


# -- budget_from_standing --------------------------------------------------------------


def hours(core: float = 0, mem_gib: float = 0, gpu: float = 0) -> Usage:
    return Usage(
        cpu_mcore_ms=int(core * 1000 * MS_PER_HOUR),
        mem_mib_ms=int(mem_gib * 1024 * MS_PER_HOUR),
        gpu_ms=int(gpu * MS_PER_HOUR),
    )


H = Fraction


@pytest.mark.parametrize(
    ("limits", "used", "spent", "gpu_spent"),
    [
        (Limits(), hours(1000, 1000, 1000), None, None),
        (Limits(core_hours=H(10)), hours(9.99), None, None),
        (Limits(core_hours=H(10)), hours(10), "core-hours", None),
        (Limits(memory_gib_hours=H(8)), hours(mem_gib=9), "memory GiB-hours", None),
        (Limits(gpu_hours=H(2)), hours(gpu=2), None, "GPU-hours"),
        (Limits(core_hours=H(10), gpu_hours=H(2)), hours(10, gpu=2), "core-hours", None),
        # Concurrency and storage limits refuse new servers but stop nothing.
        (Limits(max_servers=0, max_cores=H(0), storage_bytes=0), hours(1), None, None),
    ],
)
def test_budget_from_standing(
    limits: Limits, used: Usage, spent: str | None, gpu_spent: str | None
) -> None:
    standing = Standing("group climate", limits, used, Running(5, 5000), storage_bytes=10)
    budget = budget_from_standing("climate", "", standing)
    assert budget.key == ("climate", "")
    for got, words in ((budget.spent, spent), (budget.gpu_spent, gpu_spent)):
        if words is None:
            assert got is None
        else:
            assert got is not None
            assert words in got
            assert "group climate" in got
