"""What the hub's outbox holds: the events waiting, and the dead letters.

A part of :class:`~eohub.accounting.client.client.AccountingClient`, for the admin who
looks into the outbox after an outage or a refused token: how many events wait, which
ones the service refused for good (with its field errors), and sending those again.
"""

from __future__ import annotations

from eohub.accounting.client.outbox import DeadLetter, Outbox
from eohub.accounting.client.outbox_thread import OutboxThread
from eohub.accounting.client.sender import OutboxSender


class OutboxQueries:
    """The client's outbox questions; mixed into AccountingClient, which sets these."""

    _outbox: OutboxThread
    _stopped: bool

    def _ensure_sender(self) -> OutboxSender:
        raise NotImplementedError

    async def pending(self) -> int:
        """How many events wait to be sent."""
        return await self._outbox.run(Outbox.count)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest events the service refused for good, with its field errors."""
        return await self._outbox.run(lambda o: o.dead_letters(limit))

    async def requeue_dead_letters(self, rowids: list[int] | None = None) -> int:
        """Queue dead letters (all, or ``rowids``) again, e.g. after a service upgrade."""
        count = await self._outbox.run(lambda o: o.requeue_dead_letters(rowids))
        if not self._stopped:
            self._ensure_sender().notify()
        return count


__all__ = ["OutboxQueries"]
