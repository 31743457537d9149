"""The accounting API behind a real JupyterHub: what callers see, and bad input.

The service runs as the drop-in registers it (a managed service on SQLite), and every
caller holds a real JupyterHub token. Who may do what, caller by caller and endpoint by
endpoint, is tests/accounting/service/test_authz_hub.py.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eohub.domain.accounting.events import start_event_json, stop_event_json
from tests.accounting.service_support import ACCOUNTING_CONFIG, Accounting
from tests.support.hub import Hub

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def accounting(hub_factory: Callable[..., Hub]) -> Accounting:
    service = Accounting(hub_factory(ACCOUNTING_CONFIG))
    service.wait_ready()
    return service


def _event(user: str, group: str = "climate", now: datetime = NOW) -> dict[str, Any]:
    return start_event_json(
        user=user, server="", started_at=now - timedelta(hours=1), group=group, cpu=0.5
    )


def test_users_see_only_their_own_rows(accounting: Accounting) -> None:
    # Not the module's NOW: alice's open session counts up to the metrics below, and
    # a test can run many minutes after its module was imported (in a pytest-xdist
    # worker, much later).
    now = datetime.now(UTC).replace(microsecond=0)
    admin = accounting.user_token("admin")
    accounting.call("PUT", "api/groups/climate", admin, json={}).raise_for_status()
    events = [_event("alice", now=now), _event("bob", now=now)]
    accounting.call(
        "POST", "api/events", accounting.hub_token, json={"events": events}
    ).raise_for_status()
    alice = accounting.user_token("alice")
    usage = accounting.call("GET", "api/usage", alice).json()["usage"]
    assert {row["user"] for row in usage} == {"alice"}
    sessions = accounting.call("GET", "api/sessions", alice).json()["sessions"]
    assert [s["user"] for s in sessions] == ["alice"]
    everyone = accounting.call("GET", "api/sessions", admin).json()["sessions"]
    assert {s["user"] for s in everyone} == {"alice", "bob"}
    stop = stop_event_json(
        user="bob", server="", started_at=now - timedelta(hours=1), stopped_at=now
    )
    accounting.call("POST", "api/events", accounting.hub_token, json=stop).raise_for_status()
    sacct = accounting.call("GET", "api/export/sacct.txt", admin)
    assert sacct.headers["Content-Disposition"].startswith('attachment; filename="eohub-')
    (line,) = sacct.text.splitlines()  # alice's session is still open: not a finished job
    assert line.split("|")[8] == "bob"
    csv = accounting.call("GET", "api/export/sessions.csv", admin).text.splitlines()
    assert len(csv) == 3

    quota = {"user": "alice", "group": "ghosts", "cpu": 1}
    assert not accounting.call("POST", "api/quota/check", accounting.hub_token, json=quota).json()[
        "allowed"
    ]
    # The form's checks start nothing: their denials are not counted.
    form_check = "api/quota/check?purpose=form"
    for _ in range(3):
        answer = accounting.call("POST", form_check, accounting.hub_token, json=quota)
        assert answer.json()["allowed"] is False
    metrics = accounting.call("GET", "metrics", admin).text
    assert "eohub_accounting_open_sessions 1.0" in metrics
    # bob's closed 0.5 core-hours, and alice's open session so far (a little over 0.5)
    assert re.search(r'eohub_accounting_core_hours\{group="climate"\} 1\.0', metrics)
    assert 'eohub_accounting_quota_denials_total{group="ghosts"} 1.0' in metrics
    assert "eohub_accounting_ingest_seconds_count 2.0" in metrics
    assert "eohub_accounting_events_total 3.0" in metrics


def test_sessions_carry_their_limits_and_why_they_stopped(accounting: Accounting) -> None:
    admin = accounting.user_token("admin")
    accounting.call("PUT", "api/groups/climate", admin, json={}).raise_for_status()
    started = NOW - timedelta(hours=1)
    starts = [
        start_event_json(
            user=user,
            server="",
            started_at=started,
            group="climate",
            cpu=1,
            idle_timeout=1800 if user != "dan" else None,
            max_duration=7200 if user != "dan" else None,
        )
        for user in ("cleo", "dan", "eve")
    ]
    stops = [  # an older hub's outbox says "culled"; a failure; cleo's still runs
        stop_event_json(user=user, server="", started_at=started, stopped_at=NOW, reason=reason)
        for user, reason in (("dan", "culled"), ("eve", "failed"))
    ]
    accounting.call(
        "POST", "api/events", accounting.hub_token, json={"events": starts + stops}
    ).raise_for_status()

    sessions = accounting.call("GET", "api/sessions", admin).json()["sessions"]
    shown = {
        s["user"]: (s["end_reason"], s["stop_reason"], s["idle_timeout"], s["max_duration"])
        for s in sessions
    }
    assert shown == {
        "cleo": (None, None, 1800, 7200),
        "dan": ("idle", None, None, None),
        "eve": ("failed", None, 1800, 7200),
    }

    rows = accounting.call("GET", "api/export/sessions.csv", admin).text.splitlines()
    header = rows[0].split(",")
    assert header[-3:] == ["gpu_hours", "idle_timeout", "max_duration"]
    cells = {r.split(",")[1]: dict(zip(header, r.split(","), strict=True)) for r in rows[1:]}
    assert (cells["dan"]["end_reason"], cells["dan"]["max_duration"]) == ("idle", "")
    assert (cells["eve"]["idle_timeout"], cells["eve"]["max_duration"]) == ("1800", "7200")

    sacct = accounting.call("GET", "api/export/sacct.txt", admin).text.splitlines()
    jobs = {line.split("|")[8]: line.split("|") for line in sacct}
    assert sorted(jobs) == ["dan", "eve"]  # cleo's still runs
    # exitcode, state, ..., timelimit (see eohub.domain.reports.xdmod)
    assert (jobs["dan"][15], jobs["dan"][16], jobs["dan"][23]) == ("0:0", "TIMEOUT", "UNLIMITED")
    assert (jobs["eve"][15], jobs["eve"][16], jobs["eve"][23]) == ("1:0", "FAILED", "02:00:00")


def _counts(accounting: Accounting) -> tuple[int, ...]:
    with sqlite3.connect(accounting.hub.workdir / "eohub-accounting.sqlite") as db:
        return tuple(
            db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
            for table in ("sessions", "events", "usage_totals", "storage_samples", "groups")
        )


BAD_REQUESTS: list[tuple[str, str, Any, set[str]]] = [
    ("bad JSON", "api/events", b"{not json", {"body"}),
    ("not an object", "api/events", [1, 2], {"body"}),
    ("empty batch", "api/events", {"events": []}, {"events"}),
    (
        "wrong types",
        "api/events",
        {**_event("alice"), "cpu": "two", "gpus": 1.5, "user": 7},
        {"cpu", "gpus", "user"},
    ),
    ("negative CPU", "api/events", {**_event("alice"), "cpu": -1}, {"cpu"}),
    (
        "no timezone",
        "api/events",
        {**_event("alice"), "started_at": "2026-01-01T00:00:00"},
        {"started_at"},
    ),
    ("unknown field", "api/events", {**_event("alice"), "cost": 3}, {"cost"}),
    (
        "limits out of range",
        "api/events",
        {**_event("alice"), "idle_timeout": 0, "max_duration": 367 * 86_400},
        {"idle_timeout", "max_duration"},
    ),
    (
        "a reason that is not one",
        "api/events",
        stop_event_json(
            user="alice",
            server="",
            started_at=NOW - timedelta(hours=1),
            stopped_at=NOW,
            reason="bored",
        ),
        {"reason"},
    ),
    (
        "stop before start",
        "api/events",
        stop_event_json(
            user="alice", server="", started_at=NOW, stopped_at=NOW - timedelta(hours=1)
        ),
        {"stopped_at"},
    ),
    # A stop without its start is no error: it is held until the start arrives
    # (tests/adapters/accounting_db/test_ingest_equivalence.py).
    ("unknown group", "api/events", _event("alice", "nonexistent"), {"group"}),
    (
        "one bad event spoils the batch",
        "api/events",
        {"events": [_event("dave"), {**_event("erin"), "cpu": 0}]},
        {"events[1].cpu"},
    ),
    ("quota without user", "api/quota/check", {"group": "climate", "cpu": 1}, {"user"}),
    (
        "quota negative memory",
        "api/quota/check",
        {"user": "a", "group": "climate", "cpu": 1, "memory_bytes": -5},
        {"memory_bytes"},
    ),
    (
        "storage bad bytes",
        "api/storage",
        {"samples": [{"user": "a", "bytes": -1, "measured_at": "2026-01-01T00:00:00Z"}]},
        {"samples[0].bytes"},
    ),
]


def test_malformed_input_gets_400_with_field_errors_and_writes_nothing(
    accounting: Accounting,
) -> None:
    admin = accounting.user_token("admin")
    accounting.call("PUT", "api/groups/climate", admin, json={}).raise_for_status()
    before = _counts(accounting)
    problems = []
    for name, path, body, fields in BAD_REQUESTS:
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        response = accounting.call("POST", path, accounting.hub_token, **kwargs)
        if response.status_code != 400:
            problems.append(f"{name}: HTTP {response.status_code} {response.text[:200]}")
            continue
        errors = response.json().get("errors", {})
        found = {k.split(".", 1)[-1] if k.startswith("events[0]") else k for k in errors}
        if not fields <= set(errors) | found:
            problems.append(f"{name}: errors {errors} lack {fields}")
    assert not problems, "\n".join(problems)
    assert _counts(accounting) == before

    bad_admin = [
        ({"allocation": "fortnight"}, "allocation"),
        ({"quotas": {"": {"core_hours": -3}}}, "quotas[''].core_hours"),
        ({"pis": "carol"}, "pis"),
    ]
    for body, field in bad_admin:
        response = accounting.call("PUT", "api/groups/climate", admin, json=body)
        assert response.status_code == 400, response.text
        assert field in response.json()["errors"], response.text
    assert accounting.call("GET", "api/usage?period=week", admin).status_code == 400
    assert accounting.call("GET", "api/usage?from=yesterday", admin).status_code == 400
    assert accounting.call("GET", "api/sessions?limit=x", admin).status_code == 400
    assert _counts(accounting) == before
