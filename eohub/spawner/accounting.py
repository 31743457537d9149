"""The hub's one AccountingClient, shared by every spawner of the hub process.

The client owns the outbox file and its sender; two of them in one hub would race for
the same file, so spawners never build their own.
"""

from __future__ import annotations

import threading
from typing import Any

from eohub.accounting.client.client import AccountingClient

_client: AccountingClient | None = None
_lock = threading.Lock()


def shared_client(config: Any) -> AccountingClient:
    """The process's client, built from ``config`` (``c.AccountingClient``) on first use."""
    global _client
    with _lock:
        if _client is None:
            _client = AccountingClient(config=config)
        return _client
