"""How eohub words quantities: tables of values and the words people read."""

from __future__ import annotations

import math

import pytest

from eohub.domain.wording import (
    BUDGET_UNKNOWN,
    budget_left_text,
    clock_text,
    duration_text,
    ends_soon,
    ends_text,
    idle_limit_text,
    limit_text,
    limits_text,
    number_text,
    possessive,
    quantity_text,
    runs_for_text,
    size_limit_text,
    size_text,
    span_text,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (200, "200"),
        (200.0, "200"),
        (12.5, "12.5"),
        (12.54, "12.5"),
        (0.04, "0"),
        (-0.01, "0"),
        (1250, "1,250"),
        (1234567.89, "1,234,567.9"),
        (math.inf, "∞"),
        (math.nan, "0"),
    ],
)
def test_numbers(value: float, text: str) -> None:
    assert number_text(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (200, "200 core-hours"),
        (1, "1 core-hour"),
        (1.0, "1 core-hour"),
        (1.04, "1 core-hour"),  # as it is shown
        (0.5, "0.5 core-hours"),
        (0, "0 core-hours"),
    ],
)
def test_quantities_agree_with_their_number(value: float, text: str) -> None:
    assert quantity_text(value, "core-hour", "core-hours") == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "under 1 min"),
        (0, "under 1 min"),
        (59.9, "under 1 min"),
        (60, "1 min"),
        (5 * 60 + 59, "5 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (2 * 3600 + 5 * 60, "2 h 05 min"),
        (2 * 3600 + 45 * 60, "2 h 45 min"),
        (8 * 3600, "8 h"),
        (23 * 3600 + 59 * 60, "23 h 59 min"),
        (86400, "1 d"),
        (3 * 86400 + 4 * 3600 + 59 * 60, "3 d 4 h"),
        (400 * 86400, "400 d"),
    ],
)
def test_durations(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("alice", "alice's"),
        ("researchers", "researchers'"),
        ("Climate Researchers", "Climate Researchers'"),
        ("EO SCIENTISTS", "EO SCIENTISTS'"),
        ("geo-lab", "geo-lab's"),
        ("James", "James'"),
        ("", ""),
    ],
)
def test_possessives(name: str, text: str) -> None:
    assert possessive(name) == text


@pytest.mark.parametrize(
    ("budget", "text"),
    [
        (None, BUDGET_UNKNOWN),
        ({}, "no limit"),
        ({"core_hours": None}, "no limit"),
        ({"core_hours": 200.0}, "200 core-hours left"),
        ({"core_hours": 1.0}, "1 core-hour left"),
        ({"core_hours": -3.2}, "0 core-hours left"),
        (
            {"memory_gib_hours": 10.0, "gpu_hours": 2.5, "core_hours": 99.96},
            "100 core-hours left, 2.5 GPU-hours left, 10 GiB-hours of memory left",
        ),
        ({"gpu_hours": 1.0, "core_hours": None}, "1 GPU-hour left"),
    ],
)
def test_budgets_left(budget: dict[str, float | None] | None, text: str) -> None:
    assert budget_left_text(budget) == text


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (None, ""),
        (0, "spent"),
        (-1, "spent"),
        (0.001, "enough for about 1 min more"),
        (25 / 60, "enough for about 25 min more"),
        (0.999, "enough for about 1 h more"),
        (40.2, "enough for about 1 d 16 h more"),
        (47.4, "enough for about 1 d 23 h more"),
        (20.4, "enough for about 20 h more"),
        (200, "enough for about 8 d more"),
    ],
)
def test_how_long_a_budget_runs_a_server(hours: float | None, text: str) -> None:
    assert runs_for_text(hours) == text


@pytest.mark.parametrize(
    ("limit", "running", "text"),
    [
        (None, 100, ""),
        (0, 100, ""),
        (8 * 3600, 5 * 60, "8 h (ends in 7 h 55 min)"),
        (8 * 3600, 8 * 3600 - 30, "8 h (ends any moment)"),
        (8 * 3600, 9 * 3600, "8 h (ends any moment)"),
        (86400, 0, "1 d (ends in 1 d)"),
        (5400, 0, "1 h 30 min (ends in 1 h 30 min)"),
    ],
)
def test_session_limits(limit: int | None, running: float, text: str) -> None:
    assert limit_text(limit, running) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (90, "1 minute 30 seconds"),
        (1800, "30 minutes"),
        (3600, "1 hour"),
        (3660, "1 hour 1 minute"),
        (5400, "1 hour 30 minutes"),
        (7200, "2 hours"),
        (86400, "24 hours"),
        (36 * 3600, "36 hours"),
        (48 * 3600, "2 days"),
        (2 * 86400 + 12 * 3600, "2 days 12 hours"),
        (2 * 86400 + 1800, "2 days"),  # two units at most
        (7 * 86400, "7 days"),
        (-5, "0 seconds"),
    ],
)
def test_limits_in_plain_words(seconds: float, text: str) -> None:
    assert span_text(seconds) == text


