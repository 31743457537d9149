"""Background loops of the service: reconcile with the hub, enforce budgets.

One loop runs both, in that order, so enforcement always judges sessions reconcile has
just corrected: every ``reconcile_interval`` seconds, or every ``enforcement_interval``
seconds when reconcile is off and enforcement is on. A round that fails is logged and
the loop goes on; it never ends the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from eohub.accounting.service.enforce import Enforcer
from eohub.accounting.service.reconcile import Reconciler
from eohub.adapters.hub_api import HubAPI, HubAPIError
from eohub.domain.accounting.enforcement import Mode

if TYPE_CHECKING:
    from eohub.accounting.app import AccountingService

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]
Step = tuple[str, Callable[[], Awaitable[Any]]]


async def run_periodically(steps: Sequence[Step], interval: float, log: Log) -> None:
    """Run ``steps`` in order every ``interval`` seconds until cancelled."""
    while True:
        for name, step in steps:
            try:
                await step()
            except HubAPIError as e:
                log.warning("The %s round could not reach the hub: %s", name, e)
            except Exception:
                log.exception("The %s round failed", name)
        await asyncio.sleep(interval)


def start_workers(service: AccountingService) -> list[asyncio.Task[None]]:
    """Start the loops the service's settings turn on; the service cancels them at exit."""
    log = service.log
    mode = Mode(service.enforcement.lower())
    reconcile_interval = service.reconcile_interval
    if reconcile_interval <= 0 and mode is Mode.OFF:
        return []
    try:
        hub = HubAPI.from_env(
            concurrency=service.hub_api_concurrency,
            request_timeout=service.hub_api_timeout,
        )
    except HubAPIError as e:
        log.error("Reconcile and enforcement are off: %s", e)
        return []
    steps: list[Step] = []
    if reconcile_interval > 0:
        reconciler = Reconciler(
            service.store,
            hub,
            log,
            fallback_group=service.reconcile_fallback_group,
            default_cpu=service.reconcile_default_cpu,
            default_memory_bytes=int(service.reconcile_default_memory or 0),
            default_gpus=service.reconcile_default_gpus,
            open_after=service.reconcile_open_after,
        )
        steps.append(("reconcile", reconciler.run_once))
    enforcer = Enforcer(service.store, hub, log, mode, service.enforcement_grace_period)
    # The usage pages show the enforcer's warnings (``service.enforcer.warnings()``).
    service.enforcer = enforcer
    if mode is not Mode.OFF:
        steps.append(("enforcement", enforcer.run_once))
    interval = reconcile_interval if reconcile_interval > 0 else service.enforcement_interval
    log.info("Every %s s: %s (hub API %s)", interval, " then ".join(n for n, _ in steps), hub.url)
    return [
        asyncio.create_task(run_periodically(steps, interval, log), name="eohub-accounting-loop")
    ]


__all__ = ["run_periodically", "start_workers"]
