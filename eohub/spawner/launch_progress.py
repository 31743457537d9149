"""The progress of one launch, step by step, as the spawn page's bar and log show it.

The spawn reports each of eohub's steps here (:class:`LaunchProgress`), each message
with its bar value from :class:`eohub.domain.launch.progress.Numbering`; the hub's
progress stream follows them (:meth:`LaunchProgress.follow`). JupyterHub's spawn page
connects about a second after the form is sent, and again after a reload, so a
follower always starts from the first message: the bar replays the steps already done
and then moves with each new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.policy import Launch
from eohub.domain.launch.progress import Numbering, Step

MAX_MESSAGES = 2000  # a chatty build log must not grow without bound


class LaunchProgress:
    """The messages of one launch, in order, with their bar values.

    One per spawn, open from when the spawn begins (the spawner's ``clear_state``),
    before its options are checked: the hub serves the progress stream as soon as the
    spawn is pending, so a follower may attach before the launch is approved and must
    then see this launch's steps as they come, never an earlier launch's. The approval
    reports into it; :meth:`begin` when its start begins; :meth:`close` once eohub's own
    steps are done and the backend takes over.
    """

    def __init__(self) -> None:
        self.entries: list[tuple[int, str]] = []
        self.dropped = 0  # entries removed from the start of a long log
        self.is_closed = False
        self.has_begun = False
        self.numbering = Numbering()
        self._changed = asyncio.Event()

    @classmethod
    def closed(cls) -> LaunchProgress:
        progress = cls()
        progress.is_closed = True
        return progress

    @property
    def is_fresh(self) -> bool:
        """Whether nothing has happened to this log yet (so a new spawn may use it)."""
        return not (self.entries or self.dropped or self.has_begun or self.is_closed)

    @property
    def messages(self) -> list[str]:
        return [message for _, message in self.entries]

    def begin(self) -> None:
        """The start has begun: followers wait for its steps from now on."""
        self.has_begun = True
        self._changed.set()

    def report(self, step: Step, message: str, stage: str = "") -> None:
        """A message of ``step`` (and of its ``stage``, such as a build's phase)."""
        if self.is_closed:
            return
        self._add(self.numbering.next(step, stage), message)

    def note(self, message: str) -> None:
        """A message that does not move the bar (a failure: the hub turns it red)."""
        if not self.is_closed:
            self._add(self.numbering.value, message)

    def _add(self, value: int, message: str) -> None:
        if len(self.entries) >= MAX_MESSAGES:
            half = MAX_MESSAGES // 2
            del self.entries[:half]
            self.dropped += half
        self.entries.append((value, message))
        self._changed.set()

    def close(self) -> None:
        self.is_closed = True
        self._changed.set()

    def numbering_after(self) -> Numbering:
        """A numbering for what comes after eohub's steps, going on from the last value."""
        return self.numbering.copy()

    async def follow(self, *, pending: bool = False) -> AsyncIterator[dict[str, Any]]:
        """Every event so far, then each new one, until eohub's steps end.

        A log whose start has not begun ends once it is read, unless ``pending`` (the
        hub is spawning, so the start is about to begin).
        """
        seen = 0  # entries reported before, dropped ones included
        while True:
            # Re-read what was dropped after every yield: while the reader was away, a
            # chatty log may have dropped the entries this one was about to read.
            while (seen := max(seen, self.dropped)) - self.dropped < len(self.entries):
                value, message = self.entries[seen - self.dropped]
                yield {"progress": value, "message": message}
                seen += 1
            if self.is_closed or not (self.has_begun or pending):
                return
            self._changed.clear()
            await self._changed.wait()


class SpawnProgress:
    """A spawner's progress: eohub's steps from this spawn's one log, then the backend's.

    Mixed into eohub's spawners before the JupyterHub Spawner, whose own ``progress``
    becomes the backend's (:meth:`backend_progress`).
    """

    launch: Launch | None
    quota_answer: QuotaAnswer | None
    #: This spawn's progress log (:meth:`spawn_progress`); one per spawn.
    launch_progress: LaunchProgress

    def launch_messages(self) -> list[str]:
        """Plain-words progress of the steps decided at approval (launch, quota, commit)."""
        return [message for _, message in decided_steps(self.launch, self.quota_answer)]

    def spawn_progress(self) -> LaunchProgress:
        """The progress log of the spawn under way, into which each of its steps reports.

        The open log a follower may already be attached to is kept; one that holds an
        earlier launch's steps is closed (its followers end) and replaced by a new one,
        so a follower never replays the previous launch.
        """
        if not self.launch_progress.is_fresh:
            self.launch_progress.close()
            self.launch_progress = LaunchProgress()
        return self.launch_progress

    def start_message(self) -> str:
        """What the start step says (each backend names what it starts)."""
        return "Starting your server."

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """eohub's steps (replayed from the first), then the backend's own progress.

        Follows this spawn's one log, open since the spawn began (:meth:`spawn_progress`),
        so a follower that comes before the launch is approved waits for its steps.
        """
        progress = self.launch_progress
        pending = bool(getattr(self, "_spawn_pending", False))
        async for event in progress.follow(pending=pending):
            yield event
        async for event in self.backend_progress(progress.numbering_after()):
            yield event

    async def backend_progress(self, numbering: Numbering) -> AsyncIterator[dict[str, Any]]:
        """The backend's progress events, their values moved into the backend's span."""
        parent = getattr(super(), "progress", None)
        if parent is not None:
            async for event in renumbered(parent(), numbering):
                yield event


def decided_steps(launch: Launch | None, answer: QuotaAnswer | None) -> list[tuple[Step, str]]:
    """The steps decided when a launch is approved, in plain words: the launch, the
    quota check's answer and the repository's commit."""
    if launch is None:
        return []
    env, size = launch.environment, launch.size
    steps = [
        (
            Step.REQUEST,
            f"Launching {env.display_name}, size {size.display_name}, charged to {launch.group}.",
        )
    ]
    if answer is not None and answer.decided_by == "policy":
        text = f"Quota decided without the accounting service: {answer.reason}"
        steps.append((Step.QUOTA, text))
    elif answer is not None:
        left = answer.budget_left.get("core_hours") if answer.budget_left else None
        budget = "no core-hour limit" if left is None else f"{left:.1f} core-hours left"
        steps.append((Step.QUOTA, f"Quota check passed: {budget}."))
    repo = launch.repo
    if repo is not None and repo.commit is not None:
        text = f"Repository {repo.spec.name} at {repo.spec.ref}: commit {repo.commit[:12]}."
        steps.append((Step.RESOLVE, text))
    return steps


async def renumbered(
    events: AsyncIterator[dict[str, Any]], numbering: Numbering
) -> AsyncIterator[dict[str, Any]]:
    """A backend's progress events with their values moved into the backend's span.

    The base Spawner sends one 50 and KubeSpawner's pod events approach 90 on their own
    scale: either would send the bar back from eohub's 75. Events without a value
    (KubeSpawner's "still waiting" messages) pass as they are.
    """
    async for event in events:
        if "progress" in event:
            event = {**event, "progress": numbering.next(Step.BACKEND)}
        yield event


__all__ = ["MAX_MESSAGES", "LaunchProgress", "SpawnProgress", "decided_steps", "renumbered"]
