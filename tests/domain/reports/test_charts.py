"""Chart geometry: nice ticks, stacked bars and line paths, in pixel coordinates."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.reports.charts import (
    OTHER,
    Frame,
    Line,
    Series,
    format_number,
    keep_top,
    line_chart,
    nice_ticks,
    stacked_bars,
)

FRAME = Frame(width=200, height=120, left=20, right=0, top=10, bottom=10)  # plot 180 x 100


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 0, [0, 1]),
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0, 7, [0, 2, 4, 6, 8]),
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (0, 1234, [0, 250, 500, 750, 1000, 1250]),
        (5, 5, [0, 1, 2, 3, 4, 5]),
        (-3, 10, [-5, 0, 5, 10]),
        (10, 0, [0, 2, 4, 6, 8, 10]),
        (0, 0.003, [0, 0.001, 0.002, 0.003]),
    ],
)
def test_nice_ticks(low: float, high: float, ticks: list[float]) -> None:
    assert nice_ticks(low, high) == pytest.approx(ticks)


def test_nice_ticks_refuses_infinity() -> None:
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0, math.inf)


@given(
    st.floats(-1e9, 1e9, allow_nan=False),
    st.floats(-1e9, 1e9, allow_nan=False),
)
def test_nice_ticks_cover_the_data_evenly(a: float, b: float) -> None:
    ticks = nice_ticks(a, b)
    step = ticks[1] - ticks[0]
    # The data may stick out by a rounding error: a billionth of a step, far below a pixel.
    assert ticks[0] <= min(a, b) + 1e-6 * step
    assert ticks[-1] >= max(a, b) - 1e-6 * step
    assert 2 <= len(ticks) <= 12
    for x, y in itertools.pairwise(ticks):
        assert y - x == pytest.approx(step)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (5, "5"), (1234.4, "1,234"), (12.345, "12.3"), (0.01234, "0.0123"), (-3.5, "-3.5")],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def test_keep_top_keeps_few_series_as_they_are() -> None:
    series = [Series("b", (1, 2)), Series("a", (3, 4))]
    assert keep_top(series, keep=2) == series


def test_keep_top_sums_the_smallest_as_other() -> None:
    series = [Series(name, (float(i), 1.0)) for i, name in enumerate("abcdef")]
    kept = keep_top(series, keep=3)
    # The two largest (e: 5, f: 6) in their order, then the rest summed per period.
    assert [s.name for s in kept] == ["e", "f", OTHER]
    assert kept[-1].values == (0 + 1 + 2 + 3, 4.0)
    for j in range(2):
        assert sum(s.values[j] for s in kept) == sum(s.values[j] for s in series)


def test_stacked_bars_stack_each_series_on_the_ones_before() -> None:
    chart = stacked_bars(["Jan", "Feb"], [Series("a", (2, 0)), Series("b", (3, 10))], FRAME)
    assert chart.totals == (5, 10)
    assert [t.value for t in chart.y_ticks] == [0, 2, 4, 6, 8, 10]
    jan = [b for b in chart.bars if b.category == 0]
    # Zero-height bars are left out; "a" sits on the axis and "b" on top of it.
    assert [(b.series, b.y, b.height) for b in jan] == [(0, 90, 20), (1, 60, 30)]
    (feb,) = [b for b in chart.bars if b.category == 1]
    assert (feb.y, feb.height, feb.value) == (10, 100, 10)
    assert feb.x > jan[0].x
    assert all(b.x + b.width <= FRAME.width for b in chart.bars)


@pytest.mark.parametrize(
    ("categories", "values", "expected"),
    [
        (["a", "b"], [[0.0, 0.0]], 0),  # nothing used: an empty chart on a 0..1 axis
        (["a"], [[-5.0]], 0),  # negative counts as zero
        (["a", "b"], [[1.0]], 1),  # a short series: missing values are zero
    ],
)
def test_stacked_bars_edge_cases(
    categories: list[str], values: list[list[float]], expected: int
) -> None:
    chart = stacked_bars(categories, [Series("s", tuple(v)) for v in values], FRAME)
    assert len(chart.bars) == expected
    assert chart.empty == (expected == 0)
    assert chart.y_ticks[0].value == 0
    assert chart.y_ticks[0].pos == FRAME.plot_bottom


@pytest.mark.parametrize(("count", "every"), [(4, 1), (12, 2), (31, 5)])
def test_stacked_bars_thin_out_labels_that_would_overlap(count: int, every: int) -> None:
    labels = [f"Mon {i:04d}" for i in range(count)]  # 8 characters, about 64 px
    chart = stacked_bars(labels, [Series("s", tuple([1.0] * count))], Frame(width=560))
    assert [t.label for t in chart.x_ticks] == labels[::every]


def test_line_chart_maps_the_range_onto_the_plot() -> None:
    chart = line_chart(
        [Line("left", ((0, 100), (5, 40), (10, -20)), "left")],
        (0, 10),
        x_ticks=[(0, "start"), (10, "end"), (11, "beyond")],
        markers=[(5, "now")],
        frame=FRAME,
    )
    (line,) = chart.lines
    # y spans the ticks -25..100 over 100 px: 100 is the top, each px is 1.25.
    assert [t.value for t in chart.y_ticks] == [-25, 0, 25, 50, 75, 100]
    assert line.points == ((20, 10), (110, 58), (200, 106))
    assert line.path == "M20,10 L110,58 L200,106"
    assert [(t.label, t.pos) for t in chart.x_ticks] == [("start", 20), ("end", 200)]
    assert [(m.label, m.pos) for m in chart.markers] == [("now", 110)]


def test_line_chart_always_shows_zero() -> None:
    chart = line_chart([Line("used", ((0, 50), (1, 60)))], (0, 1), frame=FRAME)
    assert chart.y_ticks[0].value == 0


def test_line_chart_needs_an_increasing_range() -> None:
    with pytest.raises(ValueError, match="increasing"):
        line_chart([], (3, 3))
