"""The ledger's records as reports and exports read them: sessions, usage rows and
storage samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from eohub.domain.accounting.ledger import Resources, Usage, session_usage


class SessionFields(Protocol):
    """The fields of a session, as a :class:`SessionRecord` or a database row has them.

    Exports read a million sessions; taking rows as they come, without building a
    record for each, is what keeps them fast.
    """

    @property
    def id(self) -> int: ...
    @property
    def user(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def profile(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def millicores(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def gpus(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def stopped_at(self) -> datetime | None: ...
    @property
    def end_reason(self) -> str | None: ...


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

    @property
    def millicores(self) -> int:
        return self.resources.millicores

    @property
    def memory_bytes(self) -> int:
        return self.resources.memory_bytes

    @property
    def gpus(self) -> int:
        return self.resources.gpus

    def usage(self, now: datetime) -> Usage:
        """Usage so far: an open session counts up to ``now``."""
        return session_usage(self.resources, self.started_at, self.stopped_at or now)


@dataclass(frozen=True)
class UsageRow:
    """Usage of one user in one group over one period; ``user`` is empty for a group's total."""

    period_start: datetime
    group: str
    user: str
    usage: Usage


@dataclass(frozen=True)
class StorageSample:
    """One measurement of a user's storage use, charged to a group (``""`` if none).

    ``file_count`` is 0 when it was not counted: XDMoD requires the field.
    """

    user: str
    group: str
    bytes: int
    measured_at: datetime
    file_count: int = 0
