"""The usage ledger's arithmetic: exact, integer, and split at period boundaries.

A session holds resources at a constant rate between its start and its stop. Usage is
kept in integer units so that sums are exact in every SQL dialect:

- CPU in millicore-milliseconds (0.25 CPU for 1 h is 250 * 3,600,000),
- memory in MiB-milliseconds,
- GPUs in GPU-milliseconds.

A session that crosses a period boundary is split by time. Pieces are computed from the
cumulative usage at each boundary, so they always add up exactly to the whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from eohub.domain.accounting.periods import PeriodKind, ensure_utc, periods_between

MS_PER_HOUR = 3_600_000
MIB = 1024 * 1024
GIB = 1024 * MIB
MAX_STORAGE_BYTES = 2**62


@dataclass(frozen=True)
class Resources:
    """What a server holds while it runs."""

    millicores: int
    memory_bytes: int = 0
    gpus: int = 0

    @classmethod
    def from_cpu(
        cls, cpu: float | str | Fraction, memory_bytes: int = 0, gpus: int = 0
    ) -> Resources:
        """Build from a CPU count in cores (``0.25``), rounded to the nearest millicore."""
        millicores = round(Fraction(cpu) * 1000)
        return cls(millicores=int(millicores), memory_bytes=memory_bytes, gpus=gpus)

    @property
    def cores(self) -> Fraction:
        return Fraction(self.millicores, 1000)


@dataclass(frozen=True)
class Usage:
    """Resource use over time, in exact integer units (see the module docstring)."""

    cpu_mcore_ms: int = 0
    mem_mib_ms: int = 0
    gpu_ms: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.cpu_mcore_ms + other.cpu_mcore_ms,
            self.mem_mib_ms + other.mem_mib_ms,
            self.gpu_ms + other.gpu_ms,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.cpu_mcore_ms - other.cpu_mcore_ms,
            self.mem_mib_ms - other.mem_mib_ms,
            self.gpu_ms - other.gpu_ms,
        )

    @property
    def core_hours(self) -> Fraction:
        return Fraction(self.cpu_mcore_ms, 1000 * MS_PER_HOUR)

    @property
    def memory_gib_hours(self) -> Fraction:
        return Fraction(self.mem_mib_ms, 1024 * MS_PER_HOUR)

    @property
    def gpu_hours(self) -> Fraction:
        return Fraction(self.gpu_ms, MS_PER_HOUR)

    def as_hours(self, digits: int = 6) -> dict[str, float]:
        """Core-, memory-GiB- and GPU-hours, rounded for JSON and reports."""
        return {
            "core_hours": round(float(self.core_hours), digits),
            "memory_gib_hours": round(float(self.memory_gib_hours), digits),
            "gpu_hours": round(float(self.gpu_hours), digits),
        }


ZERO = Usage()


def elapsed_us(start: datetime, end: datetime) -> int:
    """Whole microseconds from ``start`` to ``end`` (negative if ``end`` is earlier)."""
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def usage_units(
    millicores: int, memory_bytes: int, gpus: int, elapsed: int
) -> tuple[int, int, int]:
    """(millicore-ms, MiB-ms, GPU-ms) held over ``elapsed`` microseconds, floored.

    The one formula of the ledger, on plain integers: exports call it per row.
    """
    return (
        millicores * elapsed // 1000,
        memory_bytes * elapsed // (MIB * 1000),
        gpus * elapsed // 1000,
    )


def _cumulative(resources: Resources, elapsed: int) -> Usage:
    """Usage from the session start to ``elapsed`` microseconds later."""
    return Usage(
        *usage_units(resources.millicores, resources.memory_bytes, resources.gpus, elapsed)
    )


def session_usage(resources: Resources, start: datetime, end: datetime) -> Usage:
    """Usage of a session that held ``resources`` from ``start`` to ``end``."""
    start, end = ensure_utc(start), ensure_utc(end)
    if end <= start:
        return ZERO
    return _cumulative(resources, elapsed_us(start, end))


def split_usage(
    resources: Resources, start: datetime, end: datetime, kind: PeriodKind
) -> Iterator[tuple[datetime, Usage]]:
    """Yield ``(period_start, usage)`` for each period of ``kind`` the session overlaps.

    Pieces telescope (each is the cumulative usage at its end minus that at its start),
    so their sum equals :func:`session_usage` exactly.
    """
    start, end = ensure_utc(start), ensure_utc(end)
    if end <= start:
        return
    before = ZERO
    for period, _, overlap_end in periods_between(kind, start, end):
        upto = _cumulative(resources, elapsed_us(start, overlap_end))
        yield period, upto - before
        before = upto


def usage_in_window(
    resources: Resources, start: datetime, end: datetime, window: tuple[datetime, datetime]
) -> Usage:
    """The part of a session's usage that falls inside ``window`` (``[from, to)``)."""
    start, end = ensure_utc(start), ensure_utc(end)
    lo, hi = max(start, ensure_utc(window[0])), min(end, ensure_utc(window[1]))
    if hi <= lo:
        return ZERO
    return _cumulative(resources, elapsed_us(start, hi)) - _cumulative(
        resources, elapsed_us(start, lo)
    )
