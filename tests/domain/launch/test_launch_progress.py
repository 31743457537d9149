"""The progress bar's values for a launch's steps: tables of message sequences."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.launch.progress import STAGE_SPANS, STEP_SPANS, Numbering, Span, Step

B, C = Step.BACKEND, Step.CLONE


@pytest.mark.parametrize(
    ("span", "counts", "values"),
    [
        (Span(10, 10), [0, 1, 50], [10, 10, 10]),
        (Span(75, 95), [0, 1, 2, 3, 10, 100], [75, 79, 82, 84, 92, 94]),
        (Span(40, 60, pace=0.95), [0, 1, 10, 100], [40, 41, 48, 59]),
        (Span(30, 70), [-1], [30]),
    ],
)
def test_a_span_rises_towards_its_top_and_never_reaches_it(
    span: Span, counts: list[int], values: list[int]
) -> None:
    assert [span.value(c) for c in counts] == values


def numbered(messages: list[tuple[Step, str]]) -> list[int]:
    numbering = Numbering()
    return [numbering.next(step, stage) for step, stage in messages]


@pytest.mark.parametrize(
    ("messages", "values"),
    [
        # An environment on Kubernetes: eohub's steps, then the pod's events.
        (
            [(Step.REQUEST, ""), (Step.QUOTA, ""), (Step.START, ""), (B, ""), (B, ""), (B, "")],
            [5, 10, 75, 75, 79, 82],
        ),
        # A repository found in the registry.
        (
            [(Step.REQUEST, ""), (Step.QUOTA, ""), (Step.RESOLVE, ""), (Step.BUILD, "ready")],
            [5, 10, 20, 70],
        ),
        # A build: each phase in its own part of 30-70; log lines without a phase go on
        # in the current one; a failure does not move the bar.
        (
            [
                (Step.BUILD, "waiting"),
                (Step.BUILD, "waiting"),
                (Step.BUILD, "fetching"),
                (Step.BUILD, ""),
                (Step.BUILD, "building"),
                (Step.BUILD, "unknown"),
                (Step.BUILD, "building"),
                (Step.BUILD, "pushing"),
                (Step.BUILD, "pushing"),
                (Step.BUILD, "ready"),
                (Step.START, ""),
            ],
            [30, 30, 34, 35, 40, 41, 41, 60, 61, 70, 75],
        ),
        # A build log line before any phase: the build's own span.
        ([(Step.BUILD, ""), (Step.BUILD, ""), (Step.BUILD, "waiting")], [30, 38, 38]),
        # A clone on one machine.
        ([(C, "cloning"), (C, "ready"), (C, "ready"), (Step.START, "")], [30, 70, 70, 75]),
        # Never backwards, whatever order steps come in.
        ([(Step.START, ""), (Step.QUOTA, ""), (Step.BUILD, "waiting")], [75, 75, 75]),
    ],
)
def test_a_launchs_messages_get_rising_values(
    messages: list[tuple[Step, str]], values: list[int]
) -> None:
    assert numbered(messages) == values


def test_a_copy_goes_on_from_where_it_was_on_its_own() -> None:
    numbering = Numbering()
    numbering.next(Step.START)
    first, second = numbering.copy(), numbering.copy()
    assert [first.next(B), first.next(B)] == [75, 79]
    assert second.next(B) == 75
    assert numbering.value == 75


def test_every_span_lies_within_the_bar_and_steps_rise_in_order() -> None:
    spans = [*STEP_SPANS.values(), *STAGE_SPANS.values()]
    assert all(0 < s.low <= s.high < 100 and 0 < s.pace < 1 for s in spans)
    lows = [STEP_SPANS[step].low for step in Step]
    assert lows == sorted(lows)
    assert all(STEP_SPANS[step].high <= STEP_SPANS[Step.START].low for step in (Step.BUILD, C))


STEPS = st.sampled_from(list(Step))
STAGES = st.sampled_from(["", "waiting", "fetching", "building", "pushing", "ready", "x"])


@given(st.lists(st.tuples(STEPS, STAGES), max_size=60))
def test_values_never_go_backwards_and_stay_below_the_end(
    messages: list[tuple[Step, str]],
) -> None:
    values = numbered(messages)
    assert values == sorted(values)
    assert all(0 <= v < 100 for v in values)
