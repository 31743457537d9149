"""plan_reconcile and session_start: tables of sessions, hub servers and what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eohub.domain.accounting.reconcile import (
    CannotOpenError,
    HubServer,
    OpenSession,
    StartDefaults,
    belongs_to,
    plan_reconcile,
    session_start,
)

T0 = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def session(
    id: int, user: str = "alice", server: str = "", start: float = 0, seen: float | None = None
) -> OpenSession:
    return OpenSession(id, user, server, at(start), None if seen is None else at(seen))


def hub(
    user: str = "alice",
    name: str = "",
    start: float | None = 0,
    *,
    ready: bool = True,
    pending: str | None = None,
    **options: object,
) -> HubServer:
    return HubServer(
        user, name, None if start is None else at(start), ready, pending, None, options
    )


# (case, open sessions, hub servers, expected closes {id: stop minute}, touched ids,
#  opened (user, server), skipped (user, server))
CASES = [
    ("nothing at all", [], [], {}, [], [], []),
    ("running and recorded", [session(1, seen=60)], [hub()], {}, [1], [], []),
    (
        "recorded a little after the hub started it",
        [session(1, start=2)],
        [hub(start=0)],
        {},
        [1],
        [],
        [],
    ),
    (
        "clocks differ by less than the slack",
        [session(1, start=-0.5)],
        [hub(start=0)],
        {},
        [1],
        [],
        [],
    ),
    ("missed stop: closed when last seen", [session(1, seen=90)], [], {1: 90}, [], [], []),
    ("missed stop, never seen: zero length", [session(1)], [], {1: 0}, [], [], []),
    (
        "missed stop and start: the hub restarted it",
        [session(1, seen=30)],
        [hub(start=60)],
        {1: 30},
        [],
        [("alice", "")],
        [],
    ),
    (
        "an earlier life last seen after the restart is cut at the restart",
        [session(1, seen=70)],
        [hub(start=60)],
        {1: 60},
        [],
        [("alice", "")],
        [],
    ),
    (
        "an earlier life and the current one",
        [session(1, start=0, seen=60), session(2, start=5)],
        [hub(start=4)],
        {1: 4},  # session 1 began before this server did: cut where the server began
        [2],
        [],
        [],
    ),
    (
        "duplicate sessions of the same life: the extra charges nothing",
        [session(1, start=1), session(2, start=3)],
        [hub(start=0)],
        {2: 3},
        [1],
        [],
        [],
    ),
    ("unknown running server", [], [hub(start=0)], {}, [], [("alice", "")], []),
    ("still spawning", [], [hub(ready=False, pending="spawn")], {}, [], [], [("alice", "")]),
    ("stopping", [], [hub(pending="stop")], {}, [], [], [("alice", "")]),
    ("no start time", [], [hub(start=None)], {}, [], [], [("alice", "")]),
    (
        "named servers are told apart",
        [session(1, server="gpu", seen=100), session(2, server="", seen=100)],
        [hub(name="gpu"), hub(name="cpu")],
        {2: 100},
        [1],
        [("alice", "cpu")],
        [],
    ),
    (
        "users are told apart",
        [session(1, user="bob", seen=50)],
        [hub(user="alice")],
        {1: 50},
        [],
        [("alice", "")],
        [],
    ),
    ("a page listed twice", [session(1)], [hub(), hub()], {}, [1], [], []),
]


@pytest.mark.parametrize(
    ("sessions", "servers", "closes", "touched", "opened", "skipped"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_reconcile(
    sessions: list[OpenSession],
    servers: list[HubServer],
    closes: dict[int, float],
    touched: list[int],
    opened: list[tuple[str, str]],
    skipped: list[tuple[str, str]],
) -> None:
    plan = plan_reconcile(sessions, servers, now=NOW)
    assert {c.session.id: c.stopped_at for c in plan.close} == {
        i: at(m) for i, m in closes.items()
    }
    assert [t.session.id for t in plan.touch] == touched
    assert [(o.server.user, o.server.name) for o in plan.open] == opened
    assert [(s.server.user, s.server.name) for s in plan.skip] == skipped
    assert plan.seen_at == NOW
    for item in (*plan.close, *plan.touch, *plan.open, *plan.skip):
        assert item.reason  # every action says why
    for o in plan.open:
        assert o.started_at == o.server.started


def test_servers_younger_than_open_after_wait_for_their_own_event() -> None:
    young = hub(start=(NOW - T0).total_seconds() / 60 - 1)  # a minute old
    plan = plan_reconcile([], [young], now=NOW, open_after=timedelta(minutes=2))
    assert not plan.open
    assert "waiting" in plan.skip[0].reason
    later = plan_reconcile(
        [], [young], now=NOW + timedelta(minutes=1), open_after=timedelta(minutes=2)
    )
    assert [o.server for o in later.open] == [young]


def test_close_reasons_name_the_last_sighting() -> None:
    plan = plan_reconcile([session(7, seen=90)], [], now=NOW)
    assert plan.close[0].reason == (
        "the hub no longer lists the server; last seen at 2026-03-15T13:30:00+00:00"
    )


@pytest.mark.parametrize(
    ("session_start_min", "server_start_min", "slack_min", "belongs"),
    [
        (0, 0, 1, True),
        (10, 0, 1, True),  # recorded once ready
        (-0.5, 0, 1, True),  # within the slack
        (-2, 0, 1, False),  # an earlier life
        (-2, None, 1, True),  # nothing to compare with
    ],
)
def test_belongs_to(
    session_start_min: float, server_start_min: float | None, slack_min: float, belongs: bool
) -> None:
    server = None if server_start_min is None else at(server_start_min)
    assert belongs_to(at(session_start_min), server, timedelta(minutes=slack_min)) is belongs


# -- session_start ----------------------------------------------------------------------

DEFAULTS = StartDefaults(group="unassigned", cpu=0.5, memory_bytes=1024**3, gpus=0)
KNOWN = {"climate", "unassigned"}


@pytest.mark.parametrize(
    ("options", "group", "cpu", "memory", "gpus", "noted"),
    [
        (
            {"group": "climate", "cpu": 2, "mem": "4G", "gpus": 1},
            "climate",
            2.0,
            4 * 1024**3,
            1,
            [],
        ),
        ({"group": "climate", "cpu": "0.25", "memory": 2**20}, "climate", 0.25, 2**20, 0, []),
        ({"group": "climate", "cpu": 1, "memory_bytes": "512Mi"}, "climate", 1.0, 2**29, 0, []),
        ({"group": "climate"}, "climate", 0.5, 1024**3, 0, ["no CPU"]),
        ({}, "unassigned", 0.5, 1024**3, 0, ["fallback", "no CPU"]),
        ({"group": "astro", "cpu": 1}, "unassigned", 1.0, 1024**3, 0, ["unknown group 'astro'"]),
        ({"group": "climate", "cpu": 0}, "climate", 0.5, 1024**3, 0, ["'cpu' must be above 0"]),
        ({"group": "climate", "cpu": "many"}, "climate", 0.5, 1024**3, 0, ["'cpu'"]),
        ({"group": "climate", "cpu": 1, "mem": "lots"}, "climate", 1.0, 1024**3, 0, ["'mem'"]),
        ({"group": "climate", "cpu": 1, "gpus": 1.5}, "climate", 1.0, 1024**3, 0, ["whole"]),
        ({"group": "climate", "cpu": True}, "climate", 0.5, 1024**3, 0, ["'cpu'"]),
        # A profile launch keeps its charge apart: its own options may be named cpu.
        (
            {"group": "climate", "cpu": "large", "eohub_charged": {"cpu": 4, "mem": 2**30}},
            "climate",
            4.0,
            2**30,
            0,
            [],
        ),
    ],
)
def test_session_start_reads_the_options(
    options: dict[str, object],
    group: str,
    cpu: float,
    memory: int,
    gpus: int,
    noted: list[str],
) -> None:
    start = session_start(hub(**options), DEFAULTS, KNOWN)
    assert (start.group, start.cpu, start.memory_bytes, start.gpus) == (group, cpu, memory, gpus)
    assert start.started_at == T0
    assert (start.user, start.server) == ("alice", "")
    notes = "; ".join(start.notes)
    for words in noted:
        assert words in notes
    if not noted:
        assert start.notes == ()


def test_session_start_keeps_profile_and_image() -> None:
    start = session_start(
        hub(group="climate", cpu=1, profile="pangeo", image="quay.io/pangeo:1"), DEFAULTS, KNOWN
    )
    assert (start.profile, start.image) == ("pangeo", "quay.io/pangeo:1")
    # A profile launch's image option names a choice; the image charged is kept apart.
    start = session_start(
        hub(group="climate", profile="py", image="scipy", eohub_charged={"image": "q.io/s:1"}),
        DEFAULTS,
        KNOWN,
    )
    assert (start.profile, start.image) == ("py", "q.io/s:1")


@pytest.mark.parametrize(
    ("options", "fallback", "message"),
    [
        ({}, "", "no group, and no fallback group is configured"),
        ({"group": "astro"}, "", "'astro', which accounting does not know"),
        ({}, "gone", "the fallback group 'gone' is not defined either"),
    ],
)
def test_session_start_without_a_known_group_cannot_open(
    options: dict[str, object], fallback: str, message: str
) -> None:
    with pytest.raises(CannotOpenError, match=message):
        session_start(hub(**options), StartDefaults(group=fallback), KNOWN)
