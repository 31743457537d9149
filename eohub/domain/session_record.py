"""One accounting session as reports and exports read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from eohub.domain.ledger import Resources, Usage, session_usage


@dataclass(frozen=True)
class SessionRecord:
    """A server's life from start to stop, as the accounting store holds it.

    ``id`` is the store's primary key: it never changes, so exports derive stable job ids
    from it. ``stopped_at`` is ``None`` while the server runs.
    """

    id: int
    user: str
    server: str
    group: str
    resources: Resources
    started_at: datetime
    stopped_at: datetime | None = None
    end_reason: str | None = None
    profile: str = ""
    image: str = ""

    def usage(self, now: datetime) -> Usage:
        """Usage so far: an open session counts up to ``now``."""
        return session_usage(self.resources, self.started_at, self.stopped_at or now)
