"""The hub's one AccountingClient: built from the config on first use, then shared."""

from __future__ import annotations

import pytest
from traitlets.config import Config

import eohub.spawner.accounting as accounting
from eohub.accounting.client.client import AccountingClient


def test_every_spawner_shares_the_first_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounting, "_client", None)
    config = Config()
    config.AccountingClient.api_token = "from-this-config"
    first = accounting.shared_client(config)
    assert isinstance(first, AccountingClient)
    assert first.api_token == "from-this-config"
    assert accounting.shared_client(Config()) is first  # later configs change nothing


def test_outside_a_running_hub_the_shutdown_order_is_left_alone() -> None:
    # A config check, or a test: there is no hub instance whose cleanup could be wrapped.
    assert accounting.stop_servers_before_services() is False
