"""A user's running servers: what each was launched as, its limits, and its clock.

The launch form (:func:`running_servers`) and the hub's home page
(:mod:`eohub.hub.home`) show, for each running server of one of eohub's spawners, the
time left before its maximum duration and how long it has been idle.

- The limits are the session's own: those resolved for the group charged when it
  started (``Launch.limits``), which the spawner's state keeps for a restarted hub
  (``state["eohub_session"]``: ``idle_timeout`` and ``max_duration``, present only when
  set), so that a config edited since changes nothing of what accounting enforces.
- The running time counts from the hub's ``started``; the idle time from the later of
  that and the hub's ``last_activity`` for the server, which is what the accounting
  service's enforcement measures (:mod:`eohub.domain.accounting.lifetimes`).

A server started by this hub process carries its approved launch (``spawner.launch``);
after a restart, :func:`stored_launch` rebuilds what the page shows from the state (the
open session's group, the options that started it) and the launch config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eohub.domain.accounting.resources import CHARGED_KEY, CPU_KEYS, GPU_KEYS, MEMORY_KEYS
from eohub.domain.launch.config import LaunchConfig, Size
from eohub.domain.launch.policy import Launch
from eohub.domain.launch.profile_reading import describe_size
from eohub.domain.launch.profiles import Profile
from eohub.domain.launch.session_limits import SessionLimits
from eohub.domain.wording import clock_text, ends_soon
from eohub.logs import get_logger
from eohub.spawner.context import context_source
from eohub.spawner.ledger import LAST_OPTIONS_KEY, STATE_KEY

log = get_logger(__name__)

#: How JupyterHub's pages name the default server.
DEFAULT_SERVER_LABEL = "My Server"


def utcnow() -> datetime:
    """Now, in UTC; module-level so tests can travel in time."""
    return datetime.now(UTC)


def session_limits(state: Mapping[str, Any]) -> SessionLimits:
    """The limits of the open session in a spawner's ``state``; none where it keeps none
    (a session started before eohub kept them, or a state that is not eohub's)."""
    return SessionLimits.from_dict(state.get(STATE_KEY))


@dataclass(frozen=True)
class RunningLaunch:
    """What a running server was launched as, in display names, what it is charged, and
    its session's limits (seconds; None: no limit)."""

    environment: str
    size: str
    group: str
    cpu: float
    memory_bytes: int
    gpus: int
    max_duration: int | None = None
    idle_timeout: int | None = None

    @classmethod
    def of(cls, launch: Launch) -> RunningLaunch:
        """The launch this hub process approved, with the limits resolved for it."""
        size, limits = launch.size, launch.limits
        return cls(
            launch.environment.display_name,
            size.display_name,
            launch.group,
            size.cpu,
            size.memory,
            size.gpus,
            limits.max_duration,
            limits.idle_timeout,
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
    restart): the open session's group and limits, and the options that started it (the
    state's, else JupyterHub's stored ``options``), named as ``config`` or ``profiles``
    name them now. None when the state holds no open session (eohub did not start it).
    """
    session = state.get(STATE_KEY)
    if not isinstance(session, Mapping):
        return None
    limits = session_limits(state)
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
            limits.max_duration,
            limits.idle_timeout,
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
        limits.max_duration,
        limits.idle_timeout,
    )


def _amount(options: Mapping[str, Any], keys: Sequence[str]) -> float:
    value = next((options[k] for k in keys if k in options), 0)
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)  # the hub's database keeps naive UTC


def running_seconds(spawner: Any, now: datetime) -> float:
    """How long ``spawner``'s server has run, from the hub's ``started``."""
    started = _utc(getattr(getattr(spawner, "orm_spawner", None), "started", None))
    return max((now - started).total_seconds(), 0.0) if started is not None else 0.0


def idle_seconds(spawner: Any, now: datetime) -> float:
    """How long ``spawner``'s server has been idle: since the later of the hub's
    ``last_activity`` for it and its start (as the enforcement measures it)."""
    record = getattr(spawner, "orm_spawner", None)
    moments = [
        m
        for m in (
            _utc(getattr(record, "last_activity", None)),
            _utc(getattr(record, "started", None)),
        )
        if m is not None
    ]
    return max((now - max(moments)).total_seconds(), 0.0) if moments else 0.0


def server_label(name: str) -> str:
    """A server as JupyterHub's pages name it."""
    return name or DEFAULT_SERVER_LABEL


@dataclass(frozen=True)
class RunningServerView:
    """One of the user's running servers, as the launch form lists it."""

    name: str
    label: str
    url: str
    environment: str  # its display name; empty when it cannot be read
    clock: str  # its limits and what they leave, in words
    soon: bool  # within the warning period of a limit

    @property
    def id(self) -> str:
        return f"eohub-running-{self.name or 'default'}"


def running_view(
    user: Any,
    spawner: Any,
    config: LaunchConfig,
    profiles: Sequence[Profile],
    now: datetime,
) -> RunningServerView | None:
    """``spawner``'s server on the form; None when eohub did not start it. Raises what a
    bad state raises."""
    launch: Launch | None = getattr(spawner, "launch", None)
    if launch is not None:
        running = RunningLaunch.of(launch)
    else:
        options = getattr(spawner, "user_options", None)
        found = stored_launch(
            config, profiles, spawner.get_state(), options if isinstance(options, Mapping) else {}
        )
        if found is None:
            return None
        running = found
    ran, idle = running_seconds(spawner, now), idle_seconds(spawner, now)
    return RunningServerView(
        name=spawner.name,
        label=server_label(spawner.name),
        url=user.server_url(spawner.name),
        environment=running.environment,
        clock=clock_text(ran, idle, running.idle_timeout, running.max_duration),
        soon=ends_soon(running.max_duration, ran) or ends_soon(running.idle_timeout, idle),
    )


def running_spawners(user: Any) -> list[Any]:
    """``user``'s servers that run (ready), of eohub's spawners, in the hub's order."""
    # Only JupyterHub's User lists its servers (a form drawn outside a hub has none).
    all_spawners = getattr(user, "all_spawners", None)
    if all_spawners is None:
        return []
    spawners: Iterable[Any] = all_spawners(include_default=True)
    return [s for s in spawners if context_source(s) is not None and getattr(s, "ready", False)]


def running_servers(
    user: Any,
    config: LaunchConfig,
    profiles: Sequence[Profile],
    now: datetime | None = None,
) -> tuple[RunningServerView, ...]:
    """``user``'s running servers as the launch form lists them (``user`` is
    JupyterHub's ``User``; None: none). A server whose state cannot be read is left
    out, with one line in the log: the form is for starting one, not for these."""
    now = now or utcnow()
    views = []
    for spawner in running_spawners(user):
        try:
            view = running_view(user, spawner, config, profiles, now)
        except Exception as e:
            log.warning(
                "The launch form leaves out the running server {server}: {error}",
                server=f"{user.name}:{spawner.name}",
                error=f"{type(e).__name__}: {e}",
            )
            continue
        if view is not None:
            views.append(view)
    return tuple(views)


__all__ = [
    "DEFAULT_SERVER_LABEL",
    "RunningLaunch",
    "RunningServerView",
    "idle_seconds",
    "running_seconds",
    "running_servers",
    "running_spawners",
    "running_view",
    "server_label",
    "session_limits",
    "stored_launch",
    "utcnow",
]
