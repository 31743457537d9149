"""One progress log per spawn: a follower that attaches early sees this launch's steps.

JupyterHub serves a spawn's progress as soon as the spawn is pending, before its
options are checked (``apply_user_options``) or ``start`` runs; its ``/hub/spawn`` POST
sends the browser to the pending page after a second. With a slow quota answer the
page's follower attaches before the launch is approved: it must wait for this launch's
steps, never replay the previous launch's, and never end before eohub's steps.

A real QuotaLocalSpawner driven in the hub's order (``clear_state``, the options,
``start``); only the process launch at the very end of ``start`` is replaced, since no
server runs here (the real hub test is ``test_spawn_progress_hub.py``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jupyterhub.spawner import LocalProcessSpawner

from eohub.accounting.client.client import QuotaAnswer
from eohub.spawner.local import QuotaLocalSpawner
from tests.spawner.test_mixin import make_spawner
from tests.support.kube_spawners import FakeAccounting


class SlowAccounting(FakeAccounting):
    """Accounting whose quota answer waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.answer_now = asyncio.Event()

    async def check_quota(self, **kwargs: Any) -> QuotaAnswer:
        self.asked.set()
        await self.answer_now.wait()
        return await super().check_quota(**kwargs)


@pytest.fixture(autouse=True)
def no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    async def started(self: LocalProcessSpawner) -> str:
        return "http://127.0.0.1:1"

    monkeypatch.setattr(LocalProcessSpawner, "start", started)


async def follow(spawner: QuotaLocalSpawner) -> list[str]:
    """The messages a follower of the spawn page sees, up to the backend's first one."""
    seen: list[str] = []
    async for event in spawner.progress():
        if "message" in event:
            seen.append(event["message"])
        if event.get("message") == "Waiting for your server to answer.":
            break
    return seen


async def spawn(spawner: QuotaLocalSpawner, options: dict[str, Any]) -> None:
    """Spawn as the hub does: pending, state cleared, options applied, then start."""
    spawner._spawn_pending = True
    spawner.clear_state()
    await spawner.apply_user_options(spawner, options)
    await spawner.start()


async def stop(spawner: QuotaLocalSpawner) -> None:
    """What the hub does of a stop that matters here: not pending, state cleared."""
    spawner._spawn_pending = False
    spawner.clear_state()


async def spawn_followed_early(spawner: QuotaLocalSpawner, options: dict[str, Any]) -> list[str]:
    """A spawn whose quota answer is slow, followed from before its options are checked."""
    slow = SlowAccounting()
    spawner.accounting = slow
    spawner._spawn_pending = True  # the hub sets it before the spawn's first step
    follower = asyncio.create_task(follow(spawner))
    await asyncio.sleep(0.05)  # the follower attaches now
    spawning = asyncio.create_task(spawn(spawner, options))
    await asyncio.wait_for(slow.asked.wait(), 5)
    await asyncio.sleep(0.05)
    assert not follower.done()  # it waits for this launch's steps
    slow.answer_now.set()
    await asyncio.wait_for(spawning, 5)
    seen = await asyncio.wait_for(follower, 5)
    spawner._spawn_pending = False
    return seen


async def test_a_reused_spawner_never_replays_the_previous_launch() -> None:
    spawner = make_spawner({"climate"})
    await spawn(spawner, {"environment": "lab", "size": "big"})
    assert spawner.launch_progress.messages[0] == "Launching Lab, size Big, charged to climate."
    await stop(spawner)

    seen = await spawn_followed_early(spawner, {"environment": "lab", "size": "small"})
    assert seen == [
        "Launching Lab, size Small, charged to climate.",
        "Quota check passed: 120.0 core-hours left.",
        "Starting your server.",
        "Waiting for your server to answer.",
    ]


async def test_a_new_spawner_shows_its_steps_to_an_early_follower() -> None:
    spawner = make_spawner({"climate"})
    seen = await spawn_followed_early(spawner, {"environment": "lab", "size": "small"})
    assert seen[0] == "Launching Lab, size Small, charged to climate."
    assert "Starting your server." in seen


async def test_a_follower_after_the_start_replays_this_launch() -> None:
    spawner = make_spawner({"climate"})
    await spawn(spawner, {"environment": "lab", "size": "small"})
    # A reload of the pending page while the server is still coming up.
    assert (await follow(spawner))[:3] == [
        "Launching Lab, size Small, charged to climate.",
        "Quota check passed: 120.0 core-hours left.",
        "Starting your server.",
    ]
    spawner._spawn_pending = False
    await stop(spawner)
    # Once stopped, the log is the next spawn's, empty and open: nothing to replay.
    assert spawner.launch_progress.messages == []
    assert [e async for e in spawner.launch_progress.follow()] == []


async def test_a_stop_ends_the_followers_of_a_launch_that_never_started() -> None:
    spawner = make_spawner({"climate"})
    spawner._spawn_pending = True
    spawner.clear_state()
    await spawner.apply_user_options(spawner, {"environment": "lab"})
    early = spawner.launch_progress
    follower = asyncio.create_task(follow(spawner))
    await asyncio.sleep(0.05)
    await stop(spawner)  # the spawn failed after its approval: the hub stops it
    assert early.is_closed
    assert spawner.launch_progress is not early
    assert (await asyncio.wait_for(follower, 5))[0].startswith("Launching Lab")
