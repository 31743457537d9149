"""AccountingClient's settings and quota checks, against a real HTTP server on loopback.

The fake speaks the service's wire format and can be told to fail, hang or go away; the
end-to-end fault tests against the real service live with the service.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from eohub.accounting.client.client import (
    DEFAULT_URL,
    AccountingClient,
    QuotaAnswer,
    hub_spawn_limit,
)
from eohub.domain.accounting.events import EventError
from tests.accounting.client.client_support import (
    FakeService,
    MakeClient,
)

# -- configuration -------------------------------------------------------------------


def test_url_and_token_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EOHUB_ACCOUNTING_URL", raising=False)
    monkeypatch.delenv("EOHUB_ACCOUNTING_HUB_TOKEN", raising=False)
    client = AccountingClient()
    assert (client.url, client.api_token) == (DEFAULT_URL, "")
    assert DEFAULT_URL == "http://127.0.0.1:10101/services/eohub-accounting/"
    assert client.quota_failure_policy == "open"
    # The variable names where the service listens, as the config drop-in reads it.
    monkeypatch.setenv("EOHUB_ACCOUNTING_URL", "http://accounting:10101")
    monkeypatch.setenv("EOHUB_ACCOUNTING_HUB_TOKEN", "from-env")
    client = AccountingClient()
    assert client.url == "http://accounting:10101/services/eohub-accounting/"
    assert client.api_token == "from-env"


@pytest.mark.parametrize(
    ("hub", "client", "connections"),
    [
        ({}, {}, 64),  # no hub setting: Zero to JupyterHub's concurrentSpawnLimit
        ({"concurrent_spawn_limit": 200}, {}, 200),
        ({"concurrent_spawn_limit": 0}, {}, 64),  # unlimited spawns: still a bounded pool
        ({"concurrent_spawn_limit": 200}, {"quota_max_connections": 16}, 16),
    ],
)
def test_quota_checks_get_a_pool_as_large_as_the_hubs_spawn_limit(
    hub: dict[str, Any], client: dict[str, Any], connections: int
) -> None:
    config = Config({"JupyterHub": hub, "AccountingClient": client})
    made = AccountingClient(config=config)
    assert made._quota_checks().connections == connections
    assert hub_spawn_limit(Config()) == 64


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://acc:10101", "http://acc:10101/services/eohub-accounting/"),
        ("http://acc:10101/", "http://acc:10101/services/eohub-accounting/"),
        (
            "http://acc:10101/services/eohub-accounting",
            "http://acc:10101/services/eohub-accounting/",
        ),
        ("https://hub.example.org/jhub/services/eohub-accounting/", None),
    ],
)
def test_a_url_without_a_path_gets_the_service_prefix(given: str, used: str | None) -> None:
    assert AccountingClient(url=given).url == (used or given)


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("url", "ftp://host/", "http:// or https://"),
        ("url", "http://host/x?token=1", "without a query"),
        ("batch_size", 0, "from 1 to 5000"),
        ("batch_size", 5001, "from 1 to 5000"),
        ("quota_timeout", 0, "quota_timeout must be above 0"),
        ("quota_failure_policy", "maybe", r"any of \['open', 'closed', 'last_known'\]"),
        ("quota_last_known_fallback", "last_known", r"any of \['open', 'closed'\]"),
        ("quota_connect_timeout", -1, "quota_connect_timeout must be above 0"),
        ("quota_last_known_max_age", 0, "quota_last_known_max_age must be above 0"),
        ("quota_max_connections", -1, "should not be less than 0"),
    ],
)
def test_bad_settings_fail_with_the_trait_named(trait: str, value: Any, message: str) -> None:
    with pytest.raises(TraitError, match=message):
        AccountingClient(**{trait: value})


# -- quota checks --------------------------------------------------------------------


async def test_a_quota_check_returns_the_service_answer(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(service.url)
    answer = await client.check_quota(
        user="alice", group="climate", cpu=2, memory_bytes=1024**3, gpus=1
    )
    assert answer == QuotaAnswer(
        True,
        "Within quota.",
        {"core_hours": 12.5, "gpu_hours": None, "memory_gib_hours": 40.0},
        "service",
    )
    assert service.quota_requests == [
        {"user": "alice", "group": "climate", "cpu": 2, "memory_bytes": 1024**3, "gpus": 1}
    ]
    assert service.quota_purposes == [""]


async def test_a_check_that_starts_nothing_says_so(
    service: FakeService, make_client: MakeClient
) -> None:
    """The form's and home page's budget questions: the service does not count their
    denials as spawns refused."""
    client = make_client(service.url)
    await client.check_quota(user="alice", group="climate", cpu=1, for_spawn=False)
    await client.check_quota(user="alice", group="climate", cpu=1, server="lab")
    assert service.quota_purposes == ["form", ""]


async def test_a_denial_is_passed_on_with_its_reason(
    service: FakeService, make_client: MakeClient
) -> None:
    service.quota_reply = {
        "allowed": False,
        "reason": "The core-hours budget of group climate is spent.",
        "budget_left": {"core_hours": 0.0, "gpu_hours": None, "memory_gib_hours": None},
    }
    answer = await make_client(service.url).check_quota(user="alice", group="climate", cpu=1)
    assert not answer.allowed
    assert answer.source == "service"
    assert answer.reason == "The core-hours budget of group climate is spent."


async def test_a_bad_quota_request_is_refused_without_asking(
    service: FakeService, make_client: MakeClient
) -> None:
    client = make_client(service.url, quota_failure_policy="open")
    with pytest.raises(ValueError, match="cpu") as refused:
        await client.check_quota(user="alice", group="climate", cpu=0)
    assert isinstance(refused.value, EventError)
    assert service.quota_requests == []


@pytest.mark.parametrize("policy", ["open", "closed"])
@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("hang", "The accounting service did not answer within 0.3 s"),
        ("down", "The accounting service cannot be reached"),
        ("500", "The accounting service failed"),
        ("token", "The accounting service refused the hub's token"),
        ("garbage", "The accounting service sent an answer eohub cannot read"),
    ],
)
async def test_a_quota_check_the_service_cannot_answer_follows_the_policy(
    service: FakeService, make_client: MakeClient, policy: str, fault: str, problem: str
) -> None:
    client = make_client(service.url, quota_failure_policy=policy)
    if fault == "hang":
        service.hang = True
    elif fault == "down":
        await service.stop()
    elif fault == "500":
        service.statuses = [500]
    elif fault == "token":
        client.api_token = "not-the-token"
    else:
        service.quota_reply = {"allowed": "yes", "reason": "?"}
    began = time.monotonic()
    answer = await client.check_quota(user="alice", group="climate", cpu=1)
    assert time.monotonic() - began < 1.5
    assert answer.allowed is (policy == "open")
    assert answer.source == f"fail-{policy}"
    assert answer.budget_left == {}
    if policy == "open":
        assert answer.reason == f"{problem}; starting anyway (fail-open)."
    else:
        assert answer.reason.startswith(f"{problem}, so the quota cannot be checked")
        assert "Try again in a few minutes" in answer.reason
