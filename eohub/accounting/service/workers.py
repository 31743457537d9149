"""Background loops of the service: reconcile with the hub, enforce budgets.

One loop runs both, in that order, so enforcement always judges sessions reconcile has
just corrected: every ``reconcile_interval`` seconds, or every ``enforcement_interval``
seconds when reconcile is off and enforcement is on. A round that fails is logged and
the loop goes on; it never ends the service.

The application calls :func:`connect_hub` while it builds the
:class:`~eohub.accounting.service.context.ServiceContext`, so the enforcer (whose
warnings the pages show) exists before any loop starts; :func:`start_workers` then
runs the loops from that context alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from eohub.accounting.service.context import LoopSettings, ServiceContext
from eohub.accounting.service.enforce import Enforcer
from eohub.accounting.service.reconcile import Reconciler
from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI, HubAPIError
from eohub.domain.accounting.enforcement import Mode
from eohub.logs import get_logger

log = get_logger(__name__)

Step = tuple[str, Callable[[], Awaitable[Any]]]


async def run_periodically(steps: Sequence[Step], interval: float) -> None:
    """Run ``steps`` in order every ``interval`` seconds until cancelled."""
    while True:
        for name, step in steps:
            try:
                await step()
            except HubAPIError as e:
                log.warning(
                    "The {name} round could not reach the hub: {error}", name=name, error=e
                )
            except Exception:
                log.exception("The {name} round failed", name=name)
        await asyncio.sleep(interval)


def connect_hub(
    store: AccountingStore, loops: LoopSettings
) -> tuple[HubAPI | None, Enforcer | None]:
    """The hub's API (also for the PIs' pages: idle times, stops) and, if a loop is on,
    the enforcer.

    ``(None, None)`` (logged where a loop needs it) when the environment does not name
    the hub's URL and token, as outside a hub.
    """
    try:
        hub = HubAPI.from_env(
            concurrency=loops.hub_api_concurrency, request_timeout=loops.hub_api_timeout
        )
    except HubAPIError as e:
        if loops.any_on:
            log.error("Reconcile and enforcement are off: {error}", error=e)
        return None, None
    enforcer = (
        Enforcer(store, hub, loops.enforcement, loops.grace_period) if loops.any_on else None
    )
    return hub, enforcer


def start_workers(context: ServiceContext) -> list[asyncio.Task[None]]:
    """Start the loops the context's settings turn on; the caller cancels them at exit."""
    loops, hub = context.loops, context.hub
    if hub is None or not loops.any_on:
        return []
    steps: list[Step] = []
    if loops.reconcile_interval > 0:
        reconciler = Reconciler(
            context.store,
            hub,
            fallback_group=loops.fallback_group,
            default_cpu=loops.default_cpu,
            default_memory_bytes=loops.default_memory_bytes,
            default_gpus=loops.default_gpus,
            open_after=loops.open_after,
            close_after=loops.close_after,
        )
        steps.append(("reconcile", reconciler.run_once))
    if context.enforcer is not None and loops.enforcement is not Mode.OFF:
        steps.append(("enforcement", context.enforcer.run_once))
    log.info(
        "Every {interval} s: {steps} (hub API {url})",
        interval=loops.interval,
        steps=" then ".join(n for n, _ in steps),
        url=hub.url,
    )
    return [
        asyncio.create_task(run_periodically(steps, loops.interval), name="eohub-accounting-loop")
    ]


__all__ = ["connect_hub", "run_periodically", "start_workers"]
