"""RepoProgress: a launch's messages, followed as they come, bounded, closed at the end."""

from __future__ import annotations

import asyncio

from eohub.spawner.repo_progress import MAX_MESSAGES, RepoProgress


async def test_progress_followers_see_every_message_then_the_end() -> None:
    progress = RepoProgress()
    seen: list[str] = []

    async def follow() -> None:
        async for message in progress.follow():
            seen.append(message)

    follower = asyncio.create_task(follow())
    progress.report("one")
    await asyncio.sleep(0)
    progress.report("two")
    progress.close()
    progress.report("after the end")
    await asyncio.wait_for(follower, 5)
    assert seen == ["one", "two"]
    late = [m async for m in progress.follow()]
    assert late == ["one", "two"]
    assert [m async for m in RepoProgress.closed().follow()] == []


async def test_a_long_log_is_bounded_and_followers_skip_nothing_they_can_still_see() -> None:
    progress = RepoProgress()
    for i in range(MAX_MESSAGES * 2):
        progress.report(str(i))
    progress.close()
    shown = [m async for m in progress.follow()]
    assert len(shown) <= MAX_MESSAGES
    assert shown[-1] == str(MAX_MESSAGES * 2 - 1)
    assert [int(m) for m in shown] == sorted(int(m) for m in shown)


async def test_a_closed_progress_takes_no_more_messages() -> None:
    progress = RepoProgress.closed()
    progress.report("too late")
    assert (progress.messages, progress.is_closed) == ([], True)


async def test_the_oldest_half_is_dropped_when_the_log_is_full() -> None:
    progress = RepoProgress()
    for i in range(MAX_MESSAGES + 1):
        progress.report(str(i))
    assert progress.dropped == MAX_MESSAGES // 2
    assert progress.messages[0] == str(MAX_MESSAGES // 2)
    assert progress.messages[-1] == str(MAX_MESSAGES)


async def test_a_waiting_follower_resumes_at_the_oldest_kept_message() -> None:
    progress = RepoProgress()
    progress.report("first")
    follower = progress.follow()
    assert await anext(follower) == "first"
    waiting = asyncio.create_task(anext(follower))
    await asyncio.sleep(0)  # the follower has seen everything and waits for more
    for i in range(MAX_MESSAGES):
        progress.report(str(i))
    progress.close()
    rest = [await waiting] + [m async for m in follower]
    assert progress.dropped == MAX_MESSAGES // 2
    assert rest == progress.messages
    assert rest[0] == str(MAX_MESSAGES // 2 - 1)


async def test_a_reader_away_while_the_log_fills_resumes_in_order() -> None:
    # The reader holds one message while the log fills and drops it: it must go on at
    # the oldest message still kept, in order, and never repeat or go backwards.
    progress = RepoProgress()
    progress.report("first")
    reader = progress.follow()
    assert await anext(reader) == "first"
    for i in range(MAX_MESSAGES):
        progress.report(str(i))
    progress.close()
    rest = [message async for message in reader]
    kept = progress.messages
    assert rest == kept
    assert rest == [str(i) for i in range(int(rest[0]), MAX_MESSAGES)]
