"""How the usage pages word a session's end: reasons with their limits, time left, warnings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from eohub.accounting.service.pages import words
from eohub.domain.accounting import stop_reasons

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


# (reason, idle_timeout, max_duration, stopped_by) -> words
STOPS = [
    ("idle", 7200, None, "", "stopped after being idle for its limit (2 hours)"),
    ("idle", None, None, "", "stopped after being idle for its limit"),  # a culler's stop
    ("idle", 7200, 86400, "", "stopped after being idle for its limit (2 hours)"),
    ("max_duration", 7200, 86400, "", "reached its maximum duration (24 hours)"),
    ("max_duration", None, 3 * 86400, "", "reached its maximum duration (3 days)"),
    ("idle", 5, None, "", "stopped after being idle for its limit (5 seconds)"),
    ("max_duration", None, None, "", "reached its maximum duration"),  # Kubernetes backstop
    ("budget", 7200, 86400, "", "the budget it was charged to was spent"),
    ("user", None, 86400, "", "stopped by its user"),
    ("admin", None, None, "", "stopped by an admin or a PI"),
    ("admin", None, None, "carol", "stopped by carol"),
    ("stopped", None, None, "carol", "stopped by carol"),  # before stops had reasons
    ("failed", None, None, "carol", "the server failed or could not start"),
    ("failed", None, None, "", "the server failed or could not start"),
    ("reconcile", None, None, "", "found stopped by the accounting service"),
    ("shutdown", None, None, "", "the hub shut down"),
    ("stopped", None, None, "", "stopped (by whom is not known)"),
    # Reasons earlier versions recorded read as today's.
    ("culled", 600, None, "", "stopped after being idle for its limit (10 minutes)"),
    ("quota", None, None, "", "the budget it was charged to was spent"),
    ("reconciled", None, None, "", "found stopped by the accounting service"),
    ("something-new", None, None, "", "something-new"),
    (None, 7200, None, "", ""),  # still running
    ("", None, None, "", ""),
]


@pytest.mark.parametrize(("reason", "idle", "longest", "by", "text"), STOPS)
def test_a_stop_says_why_with_the_limit_it_reached(
    reason: str | None, idle: int | None, longest: int | None, by: str, text: str
) -> None:
    got = words.stop_reason_text(reason, idle_timeout=idle, max_duration=longest, stopped_by=by)
    assert got == text


def test_every_reason_has_words() -> None:
    for reason in stop_reasons.STOP_REASONS:
        assert words.stop_reason_text(reason) == stop_reasons.reason_words(reason)


@pytest.mark.parametrize(
    ("longest", "running", "text"),
    [
        (None, timedelta(hours=1), ""),
        (8 * 3600, timedelta(hours=2, minutes=5), "ends in 5 h 55 min (at most 8 hours)"),
        (
            8 * 3600,
            timedelta(hours=7, minutes=59, seconds=30),
            "ends any moment (at most 8 hours)",
        ),
        (8 * 3600, timedelta(hours=9), "ends any moment (at most 8 hours)"),  # overdue
        (600, timedelta(0), "ends in 10 min (at most 10 minutes)"),
    ],
)
def test_a_running_session_shows_the_time_its_maximum_leaves(
    longest: int | None, running: timedelta, text: str
) -> None:
    assert words.time_left_text(longest, NOW - running, NOW) == text


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        ("idle", "stopping: idle for its limit"),
        ("max_duration", "stopping: reached its maximum duration"),
        ("budget", "stopping: its budget is spent"),
        ("quota", "stopping: its budget is spent"),
        ("admin", "stopping"),
    ],
)
def test_a_stop_under_way_says_why(reason: str, text: str) -> None:
    assert words.stopping_text(reason) == text


@dataclass(frozen=True)
class Warned:
    session: int
    stop_at: datetime
    reason: str = "max_duration"


# (stop at, reason, user, server, own) -> the notice
WARNINGS = [
    (
        NOW + timedelta(minutes=12),
        "max_duration",
        "alice",
        "",
        True,
        "Your default server will be stopped at its maximum duration at 12:12 UTC "
        "(in 12 min). Save your work before then.",
    ),
    (
        NOW + timedelta(minutes=12),
        "max_duration",
        "alice",
        "lab",
        False,
        "alice's server lab will be stopped at its maximum duration at 12:12 UTC (in 12 min).",
    ),
    (
        NOW + timedelta(seconds=20),
        "max_duration",
        "alice",
        "lab",
        True,
        "Your server lab will be stopped at its maximum duration at 12:00 UTC "
        "(any moment now). Save your work before then.",
    ),
    (
        NOW + timedelta(hours=13),
        "max_duration",
        "bob",
        "",
        False,
        "bob's default server will be stopped at its maximum duration at 2026-03-16 01:00 UTC "
        "(in 13 h).",
    ),
    (
        NOW + timedelta(minutes=5),
        "budget",
        "bob",
        "",
        False,
        "bob's default server will be stopped because its budget is spent at 12:05 UTC "
        "(in 5 min).",
    ),
    (
        NOW + timedelta(minutes=5),
        "shutdown",
        "bob",
        "",
        False,
        "bob's default server will be stopped at 12:05 UTC (in 5 min).",
    ),
]


@pytest.mark.parametrize(("stop_at", "reason", "user", "server", "own", "text"), WARNINGS)
def test_a_lifetime_warning_tells_the_owner_and_the_pi(
    stop_at: datetime, reason: str, user: str, server: str, own: bool, text: str
) -> None:
    warning = Warned(7, stop_at, reason)
    assert words.warning_text(warning, user, server, NOW, own=own) == text


def test_a_warned_row_shows_the_stop_time() -> None:
    assert words.warning_badge(Warned(7, NOW + timedelta(minutes=12))) == "stops at 12:12"
