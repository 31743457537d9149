"""Background loops of the service: reconcile with the hub, enforce budgets and limits.

One loop runs them all, in that order, so enforcement always judges sessions reconcile
has just corrected: every ``reconcile_interval`` seconds, or every
``enforcement_interval`` seconds when reconcile is off and an enforcement is on. Budget
enforcement runs when its mode is not ``off``; session limits (idle limit, maximum
duration) are enforced whatever that mode, unless turned off. A round that fails is
logged and the loop goes on; it never ends the service.

The application calls :func:`connect_hub` while it builds the
:class:`~eohub.accounting.service.context.ServiceContext`, so the workers whose
warnings the pages show exist before any loop starts; :func:`start_workers` then runs
the loops from that context alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from eohub.accounting.service.context import LoopSettings, ServiceContext
from eohub.accounting.service.enforce import Enforcer
from eohub.accounting.service.lifetimes import LifetimeEnforcer
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


def _needs_the_hub(loops: LoopSettings) -> tuple[list[str], list[str]]:
    """What is on that needs the hub's API, in words, and the settings that turn it off."""
    names: list[str] = []
    settings: list[str] = []
    if loops.session_limits:
        names.append("session limits (idle limits, maximum durations)")
        settings.append("AccountingService.session_limits_enforcement = False")
    if loops.reconcile_interval > 0:
        names.append("reconcile")
        settings.append("AccountingService.reconcile_interval = 0")
    if loops.enforcement is not Mode.OFF:
        names.append("budget enforcement")
        settings.append("AccountingService.enforcement = 'off'")
    return names, settings


def _say_the_loops_are_off(loops: LoopSettings, error: HubAPIError) -> None:
    names, settings = _needs_the_hub(loops)
    if not names:
        return  # nothing needs it: a service outside a hub, on purpose
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    # An error: the limits users were shown, or the budgets, go unenforced.
    log.error(
        "{loops} cannot run without the hub's API ({error}). The hub sets "
        "JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN for a service it runs; set both for "
        "one it does not, or turn off what needs them ({settings}).",
        loops=listed[0].upper() + listed[1:],
        error=error,
        settings=", ".join(settings),
    )


def connect_hub(
    store: AccountingStore, loops: LoopSettings
) -> tuple[HubAPI | None, Enforcer | None, LifetimeEnforcer | None]:
    """The hub's API (also for the PIs' pages: idle times, stops), the budget enforcer if
    a loop is on, and the session-lifetime worker if session limits are enforced.

    ``(None, None, None)`` (logged where a loop needs it) when the environment does not
    name the hub's URL and token, as outside a hub.
    """
    try:
        hub = HubAPI.from_env(
            concurrency=loops.hub_api_concurrency, request_timeout=loops.hub_api_timeout
        )
    except HubAPIError as e:
        _say_the_loops_are_off(loops, e)
        return None, None, None
    enforcer = (
        Enforcer(store, hub, loops.enforcement, loops.grace_period) if loops.any_on else None
    )
    lifetimes = (
        LifetimeEnforcer(store, hub, warning_period=loops.max_duration_warning)
        if loops.session_limits
        else None
    )
    return hub, enforcer, lifetimes


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
    if context.lifetimes is not None and loops.session_limits:
        steps.append(("session limits", context.lifetimes.run_once))
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
