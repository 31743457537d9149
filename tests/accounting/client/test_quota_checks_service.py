"""Quota checks against the real service on PostgreSQL: a storm of them, and an outage.

- A healthy service decides every one of 64 concurrent checks itself, even when each
  takes half a second on the wire, and when the hub sends fewer at once than it asks:
  the wait for a connection inside the hub is bounded on its own, not taken from a
  check's timeouts.
- ``last_known``: the service is killed mid-test; the client decides from the last
  standing it kept, counts the spawns it lets through, respects the standing's age limit,
  logs the outage once, counts it in the hub's metric, and says when the service is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from eohub.accounting.client.client import AccountingClient
from eohub.accounting.client.outage import QUOTA_CHECKS_BY_POLICY
from tests.accounting.client.test_outbox_faults import service_behind_proxy
from tests.support.faultproxy import FaultProxy
from tests.support.hub import Hub

LOG = logging.getLogger("tests.accounting.quota_checks")
T0 = datetime(2026, 6, 1, tzinfo=UTC)
GROUPS = """c.AccountingService.groups = {
    "climate": {"allocation": "month", "quotas": {"": {"max_servers": 3}}},
    "open": {"allocation": "month"},
}
"""


def by_policy(policy: str, reason: str) -> float:
    value = QUOTA_CHECKS_BY_POLICY.labels(policy=policy, reason=reason)._value.get()
    return float(value)


def _client(url: str, token: str, tmp_path: Path, **traits: object) -> AccountingClient:
    return AccountingClient(
        url=url,
        api_token=token,
        outbox_path=str(tmp_path / "outbox.sqlite"),
        request_timeout=5,
        retry_initial_delay=0.05,
        retry_max_delay=0.3,
        log=LOG,
        **traits,
    )


async def test_a_healthy_service_decides_every_check_of_a_storm_itself(
    hub_factory: Callable[..., Hub],
    postgres_url: str,
    fault_proxy_factory: Callable[..., FaultProxy],
    tmp_path: Path,
) -> None:
    setup = service_behind_proxy(hub_factory, postgres_url, fault_proxy_factory, tmp_path)
    (tmp_path / "eohub_accounting_config.py").write_text(GROUPS)
    service = setup.start_service()
    where = urlsplit(setup.service_url)
    # Half a second on the wire per check: 0.25 s each way.
    slow = fault_proxy_factory(where.hostname, where.port, latency=0.25)
    slow_url = f"http://127.0.0.1:{slow.port}"
    before = sum(by_policy(p, r) for p in ("open", "closed") for r in ("timeout", "error"))
    try:
        # The hub's default: as many connections as its concurrent spawn limit.
        client = _client(slow_url, setup.client_token, tmp_path, quota_timeout=2.0)
        began = time.monotonic()
        answers = await asyncio.gather(
            *(
                client.check_quota(user=f"user{i}", group="open", cpu=1, server="")
                for i in range(64)
            )
        )
        took = time.monotonic() - began
        assert [a.source for a in answers] == ["service"] * 64
        assert all(a.allowed for a in answers)
        await client.stop(timeout=0)
        LOG.info("64 concurrent checks took %.2f s", took)

        # Four connections for twelve checks: three rounds. The last round waits two
        # rounds (about 1 s) for a connection, within the timeout, and is still the
        # service's. The timeout leaves room for a loaded machine: a round can take
        # well over its 0.5 s on the wire, and the wait counts against it.
        narrow = _client(
            slow_url, setup.client_token, tmp_path, quota_timeout=3.0, quota_max_connections=4
        )
        answers = await asyncio.gather(
            *(narrow.check_quota(user=f"user{i}", group="open", cpu=1) for i in range(12))
        )
        assert [a.source for a in answers] == ["service"] * 12
        await narrow.stop(timeout=0)
    finally:
        service.stop()
    after = sum(by_policy(p, r) for p in ("open", "closed") for r in ("timeout", "error"))
    assert after == before


async def _alice_runs_one_server_and_asks_for_another(client: AccountingClient) -> None:
    """Her first server's start reaches the service before she asks for a second."""
    first = await client.check_quota(user="alice", group="climate", cpu=1, server="a")
    assert (first.source, first.allowed) == ("service", True)
    await client.record_start(user="alice", server="a", started_at=T0, group="climate", cpu=1)
    assert await client.flush(10)
    second = await client.check_quota(user="alice", group="climate", cpu=1, server="b")
    assert second.source == "service"  # 1 of 3 servers running: 2 left, this one included


async def test_last_known_decides_from_the_last_standing_while_the_service_is_down(
    hub_factory: Callable[..., Hub],
    postgres_url: str,
    fault_proxy_factory: Callable[..., FaultProxy],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOG.name)
    setup = service_behind_proxy(hub_factory, postgres_url, fault_proxy_factory, tmp_path)
    (tmp_path / "eohub_accounting_config.py").write_text(GROUPS)
    service = setup.start_service()
    client = _client(
        setup.service_url,
        setup.client_token,
        tmp_path,
        quota_failure_policy="last_known",
        quota_last_known_max_age=3.0,
        quota_last_known_fallback="closed",
    )
    await client.start()
    try:
        await _alice_runs_one_server_and_asks_for_another(client)
        service.popen.kill()
        service.popen.wait()
        refused_before = by_policy("last_known", "refused")
        closed_before = by_policy("closed", "refused")

        # Down: 2 left at the last answer, "b" since, so one more and then no more.
        third = await client.check_quota(user="alice", group="climate", cpu=1, server="c")
        assert (third.source, third.allowed, third.outage) == ("last-known", True, "refused")
        assert "Within quota by its last standing" in third.reason
        fourth = await client.check_quota(user="alice", group="climate", cpu=1, server="d")
        assert (fourth.source, fourth.allowed) == ("last-known", False)
        assert "with 2 servers started since, group climate probably runs as many" in (
            fourth.reason
        )
        # Bob was never measured: the fallback decides.
        bob = await client.check_quota(user="bob", group="climate", cpu=1, server="")
        assert (bob.source, bob.allowed) == ("fail-closed", False)
        assert "no recent standing of this user in this group" in bob.reason
        # The form's budget question lets nothing through and changes nothing.
        asked = await client.check_quota(user="alice", group="open", cpu=1, for_spawn=False)
        assert asked.source == "fail-closed"

        # Past its age limit, Alice's standing is no standing either.
        await asyncio.sleep(3.2)
        late = await client.check_quota(user="alice", group="climate", cpu=1, server="e")
        assert (late.source, late.allowed) == ("fail-closed", False)

        assert by_policy("last_known", "refused") - refused_before == 2
        assert by_policy("closed", "refused") - closed_before == 3
        outage = [r for r in caplog.records if "cannot answer quota checks" in r.getMessage()]
        assert len(outage) == 1
        assert outage[0].levelno == logging.WARNING

        service = setup.start_service()
        back = await client.check_quota(user="alice", group="climate", cpu=1, server="f")
        assert back.source == "service"
        recovered = [r for r in caplog.records if "answers quota checks again" in r.getMessage()]
        assert len(recovered) == 1
        assert "5 checks were decided by the hub's policy since" in recovered[0].getMessage()
    finally:
        await client.stop(timeout=1)
        service.stop()
