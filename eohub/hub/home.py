"""The hub's home page as eohub extends it: what each running server is, and its budget.

``templates/home.html`` (eohub's) shows, below JupyterHub's own page, one row per running
server of one of eohub's spawners: its environment, size and charged group by their
display names, how long it has run, the group's budget left, and the environment's
session limit. The page gets these from :class:`HomePage`, which
:func:`eohub.hub.use_eohub_templates` puts in ``c.JupyterHub.template_vars`` as
``eohub_home``: JupyterHub calls it with the page's user, and the page's async template
awaits :meth:`HomePage.servers`.

A server started by this hub process carries its approved launch (``spawner.launch``);
after a hub restart the spawner has only its state, so the row is rebuilt from what the
state keeps (the open session's group, the options that started it) and the launch
config, read once per page. The rows are built concurrently, and the budgets asked of the
accounting service once per (group, size) (:mod:`eohub.hub.budgets`), all within
:data:`BUDGET_WAIT` seconds: a slow or stopped service makes the page say "budget
unknown", never wait or fail, and a server whose state or launch cannot be read gets a
row of what JupyterHub knows (its name, link and time running) while the others show in
full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eohub.accounting.scopes import SERVICE_NAME
from eohub.domain.accounting.resources import CHARGED_KEY, CPU_KEYS, GPU_KEYS, MEMORY_KEYS
from eohub.domain.launch.budget import hours_left
from eohub.domain.launch.config import LaunchConfig, Size
from eohub.domain.launch.policy import Launch
from eohub.domain.launch.profile_reading import describe_size
from eohub.domain.launch.profiles import Profile
from eohub.domain.wording import (
    budget_left_text,
    duration_text,
    limit_text,
    runs_for_text,
)
from eohub.hub.budgets import QUESTIONS, UNKNOWN, BudgetQuestion, BudgetQuestions, GroupBudget
from eohub.logs import get_logger
from eohub.spawner.ledger import LAST_OPTIONS_KEY, STATE_KEY
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
class RunningLaunch:
    """What a running server was launched as, in display names, and what it is charged."""

    environment: str
    size: str
    group: str
    cpu: float
    memory_bytes: int
    gpus: int
    max_duration: int | None = None

    @classmethod
    def of(cls, launch: Launch) -> RunningLaunch:
        """The launch this hub process approved."""
        size = launch.size
        return cls(
            launch.environment.display_name,
            size.display_name,
            launch.group,
            size.cpu,
            size.memory,
            size.gpus,
            launch.environment.max_duration,
        )

    @property
    def size_for_budget(self) -> Size:
        return Size("running", self.size, self.cpu, self.memory_bytes, gpus=self.gpus)


def stored_launch(
    config: LaunchConfig,
    profiles: Sequence[Profile],
    state: Mapping[str, Any],
    options: Mapping[str, Any],
) -> RunningLaunch | None:
    """The launch of a running server, rebuilt from its spawner's ``state`` (after a hub
    restart): the open session's group, and the options that started it (the state's,
    else JupyterHub's stored ``options``), named as ``config`` or ``profiles`` name them
    now. None when the state holds no open session (the server was not started by eohub).
    """
    session = state.get(STATE_KEY)
    if not isinstance(session, Mapping):
        return None
    saved = state.get(LAST_OPTIONS_KEY)
    options = saved if isinstance(saved, Mapping) else options
    group = str(session.get("group") or options.get("group") or "")
    charged = options.get(CHARGED_KEY)
    amounts: Mapping[str, Any] = charged if isinstance(charged, Mapping) else options
    cpu, memory = _amount(amounts, CPU_KEYS), _amount(amounts, MEMORY_KEYS)
    gpus = int(_amount(amounts, GPU_KEYS))
    resources = describe_size({"cpu": cpu, "memory": int(memory), "gpus": gpus})
    profile_slug = options.get("profile")
    profile = next((p for p in profiles if p.slug == profile_slug), None)
    if profile is not None and isinstance(charged, Mapping):
        return RunningLaunch(
            profile.display_name,
            resources,
            group,
            cpu,
            int(memory),
            gpus,
            profile.rules.max_duration,
        )
    env = config.environments.get(str(options.get("environment")))
    size = config.sizes.get(str(options.get("size")))
    return RunningLaunch(
        env.display_name if env else str(options.get("environment") or "unknown"),
        size.display_name if size else resources,
        group,
        size.cpu if size else cpu,
        size.memory if size else int(memory),
        size.gpus if size else gpus,
        env.max_duration if env else None,
    )


def _amount(options: Mapping[str, Any], keys: Sequence[str]) -> float:
    value = next((options[k] for k in keys if k in options), 0)
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class ServerRow:
    """One running server, as the home page shows it."""

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
    limit: str
    known: bool = True  # False: eohub could not read its launch; JupyterHub's part only


class HomePage:
    """What eohub's ``home.html`` shows for ``user`` (JupyterHub's ``User``)."""

    def __init__(
        self,
        user: Any,
        *,
        budget_wait: float = BUDGET_WAIT,
        questions: BudgetQuestions | None = None,
    ) -> None:
        self.user = user
        self.budget_wait = budget_wait
        self.usage_service = USAGE_SERVICE
        self.questions = questions or QUESTIONS

    async def servers(self) -> list[ServerRow]:
        """A row per running server of one of eohub's spawners, in the hub's order.

        Every server's launch is read, and every budget asked, concurrently, all within
        :attr:`budget_wait`; a server whose launch cannot be read (in time) gets a row of
        what JupyterHub knows only.
        """
        found = [_Found(s) for s in self._running_spawners()]
        if not found:
            return []
        deadline = asyncio.get_running_loop().time() + self.budget_wait
        reader = _LaunchReader()
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

    def _running_spawners(self) -> list[QuotaSpawnerMixin]:
        if self.user is None:
            return []
        return [
            s
            for s in self.user.all_spawners(include_default=True)
            if isinstance(s, QuotaSpawnerMixin) and getattr(s, "ready", False)
        ]

    async def _read(self, found: _Found, reader: _LaunchReader, deadline: float) -> None:
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
            label=spawner.name or "My Server",
            url=self.user.server_url(spawner.name),
            environment="",
            size="",
            group="",
            running=duration_text(_running_seconds(spawner, now)),
            budget="",
            budget_known=False,
            runs_for="",
            limit="",
            known=False,
        )

    def _row(
        self, spawner: Any, launch: RunningLaunch, answer: GroupBudget, now: datetime
    ) -> ServerRow:
        budget, display_name = answer
        running = _running_seconds(spawner, now)
        hours = hours_left(launch.size_for_budget, budget) if budget is not None else None
        return ServerRow(
            name=spawner.name,
            label=spawner.name or "My Server",
            url=self.user.server_url(spawner.name),
            environment=launch.environment,
            size=launch.size,
            group=display_name or self._group_label(launch.group),
            running=duration_text(running),
            budget=budget_left_text(budget),
            budget_known=budget is not None,
            runs_for=runs_for_text(float(hours) if hours is not None else None),
            limit=limit_text(launch.max_duration, running),
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


class _LaunchReader:
    """A page's reads of the launch config and profiles: once per spawner class, off the
    event loop for the config file; shared by the page's rows."""

    def __init__(self) -> None:
        self._reads: dict[type, asyncio.Future[tuple[LaunchConfig, Sequence[Profile]]]] = {}

    def close(self) -> None:
        """Stop the reads the page no longer waits for (a ``profile_list`` callable that
        hangs); the config file's read is shared, and ends by itself."""
        for read in self._reads.values():
            read.cancel()

    async def launch_of(self, spawner: QuotaSpawnerMixin) -> RunningLaunch | None:
        """What ``spawner``'s server was launched as; None when eohub did not start it.
        Raises whatever a bad state, config or profile list raises."""
        if spawner.launch is not None:
            return RunningLaunch.of(spawner.launch)
        state = spawner.get_state()
        if not isinstance(state.get(STATE_KEY), Mapping):
            return None  # not started by eohub: no need to read the config
        read = self._reads.get(type(spawner))
        if read is None:
            read = asyncio.ensure_future(_read_config(spawner))
            self._reads[type(spawner)] = read
        # Shielded: one row's cancellation must not cancel the others' shared read.
        config, profiles = await asyncio.shield(read)
        options = getattr(spawner, "user_options", None)
        return stored_launch(
            config, profiles, state, options if isinstance(options, Mapping) else {}
        )


