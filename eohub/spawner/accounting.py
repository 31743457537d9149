"""The hub's one AccountingClient, shared by every spawner of the hub process.

The client owns the outbox file and its sender; two of them in one hub would race for
the same file, so spawners never build their own.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from eohub.accounting.client.client import AccountingClient
from eohub.logs import get_logger

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
    try:
        # The hub's merged config, as the spawners pass it: the same client they use.
        await shared_client(JupyterHub.instance().config).start()
    except Exception:
        log.exception("Could not start the hub's accounting client; it starts at the next spawn")
