"""Background loops of the service: reconcile with the hub, enforce budgets."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eohub.accounting.app import AccountingService


def start_workers(service: AccountingService) -> list[asyncio.Task[None]]:
    return []
