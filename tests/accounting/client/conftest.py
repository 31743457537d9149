"""Fixtures of the client tests: the fake service and clients with test-sized timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from eohub.accounting.client.client import AccountingClient
from tests.accounting.client.client_support import (
    LOG,
    TOKEN,
    FakeService,
    MakeClient,
)


@pytest.fixture
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """Clients with test-sized timeouts, sharing one outbox file; stopped after the test."""
    clients: list[AccountingClient] = []

    def make(url: str, **traits: Any) -> AccountingClient:
        settings: dict[str, Any] = {
            "url": url,
            "api_token": TOKEN,
            "outbox_path": str(tmp_path / "outbox.sqlite"),
            "quota_timeout": 0.3,
            "request_timeout": 0.5,
            "retry_initial_delay": 0.02,
            "retry_max_delay": 0.1,
        }
        # The hub passes itself as parent, and the client logs to the hub's logger.
        client = AccountingClient(config=Config({"AccountingClient": settings | traits}), log=LOG)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.stop(timeout=0)
