"""How far a launch has come, as the spawn page's progress bar shows it; pure.

JupyterHub's spawn-pending page sets the bar's width to each progress event's
``progress`` (0-100). A launch goes through eohub's own steps, then the backend's:

========  ==========  ===============================================================
step      bar         what
========  ==========  ===============================================================
request   5           the launch as approved (environment, size, group)
quota     10          the quota check's answer
resolve   20          the repository's ref resolved to a commit
build     30 → 70     the image found, or BinderHub's build phases and log lines
clone     30 → 70     the commit cloned into the workspace (single machine)
start     75          the server is being created
backend   75 → 95     the backend's own events (pod events, waiting for the server)
========  ==========  ===============================================================

Within a span each message moves the bar part of the way towards its top, never
reaching it, as KubeSpawner does for pod events; named stages (a build's phases)
have spans of their own. :class:`Numbering` gives the values of a launch's messages in
order and never goes backwards, whatever order the steps come in.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Step(enum.StrEnum):
    """A step of a launch, in the order a launch goes through them."""

    REQUEST = "request"
    QUOTA = "quota"
    RESOLVE = "resolve"
    BUILD = "build"
    CLONE = "clone"
    START = "start"
    BACKEND = "backend"


@dataclass(frozen=True)
class Span:
    """The part of the bar a step (or a stage of it) fills.

    Parameters
    ----------
    low
        The value of the span's first message.
    high
        The value the span's messages approach and never pass.
    pace
        The fraction of the way left to ``high`` that remains after each message:
        0.8 moves a fifth of the way at each message.
    """

    low: int
    high: int
    pace: float = 0.8

    def value(self, count: int) -> int:
        """The value of the span's ``count``-th message (0 for the first)."""
        rise = (self.high - self.low) * (1 - self.pace ** max(count, 0))
        return self.low + math.floor(rise + 1e-9)  # 4.0 computed as 3.999... is 4


#: Each step's span, when no stage of it is named.
STEP_SPANS: Mapping[Step, Span] = MappingProxyType(
    {
        Step.REQUEST: Span(5, 5),
        Step.QUOTA: Span(10, 10),
        Step.RESOLVE: Span(20, 20),
        Step.BUILD: Span(30, 70),
        Step.CLONE: Span(30, 70),
        Step.START: Span(75, 75),
        Step.BACKEND: Span(75, 95),
    }
)
#: Named stages of a step. A build's stages are BinderHub's phases (see
#: :mod:`eohub.domain.repos.build_events`); a build log has hundreds of lines, so
#: ``building`` moves slowly.
STAGE_SPANS: Mapping[tuple[Step, str], Span] = MappingProxyType(
    {
        (Step.BUILD, "waiting"): Span(30, 34),
        (Step.BUILD, "fetching"): Span(34, 40),
        (Step.BUILD, "building"): Span(40, 60, pace=0.95),
        (Step.BUILD, "pushing"): Span(60, 68),
        (Step.BUILD, "ready"): Span(70, 70),
        (Step.BUILD, "built"): Span(70, 70),
        (Step.CLONE, "cloning"): Span(30, 65),
        (Step.CLONE, "ready"): Span(70, 70),
    }
)


class Numbering:
    """The bar's values for one launch's messages, in the order they come.

    A message of a stage this step has no span for (a build log line without a phase,
    BinderHub's ``unknown``) goes on in the step's current stage.
    """

    def __init__(self) -> None:
        self.value = 0
        self._at: tuple[Step, str] | None = None
        self._count = 0

    def next(self, step: Step, stage: str = "") -> int:
        """The value of the next message, of ``step`` (and ``stage``)."""
        at = (step, stage)
        if at not in STAGE_SPANS:
            current = self._at
            at = current if current is not None and current[0] == step else (step, "")
        if at == self._at:
            self._count += 1
        else:
            self._at, self._count = at, 0
        span = STAGE_SPANS.get(at) or STEP_SPANS[step]
        self.value = max(self.value, span.value(self._count))
        return self.value

    def copy(self) -> Numbering:
        """A numbering that goes on from here on its own."""
        other = Numbering()
        other.value, other._at, other._count = self.value, self._at, self._count
        return other


__all__ = ["STAGE_SPANS", "STEP_SPANS", "Numbering", "Span", "Step"]
