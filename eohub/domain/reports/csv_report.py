"""CSV rows of sessions and of usage, for admins and PIs who work in spreadsheets.

The rows are lists of strings; :mod:`eohub.accounting.exports.writers` writes them with the
standard :mod:`csv` module. Hours are exact fractions rounded to 6 decimal places (half
to even), so a column sums to the ledger's totals within rounding, unlike XDMoD's whole
CPUs.

Cells are opened by spreadsheet programs, which run a cell starting with ``=``, ``+``,
``-`` or ``@`` as a formula. A user or server name is chosen by a user, so every text cell
that starts with one of those (or with a tab or carriage return, which some programs skip
before they look) gets a leading ``'``, as OWASP recommends for CSV injection.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from eohub.domain.accounting.events import format_time
from eohub.domain.accounting.ledger import MS_PER_HOUR, Usage, elapsed_us, usage_units
from eohub.domain.accounting.session_record import SessionFields, UsageRow

SESSION_HEADER: tuple[str, ...] = (
    "id",
    "user",
    "server",
    "group",
    "profile",
    "image",
    "cpu",
    "memory_bytes",
    "gpus",
    "started_at",
    "stopped_at",
    "end_reason",
    "core_hours",
    "memory_gib_hours",
    "gpu_hours",
    # Appended after the first version's columns, so sheets that read those by place
    # still work.
    "idle_timeout",
    "max_duration",
)

USAGE_HEADER: tuple[str, ...] = (
    "period_start",
    "group",
    "user",
    "core_hours",
    "memory_gib_hours",
    "gpu_hours",
)

HOUR_PLACES = 6
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + text if text and text[0] in _FORMULA_CHARS else text


_FORMULA_CHARS = frozenset("".join(_FORMULA_START))


def ratio_text(numerator: int, denominator: int, places: int) -> str:
    """``numerator / denominator`` (both >= 0) with ``places`` digits, half to even."""
    return ratio_formatter(denominator, places)(numerator)


@functools.cache
def ratio_formatter(denominator: int, places: int) -> Callable[[int], str]:
    """:func:`ratio_text` for one denominator, with its constants worked out once.

    Integer arithmetic only: an export writes three of these per row, a million rows at
    a time. The fraction ``10**places / denominator`` is reduced first, which keeps the
    products small.
    """
    scale = 10**places
    common = math.gcd(scale, denominator)
    times, over = scale // common, denominator // common
    zero = "0." + "0" * places
    pattern = "{}.{:0" + str(places) + "d}"

    def text(numerator: int) -> str:
        if not numerator:
            return zero
        quotient, remainder = divmod(numerator * times, over)
        twice = 2 * remainder
        if twice > over or (twice == over and quotient & 1):
            quotient += 1
        return pattern.format(*divmod(quotient, scale))

    return text


_CORE_MS_PER_HOUR = 1000 * MS_PER_HOUR
_MIB_MS_PER_GIB_HOUR = 1024 * MS_PER_HOUR
_core_hours = ratio_formatter(_CORE_MS_PER_HOUR, HOUR_PLACES)
_memory_gib_hours = ratio_formatter(_MIB_MS_PER_GIB_HOUR, HOUR_PLACES)
_gpu_hours = ratio_formatter(MS_PER_HOUR, HOUR_PLACES)


def _hours(usage: Usage) -> list[str]:
    return [
        _core_hours(usage.cpu_mcore_ms),
        _memory_gib_hours(usage.mem_mib_ms),
        _gpu_hours(usage.gpu_ms),
    ]


@functools.lru_cache(maxsize=4096)
def cores_text(millicores: int) -> str:
    """Cores from millicores, without trailing zeros: ``0.25``, ``2``, ``0.001``."""
    whole, frac = divmod(millicores, 1000)
    return f"{whole}.{frac:03d}".rstrip("0").rstrip(".") if frac else str(whole)


def session_row(record: SessionFields, now: datetime) -> list[str]:
    """The cells of one session under :data:`SESSION_HEADER`.

    Parameters
    ----------
    record
        A session, open or stopped: a :class:`SessionRecord` or a store row.
    now
        Where an open session's usage stops counting; its ``stopped_at`` stays empty.

    Returns
    -------
    list[str]
        ``cpu`` in cores (``0.25``), memory in bytes, times as ISO 8601 UTC with a ``Z``,
        usage in hours with 6 decimal places, ``end_reason`` as the ledger has it (see
        :mod:`eohub.domain.accounting.stop_reasons`), and the session's limits
        (``idle_timeout``, ``max_duration``) in whole seconds, empty for no limit.
    """
    stopped = record.stopped_at
    elapsed = max(0, elapsed_us(record.started_at, stopped or now))
    cpu, mem, gpu = usage_units(record.millicores, record.memory_bytes, record.gpus, elapsed)
    return [
        str(record.id),
        safe_cell(record.user),
        safe_cell(record.server),
        safe_cell(record.group),
        safe_cell(record.profile),
        safe_cell(record.image),
        cores_text(record.millicores),
        str(record.memory_bytes),
        str(record.gpus),
        format_time(record.started_at),
        format_time(stopped) if stopped is not None else "",
        safe_cell(record.end_reason or ""),
        _core_hours(cpu),
        _memory_gib_hours(mem),
        _gpu_hours(gpu),
        _seconds(record.idle_timeout),
        _seconds(record.max_duration),
    ]


def _seconds(limit: int | None) -> str:
    return "" if limit is None else str(limit)


def session_rows(records: Iterable[SessionFields], now: datetime) -> Iterator[list[str]]:
    """:func:`session_row` for each record, lazily, so a large export streams."""
    for record in records:
        yield session_row(record, now)


def usage_row(row: UsageRow) -> list[str]:
    """The cells of one usage row under :data:`USAGE_HEADER`."""
    return [
        format_time(row.period_start),
        safe_cell(row.group),
        safe_cell(row.user),
        *_hours(row.usage),
    ]


def usage_rows(rows: Iterable[UsageRow]) -> Iterator[list[str]]:
    """:func:`usage_row` for each row, lazily."""
    for row in rows:
        yield usage_row(row)
