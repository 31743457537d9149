"""AccountingClient.record_start carries the session's limits; stops carry their reason.

Against the loopback fake of the service (client_support.py): what the hub sends is
what the service receives, and a limit the service would refuse is refused here,
before anything is queued.
"""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.accounting.events import EventError
from tests.accounting.client.client_support import (
    FakeService,
    MakeClient,
    start_kwargs,
    stop_kwargs,
)

DAY = 86400


@pytest.mark.parametrize(
    ("limits", "sent"),
    [
        ({}, {}),
        ({"idle_timeout": None, "max_duration": None}, {}),
        ({"idle_timeout": 1800}, {"idle_timeout": 1800}),
        ({"max_duration": 8 * 3600}, {"max_duration": 8 * 3600}),
        (
            {"idle_timeout": 1, "max_duration": 366 * DAY},
            {"idle_timeout": 1, "max_duration": 366 * DAY},
        ),
    ],
)
async def test_the_start_event_carries_the_limits_that_are_set(
    service: FakeService, make_client: MakeClient, limits: dict[str, Any], sent: dict[str, int]
) -> None:
    client = make_client(service.url)
    await client.start()
    event_id = await client.record_start(**start_kwargs(0), **limits)
    assert await client.flush(5)
    stored = service.stored[event_id]
    assert {k: stored[k] for k in ("idle_timeout", "max_duration") if k in stored} == sent


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"idle_timeout": -5}, "idle_timeout"),
        ({"max_duration": 366 * DAY + 1}, "max_duration"),
    ],
)
async def test_a_limit_the_service_would_refuse_is_never_queued(
    make_client: MakeClient, service: FakeService, limits: dict[str, int], field: str
) -> None:
    client = make_client(service.url)
    with pytest.raises(EventError) as refused:
        await client.record_start(**start_kwargs(1), **limits)
    assert set(refused.value.errors) == {field}
    assert await client.pending() == 0


@pytest.mark.parametrize("reason", ["max_duration", "idle", "failed", "user", "stopped"])
async def test_a_stop_carries_its_reason(
    service: FakeService, make_client: MakeClient, reason: str
) -> None:
    client = make_client(service.url)
    await client.start()
    await client.record_start(**start_kwargs(2), max_duration=3600)
    stop_id = await client.record_stop(**stop_kwargs(2), reason=reason)
    assert await client.flush(5)
    assert service.stored[stop_id]["reason"] == reason
