"""plan_lifetimes: tables of sessions, the hub's view of their servers, warnings and clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eohub.domain.accounting.lifetimes import (
    HubView,
    LifetimeWarning,
    LimitedSession,
    idle_since,
    plan_lifetimes,
    span_text,
)
from eohub.domain.accounting.stop_reasons import BUDGET, IDLE, MAX_DURATION

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
WARN = timedelta(minutes=15)
HOUR = 3600


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def session(
    idle: int | None = None, max_: int | None = None, *, asked: str | None = None, sid: int = 1
) -> LimitedSession:
    return LimitedSession(sid, "alice", "lab", "climate", T0, idle, max_, asked)


def warned(first: float, ends: float, sid: int = 1) -> LifetimeWarning:
    return LifetimeWarning(sid, "alice", "lab", "climate", MAX_DURATION, at(ends), at(first))


ACTIVE_AT_50 = HubView(last_activity=at(50))


# (case, session, hub's view (None: not listed), warning before, now in minutes,
#  expected: stop reason or None, warning kept (first, ends) or None, issued, cleared)
CASES = [
    ("no limits", session(), HubView(), None, 600, None, None, False, False),
    # Idle: measured from the last activity, or from the start when later.
    ("idle, never active", session(2 * HOUR), HubView(), None, 119, None, None, False, False),
    ("idle at its limit", session(2 * HOUR), HubView(), None, 120, IDLE, None, False, False),
    ("active lately", session(2 * HOUR), ACTIVE_AT_50, None, 169, None, None, False, False),
    ("idle since activity", session(2 * HOUR), ACTIVE_AT_50, None, 170, IDLE, None, False, False),
    (
        "activity before the start counts from the start",
        session(2 * HOUR),
        HubView(last_activity=at(-600)),
        None,
        119,
        None,
        None,
        False,
        False,
    ),
    # Maximum duration: a warning from ends - WARN, the stop at ends.
    ("max, early", session(None, 8 * HOUR), HubView(), None, 464, None, None, False, False),
    ("max, warned", session(None, 8 * HOUR), HubView(), None, 465, None, (465, 480), True, False),
    (
        "max, warning kept",
        session(None, 8 * HOUR),
        HubView(),
        warned(465, 480),
        470,
        None,
        (465, 480),
        False,
        False,
    ),
    (
        "max, stopped after the warning",
        session(None, 8 * HOUR),
        HubView(),
        warned(465, 480),
        480,
        MAX_DURATION,
        (465, 480),
        False,
        False,
    ),
    (
        "max, late round: warned and stopped at once, never postponed",
        session(None, 8 * HOUR),
        HubView(),
        None,
        500,
        MAX_DURATION,
        (500, 480),
        True,
        False,
    ),
    (
        "max shorter than the warning period: warned from the start",
        session(None, 600),
        HubView(),
        None,
        0,
        None,
        (0, 10),
        True,
        False,
    ),
    # Both limits: the maximum duration wins when due, else idle stops first.
    (
        "both due: max wins",
        session(HOUR, 2 * HOUR),
        HubView(),
        warned(105, 120),
        130,
        MAX_DURATION,
        (105, 120),
        False,
        False,
    ),
    ("idle before max", session(HOUR, 8 * HOUR), HubView(), None, 60, IDLE, None, False, False),
    # The hub's view.
    ("not listed: left alone", session(60), None, None, 600, None, None, False, False),
    (
        "not listed: its warning kept",
        session(None, 8 * HOUR),
        None,
        warned(465, 480),
        490,
        None,
        (465, 480),
        False,
        False,
    ),
    (
        "still starting: left alone",
        session(60),
        HubView(pending="spawn"),
        None,
        600,
        None,
        None,
        False,
        False,
    ),
    (
        "someone else is stopping it",
        session(60),
        HubView(pending="stop"),
        None,
        600,
        None,
        None,
        False,
        False,
    ),
    # A stop asked for before is seen through with its reason while it holds.
    (
        "our stop unconfirmed: asked again",
        session(60, asked=IDLE),
        HubView(pending="stop"),
        None,
        61,
        IDLE,
        None,
        False,
        False,
    ),
    (
        "asked while idle, active since: not stopped",
        session(HOUR, asked=IDLE),
        HubView(last_activity=at(600)),
        None,
        601,
        None,
        None,
        False,
        False,
    ),
    (
        "a budget stop is not ours to retry",
        session(None, asked=BUDGET),
        HubView(),
        None,
        600,
        None,
        None,
        False,
        False,
    ),
    # Warnings that no longer apply.
    (
        "clock moved back: warning withdrawn",
        session(None, 8 * HOUR),
        HubView(),
        warned(465, 480),
        400,
        None,
        None,
        False,
        True,
    ),
]


@pytest.mark.parametrize(
    ("s", "view", "before", "now", "stop", "kept", "issued", "cleared"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_plan(
    s: LimitedSession,
    view: HubView | None,
    before: LifetimeWarning | None,
    now: float,
    stop: str | None,
    kept: tuple[float, float] | None,
    issued: bool,
    cleared: bool,
) -> None:
    plan = plan_lifetimes(
        sessions=[s],
        hub={} if view is None else {s.id: view},
        warnings={} if before is None else {s.id: before},
        warning_period=WARN,
        now=at(now),
    )
    assert [x.reason for x in plan.stops] == ([stop] if stop else [])
    got = plan.warnings.get(s.id)
    assert (None if got is None else (got.first_warned_at, got.stop_at)) == (
        None if kept is None else (at(kept[0]), at(kept[1]))
    )
    assert bool(plan.issued) is issued
    assert bool(plan.cleared) is cleared


# A stop asked for and not confirmed (the hub was restarting): asked again while its
# reason holds, else withdrawn. (case, session, hub's view (None: not listed), now in
# minutes, expected stop reason or None, withdrawn)
ASKED = [
    ("idle, still idle: asked again", session(HOUR, asked=IDLE), HubView(), 61, IDLE, False),
    ("idle, used since: withdrawn", session(HOUR, asked=IDLE), HubView(last_activity=at(600)),
     601, None, True),
    ("idle, used since, the hub already stopping it: seen through", session(HOUR, asked=IDLE),
     HubView(last_activity=at(600), pending="stop"), 601, IDLE, False),
    ("idle, used since, its maximum reached: stopped for that", session(HOUR, 8 * HOUR,
     asked=IDLE), HubView(last_activity=at(479)), 480, MAX_DURATION, False),
    ("idle, used since, idle past its limit again: asked again", session(HOUR, asked=IDLE),
     HubView(last_activity=at(600)), 660, IDLE, False),
    ("max duration, used since: asked again, the time only grows",
     session(HOUR, 8 * HOUR, asked=MAX_DURATION), HubView(last_activity=at(480)), 481,
     MAX_DURATION, False),
    ("idle, not listed: left alone", session(HOUR, asked=IDLE), None, 601, None, False),
    ("idle, starting: left alone", session(HOUR, asked=IDLE),
     HubView(last_activity=at(600), pending="spawn"), 601, None, False),
    ("budget: not ours to withdraw", session(HOUR, asked=BUDGET), HubView(last_activity=at(600)),
     601, None, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("s", "view", "now", "stop", "withdrawn"),
    [case[1:] for case in ASKED],
    ids=[case[0] for case in ASKED],
)
def test_a_stop_asked_for_is_seen_through_only_while_its_reason_holds(
    s: LimitedSession, view: HubView | None, now: float, stop: str | None, withdrawn: bool
) -> None:
    plan = plan_lifetimes(
        sessions=[s],
        hub={} if view is None else {s.id: view},
        warnings={},
        warning_period=WARN,
        now=at(now),
    )
    assert [x.reason for x in plan.stops] == ([stop] if stop else [])
    assert [w.session for w in plan.withdrawn] == ([s] if withdrawn else [])


def test_a_withdrawal_says_why() -> None:
    plan = plan_lifetimes(
        sessions=[session(3600, asked=IDLE)],
        hub={1: HubView(last_activity=at(100))},
        warnings={},
        warning_period=WARN,
        now=at(105),
    )
    assert [w.detail for w in plan.withdrawn] == [
        "the server was used since: idle for 5 min (limit 1 h)"
    ]


@pytest.mark.parametrize(
    ("now", "stop"), [(479.9, None), (480, MAX_DURATION), (600, MAX_DURATION)]
)
def test_a_warning_period_of_zero_warns_of_nothing(now: float, stop: str | None) -> None:
    plan = plan_lifetimes(
        sessions=[session(None, 8 * HOUR)],
        hub={1: HubView()},
        warnings={},
        warning_period=timedelta(0),
        now=at(now),
    )
    assert (plan.issued, plan.warnings) == ((), {})
    assert [x.reason for x in plan.stops] == ([stop] if stop else [])


@pytest.mark.parametrize(
    ("s", "now", "detail"),
    [
        (session(2 * HOUR), 125, "idle for 2 h 05 min (limit 2 h)"),
        (session(5), 0.1, "idle for 6 s (limit 5 s)"),
        (session(None, 8 * HOUR), 480, "ran for 8 h (maximum 8 h)"),
        (session(None, 86400 + 3600), 25 * 60, "ran for 1 d 1 h (maximum 1 d 1 h)"),
        (session(60, asked=MAX_DURATION), 1, "its stop was asked for and is not confirmed yet"),
    ],
)
def test_the_detail_says_why_in_a_sentence(s: LimitedSession, now: float, detail: str) -> None:
    plan = plan_lifetimes(
        sessions=[s], hub={1: HubView()}, warnings={}, warning_period=WARN, now=at(now)
    )
    assert [x.detail for x in plan.stops] == [detail]


def test_a_warning_whose_session_closed_is_withdrawn() -> None:
    plan = plan_lifetimes(
        sessions=[session(60, sid=2)],
        hub={2: HubView()},
        warnings={1: warned(465, 480)},
        warning_period=WARN,
        now=at(0),
    )
    assert plan.warnings == {}
    assert [(c.warning.session, c.reason) for c in plan.cleared] == [
        (1, "the server no longer runs")
    ]


def test_several_sessions_are_judged_each_on_its_own() -> None:
    sessions = [session(1200, sid=3), session(None, 8 * HOUR, sid=1), session(sid=2)]
    plan = plan_lifetimes(
        sessions=sessions,
        hub={1: HubView(), 2: HubView(), 3: HubView(last_activity=at(470))},
        warnings={},
        warning_period=WARN,
        now=at(480),
    )
    assert [(x.session.id, x.reason) for x in plan.stops] == [(1, MAX_DURATION)]
    assert [w.session for w in plan.issued] == [1]


def test_the_warning_message_names_the_server_and_the_time_left() -> None:
    w = warned(465, 480)
    assert w.message(at(470)) == (
        "The server 'lab' of alice reaches its maximum duration at "
        "2026-03-15T20:00:00+00:00 and will be stopped in 10 min."
    )
    default = LifetimeWarning(1, "bob", "", "g", MAX_DURATION, at(1), at(0))
    assert default.message(at(2)).startswith("The default server of bob ")
    assert default.message(at(2)).endswith("will be stopped now.")


@pytest.mark.parametrize(
    ("last", "since"), [(None, T0), (at(-5), T0), (at(5), at(5))], ids=["none", "before", "after"]
)
def test_idle_since(last: datetime | None, since: datetime) -> None:
    assert idle_since(session(60), HubView(last_activity=last)) == since


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 s"), (59.9, "59 s"), (60, "1 min"), (7200, "2 h"), (-3, "0 s")]
)
def test_span_text(seconds: float, text: str) -> None:
    assert span_text(seconds) == text


@pytest.mark.parametrize(
    ("s", "limited"),
    [
        (session(), False),
        (session(60), True),
        (session(None, 60), True),
        (session(asked=IDLE), True),
        (session(asked=BUDGET), False),
    ],
)
def test_which_sessions_anything_here_may_stop(s: LimitedSession, limited: bool) -> None:
    assert s.limited is limited
