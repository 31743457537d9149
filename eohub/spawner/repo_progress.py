"""The progress of a repository launch's slow step (a build, a clone), as it happens.

The spawn reports each step's message here while the hub's progress stream follows
them (:meth:`RepoProgress.follow`); a follower that comes late still sees every
message from the start, as JupyterHub's spawn page expects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

MAX_MESSAGES = 2000  # a chatty build log must not grow without bound


class RepoProgress:
    """Messages of one launch, in order; closed when the step ends."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.dropped = 0  # messages removed from the start of a long log
        self.is_closed = False
        self._changed = asyncio.Event()

    @classmethod
    def closed(cls) -> RepoProgress:
        progress = cls()
        progress.is_closed = True
        return progress

    def report(self, message: str) -> None:
        if self.is_closed:
            return
        if len(self.messages) >= MAX_MESSAGES:
            half = MAX_MESSAGES // 2
            del self.messages[:half]
            self.dropped += half
        self.messages.append(message)
        self._changed.set()

    def close(self) -> None:
        self.is_closed = True
        self._changed.set()

    async def follow(self) -> AsyncIterator[str]:
        """Every message so far, then each new one, until the step ends."""
        seen = 0  # messages reported before, dropped ones included
        while True:
            # Re-read what was dropped after every yield: while the reader was away, a
            # chatty log may have dropped the messages this one was about to read.
            while (seen := max(seen, self.dropped)) - self.dropped < len(self.messages):
                yield self.messages[seen - self.dropped]
                seen += 1
            if self.is_closed:
                return
            self._changed.clear()
            await self._changed.wait()


__all__ = ["RepoProgress"]
