"""LaunchProgress: a launch's steps with their bar values, followed as they come,
replayed from the first for a late follower, bounded, closed when the backend takes over."""

from __future__ import annotations

import asyncio
from typing import Any

from eohub.domain.launch.progress import Step
from eohub.spawner.launch_progress import MAX_MESSAGES, LaunchProgress


def messages(events: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in events]


async def test_followers_see_every_step_with_its_value_then_the_end() -> None:
    progress = LaunchProgress()
    progress.report(Step.REQUEST, "launching")
    progress.begin()
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in progress.follow():
            seen.append(event)

    follower = asyncio.create_task(follow())
    progress.report(Step.QUOTA, "quota")
    await asyncio.sleep(0)
    progress.report(Step.START, "start")
    progress.close()
    progress.report(Step.BACKEND, "after the end")
    await asyncio.wait_for(follower, 5)
    expected = [
        {"progress": 5, "message": "launching"},
        {"progress": 10, "message": "quota"},
        {"progress": 75, "message": "start"},
    ]
    assert seen == expected
    # The spawn page connects late, and again after a reload: it sees it all again.
    assert [e async for e in progress.follow()] == expected
    assert [e async for e in LaunchProgress.closed().follow()] == []


async def test_the_numbering_after_goes_on_from_the_last_value() -> None:
    progress = LaunchProgress()
    progress.report(Step.START, "start")
    progress.close()
    after = progress.numbering_after()
    assert [after.next(Step.BACKEND), after.next(Step.BACKEND)] == [75, 79]
    assert progress.numbering_after().next(Step.BACKEND) == 75  # each follower its own


async def test_a_note_keeps_the_value() -> None:
    progress = LaunchProgress()
    progress.report(Step.BUILD, "building", "building")
    progress.note("failed")
    progress.close()
    assert [e["progress"] async for e in progress.follow()] == [40, 40]


async def test_a_log_whose_start_has_not_begun_ends_once_read_unless_pending() -> None:
    progress = LaunchProgress()
    progress.report(Step.QUOTA, "quota")
    assert messages([e async for e in progress.follow()]) == ["quota"]

    waiting = asyncio.ensure_future(anext(aiter(progress.follow(pending=True))))
    assert messages([await waiting]) == ["quota"]
    follower = progress.follow(pending=True)
    assert (await anext(follower))["message"] == "quota"
    nxt = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0.05)
    assert not nxt.done()  # the hub is spawning: the start is about to begin
    progress.begin()
    progress.report(Step.START, "start")
    assert (await asyncio.wait_for(nxt, 5))["message"] == "start"
    progress.close()
    assert [e async for e in follower] == []


async def test_a_long_log_is_bounded_and_followers_skip_nothing_they_can_still_see() -> None:
    progress = LaunchProgress()
    for i in range(MAX_MESSAGES * 2):
        progress.report(Step.BUILD, str(i), "building")
    progress.close()
    shown = messages([e async for e in progress.follow()])
    assert len(shown) <= MAX_MESSAGES
    assert shown[-1] == str(MAX_MESSAGES * 2 - 1)
    assert [int(m) for m in shown] == sorted(int(m) for m in shown)


async def test_a_closed_progress_takes_no_more_messages() -> None:
    progress = LaunchProgress.closed()
    progress.report(Step.QUOTA, "too late")
    progress.note("too late")
    assert (progress.messages, progress.is_closed) == ([], True)


async def test_the_oldest_half_is_dropped_when_the_log_is_full() -> None:
    progress = LaunchProgress()
    for i in range(MAX_MESSAGES + 1):
        progress.report(Step.BUILD, str(i))
    assert progress.dropped == MAX_MESSAGES // 2
    assert progress.messages[0] == str(MAX_MESSAGES // 2)
    assert progress.messages[-1] == str(MAX_MESSAGES)


async def test_a_waiting_follower_resumes_at_the_oldest_kept_message() -> None:
    progress = LaunchProgress()
    progress.begin()
    progress.report(Step.BUILD, "first")
    follower = progress.follow()
    assert (await anext(follower))["message"] == "first"
    waiting = asyncio.create_task(anext(follower))
    await asyncio.sleep(0)  # the follower has seen everything and waits for more
    for i in range(MAX_MESSAGES):
        progress.report(Step.BUILD, str(i))
    progress.close()
    rest = messages([await waiting] + [e async for e in follower])
    assert progress.dropped == MAX_MESSAGES // 2
    assert rest == progress.messages
    assert rest[0] == str(MAX_MESSAGES // 2 - 1)


async def test_a_reader_away_while_the_log_fills_resumes_in_order() -> None:
    # The reader holds one message while the log fills and drops it: it must go on at
    # the oldest message still kept, in order, and never repeat or go backwards.
    progress = LaunchProgress()
    progress.begin()
    progress.report(Step.BUILD, "first")
    reader = progress.follow()
    assert (await anext(reader))["message"] == "first"
    for i in range(MAX_MESSAGES):
        progress.report(Step.BUILD, str(i))
    progress.close()
    rest = [event async for event in reader]
    assert messages(rest) == progress.messages
    assert messages(rest) == [str(i) for i in range(int(rest[0]["message"]), MAX_MESSAGES)]
    values = [e["progress"] for e in rest]
    assert values == sorted(values)
