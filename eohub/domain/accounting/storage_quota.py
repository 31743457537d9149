"""A group's storage against its quota: fine, nearly full, over in its grace, or refused.

Storage is not spent like hours: people free space, and a sampler sees it at its next
round. So a group over its storage quota is not refused at once. From the newest sample
that showed it over (``over_since``, which the store keeps) it has a grace; until the
grace ends, new servers charged to it still start, and the answer carries a warning
that says when they will not. Once the grace has ended they are refused, with the
numbers. Running servers are never stopped for storage.

Before that, a group that stores ``warn_fraction`` of its quota or more is warned that
it is nearly full. Only the group's own (whole-group) quota row limits storage (see
:mod:`.standings`). The words are the same wherever they are shown: the launch form,
the usage pages, the quota check's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from eohub.domain.wording import size_limit_text, size_text, span_text

#: How long a group may stay over its storage quota before new servers are refused: the
#: accounting service's default ``storage_grace``.
DEFAULT_STORAGE_GRACE = timedelta(days=3)
#: The share of its storage quota from which a group is warned (0: never).
DEFAULT_STORAGE_WARNING_FRACTION = 0.9
#: How long a storage sample counts toward its group (0: for ever): the accounting
#: service's default ``storage_sample_max_age``.
DEFAULT_STORAGE_SAMPLE_MAX_AGE = timedelta(days=7)


class StorageState(Enum):
    """Where a group's storage stands against its quota."""

    OK = "ok"  # within it (or no quota)
    NEAR = "near"  # within it, at warn_fraction of it or more
    GRACE = "grace"  # over it, its grace not yet ended: servers still start
    REFUSED = "refused"  # over it past its grace: new servers are refused


@dataclass(frozen=True)
class StorageVerdict:
    """A group's storage state, the words for people (empty when OK), and when new
    servers are (or will be) refused; ``over_since`` is when it went over."""

    state: StorageState
    refused_from: datetime | None = None
    text: str = ""
    over_since: datetime | None = None

    @property
    def refused(self) -> bool:
        return self.state is StorageState.REFUSED

    @property
    def warning(self) -> str:
        """The words to warn with before any refusal (near or grace); else empty."""
        return self.text if self.state in (StorageState.NEAR, StorageState.GRACE) else ""


OK = StorageVerdict(StorageState.OK)


def time_text(t: datetime) -> str:
    """``2026-12-06 10:00 UTC``: a time to the minute, as a notice says it."""
    return f"{t.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def sentence_start(scope: str) -> str:
    """``scope`` opening a sentence: ``group CLIMATE`` reads ``Group CLIMATE``.

    Not :meth:`str.capitalize`, which would lower the rest of a group's or user's name.
    """
    return scope[:1].upper() + scope[1:]


def storage_state(
    used: int,
    limit: int | None,
    over_since: datetime | None,
    now: datetime,
    grace: timedelta,
    warn_fraction: float,
    *,
    scope: str = "the group",
) -> StorageVerdict:
    """Where ``used`` bytes stand against a storage quota of ``limit`` bytes at ``now``.

    Parameters
    ----------
    used, limit
        The bytes the group stores, and its quota (``None``: no quota, always OK). Over
        means more than the quota; exactly the quota is within it.
    over_since
        When the group went over (the store's ``storage_over_since``); ``None`` while
        over counts from ``now``: a quota just lowered, not yet seen by the store.
    grace
        How long it may stay over before new servers are refused; zero refuses at once.
    warn_fraction
        The share of the quota from which it is NEAR (0: never warned before it is over).
    scope
        Who stores it, as the words name it: ``group climate``.
    """
    if limit is None:
        return OK
    who = sentence_start(scope)
    quota = f"storage quota of {size_limit_text(limit)}"
    if used > limit:
        since = over_since or now
        refused_from = since + grace
        over = f"{who} stores {size_text(used)}, over its {quota} since {time_text(since)}"
        if now < refused_from:
            text = (
                f"{over}. New servers charged to it will be refused from "
                f"{time_text(refused_from)} unless space is freed."
            )
            return StorageVerdict(StorageState.GRACE, refused_from, text, since)
        ended = f" (grace of {span_text(grace.total_seconds())} ended)" if grace else ""
        text = (
            f"{over}{ended}. Free some space to start servers charged to it; running "
            "servers are not stopped."
        )
        return StorageVerdict(StorageState.REFUSED, refused_from, text, since)
    if warn_fraction > 0 and limit > 0 and used >= warn_fraction * limit:
        percent = used * 100 // limit
        text = f"{who} stores {size_text(used)}, {percent}% of its {quota}."
        return StorageVerdict(StorageState.NEAR, None, text)
    return OK


@dataclass(frozen=True)
class StoragePolicy:
    """The accounting service's storage settings (``AccountingService.storage_grace``,
    ``storage_warning_fraction`` and ``storage_sample_max_age``), as quota checks and
    pages apply them. ``sample_max_age`` zero: samples count for ever."""

    grace: timedelta = DEFAULT_STORAGE_GRACE
    warn_fraction: float = DEFAULT_STORAGE_WARNING_FRACTION
    sample_max_age: timedelta = DEFAULT_STORAGE_SAMPLE_MAX_AGE

    def __post_init__(self) -> None:
        if self.grace < timedelta(0):
            raise ValueError("the storage grace cannot be negative")
        if not 0 <= self.warn_fraction <= 1:
            raise ValueError("the storage warning fraction must be from 0 to 1")
        if self.sample_max_age < timedelta(0):
            raise ValueError("the storage sample max age cannot be negative")

    def verdict(
        self,
        used: int,
        limit: int | None,
        over_since: datetime | None,
        now: datetime,
        *,
        scope: str = "the group",
    ) -> StorageVerdict:
        """:func:`storage_state` with this policy's grace and warning fraction."""
        return storage_state(
            used, limit, over_since, now, self.grace, self.warn_fraction, scope=scope
        )


#: The service's defaults: a grace of 3 days, warnings from 90% of the quota, samples
#: counted for 7 days.
DEFAULT_STORAGE_POLICY = StoragePolicy()


__all__ = [
    "DEFAULT_STORAGE_GRACE",
    "DEFAULT_STORAGE_POLICY",
    "DEFAULT_STORAGE_SAMPLE_MAX_AGE",
    "DEFAULT_STORAGE_WARNING_FRACTION",
    "OK",
    "StoragePolicy",
    "StorageState",
    "StorageVerdict",
    "sentence_start",
    "storage_state",
    "time_text",
]
