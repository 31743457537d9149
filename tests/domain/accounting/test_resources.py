"""The size limits every layer shares, and sizes read from numbers and strings."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from eohub.domain.accounting.ledger import Resources, session_usage
from eohub.domain.accounting.periods import MAX_ROLLING_DAYS
from eohub.domain.accounting.resources import (
    MAX_CPU,
    MAX_GPUS,
    MAX_MEMORY_BYTES,
    MIN_CPU,
    parse_bytes,
)
from eohub.domain.launch.config import LaunchConfigError, parse_launch_config


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1536, 1536),
        ("1024", 1024),
        ("4G", 4 * 1024**3),
        ("4Gi", 4 * 1024**3),
        ("4GiB", 4 * 1024**3),
        ("1.5g", 3 * 1024**3 // 2),
        ("512M", 512 * 1024**2),
        ("2T", 2 * 1024**4),
        ("8K", 8192),
    ],
)
def test_parse_bytes(value: object, expected: int) -> None:
    assert parse_bytes(value) == expected


@pytest.mark.parametrize("value", [-1, "-1G", "4X", "", True, float("inf"), None, "1000T"])
def test_parse_bytes_refuses(value: object) -> None:
    with pytest.raises(ValueError, match=r"bytes|size"):
        parse_bytes(value)


def test_the_largest_server_fits_every_total_the_databases_compute() -> None:
    """The module docstring's arithmetic: a SUM over the longest rolling window (and so
    any year's running total) of six largest servers stays under 2**63 - 1."""
    largest = Resources.from_cpu(MAX_CPU, MAX_MEMORY_BYTES, MAX_GPUS)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    window = session_usage(largest, start, start + timedelta(days=MAX_ROLLING_DAYS))
    year = session_usage(largest, start, start + timedelta(days=366))
    for units in (window.cpu_mcore_ms, window.mem_mib_ms, window.gpu_ms):
        assert 6 * units <= 2**63 - 1
    for units in (year.cpu_mcore_ms, year.mem_mib_ms, year.gpu_ms):
        assert 69 * units <= 2**63 - 1
    assert largest.millicores <= 2**31 - 1  # INT columns
    assert largest.gpus <= 2**31 - 1


def test_the_hubs_launch_sizes_stay_within_what_accounting_records() -> None:
    """A size the launch form offers must be one whose start event the service accepts."""
    largest = {"s": {"cpu": MAX_CPU, "memory": "4T", "gpus": MAX_GPUS}}
    config = parse_launch_config({}, largest, {}, backend="local")
    assert config.sizes["s"].memory == MAX_MEMORY_BYTES
    with pytest.raises(LaunchConfigError, match=r"sizes\.s\.memory"):
        parse_launch_config({}, {"s": {"cpu": 1, "memory": "5T"}}, {}, backend="local")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.5, 2),  # a float is truncated to whole bytes
        ("2.5G", 5 * 1024**3 // 2),  # exact: no float rounding
        (" 16 KiB ", 16 * 1024),
        ("1kb", 1024),
        ("3B", 3),
        ("4T", MAX_MEMORY_BYTES),  # the largest size, included
        (MAX_MEMORY_BYTES, MAX_MEMORY_BYTES),
    ],
)
def test_parse_bytes_units_and_bounds(value: object, expected: int) -> None:
    assert parse_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (MAX_MEMORY_BYTES + 1, f"must be between 0 and {MAX_MEMORY_BYTES} bytes"),
        ("4.0000001T", f"must be between 0 and {MAX_MEMORY_BYTES} bytes"),
        (float("nan"), "must be a number of bytes"),
        (False, "must be a number of bytes"),
        ("4 G B", "must be a number of bytes or a size like 4G"),
        ("1e9", "must be a number of bytes or a size like 4G"),
        ([1], "must be a number of bytes or a size like 4G"),
    ],
)
def test_parse_bytes_messages(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_bytes(value)


def test_the_limits_fit_the_32_bit_size_columns() -> None:
    """The module docstring: millicores and GPUs are stored in INT columns."""
    assert Resources.from_cpu(MAX_CPU).millicores == 4_096_000 <= 2**31 - 1
    assert MAX_GPUS <= 2**31 - 1
    assert Resources.from_cpu(MIN_CPU).millicores == 1
