"""Quota checks' connections, deadlines and outage records, against a loopback server.

The real service under a storm and a real outage are in ``test_quota_checks_service.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

import eohub.accounting.client.outage as outage
from eohub.accounting.client.http import NoAnswer, post_json
from eohub.accounting.client.outage import OutageLog
from eohub.accounting.client.outbox_thread import OutboxThread
from tests.accounting.client.client_support import FakeService, MakeClient, down_url

LOGGER = "eohub.accounting.client.outage"


async def test_a_check_waits_for_a_free_connection_at_most_its_timeout(
    service: FakeService, make_client: MakeClient
) -> None:
    service.hang = True
    client = make_client(service.url, quota_max_connections=1, quota_timeout=0.3)
    began = time.monotonic()
    first, second = await asyncio.gather(
        client.check_quota(user="alice", group="climate", cpu=1),
        client.check_quota(user="bob", group="climate", cpu=1),
    )
    assert time.monotonic() - began < 1.5
    reasons = sorted([first.reason, second.reason])
    assert reasons[0].startswith("The accounting service did not answer within 0.3 s")
    assert reasons[1].startswith("The hub had no free connection to the accounting service")
    assert {first.outage, second.outage} == {"timeout"}


async def test_connection_refused_is_its_own_reason(make_client: MakeClient) -> None:
    answer = await make_client(down_url()).check_quota(user="alice", group="climate", cpu=1)
    assert (answer.decided_by, answer.source, answer.outage) == ("policy", "fail-open", "refused")


class CurlLike:
    """curl_httpclient's way of failing: a 599 whose message says what happened."""

    def __init__(self, message: str) -> None:
        self.message = message

    async def fetch(self, *args: object, **kwargs: object) -> None:
        raise OSError(self.message)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("HTTP 599: Failed to connect to 127.0.0.1 port 9: Connection refused", "refused"),
        ("HTTP 599: Operation timed out after 2000 milliseconds", "timeout"),
        ("HTTP 599: Could not resolve host: accounting", "error"),
    ],
)
async def test_curls_failures_get_the_same_reasons(message: str, kind: str) -> None:
    with pytest.raises(NoAnswer) as failed:
        await post_json(CurlLike(message), "http://x/api", {}, token="t", seconds=2)  # type: ignore[arg-type]
    assert failed.value.kind == kind


def test_an_outage_is_one_warning_and_a_flapping_service_one_outage(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(outage.time, "monotonic", lambda: clock[0])
    log = OutageLog()
    failure = {"problem": "down", "detail": "refused", "user": "a", "group": "g"}
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        for _ in range(3):
            log.decided_by_policy(policy="open", reason="refused", **failure)
        clock[0] += 60
        log.service_answered()
        log.service_answered()
        clock[0] += 30  # fails again soon after: the same outage
        log.decided_by_policy(policy="open", reason="timeout", **failure)
        clock[0] += 10
        log.service_answered()
        clock[0] += 400  # a new outage, long after
        log.decided_by_policy(policy="open", reason="timeout", **failure)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    back = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(warnings) == 2
    assert warnings[0].startswith("The accounting service cannot answer quota checks: down")
    assert len(back) == 2
    assert "3 checks were decided by the hub's policy since the outage began 60 s ago" in back[0]
    assert "4 checks were decided by the hub's policy since the outage began 100 s ago" in back[1]


async def test_a_cancelled_commit_fails_its_callers_instead_of_leaving_them_waiting(
    tmp_path: object,
) -> None:
    outbox = OutboxThread(lambda: str(tmp_path) + "/outbox.sqlite")  # type: ignore[operator]
    await outbox.open()
    event = {"id": "start:1", "kind": "start"}
    put = asyncio.ensure_future(outbox.put(event))
    await asyncio.sleep(0)  # the commit task has started
    assert outbox._committing is not None
    outbox._committing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(put, 5)
    # The file still works for the next callers.
    assert await outbox.put({"id": "start:2", "kind": "start"}) is True
    await outbox.close()
