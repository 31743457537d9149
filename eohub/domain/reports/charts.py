"""Chart geometry for the usage pages: series in, scaled shapes and axis ticks out.

The pages draw their charts as inline SVG on the server, so they need no JavaScript
library and no CDN. This module does the arithmetic only: nice axis ticks, stacked bar
rectangles and line paths in pixel coordinates. Templates turn the shapes into SVG
elements (and escape every label); colours live in the stylesheet.

Pixel coordinates follow SVG: ``y`` grows downwards, so larger values have smaller ``y``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: At most this many series keep their own colour; the rest are summed as "Other".
MAX_SERIES = 8
OTHER = "Other"
#: A range narrower than this (relative to its values) is drawn as flat.
FLAT = 1e-6
#: The approximate width of one tick-label character, in pixels, for thinning labels.
CHAR_WIDTH = 7


@dataclass(frozen=True)
class Frame:
    """The SVG canvas and the margins around the plot area (room for the axes)."""

    width: float = 720
    height: float = 260
    left: float = 56
    right: float = 16
    top: float = 12
    bottom: float = 36

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom

    @property
    def plot_bottom(self) -> float:
        return self.top + self.plot_height


@dataclass(frozen=True)
class Series:
    """A named row of values, one per category (bars) or point (lines)."""

    name: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Tick:
    value: float
    pos: float  # pixel position along its axis
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int  # index into the chart's series, for the colour
    category: int
    value: float


@dataclass(frozen=True)
class BarChart:
    frame: Frame
    categories: tuple[str, ...]
    series: tuple[str, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    bars: tuple[Bar, ...]
    totals: tuple[float, ...]  # per category

    @property
    def empty(self) -> bool:
        return not self.bars


@dataclass(frozen=True)
class Line:
    """A line through ``(x, y)`` data points; ``style`` is a CSS class name."""

    name: str
    points: tuple[tuple[float, float], ...]
    style: str = "solid"


@dataclass(frozen=True)
class PlacedLine:
    name: str
    style: str
    path: str  # SVG path data
    points: tuple[tuple[float, float], ...]  # pixel coordinates of the data points


@dataclass(frozen=True)
class LineChart:
    frame: Frame
    lines: tuple[PlacedLine, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    markers: tuple[Tick, ...]  # vertical rules, e.g. "now"


def format_number(value: float) -> str:
    """A tick or table label: integers with thousands separators, else 3 significant digits."""
    if value == 0:
        return "0"
    if abs(value) >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def nice_step(span: float, count: int) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten giving about ``count`` intervals."""
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns


