"""The hub's one AccountingClient, shared by every spawner of the hub process.

The client owns the outbox file and its sender; two of them in one hub would race for
the same file, so spawners never build their own.

Its life follows the hub's: drop-in 30 starts it with the hub (:func:`start_with_the_hub`)
and makes the hub stop its users' servers, and deliver their stops, before it stops its
managed services (:func:`stop_servers_before_services`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from eohub.accounting.client.client import AccountingClient
from eohub.accounting.scopes import quiet_service_logins
from eohub.logs import get_logger, quiet_expected_refusals
from eohub.spawner.stop_attribution import stops_at_shutdown

log = get_logger(__name__)

_client: AccountingClient | None = None
_lock = threading.Lock()
# The event loop keeps only weak references to tasks: these are kept until they end.
_starting: set[asyncio.Task[None]] = set()


def shared_client(config: Any) -> AccountingClient:
    """The process's client, built from ``config`` (``c.AccountingClient``) on first use."""
    global _client
    with _lock:
        if _client is None:
            _client = AccountingClient(config=config)
        return _client


def start_with_the_hub(delay: float = 1.0) -> bool:
    """Start the hub's client ``delay`` seconds after the hub starts (drop-in 30 calls this).

    The hub's log handlers get eohub's filters then too: expected refusals without
    tracebacks (:class:`eohub.logs.QuietRefusals`), and no warning at each login to the
    accounting pages (:class:`eohub.accounting.scopes.ServiceLoginScopes`).

    Events a previous run of the hub left in its outbox are then sent at once, rather than
    with the next server start or stop. Called from a config file, which JupyterHub reads
    in its running event loop; elsewhere (a config check) it does nothing, and says so
    by returning False.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    loop.call_later(delay, _begin_start)
    return True


def _begin_start() -> None:
    task = asyncio.ensure_future(_start_shared_client())
    _starting.add(task)
    task.add_done_callback(_starting.discard)


async def _start_shared_client() -> None:
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return
    # From the start, not from the first spawn: a login to the service's pages may
    # come first.
    hub_log = JupyterHub.instance().log
    quiet_expected_refusals(hub_log)
    quiet_service_logins(hub_log)
    try:
        # The hub's merged config, as the spawners pass it: the same client they use.
        await shared_client(JupyterHub.instance().config).start()
    except Exception:
        log.exception("Could not start the hub's accounting client; it starts at the next spawn")


#: Seconds the hub waits, as it shuts down, for the servers' stops to reach accounting.
SHUTDOWN_DELIVERY_SECONDS = 10.0


def stop_servers_before_services(delivery_timeout: float = SHUTDOWN_DELIVERY_SECONDS) -> bool:
    """Make the running hub stop its users' servers before its managed services.

    JupyterHub's ``cleanup`` (on Ctrl-C or SIGTERM) stops the managed services first,
    then the servers, so the accounting service is gone when the servers' stops are
    recorded: they wait in the outbox for the next start. This wraps the hub's
    ``cleanup`` so that, where ``JupyterHub.cleanup_servers`` is on, the servers stop
    first and their stops are delivered (for up to ``delivery_timeout`` seconds) while
    the service still runs; JupyterHub's own cleanup then does the rest. Called from a
    config file (drop-in 30), which the hub reads once its instance exists; elsewhere it
    does nothing, and says so by returning False.
    """
    try:
        from jupyterhub.app import JupyterHub
    except ImportError:
        return False
    if not JupyterHub.initialized():
        return False
    hub = JupyterHub.instance()
    if getattr(hub, "_eohub_servers_first", False):
        return True
    hub.cleanup = _servers_first(hub, hub.cleanup, delivery_timeout)
    hub._eohub_servers_first = True
    return True


def _servers_first(
    hub: Any, cleanup: Callable[[], Awaitable[None]], delivery_timeout: float
) -> Callable[[], Awaitable[None]]:
    async def servers_first_cleanup() -> None:
        # The ledger records these stops, and any JupyterHub's own cleanup makes, as
        # "shutdown" (eohub.spawner.stop_attribution).
        with stops_at_shutdown():
            try:
                if hub.cleanup_servers:
                    await _stop_servers(hub)
                    await _deliver_stops(delivery_timeout)
            except Exception:
                # Whatever went wrong, the hub must still shut down; the outbox keeps events.
                log.exception("Stopping the servers before the hub's services failed")
            await cleanup()

    return servers_first_cleanup


async def _stop_servers(hub: Any) -> None:
    stopping = [
        (user.name, name, user.stop(name))
        for user in list(hub.users.values())
        for name, spawner in list(user.spawners.items())
        if spawner.active
    ]
    if not stopping:
        return
    log.info(
        "Stopping {count} servers before the hub's services, so their stops reach accounting",
        count=len(stopping),
    )
    results = await asyncio.gather(*(stop for _, _, stop in stopping), return_exceptions=True)
    for (user, name, _), result in zip(stopping, results, strict=True):
        if isinstance(result, Exception):
            log.error(
                "Could not stop server {server!r} of {user} at shutdown: {error}",
                server=name,
                user=user,
                error=result,
            )


async def _deliver_stops(timeout: float) -> None:  # noqa: ASYNC109
    client = _client
    if client is None:
        return
    # flush() sends at once, even during a back-off; stop() then closes the outbox.
    delivered = await client.flush(timeout)
    await client.stop(0)
    if not delivered:
        log.warning(
            "Accounting events still queued at shutdown are sent when the hub next starts",
            waited=timeout,
        )
