"""The home page's budget questions to the accounting service, kept small and few.

The page asks with the same client, and so through the same pool of connections
(``AccountingClient.quota_max_connections``), as the spawns' quota checks, which must
never wait behind it. So the home pages, all together:

- ask once per (user, group, size), however many servers run at that size: a question
  still in flight, from this page or another, is shared rather than asked again;
- hold at most :data:`HOME_CHECKS` quota-check connections at once, whatever the number
  of pages, servers or users: a question waits for one of the pages' own slots, and no
  longer than its page does, so a slow service builds no queue of page questions;
- ask as the launch form does (``for_spawn=False``): nothing is started, and the
  ``last_known`` policy lets no server through on the page's answer.

A question the page stopped waiting for keeps its slot until the client's
``quota_timeout`` ends it: that is what bounds it, and the slot count bounds how many.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from eohub.domain.launch.budget import Budget
from eohub.hub.question_pool import QuestionPool
from eohub.logs import get_logger

log = get_logger(__name__)

#: Most quota checks the home pages have in flight at once, all pages together. The
#: hub's other quota-check connections stay free for spawns.
HOME_CHECKS = 4

#: A group's budget left (None: unknown) and its display name in accounting ("": none).
GroupBudget = tuple[Budget | None, str]
UNKNOWN: GroupBudget = (None, "")


@dataclass(frozen=True)
class BudgetQuestion:
    """What the page asks: ``user``'s budget left in ``group``, at one server's size."""

    user: str
    group: str
    cpu: float
    memory_bytes: int
    gpus: int


class BudgetQuestions(QuestionPool[tuple[Any, BudgetQuestion], GroupBudget]):
    """The home pages' budget questions in flight, and their slots (one per event loop)."""

    def __init__(self, slots: int = HOME_CHECKS) -> None:
        super().__init__(slots, UNKNOWN)

    def ask(
        self, accounting: Any, question: BudgetQuestion, deadline: float
    ) -> asyncio.Future[GroupBudget]:
        """The answer to ``question``: the one in flight, else a new question that waits
        for a free slot until ``deadline`` (the loop's clock) and answers :data:`UNKNOWN`
        if none came. The caller must not cancel it: other pages may share it."""
        return self._pooled((accounting, question), deadline)

    async def _answer(self, key: tuple[Any, BudgetQuestion]) -> GroupBudget:
        return await ask_budget(*key)

    def _no_slot(self, key: tuple[Any, BudgetQuestion]) -> None:
        question = key[1]
        log.debug(
            "No free home-page slot to ask the budget of {group} for {user}",
            group=question.group,
            user=question.user,
        )


async def ask_budget(accounting: Any, question: BudgetQuestion) -> GroupBudget:
    """The budget left of ``question``'s group and its display name, as accounting answers
    them; :data:`UNKNOWN` when the hub's failure policy answered instead (the service is
    down or refused)."""
    try:
        answer = await accounting.check_quota(
            user=question.user,
            group=question.group,
            cpu=question.cpu,
            memory_bytes=question.memory_bytes,
            gpus=question.gpus,
            for_spawn=False,
        )
    except ValueError as e:  # a launch accounting cannot be asked about (no CPU charged)
        log.info(
            "No budget question for group {group} of {user}: {error}",
            group=question.group,
            user=question.user,
            error=e,
        )
        return UNKNOWN
    except Exception:
        # The client answers every failure of the service by its policy: this is a bug,
        # and the page still shows the rest.
        log.exception(
            "Could not ask the budget of group {group} for {user}",
            group=question.group,
            user=question.user,
        )
        return UNKNOWN
    if answer.decided_by == "policy":
        return UNKNOWN
    # The group's display name in accounting's config (clients of older eohub: none).
    return dict(answer.budget_left), str(getattr(answer, "display_name", "") or "")


#: The hub's one set of home-page questions.
QUESTIONS = BudgetQuestions()


__all__ = [
    "HOME_CHECKS",
    "QUESTIONS",
    "UNKNOWN",
    "BudgetQuestion",
    "BudgetQuestions",
    "GroupBudget",
    "ask_budget",
]
