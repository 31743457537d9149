"""How the reports word numbers, spans and names: one rule everywhere, as tables of cases."""

from __future__ import annotations

from fractions import Fraction

import pytest

from eohub.domain.reports.wording import (
    DASH,
    duration_text,
    hours_text,
    possessive,
    quantity,
    whose_server,
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, DASH),
        (float("nan"), DASH),
        (0, "0"),
        (0.0, "0"),
        (200, "200"),
        (200.0, "200"),
        (12.5, "12.5"),
        (12.46, "12.5"),
        (12.04, "12"),
        (1234.56, "1,234.6"),
        (1_000_000, "1,000,000"),
        (0.04, "< 0.1"),
        (-0.04, "-< 0.1"),
        (-3.25, "-3.2"),
        (Fraction(1, 3), "0.3"),
    ],
)
def test_hours_have_one_decimal_at_most(value: float | None, shown: str) -> None:
    assert hours_text(value) == shown


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (200, "core-hours", "200 core-hours"),
        (1, "core-hours", "1 core-hour"),
        (1.04, "GPU-hours", "1 GPU-hour"),
        (1.5, "memory GiB-hours", "1.5 memory GiB-hours"),
        (None, "core-hours", f"{DASH} core-hours"),
    ],
)
def test_quantities_name_their_unit(value: float | None, unit: str, shown: str) -> None:
    assert quantity(value, unit) == shown


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("alice", "alice's"),
        ("researchers", "researchers'"),
        ("All researchers", "All researchers'"),
        ("Climate modelling", "Climate modelling's"),
        ("EOS", "EOS'"),
        ("", ""),
    ],
)
def test_possessives(name: str, shown: str) -> None:
    assert possessive(name) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, DASH),
        (-5, "under 1 min"),
        (45.9, "under 1 min"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (7500, "2 h 05 min"),
        (86400 * 3 + 3600 * 4 + 59, "3 d 4 h"),
    ],
)
def test_durations_are_worded_as_on_every_page(seconds: float | None, shown: str) -> None:
    assert duration_text(seconds) == shown


def test_servers_are_named_for_people() -> None:
    assert whose_server("alice", "") == "alice's default server"
    assert whose_server("james", "gpu-lab") == "james' server gpu-lab"
