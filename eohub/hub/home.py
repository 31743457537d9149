"""The hub's home page as eohub extends it: what each server is, its clock and budget.

``templates/home.html`` (eohub's) shows, below JupyterHub's own page, one row per running
server of one of eohub's spawners: its environment, size and charged group by their
display names, how long it has run, the time left before its maximum duration, how long
it has been idle and its idle limit (highlighted within :data:`~eohub.domain.wording.
ENDS_SOON` of either), and the group's budget left; then each stopped server with why
its last session stopped (:mod:`eohub.hub.stops`). The page gets these from
:class:`HomePage`, which :func:`eohub.hub.use_eohub_templates` puts in
``c.JupyterHub.template_vars`` as ``eohub_home``: JupyterHub calls it with the page's
user, and the page's async template awaits :meth:`HomePage.servers` and
:meth:`HomePage.stopped`.

A server started by this hub process carries its approved launch (``spawner.launch``);
after a hub restart the spawner has only its state, so the row is rebuilt from what the
state keeps (:func:`eohub.spawner.form.running.stored_launch`) and the launch config,
read once per page. A session's limits are always its state's: those resolved when it
started. The rows are built concurrently, and the budgets asked of the accounting
service once per (group, size) (:mod:`eohub.hub.budgets`), and the stop reasons once
per user, all within :data:`BUDGET_WAIT` seconds: a slow or stopped service makes the
page say "budget unknown" and "unknown", never wait or fail, and a server whose state or
launch cannot be read gets a row of what JupyterHub knows (its name, link and time
running) while the others show in full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eohub.accounting.scopes import SERVICE_NAME
from eohub.domain.launch.budget import hours_left
from eohub.domain.wording import (
    budget_left_text,
    duration_text,
    ends_soon,
    ends_text,
    idle_limit_text,
    runs_for_text,
    span_text,
)
from eohub.hub.budgets import QUESTIONS, UNKNOWN, BudgetQuestion, BudgetQuestions, GroupBudget
from eohub.hub.launch_reads import LaunchReader
from eohub.hub.stops import (
    STOP_QUESTIONS,
    Ends,
    StoppedRow,
    StopQuestions,
    stopped_candidates,
    stopped_rows,
)
from eohub.logs import get_logger
from eohub.spawner.form.running import (
    RunningLaunch,
    idle_seconds,
    running_seconds,
    server_label,
    stored_launch,
)
from eohub.spawner.mixin import QuotaSpawnerMixin

log = get_logger(__name__)

#: Longest wait, in seconds, for the accounting service's budgets before the page is
#: drawn without them ("budget unknown").
BUDGET_WAIT = 2.0

#: The accounting service's name: the page links to its pages as "Usage".
USAGE_SERVICE = SERVICE_NAME


def utcnow() -> datetime:
    """Now, in UTC; module-level so tests can travel in time."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServerRow:
    """One running server, as the home page shows it.

    ``ends`` is the time left before its maximum duration (``ends in 5 h 55 min``) and
    ``maximum`` that duration (``at most 8 hours``), both empty without one; ``idle``
    is how long it has been idle and ``idle_limit`` its idle limit in words (empty
    without one); ``ends_soon`` and ``idle_soon``: within the warning period of that
    limit (:data:`~eohub.domain.wording.ENDS_SOON`), which the page highlights.
    """

    name: str
    label: str
    url: str
    environment: str
    size: str
    group: str
    running: str
    budget: str
    budget_known: bool
    runs_for: str
    ends: str = ""
    maximum: str = ""
    idle: str = ""
    idle_limit: str = ""
    ends_soon: bool = False
    idle_soon: bool = False
    known: bool = True  # False: eohub could not read its launch; JupyterHub's part only

    @property
    def soon(self) -> bool:
        return self.ends_soon or self.idle_soon


