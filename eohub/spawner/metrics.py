"""How long eohub's own steps of a spawn take, in the hub's Prometheus metrics.

A spawn through an eohub spawner does three things a plain spawner does not: the launch
policy (parse the options, resolve environment, size, group and volumes), the quota check
(a round trip to the accounting service), and the start event (committed to the outbox).
``eohub_spawn_step_seconds`` times each, so an admin can see from ``/hub/metrics`` what
eohub adds to a spawn, and which part, on their own hub.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Histogram

#: In JupyterHub's default registry, which ``/hub/metrics`` serves.
SPAWN_STEP_SECONDS = Histogram(
    "eohub_spawn_step_seconds",
    "Seconds eohub's steps of a spawn took. step: policy (the launch policy, a repository "
    "launch's resolution included, the quota check not), quota (the quota check, the "
    "accounting service's round trip included), record (committing the start event to the "
    "outbox, in the background once the backend has started the server).",
    ["step"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@contextmanager
def timed(step: str) -> Iterator[None]:
    """Observe the block's duration under ``step``, whether it raised or not."""
    began = time.perf_counter()
    try:
        yield
    finally:
        SPAWN_STEP_SECONDS.labels(step=step).observe(time.perf_counter() - began)


__all__ = ["SPAWN_STEP_SECONDS", "timed"]