def _flat(low: float, high: float) -> bool:
    return high - low < FLAT * max(1.0, abs(low), abs(high))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]``; a range of (near) zeros gets ``[0, 1]``.

    The first tick is at or below ``low`` and the last at or above ``high``, so the data
    always fits inside the axis.
    """
    low, high = min(low, high), max(low, high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("tick bounds must be finite")
    if _flat(low, high):
        # Show a flat range against zero; all zeros get a unit axis.
        low, high = min(0.0, low), max(0.0, high)
        if _flat(low, high):
            return [0.0, 1.0]
    step = nice_step(high - low, count)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def _scale(value: float, lo: float, hi: float, start: float, length: float) -> float:
    return start + (value - lo) / (hi - lo) * length


def _y_ticks(ticks: list[float], frame: Frame) -> tuple[Tick, ...]:
    lo, hi = ticks[0], ticks[-1]
    return tuple(Tick(t, _y(t, lo, hi, frame), format_number(t)) for t in ticks)


def _y(value: float, lo: float, hi: float, frame: Frame) -> float:
    return round(frame.plot_bottom - (value - lo) / (hi - lo) * frame.plot_height, 2)


def keep_top(series: Sequence[Series], keep: int = MAX_SERIES) -> list[Series]:
    """The ``keep - 1`` largest series by total, plus their rest summed as "Other".

    With ``keep`` or fewer series all are kept, in their order.
    """
    if len(series) <= keep:
        return list(series)
    ranked = sorted(range(len(series)), key=lambda i: (-sum(series[i].values), i))
    kept = sorted(ranked[: keep - 1])
    rest = [series[i] for i in ranked[keep - 1 :]]
    width = max(len(s.values) for s in series)
    other = tuple(sum(s.values[j] for s in rest if j < len(s.values)) for j in range(width))
    return [series[i] for i in kept] + [Series(OTHER, other)]


def stacked_bars(
    categories: Sequence[str], series: Sequence[Series], frame: Frame | None = None
) -> BarChart:
    """Bars per category, each series stacked on the ones before it.

    Negative and missing values count as zero (usage never goes below zero). The x
    labels thin out when there are too many categories to print each one.
    """
    frame = frame or Frame()
    n = len(categories)
    values = [
        [max(0.0, s.values[j]) if j < len(s.values) else 0.0 for j in range(n)] for s in series
    ]
    totals = tuple(sum(v[j] for v in values) for j in range(n))
    ticks = nice_ticks(0.0, max(totals, default=0.0))
    lo, hi = ticks[0], ticks[-1]
    slot = frame.plot_width / max(n, 1)
    bar_width = round(max(1.0, slot * 0.7), 2)
    bars: list[Bar] = []
    for j in range(n):
        x = round(frame.left + slot * j + (slot - bar_width) / 2, 2)
        base = 0.0
        for i, row in enumerate(values):
            if row[j] <= 0:
                continue
            y0, y1 = _y(base, lo, hi, frame), _y(base + row[j], lo, hi, frame)
            bars.append(Bar(x, y1, bar_width, round(y0 - y1, 2), i, j, row[j]))
            base += row[j]
    # Print every label that fits: about 7 px a character at the 12 px tick font.
    widest = max((len(c) for c in categories), default=0) * CHAR_WIDTH + 8
    every = max(1, math.ceil(widest / slot))
    x_ticks = tuple(
        Tick(j, round(frame.left + slot * (j + 0.5), 2), categories[j]) for j in range(0, n, every)
    )
    return BarChart(
        frame,
        tuple(categories),
        tuple(s.name for s in series),
        x_ticks,
        _y_ticks(ticks, frame),
        tuple(bars),
        totals,
    )


def line_chart(
    lines: Sequence[Line],
    x_range: tuple[float, float],
    *,
    x_ticks: Sequence[tuple[float, str]] = (),
    markers: Sequence[tuple[float, str]] = (),
    frame: Frame | None = None,
) -> LineChart:
    """Lines over a numeric x axis (``x_range``); y spans the data and zero.

    ``x_ticks`` and ``markers`` are ``(x, label)`` pairs chosen by the caller (dates are
    the caller's business); those outside ``x_range`` are dropped.
    """
    frame = frame or Frame()
    x_lo, x_hi = x_range
    if x_hi <= x_lo:
        raise ValueError("x_range must be increasing")
    ys = [y for line in lines for _, y in line.points]
    ticks = nice_ticks(min([0.0, *ys]), max([0.0, *ys]))
    lo, hi = ticks[0], ticks[-1]

    def px(x: float) -> float:
        return round(_scale(x, x_lo, x_hi, frame.left, frame.plot_width), 2)

    placed = []
    for line in lines:
        pts = tuple((px(x), _y(y, lo, hi, frame)) for x, y in line.points)
        path = " ".join(f"{'M' if k == 0 else 'L'}{x:g},{y:g}" for k, (x, y) in enumerate(pts))
        placed.append(PlacedLine(line.name, line.style, path, pts))

    def placed_ticks(pairs: Sequence[tuple[float, str]]) -> tuple[Tick, ...]:
        return tuple(Tick(x, px(x), label) for x, label in pairs if x_lo <= x <= x_hi)

    return LineChart(
        frame, tuple(placed), placed_ticks(x_ticks), _y_ticks(ticks, frame), placed_ticks(markers)
    )


__all__ = [
    "MAX_SERIES",
    "OTHER",
    "Bar",
    "BarChart",
    "Frame",
    "Line",
    "LineChart",
    "PlacedLine",
    "Series",
    "Tick",
    "format_number",
    "keep_top",
    "line_chart",
    "nice_step",
    "nice_ticks",
    "stacked_bars",
]