@pytest.mark.parametrize(
    ("idle", "maximum", "text"),
    [
        (7200, 86400, "stops after 2 hours idle, at most 24 hours"),
        (1800, None, "stops after 30 minutes idle"),
        (None, 8 * 3600, "runs at most 8 hours"),
        (0, 0, "no time limit"),
        (None, None, "no time limit"),
        (30, 7 * 86400, "stops after 30 seconds idle, at most 7 days"),
    ],
)
def test_an_environments_limits_before_launch(
    idle: int | None, maximum: int | None, text: str
) -> None:
    assert limits_text(idle, maximum) == text


@pytest.mark.parametrize(
    ("limit", "elapsed", "soon"),
    [
        (None, 10**6, False),
        (0, 10**6, False),
        (8 * 3600, 0, False),
        (8 * 3600, 8 * 3600 - 901, False),
        (8 * 3600, 8 * 3600 - 900, True),
        (8 * 3600, 9 * 3600, True),
        (600, 0, True),  # a limit shorter than the warning period is always near
    ],
)
def test_a_server_ends_soon_within_the_warning_period(
    limit: int | None, elapsed: float, soon: bool
) -> None:
    assert ends_soon(limit, elapsed) is soon


@pytest.mark.parametrize(
    ("limit", "running", "text"),
    [
        (None, 100, ""),
        (8 * 3600, 5 * 60, "ends in 7 h 55 min"),
        (8 * 3600, 8 * 3600 - 60, "ends in 1 min"),
        (8 * 3600, 8 * 3600 - 59, "ends any moment"),
        (8 * 3600, 9 * 3600, "ends any moment"),
    ],
)
def test_the_time_left_before_the_maximum_duration(
    limit: int | None, running: float, text: str
) -> None:
    assert ends_text(limit, running) == text


@pytest.mark.parametrize(
    ("limit", "idle", "text"),
    [
        (None, 100, ""),
        (7200, 0, "stops after 2 hours idle"),
        (7200, 7200 - 901, "stops after 2 hours idle"),
        (7200, 7200 - 900, "stops in 15 min if still idle"),
        (7200, 7200 - 30, "stops any moment if still idle"),
        (7200, 9000, "stops any moment if still idle"),
    ],
)
def test_the_idle_limit_given_the_time_idle(limit: int | None, idle: float, text: str) -> None:
    assert idle_limit_text(limit, idle) == text


@pytest.mark.parametrize(
    ("running", "idle", "idle_limit", "maximum", "text"),
    [
        (
            300,
            720,
            7200,
            8 * 3600,
            "ends in 7 h 55 min (at most 8 hours); idle 12 min (stops after 2 hours idle)",
        ),
        (300, 20, None, None, "no maximum duration; idle under 1 min"),
        (
            8 * 3600,
            6900,
            7200,
            8 * 3600,
            "ends any moment (at most 8 hours); idle 1 h 55 min (stops in 5 min if still idle)",
        ),
    ],
)
def test_a_running_servers_clock_on_one_line(
    running: float, idle: float, idle_limit: int | None, maximum: int | None, text: str
) -> None:
    assert clock_text(running, idle, idle_limit, maximum) == text


@pytest.mark.parametrize(
    ("size", "measured", "limit"),
    [
        (0, "0 B", "0 B"),
        (300, "300 B", "300 B"),
        (1023, "1,023 B", "1,023 B"),
        (1024, "1.0 KiB", "1 KiB"),
        (300 * 1024, "300.0 KiB", "300 KiB"),
        (512 * 2**20, "512.0 MiB", "512 MiB"),
        (3 * 2**29, "1.5 GiB", "1.5 GiB"),
        (10 * 2**30, "10.0 GiB", "10 GiB"),
        (1536 * 2**30, "1.5 TiB", "1.5 TiB"),
        (2048 * 2**40, "2,048.0 TiB", "2,048 TiB"),
    ],
)
def test_sizes_read_in_the_unit_that_fits(size: int, measured: str, limit: str) -> None:
    assert size_text(size) == measured
    assert size_limit_text(size) == limit
