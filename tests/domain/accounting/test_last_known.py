"""Quota decisions from the last standing: what they count, how old it may be, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eohub.domain.accounting.last_known import LastKnown, LetThrough, Room, project, refusal
from eohub.domain.accounting.ledger import GIB, Resources
from eohub.domain.accounting.quota import Limits, Running, Standing, decide, standing_json

ONE_CORE = Resources(1000, 2 * GIB)
GPU = Resources(1000, 2 * GIB, 1)


def room(**fields: Any) -> dict[str, Any]:
    return {
        "servers_left": None,
        "millicores_left": None,
        "core_hours_left": None,
        "gpu_hours_left": None,
        "memory_gib_hours_left": None,
        "storage_over": False,
        "running": {"servers": 0, "millicores": 0, "memory_bytes": 0, "gpus": 0},
    } | fields


def body(group: dict[str, Any] | None, member: dict[str, Any] | None = None, **answer: Any) -> Any:
    return {
        "allowed": True,
        "reason": "Within quota.",
        "budget_left": {},
        "standing": {"group": group, "member": member},
    } | answer


@pytest.mark.parametrize(
    ("case", "group", "member", "spawns", "request_", "allowed", "words"),
    [
        ("no limits", None, None, 5, ONE_CORE, True, "Within quota by its last standing"),
        ("room for one more", room(servers_left=3), None, 2, ONE_CORE, True, "Within quota"),
        (
            "the spawns let through since fill the group",
            room(servers_left=3),
            None,
            3,
            ONE_CORE,
            False,
            "with 3 servers started since, group climate probably runs as many servers",
        ),
        (
            "the user's own row counts only their spawns",
            None,
            room(servers_left=1),
            1,
            ONE_CORE,
            False,
            "user alice in group climate probably runs as many servers",
        ),
        (
            "cores",
            room(millicores_left=2500),
            None,
            2,
            ONE_CORE,
            False,
            "group climate probably holds as many cores as it may",
        ),
        (
            "a spent GPU budget refuses GPUs",
            room(gpu_hours_left=0.0),
            None,
            0,
            GPU,
            False,
            "the GPU-hours budget of group climate is probably spent",
        ),
        (
            "a spent GPU budget lets CPU work on",
            room(gpu_hours_left=0.0),
            None,
            0,
            ONE_CORE,
            True,
            "",
        ),
    ],
)
def test_decisions_count_the_spawns_let_through_since(
    case: str,
    group: dict[str, Any] | None,
    member: dict[str, Any] | None,
    spawns: int,
    request_: Resources,
    allowed: bool,
    words: str,
) -> None:
    known = LastKnown(max_age=900)
    known.observe("alice", "climate", body(group, member), asked_at=100.0)
    for i in range(spawns):
        known.let_through("alice", "climate", f"s{i}", ONE_CORE, 100.0 + i)
    verdict = known.decide("alice", "climate", request_, now=110.0)
    assert verdict is not None, case
    assert verdict.allowed is allowed, case
    assert words in verdict.reason, case


def test_no_standing_or_too_old_leaves_it_to_the_fallback() -> None:
    known = LastKnown(max_age=60)
    assert known.decide("alice", "climate", ONE_CORE, now=0.0) is None
    known.observe("alice", "climate", body(room(servers_left=3)), asked_at=100.0)
    assert known.decide("alice", "climate", ONE_CORE, now=160.0) is not None
    assert known.decide("alice", "climate", ONE_CORE, now=160.5) is None
    # Another user of the same group has no standing of their own yet.
    assert known.decide("bob", "climate", ONE_CORE, now=101.0) is None
    # An answer without a standing (an older service) forgets the user's standing.
    known.observe("alice", "climate", {"allowed": True, "reason": "ok"}, asked_at=120.0)
    assert known.decide("alice", "climate", ONE_CORE, now=121.0) is None


def test_a_last_refusal_stays_a_refusal() -> None:
    known = LastKnown(max_age=900)
    spent = body(None, None, allowed=False, reason="The core-hours budget of group x is spent.")
    known.observe("alice", "climate", spent, asked_at=0.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=120.0)
    assert verdict is not None
    assert not verdict.allowed
    assert (
        verdict.reason == "Its last answer, 2 min ago: The core-hours budget of group x is spent."
    )


def test_hours_burn_at_the_running_rate_and_by_each_spawn_since() -> None:
    running = {"servers": 1, "millicores": 1000, "memory_bytes": 0, "gpus": 0}
    standing = room(core_hours_left=3.0, running=running)
    at_zero = LetThrough("alice", "s", ONE_CORE, at=0.0)
    later, words = project(Room(0.0, None, None, {"core_hours": 3.0}, Resources(1000)), [], 3600)
    assert later.hours_left["core_hours"] == pytest.approx(2.0)
    later, words = project(
        Room(0.0, None, None, {"core_hours": 3.0}, Resources(1000)), [at_zero], 3600
    )
    assert later.hours_left["core_hours"] == pytest.approx(1.0)
    assert words == "1 server started since"
    assert refusal(later, ONE_CORE, "group g") is None
    known = LastKnown(max_age=4 * 3600)
    known.observe("alice", "climate", body(standing), asked_at=0.0)
    known.let_through("alice", "climate", "s", ONE_CORE, 0.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=1.5 * 3600)
    assert verdict is not None
    assert not verdict.allowed
    assert "core-hours budget of group climate is probably spent" in verdict.reason
    assert verdict.budget_left["core_hours"] == 0.0


def test_a_spawn_counts_until_the_service_has_counted_it() -> None:
    known = LastKnown(max_age=900, settle=600)
    known.observe("alice", "climate", body(room(servers_left=2)), asked_at=0.0)
    known.let_through("alice", "climate", "a", ONE_CORE, 1.0)
    known.let_through("bob", "climate", "b", ONE_CORE, 2.0)
    # A newer answer that may not include them yet: both still count.
    known.observe("alice", "climate", body(room(servers_left=2)), asked_at=3.0)
    assert not known.decide("alice", "climate", ONE_CORE, now=4.0).allowed  # type: ignore[union-attr]
    # Alice's start reached the service at 4: a measurement asked at 5 counts it.
    known.queued("alice", "a")
    known.delivered("alice", "a", now=4.0)
    known.observe("alice", "climate", body(room(servers_left=1)), asked_at=5.0)
    assert not known.decide("alice", "climate", ONE_CORE, now=6.0).allowed  # type: ignore[union-attr]
    # Bob's spawn never started: ten minutes on, a measurement is taken to be without it.
    known.observe("alice", "climate", body(room(servers_left=1)), asked_at=603.0)
    assert known.decide("alice", "climate", ONE_CORE, now=604.0).allowed  # type: ignore[union-attr]


def test_a_started_spawn_counts_until_its_start_is_confirmed_however_long() -> None:
    known = LastKnown(max_age=900, settle=600)
    known.observe("alice", "climate", body(room(servers_left=1)), asked_at=0.0)
    known.let_through("bob", "climate", "b", ONE_CORE, 1.0)
    known.queued("bob", "b")  # started; its event waits in the outbox
    known.observe("alice", "climate", body(room(servers_left=1)), asked_at=700.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=701.0)
    assert verdict is not None
    assert not verdict.allowed


def test_another_users_answer_does_not_make_my_own_row_forget_my_spawns() -> None:
    known = LastKnown(max_age=900)
    each = room(servers_left=1)  # "*": {"max_servers": 1}
    known.observe("alice", "climate", body(None, each), asked_at=0.0)
    known.let_through("alice", "climate", "a", ONE_CORE, 1.0)
    known.queued("alice", "a")
    known.delivered("alice", "a", now=5.0)
    known.observe("bob", "climate", body(None, each), asked_at=10.0)  # counts Alice's "a"
    verdict = known.decide("alice", "climate", ONE_CORE, now=20.0)
    assert verdict is not None
    assert not verdict.allowed  # her own row was measured at 0, without "a"


def test_one_confirmed_start_confirms_one_spawn_the_oldest() -> None:
    known = LastKnown(max_age=900)
    known.observe("alice", "climate", body(room(servers_left=2)), asked_at=0.0)
    known.let_through("alice", "climate", "", ONE_CORE, 1.0)
    known.let_through("alice", "climate", "", ONE_CORE, 2.0)
    known.delivered("alice", "", now=3.0)
    assert [s.delivered_at for s in known.spawns["climate"]] == [3.0, None]


def test_an_older_answer_arriving_late_does_not_replace_a_newer_one() -> None:
    known = LastKnown(max_age=900)
    known.observe("alice", "climate", body(room(), allowed=False, reason="Spent."), 10.0)
    known.observe("alice", "climate", body(room()), asked_at=5.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=11.0)
    assert verdict is not None
    assert not verdict.allowed


def test_a_group_over_its_storage_quota_is_refused_from_anyones_newer_answer() -> None:
    known = LastKnown(max_age=900)
    known.observe("alice", "climate", body(room()), asked_at=0.0)
    known.observe("bob", "climate", body(room(storage_over=True), allowed=False), 5.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=6.0)
    assert verdict is not None
    assert "stores more than its storage quota" in verdict.reason


@pytest.mark.parametrize(("days_over", "allowed"), [(1, True), (3, False)])
def test_storage_over_means_refused_for_storage(days_over: int, allowed: bool) -> None:
    """In its grace the service allows a group over its storage quota, and so does the
    last standing; past it, both refuse."""
    since = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    over = Standing(
        "group climate",
        Limits(storage_bytes=10 * GIB),
        storage_bytes=12 * GIB,
        storage_over_since=since,
    )
    answer = decide(ONE_CORE, [over], now=since + timedelta(days=days_over)).to_json()
    assert answer["allowed"] is allowed
    assert answer["standing"]["group"]["storage_over"] is not allowed
    known = LastKnown(max_age=900)
    known.observe("alice", "climate", answer, asked_at=0.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=1.0)
    assert verdict is not None
    assert verdict.allowed is allowed


def test_the_newest_group_standing_wins_whoever_asked() -> None:
    known = LastKnown(max_age=900)
    known.observe("alice", "climate", body(room(servers_left=5)), asked_at=10.0)
    known.observe("bob", "climate", body(room(servers_left=1)), asked_at=20.0)
    known.observe("alice", "climate", body(room(servers_left=5)), asked_at=15.0)  # late reply
    verdict = known.decide("alice", "climate", ONE_CORE, now=21.0)
    assert verdict is not None
    assert verdict.allowed
    known.let_through("bob", "climate", "b", ONE_CORE, 21.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=22.0)
    assert verdict is not None
    assert not verdict.allowed


@pytest.mark.parametrize(
    "bad",
    [
        "nope",
        {"group": {"servers_left": "3"}, "member": None},
        {"group": {"servers_left": True}, "member": None},
        {"group": {"core_hours_left": "many"}, "member": None},
        {"group": {"running": []}, "member": None},
        {"group": [], "member": None},
        {"group": {}, "member": None},  # missing keys would read as "no limit"
        {"group": room(core_hours_left=float("nan")), "member": None},
        {"group": room(storage_over="no"), "member": None},
        {"group": room(running={"millicores": -1}), "member": None},
    ],
)
def test_a_standing_eohub_cannot_read_is_no_standing(bad: Any) -> None:
    known = LastKnown(max_age=900)
    known.observe("alice", "climate", body(room(servers_left=3)), asked_at=0.0)
    known.observe("alice", "climate", {"allowed": True, "reason": "", "standing": bad}, 1.0)
    assert known.decide("alice", "climate", ONE_CORE, now=2.0) is None


def test_the_service_sends_each_scope_room() -> None:
    group = Standing(
        "group climate",
        Limits(max_servers=10, max_cores=None, core_hours=None),
        running=Running(4, 2500, 3 * GIB, 1),
    )
    member = Standing(
        "user alice in group climate",
        Limits(max_servers=2, max_cores=3),
        running=Running(1, 1000),
        member=True,
    )
    sent = standing_json([group, member])
    assert sent["group"]["servers_left"] == 6
    assert sent["group"]["millicores_left"] is None
    assert sent["group"]["storage_over"] is False
    assert sent["group"]["running"] == {
        "servers": 4,
        "millicores": 2500,
        "memory_bytes": 3 * GIB,
        "gpus": 1,
    }
    assert sent["member"]["servers_left"] == 1
    assert sent["member"]["millicores_left"] == 2000
    assert standing_json([member])["group"] is None
    known = LastKnown(max_age=900)
    known.observe("alice", "climate", body(sent["group"], sent["member"]), asked_at=0.0)
    verdict = known.decide("alice", "climate", Resources(2500), now=1.0)
    assert verdict is not None
    assert not verdict.allowed


def test_a_group_in_its_grace_is_refused_once_the_grace_ends_in_an_outage() -> None:
    """The service allowed it, in its grace ending in 2 hours; the outage lasts longer."""
    since = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    asked = since + timedelta(days=3) - timedelta(hours=2)
    over = Standing(
        "group climate",
        Limits(storage_bytes=10 * GIB),
        storage_bytes=12 * GIB,
        storage_over_since=since,
    )
    answer = decide(ONE_CORE, [over], now=asked).to_json()
    assert answer["allowed"] is True
    assert answer["standing"]["group"]["storage"]["refused_from"] == "2026-12-09T10:00:00.000000Z"
    known = LastKnown(max_age=4 * 3600, wall_clock=asked.timestamp)
    known.observe("alice", "climate", answer, asked_at=100.0)
    before = known.decide("alice", "climate", ONE_CORE, now=100.0 + 7100)
    assert before is not None
    assert before.allowed
    after = known.decide("alice", "climate", ONE_CORE, now=100.0 + 7200)
    assert after is not None
    assert not after.allowed
    assert "stores more than its storage quota, past its grace" in after.reason


@pytest.mark.parametrize(
    "storage",
    [
        None,
        "soon",
        {},
        {"refused_from": None},
        {"refused_from": 12},
        {"refused_from": "tomorrow"},
        {"refused_from": "2026-12-09T10:00:00"},  # no offset
        {"refused_from": "9999-12-09T10:00:00Z"},
        {"refused_from": "2026-13-09T10:00:00Z"},
    ],
)
def test_a_refusal_date_eohub_cannot_read_is_no_refusal(storage: Any) -> None:
    known = LastKnown(max_age=900, wall_clock=lambda: 2e9)
    answer = body(room(storage=storage))
    known.observe("alice", "climate", answer, asked_at=0.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=800.0)
    assert verdict is not None
    assert verdict.allowed


def test_a_refusal_date_long_past_refuses_at_once() -> None:
    known = LastKnown(max_age=900, wall_clock=lambda: 2e9)
    answer = body(room(storage={"refused_from": "2026-01-01T00:00:00Z"}))
    known.observe("alice", "climate", answer, asked_at=0.0)
    verdict = known.decide("alice", "climate", ONE_CORE, now=0.0)
    assert verdict is not None
    assert not verdict.allowed
