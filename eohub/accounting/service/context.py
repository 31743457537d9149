"""What the service's handlers and workers are given: a frozen :class:`ServiceContext`.

:mod:`eohub.accounting.app` reads its traits once and builds one context; the handlers
find it in the Tornado application's settings (:data:`CONTEXT_SETTING`) and the
workers take it as an argument. So nothing below the application imports it, reads
its traits while serving, or writes onto it: the context is all they know of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from eohub.accounting.exports.config import XDMoDExport
from eohub.accounting.service.enforce import Enforcer
from eohub.accounting.service.lifetimes import LifetimeEnforcer
from eohub.accounting.service.metrics import Metrics
from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.hub_api import HubAPI
from eohub.domain.accounting.enforcement import Mode
from eohub.domain.accounting.lifetimes import LifetimeWarning
from eohub.domain.accounting.storage_quota import DEFAULT_STORAGE_POLICY, StoragePolicy

#: The key of the context in ``tornado.web.Application.settings``.
CONTEXT_SETTING = "eohub_context"


@dataclass
class InFlight:
    """The requests the service has begun and not yet answered.

    On SIGTERM or SIGINT the service stops listening, then waits for these before it closes the
    database: a batch being applied is answered, not cut off with a 500.
    """

    count: int = 0
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._idle.set()

    def begin(self) -> None:
        self.count += 1
        self._idle.clear()

    def end(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self.count = 0
            self._idle.set()

    # Not asyncio.timeout(): requests still running after it are an answer, not an error.
    async def drained(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until no request is in flight (True), or ``timeout`` seconds (False)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        return self._idle.is_set()


@dataclass(frozen=True)
class LoopSettings:
    """The settings of the reconcile and enforcement loops, as plain values.

    Attributes
    ----------
    reconcile_interval
        Seconds between rounds; 0 turns reconcile off.
    enforcement, grace_period, enforcement_interval
        The enforcement mode, the seconds between warning and stop, and the seconds
        between rounds when reconcile is off.
    session_limits, max_duration_warning
        Whether sessions' idle limits and maximum durations are enforced (whatever the
        budget enforcement mode), and the seconds of warning before a max-duration stop.
    fallback_group, default_cpu, default_memory_bytes, default_gpus, open_after
        How reconcile charges a running server that has no session.
    close_after
        Seconds a server must have been missing before reconcile closes its session.
    hub_api_concurrency, hub_api_timeout
        Requests in flight at once, and the timeout of each, on the hub's API.
    """

    reconcile_interval: int = 60
    enforcement: Mode = Mode.OFF
    grace_period: int = 900
    enforcement_interval: int = 60
    session_limits: bool = True
    max_duration_warning: int = 900
    fallback_group: str = ""
    default_cpu: float = 1.0
    default_memory_bytes: int = 0
    default_gpus: int = 0
    open_after: int = 120
    close_after: int = 120
    hub_api_concurrency: int = 10
    hub_api_timeout: float = 30.0

    @classmethod
    def of(cls, app: Any) -> LoopSettings:
        """The settings of an :class:`~eohub.accounting.app.AccountingService`'s traits."""
        return cls(
            reconcile_interval=app.reconcile_interval,
            enforcement=Mode(app.enforcement.lower()),
            grace_period=app.enforcement_grace_period,
            enforcement_interval=app.enforcement_interval,
            session_limits=app.session_limits_enforcement,
            max_duration_warning=app.max_duration_warning,
            fallback_group=app.reconcile_fallback_group,
            default_cpu=app.reconcile_default_cpu,
            default_memory_bytes=int(app.reconcile_default_memory or 0),
            default_gpus=app.reconcile_default_gpus,
            open_after=app.reconcile_open_after,
            close_after=app.reconcile_close_after,
            hub_api_concurrency=app.hub_api_concurrency,
            hub_api_timeout=app.hub_api_timeout,
        )

    @property
    def any_on(self) -> bool:
        """Whether a loop runs at all (reconcile, budget or session-limit enforcement)."""
        return self.reconcile_interval > 0 or self.enforcement_on

    @property
    def enforcement_on(self) -> bool:
        """Whether an enforcement round runs (budgets, session limits, or both)."""
        return self.enforcement is not Mode.OFF or self.session_limits

    @property
    def interval(self) -> int:
        """Seconds between rounds of the one loop that runs both."""
        return (
            self.reconcile_interval if self.reconcile_interval > 0 else self.enforcement_interval
        )


@dataclass(frozen=True)
class ServiceContext:
    """Everything the handlers and workers use, built once by the application.

    Attributes
    ----------
    store
        The accounting store.
    metrics
        The Prometheus registry and counters.
    prefix
        The service's URL prefix behind the hub's proxy, ending in ``/``.
    max_clock_skew
        How far ahead of ``clock`` an input time may be.
    exports
        How exports map onto Open XDMoD (the ``XDMoDExport`` config section).
    authenticate_metrics
        Whether ``/metrics`` needs a token with the read scope.
    loops
        The settings of the background loops.
    hub
        The hub's REST API, when a loop needs it and the environment names it.
    enforcer
        The enforcement worker, when there is a hub API; the pages show its warnings.
    lifetimes
        The session-lifetime worker, when session limits are enforced and there is a hub
        API; the pages show its warnings (:meth:`lifetime_warnings`).
    in_flight
        The requests begun and not yet answered, which a stopping service waits for.
    storage
        How long a group may stay over its storage quota before new servers charged to
        it are refused, from which share of it the group is warned, and how long a
        storage sample counts (the service's ``storage_grace``,
        ``storage_warning_fraction`` and ``storage_sample_max_age``): quota checks and
        the pages apply it (the store has the same max age, for its writes).
    """

    store: AccountingStore
    metrics: Metrics
    prefix: str
    max_clock_skew: timedelta
    exports: XDMoDExport
    authenticate_metrics: bool = True
    loops: LoopSettings = LoopSettings()
    hub: HubAPI | None = None
    enforcer: Enforcer | None = None
    lifetimes: LifetimeEnforcer | None = None
    in_flight: InFlight = field(default_factory=InFlight)
    storage: StoragePolicy = DEFAULT_STORAGE_POLICY

    @property
    def clock(self) -> Callable[[], datetime]:
        """What time it is: the store's clock, which every write uses too."""
        return self.store.clock

    def clock_limits(self) -> dict[str, Any]:
        """What input times are checked against: the clock now, and the skew allowed."""
        return {"now": self.clock(), "max_clock_skew": self.max_clock_skew}

    def lifetime_warnings(self, user: str | None = None) -> Mapping[int, LifetimeWarning]:
        """The coming max-duration stops, by session id: each warning's ``stop_at`` and
        ``reason``; only ``user``'s when given. Empty while session limits are not
        enforced."""
        if self.lifetimes is None:
            return {}
        return {
            session: warning
            for session, warning in self.lifetimes.warnings().items()
            if user is None or warning.user == user
        }


__all__ = ["CONTEXT_SETTING", "InFlight", "LoopSettings", "ServiceContext"]
