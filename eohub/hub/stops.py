"""The home page's stopped servers: why each last stopped, as accounting recorded it.

The page asks the accounting service for the user's last sessions
(:class:`~eohub.accounting.client.session_reader.SessionReader`) in the same bounded
way as it asks for budgets (:mod:`eohub.hub.budgets`): one question per user in flight,
shared by that user's pages; at most :data:`STOP_CHECKS` at once for all pages, each on
a connection of the reader's own; and no longer than the page waits. A service that is
slow, stopped, or refuses the hub's token makes the page say "unknown".

A stopped server gets a row when eohub launched it once (its state keeps the last
launch's options) or when accounting has a session of it. The newest session of the
server says why it stopped; one still open in accounting (its stop not delivered yet)
says "not recorded yet".
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eohub.accounting.client.session_reader import SessionEnd, SessionReader, SessionsUnavailable
from eohub.domain.accounting.stop_reasons import UNKNOWN, stop_reason_text
from eohub.domain.wording import duration_text
from eohub.hub.question_pool import QuestionPool
from eohub.logs import get_logger
from eohub.spawner.form.running import server_label
from eohub.spawner.ledger import LAST_OPTIONS_KEY

log = get_logger(__name__)

#: Most session reads the home pages have in flight at once, all pages together.
STOP_CHECKS = 4
#: How many of a user's last sessions the page reads: enough for each server they
#: stopped recently.
STOP_LOOKBACK = 50
#: What a stopped server's row says while its stop is not in accounting yet.
NOT_RECORDED = "not recorded yet"

#: A user's stopped servers and their last sessions; None: accounting did not answer.
Ends = dict[str, SessionEnd] | None


def last_ends(sessions: Sequence[SessionEnd]) -> dict[str, SessionEnd]:
    """The newest session of each server, from ``sessions`` newest first."""
    ends: dict[str, SessionEnd] = {}
    for end in sessions:
        ends.setdefault(end.server, end)
    return ends


class StopQuestions(QuestionPool[tuple[Any, str], Ends]):
    """The home pages' session reads in flight, and their slots (one per event loop)."""

    def __init__(self, slots: int = STOP_CHECKS, lookback: int = STOP_LOOKBACK) -> None:
        super().__init__(slots, None)
        self.lookback = lookback
        self._reader = SessionReader(slots)
        self._refused = 0  # the last refusal's HTTP status, logged once

    def ask(self, accounting: Any, user: str, deadline: float) -> asyncio.Future[Ends]:
        """The last session of each of ``user``'s servers: the read in flight, else a
        new one that waits for a free slot until ``deadline`` (the loop's clock). The
        caller must not cancel it: other pages may share it."""
        return self._pooled((accounting, user), deadline)

    def _new_loop(self) -> None:
        # The reader's connections belong to the loop they were made in, as the slots.
        self._reader.close()
        self._reader = SessionReader(self.slots)

    def _no_slot(self, key: tuple[Any, str]) -> None:
        log.debug("No free home-page slot to read the sessions of {user}", user=key[1])

    async def _answer(self, key: tuple[Any, str]) -> Ends:
        accounting, user = key
        try:
            sessions = await self._reader.last_sessions(accounting, user, self.lookback)
        except SessionsUnavailable as e:
            self._log_unavailable(user, e)
            return None
        except Exception:
            log.exception("Could not read the sessions of {user}", user=user)
            return None
        self._refused = 0
        return last_ends(sessions)

    def _log_unavailable(self, user: str, e: SessionsUnavailable) -> None:
        if e.status in (401, 403):
            if self._refused != e.status:
                # Once, not per page: the admin's to fix.
                log.warning(
                    "The accounting service refused to tell the hub why servers stopped "
                    "(HTTP {status}): the hub's token (eohub-accounting-hub) may not read "
                    "sessions; the home page shows the reason as unknown",
                    status=e.status,
                )
            self._refused = e.status
            return
        # INFO: the budget questions log the outage itself.
        log.info("No stop reasons for the home page of {user}: {problem}", user=user, problem=e)


#: The hub's one set of home-page session reads.
STOP_QUESTIONS = StopQuestions()


@dataclass(frozen=True)
class StoppedRow:
    """A stopped server, as the home page shows it."""

    name: str
    label: str
    reason: str  # in words; "unknown" when accounting did not answer
    known: bool  # False: accounting did not answer (in time)
    stopped: str  # "2 h ago"; empty when unknown
    reason_code: str = ""  # the stop reason (``idle``...), for the page's highlight

    @property
    def enforced(self) -> bool:
        """Whether a limit or budget ended it (the page highlights those)."""
        return self.reason_code in ("idle", "max_duration", "budget")


def stopped_candidates(spawners: Sequence[Any]) -> list[tuple[str, bool]]:
    """The stopped servers among ``spawners`` (JupyterHub's wrappers, or its database
    rows for servers not loaded): their names, and whether eohub launched them once."""
    found = []
    for spawner in spawners:
        if getattr(spawner, "active", False) or getattr(spawner, "server", None) is not None:
            continue
        state = getattr(getattr(spawner, "orm_spawner", spawner), "state", None)
        found.append((str(spawner.name), isinstance(state, Mapping) and LAST_OPTIONS_KEY in state))
    return found


def stopped_rows(
    candidates: Sequence[tuple[str, bool]], ends: Ends, now: datetime
) -> list[StoppedRow]:
    """A row per stopped server that eohub launched or accounting knows, in order."""
    rows = []
    for name, launched in candidates:
        if ends is None:
            if launched:  # eohub's: its reason is unknown
                rows.append(stopped_row(name, None, known=False, now=now))
        elif name in ends:
            rows.append(stopped_row(name, ends[name], known=True, now=now))
    return rows


def stopped_row(name: str, end: SessionEnd | None, *, known: bool, now: datetime) -> StoppedRow:
    """``name``'s row: why its last session ``end`` stopped, and how long ago."""
    if not known or end is None:
        return StoppedRow(name, server_label(name), UNKNOWN, False, "")
    if end.stopped_at is None:
        return StoppedRow(name, server_label(name), NOT_RECORDED, True, "")
    ago = f"{duration_text((now - end.stopped_at).total_seconds())} ago"
    reason = end.end_reason or UNKNOWN
    if reason == UNKNOWN:
        return StoppedRow(name, server_label(name), UNKNOWN, True, ago, reason)
    words = stop_reason_text(reason, idle_timeout=end.idle_timeout, max_duration=end.max_duration)
    # As the usage pages write it: a sentence, naming the limit it reached.
    return StoppedRow(name, server_label(name), words[:1].upper() + words[1:], True, ago, reason)


__all__ = [
    "NOT_RECORDED",
    "STOP_CHECKS",
    "STOP_LOOKBACK",
    "STOP_QUESTIONS",
    "StopQuestions",
    "StoppedRow",
    "last_ends",
    "stopped_candidates",
    "stopped_row",
    "stopped_rows",
]