class HomePage:
    """What eohub's ``home.html`` shows for ``user`` (JupyterHub's ``User``)."""

    def __init__(
        self,
        user: Any,
        *,
        budget_wait: float = BUDGET_WAIT,
        questions: BudgetQuestions | None = None,
        stop_questions: StopQuestions | None = None,
    ) -> None:
        self.user = user
        self.budget_wait = budget_wait
        self.usage_service = USAGE_SERVICE
        self.questions = questions or QUESTIONS
        self.stop_questions = stop_questions or STOP_QUESTIONS
        self._stops: asyncio.Future[Ends] | None = None
        self._deadline: float | None = None

    async def servers(self) -> list[ServerRow]:
        """A row per running server of one of eohub's spawners, in the hub's order.

        Every server's launch is read, and every budget asked, concurrently, all within
        :attr:`budget_wait`; a server whose launch cannot be read (in time) gets a row of
        what JupyterHub knows only.
        """
        deadline = self._begin()
        found = [_Found(s) for s in self._running_spawners()]
        if not found:
            return []
        reader = LaunchReader()
        reads = [asyncio.ensure_future(self._read(f, reader, deadline)) for f in found]
        _, late = await asyncio.wait(reads, timeout=self.budget_wait)
        for task in late:
            task.cancel()  # only our own reads: the config file, the profile list
        reader.close()
        if late:
            log.info(
                "The home page of {user} could not read the launch of {servers} within "
                "{seconds} s; their rows show JupyterHub's part only",
                user=self.user.name,
                servers=[_name(f.spawner) for f in found if not f.read],
                seconds=self.budget_wait,
            )
        answers = await self._answers(found, deadline)
        now = utcnow()
        rows = [self._safe_row(f, answers, now) for f in found if f.eohubs]
        return [r for r in rows if r is not None]

    def _begin(self) -> float:
        """The page's deadline (the loop's clock), set once; the stop reasons are asked
        then, so that they arrive while the running servers' rows are built."""
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self.budget_wait
            if any(launched for _, launched in self._stopped_candidates()):
                accounting = self._accounting()
                if accounting is not None:
                    self._stops = self.stop_questions.ask(
                        accounting, self.user.name, self._deadline
                    )
        return self._deadline

    async def stopped(self) -> list[StoppedRow]:
        """A row per stopped server that eohub launched, with why it last stopped
        ("unknown" when accounting does not answer within :attr:`budget_wait`)."""
        deadline = self._begin()
        candidates = self._stopped_candidates()
        ends: Ends = None
        if self._stops is not None:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
            # Never cancelled: other pages may share the question (see _answers).
            done, _ = await asyncio.wait([self._stops], timeout=remaining)
            ends = self._stops.result() if done else None
            if not done:
                log.info(
                    "The accounting service gave no stop reasons within {seconds} s for "
                    "the home page of {user}; they show as unknown",
                    user=self.user.name,
                    seconds=self.budget_wait,
                )
        return stopped_rows(candidates, ends, utcnow())

    def _stopped_candidates(self) -> list[tuple[str, bool]]:
        if self.user is None:
            return []
        try:
            return stopped_candidates(list(self.user.all_spawners(include_default=True)))
        except Exception:
            log.exception(
                "The home page cannot list the stopped servers of {user}", user=self.user.name
            )
            return []

    def _accounting(self) -> Any:
        """The hub's accounting client, as eohub's spawners of this user hold it (the
        default server's is loaded for every home page)."""
        spawners = [getattr(self.user, "spawner", None), *self.user.all_spawners()]
        return next((s.accounting for s in spawners if isinstance(s, QuotaSpawnerMixin)), None)

    def _running_spawners(self) -> list[QuotaSpawnerMixin]:
        if self.user is None:
            return []
        return [
            s
            for s in self.user.all_spawners(include_default=True)
            if isinstance(s, QuotaSpawnerMixin) and getattr(s, "ready", False)
        ]

    async def _read(self, found: _Found, reader: LaunchReader, deadline: float) -> None:
        """Read ``found``'s launch and ask its budget (not awaited: :meth:`_answers`)."""
        try:
            found.launch = await reader.launch_of(found.spawner)
        except Exception as e:
            # One line: a bad state or config is the admin's to fix, not a traceback.
            log.warning(
                "The home page cannot read the launch of {server}; its row shows "
                "JupyterHub's part only: {error}",
                server=_name(found.spawner),
                error=f"{type(e).__name__}: {e}",
            )
            found.read = True
            return
        found.read = True
        if found.launch is None:
            found.eohubs = False
            return
        spawner, launch = found.spawner, found.launch
        question = BudgetQuestion(
            spawner.user.name,
            launch.group,
            launch.cpu,
            launch.memory_bytes,
            launch.gpus,
        )
        found.budget = self.questions.ask(spawner.accounting, question, deadline)

    async def _answers(
        self, found: Sequence[_Found], deadline: float
    ) -> dict[asyncio.Future[GroupBudget], GroupBudget]:
        """Each question's answer; :data:`UNKNOWN` where accounting did not answer in
        time. Late questions are not cancelled (other pages may share them, and Tornado
        logs a cancelled request's late failure with a traceback): the client's own
        ``quota_timeout`` ends them."""
        asked = {f.budget for f in found if f.budget is not None}
        if not asked:
            return {}
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
        done, pending = await asyncio.wait(asked, timeout=remaining)
        if pending:
            # INFO: the client logs the outage itself, once, as a warning.
            log.info(
                "The accounting service gave no budget within {seconds} s for the home "
                "page of {user}; it shows the budget as unknown",
                user=self.user.name,
                seconds=self.budget_wait,
            )
        return {q: q.result() if q in done else UNKNOWN for q in asked}

    def _safe_row(
        self,
        found: _Found,
        answers: Mapping[asyncio.Future[GroupBudget], GroupBudget],
        now: datetime,
    ) -> ServerRow | None:
        spawner, launch = found.spawner, found.launch
        if launch is not None:
            answer = answers.get(found.budget, UNKNOWN) if found.budget is not None else UNKNOWN
            try:
                return self._row(spawner, launch, answer, now)
            except Exception as e:
                log.warning(
                    "The home page cannot show the launch of {server}; its row shows "
                    "JupyterHub's part only: {error}",
                    server=_name(spawner),
                    error=f"{type(e).__name__}: {e}",
                )
        try:
            return self._hub_row(spawner, now)
        except Exception:
            log.exception("The home page cannot show {server}", server=_name(spawner))
            return None

    def _hub_row(self, spawner: Any, now: datetime) -> ServerRow:
        """What JupyterHub itself knows of ``spawner``'s server: its name, link and age."""
        return ServerRow(
            name=spawner.name,
            label=server_label(spawner.name),
            url=self.user.server_url(spawner.name),
            environment="",
            size="",
            group="",
            running=duration_text(running_seconds(spawner, now)),
            budget="",
            budget_known=False,
            runs_for="",
            known=False,
        )

    def _row(
        self, spawner: Any, launch: RunningLaunch, answer: GroupBudget, now: datetime
    ) -> ServerRow:
        budget, display_name = answer
        running, idle = running_seconds(spawner, now), idle_seconds(spawner, now)
        maximum, idle_limit = launch.max_duration, launch.idle_timeout
        hours = hours_left(launch.size_for_budget, budget) if budget is not None else None
        return ServerRow(
            name=spawner.name,
            label=server_label(spawner.name),
            url=self.user.server_url(spawner.name),
            environment=launch.environment,
            size=launch.size,
            group=display_name or self._group_label(launch.group),
            running=duration_text(running),
            budget=budget_left_text(budget),
            budget_known=budget is not None,
            runs_for=runs_for_text(float(hours) if hours is not None else None),
            ends=ends_text(maximum, running),
            maximum=f"at most {span_text(maximum)}" if maximum else "",
            idle=duration_text(idle),
            idle_limit=idle_limit_text(idle_limit, idle),
            ends_soon=ends_soon(maximum, running),
            idle_soon=ends_soon(idle_limit, idle),
        )

    def _group_label(self, group: str) -> str:
        """The group's display name where accounting gave none: its hub group's
        ``properties["display_name"]``, else its name."""
        for g in getattr(self.user, "groups", ()) or ():
            if g.name == group:
                properties = getattr(g, "properties", None) or {}
                return str(properties.get("display_name") or group)
        return group


@dataclass
class _Found:
    """One running server while the page reads it."""

    spawner: Any
    read: bool = False  # its launch was read (or failed) in time
    eohubs: bool = True  # False: a server eohub did not start; no row
    launch: RunningLaunch | None = None  # None: unknown
    budget: asyncio.Future[GroupBudget] | None = None


def _name(spawner: Any) -> str:
    return str(getattr(spawner, "_log_name", "") or getattr(spawner, "name", ""))


def home_page(user: Any) -> HomePage:
    """``c.JupyterHub.template_vars["eohub_home"]``: called with each page's user (cheap:
    nothing is asked until the home page awaits :meth:`HomePage.servers`)."""
    return HomePage(user)


__all__ = [
    "BUDGET_WAIT",
    "USAGE_SERVICE",
    "HomePage",
    "RunningLaunch",
    "ServerRow",
    "home_page",
    "stored_launch",
    "utcnow",
]