async def _read_config(spawner: QuotaSpawnerMixin) -> tuple[LaunchConfig, Sequence[Profile]]:
    config = await asyncio.shield(_config_file_read(spawner))
    return config, await spawner.launch_profiles()


#: The launch config reads in flight, by spawner class and file: page views share one,
#: so a hung file (a stalled NFS mount) holds one thread, not one per page view.
_config_reads: dict[tuple[type, str], asyncio.Future[LaunchConfig]] = {}


def _config_file_read(spawner: QuotaSpawnerMixin) -> asyncio.Future[LaunchConfig]:
    """``spawner.launch_config()``, read and validated in a thread: the hub's event loop
    serves everyone meanwhile."""
    key = (type(spawner), str(getattr(spawner, "launch_config_file", "")))
    found = _config_reads.get(key)
    if found is not None and found.get_loop() is asyncio.get_running_loop():
        return found
    read = asyncio.ensure_future(asyncio.to_thread(spawner.launch_config))

    def done(_: asyncio.Future[LaunchConfig]) -> None:
        if _config_reads.get(key) is read:
            del _config_reads[key]

    read.add_done_callback(done)
    _config_reads[key] = read
    return read


def _running_seconds(spawner: Any, now: datetime) -> float:
    started: datetime | None = getattr(getattr(spawner, "orm_spawner", None), "started", None)
    if started is None:
        return 0.0
    if started.tzinfo is None:  # the hub's database keeps naive UTC
        started = started.replace(tzinfo=UTC)
    return max((now - started).total_seconds(), 0.0)


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
