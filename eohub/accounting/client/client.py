"""The hub's client of the accounting service: quota checks, and start/stop events.

Quota checks are answered within ``quota_timeout``; when the service cannot answer, the
configured failure policy decides, and the answer says so (:class:`QuotaAnswer`).

Events are never lost and never counted twice. ``record_start``/``record_stop`` commit
the event to the :class:`~eohub.accounting.client.outbox.Outbox` (an SQLite file) before they
return; an :class:`~eohub.accounting.client.sender.OutboxSender` task sends the queued events
oldest first, and deletes them only once the service has confirmed them. A hub that is
killed resends the rest after its restart. A resend is always safe: every event carries
an idempotency key (``id``), and the service stores each key once, so an event it
already has is only counted as a duplicate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tornado.httpclient import AsyncHTTPClient
from traitlets import Enum, Float, Int, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from eohub import logs
from eohub.accounting.client.addresses import (
    DEFAULT_SERVICE_ROOT,
    DEFAULT_URL,
    SERVICE_PREFIX,
    hub_spawn_limit,
    service_url,
)
from eohub.accounting.client.http import NoAnswer, Reply, post_json
from eohub.accounting.client.outbox_queries import OutboxQueries
from eohub.accounting.client.outbox_thread import OutboxThread
from eohub.accounting.client.quota_checks import QuotaChecks, QuotaSettings
from eohub.accounting.client.replies import QuotaAnswer, delivery
from eohub.accounting.client.sender import Delivery, OutboxSender
from eohub.domain.accounting.events import (
    MAX_BATCH,
    parse_event,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.requests import parse_quota_request
from eohub.logs import get_logger

log = get_logger(__name__)


class AccountingClient(OutboxQueries, LoggingConfigurable):
    """The hub's connection to the eohub accounting service.

    One instance serves the whole hub. :meth:`start` opens the outbox and starts the
    sender; :meth:`stop` gives it a few seconds to empty the outbox. Whatever is left
    stays in the file and is sent after the next start. What the outbox holds:
    :class:`~eohub.accounting.client.outbox_queries.OutboxQueries`.
    """

    url = Unicode(
        help=f"""
        Base URL of the accounting service's API, e.g. ``{DEFAULT_URL}``. A URL without a
        path is the service's own address, and ``{SERVICE_PREFIX}`` is added to it.
        Default: ``$EOHUB_ACCOUNTING_URL`` (the address the service listens on, as in the
        ``30-eohub-accounting.py`` drop-in), else ``{DEFAULT_SERVICE_ROOT}``. On Kubernetes,
        the service's cluster address, e.g. ``http://eohub-accounting:10101``. The hub
        talks to the service directly, not through the proxy.
        """,
    ).tag(config=True)
    api_token = Unicode(
        help="""
        Token the hub presents to the accounting service (``Authorization: token ...``).
        Default: the environment variable ``EOHUB_ACCOUNTING_HUB_TOKEN``; keep it out of
        config files you share. It is never logged. A refused token is logged once as
        an error; the events refused meanwhile are kept as dead letters in the outbox
        (``AccountingClient.dead_letters()``): after fixing the token, send them again
        with ``AccountingClient.requeue_dead_letters()``.
        """,
    ).tag(config=True)
    tls_ca_file = Unicode(
        "",
        help="PEM file of the CA for an ``https://`` url. Empty: the system's trust store.",
    ).tag(config=True)
    quota_connect_timeout = Float(
        2.0,
        help="""
        Seconds a quota check may take to connect to the service. Time a check waits
        inside the hub for a free connection (``quota_max_connections``) is not counted.
        """,
    ).tag(config=True)
    quota_timeout = Float(
        5.0,
        help="""
        Seconds a quota check may take in all, connecting included, once it has a
        connection; it may wait as long again for a free connection (only when more
        checks than ``quota_max_connections`` are in flight). Then ``quota_failure_policy``
        decides. A healthy service answers in milliseconds; the margin is for the hub's
        own event loop, which runs late while a class starts its servers at once.
        """,
    ).tag(config=True)
    quota_max_connections = Int(
        0,
        min=0,
        help="""
        Most quota checks in flight at once, each on its own connection; more wait in
        the hub for a free one. 0 (default): the hub's ``JupyterHub.concurrent_spawn_limit``
        (Zero to JupyterHub's ``hub.concurrentSpawnLimit``, 64), or 64 when that is
        unlimited, so every spawn in flight can ask at once. Events are sent on
        connections of their own.
        """,
    ).tag(config=True)
    quota_failure_policy = Enum(
        ["open", "closed", "last_known"],
        "open",
        help="""
        What a quota check answers when the accounting service cannot (down, slow,
        failing, or refusing the hub's token). Each such answer is counted in the hub's
        ``eohub_quota_checks_by_policy_total`` metric, and an outage is logged once as a
        warning when it begins, not once per check.

        ``open`` (default): start the server anyway. Its start and stop are still
        recorded in the outbox and charged once the service is back, so an outage lets
        users overspend only while it lasts, and the usage reports show it. Choose it
        when researchers losing their working environment costs more than some
        unplanned hours, the usual case on a research platform.

        ``closed``: refuse to start, telling the user to try again later. Choose it when
        budgets are hard limits, e.g. paid cloud credits or scarce GPUs; an accounting
        outage then stops all new servers.

        ``last_known``: decide from the service's last answer to this user in this group,
        if it is at most ``quota_last_known_max_age`` old, conservatively: the servers
        started since count against the group's and the user's limits, running servers
        keep burning hours, stopped ones are not given back, and a last refusal stays a
        refusal. Without such an answer (a user not seen since the hub started, or an
        outage longer than the age limit), ``quota_last_known_fallback`` decides. The
        standings live in the hub's memory: a hub restarted during an outage has none.
        Choose it to keep hard limits mostly held through short outages without
        stopping everyone's work.
        """,
    ).tag(config=True)
    quota_last_known_max_age = Float(
        900.0,
        help="""
        Seconds a standing from the service is used for by the ``last_known`` policy.
        The older it is, the more it guesses: servers stopped since are not given back.
        """,
    ).tag(config=True)
    quota_last_known_fallback = Enum(
        ["open", "closed"],
        "open",
        help="""
        The policy the ``last_known`` policy falls back to when it has no standing of
        the user in the group that is recent enough; see ``quota_failure_policy``.
        """,
    ).tag(config=True)
    request_timeout = Float(
        20.0, help="Seconds one batch of events may take before it is retried."
    ).tag(config=True)
    batch_size = Int(500, help=f"Most events sent in one request (1 to {MAX_BATCH}).").tag(
        config=True
    )
    retry_initial_delay = Float(
        1.0,
        help="""
        Seconds before the first retry after a failed send. Each further failure doubles
        the delay, up to ``retry_max_delay``, with random jitter.
        """,
    ).tag(config=True)
    retry_max_delay = Float(
        300.0,
        help="Longest wait in seconds between retries while the service is unavailable.",
    ).tag(config=True)
    outbox_path = Unicode(
        "eohub-accounting-outbox.sqlite",
        help="""
        SQLite file of the events the service has not confirmed yet. A relative path is
        relative to the hub's working directory, which is its data directory (next to
        ``jupyterhub.sqlite``). It must survive hub restarts (on Kubernetes, put it on the
        hub's persistent volume) and be on a local file system, not NFS.
        """,
    ).tag(config=True)

    @default("url")
    def _url_default(self) -> str:
        # traitlets does not validate defaults, so the environment's value is checked here.
        return service_url(os.environ.get("EOHUB_ACCOUNTING_URL", DEFAULT_SERVICE_ROOT))

    @default("api_token")
    def _api_token_default(self) -> str:
        return os.environ.get("EOHUB_ACCOUNTING_HUB_TOKEN", "")

    @validate("url")
    def _validate_url(self, proposal: dict[str, Any]) -> str:
        return service_url(str(proposal["value"]))

    @validate(
        "quota_timeout",
        "quota_connect_timeout",
        "quota_last_known_max_age",
        "request_timeout",
        "retry_initial_delay",
        "retry_max_delay",
    )
    def _validate_positive(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not value > 0:
            raise TraitError(f"AccountingClient.{proposal['trait'].name} must be above 0")
        return value

    @validate("batch_size")
    def _validate_batch_size(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 1 <= value <= MAX_BATCH:
            raise TraitError(f"AccountingClient.batch_size must be from 1 to {MAX_BATCH}")
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The hub's logger (the parent's, or the one passed as ``log``) shows our lines.
        logs.attach(self.log)
        self._outbox = OutboxThread(lambda: self.outbox_path)
        self._http: AsyncHTTPClient | None = None
        self._quota: QuotaChecks | None = None
        self._sender: OutboxSender | None = None
        self._stopped = False
        self._token_refused = False

    # -- quota -------------------------------------------------------------------

    async def check_quota(
        self,
        *,
        user: str,
        group: str,
        cpu: float,
        memory_bytes: int = 0,
        gpus: int = 0,
        server: str = "",
        for_spawn: bool = True,
    ) -> QuotaAnswer:
        """Ask the service whether ``user`` may start a server of this size for ``group``.

        Raises ValueError (an :class:`~eohub.domain.accounting.events.EventError`) for
        a request the service would refuse, e.g. ``cpu=0``, since no policy should
        answer that. Every failure of the service becomes an answer by
        ``quota_failure_policy``. ``server`` names the server to be started, so that
        the ``last_known`` policy knows when the service has counted it;
        ``for_spawn=False`` asks without starting anything (the launch form's budgets).
        """
        body = {
            "user": user,
            "group": group,
            "cpu": cpu,
            "memory_bytes": memory_bytes,
            "gpus": gpus,
        }
        parse_quota_request(body)  # the service's own rules
        return await self._quota_checks().check(
            QuotaSettings.of(self), body, server if for_spawn else None
        )

    def _quota_checks(self) -> QuotaChecks:
        if self._quota is None:
            connections = self.quota_max_connections or hub_spawn_limit(self.config)
            self._quota = QuotaChecks(connections, self._log_token_refused)
        return self._quota

    # -- events ------------------------------------------------------------------

    async def record_start(
        self,
        *,
        user: str,
        server: str,
        started_at: datetime,
        group: str,
        cpu: float,
        memory_bytes: int = 0,
        gpus: int = 0,
        profile: str = "",
        image: str = "",
        profile_name: str = "",
        idle_timeout: int | None = None,
        max_duration: int | None = None,
    ) -> str:
        """Queue the start of a server durably; return the event's id. ``profile_name``
        is the environment's display name, which the usage pages show; ``idle_timeout``
        and ``max_duration`` the session's limits in seconds (None: no limit), which
        accounting enforces.

        Raises ValueError (an :class:`~eohub.domain.accounting.events.EventError`
        naming each bad field) for an event the service would refuse; nothing is
        queued then. Raises :class:`~eohub.accounting.client.outbox.OutboxError` when the
        outbox file cannot be written.
        """
        event = start_event_json(
            user=user,
            server=server,
            started_at=started_at,
            group=group,
            cpu=cpu,
            memory_bytes=memory_bytes,
            gpus=gpus,
            profile=profile,
            image=image,
            profile_name=profile_name,
            idle_timeout=idle_timeout,
            max_duration=max_duration,
        )
        queued = await self._record(event)
        if self._quota is not None:
            self._quota.queued(user, server)
        return queued

    async def record_stop(
        self,
        *,
        user: str,
        server: str,
        started_at: datetime,
        stopped_at: datetime,
        reason: str = "stopped",
    ) -> str:
        """Queue the stop of the server started at ``started_at``; see :meth:`record_start`."""
        event = stop_event_json(
            user=user, server=server, started_at=started_at, stopped_at=stopped_at, reason=reason
        )
        return await self._record(event)

    async def _record(self, event: dict[str, Any]) -> str:
        parse_event(event)
        if not await self._outbox.put(event):
            log.debug("Accounting event {event} was queued already", event=event["id"])
        # Never started: start sending on first use. After stop(): events still go to
        # the outbox, for the next start.
        if not self._stopped:
            self._ensure_sender().notify()
        return str(event["id"])

    # -- lifecycle and introspection ---------------------------------------------

    async def start(self) -> None:
        """Open the outbox (raising OutboxError if it cannot be used) and send its events."""
        self._stopped = False
        await self._outbox.open()
        if not self.api_token:
            log.warning(
                "AccountingClient has no api_token: set c.AccountingClient.api_token "
                "or EOHUB_ACCOUNTING_HUB_TOKEN, or the service refuses every request"
            )
        self._ensure_sender().notify()

    # Not asyncio.timeout(): running out of time is an answer (False), not an error.
    async def flush(self, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
        """Send queued events now; wait until the outbox is empty (True) or ``timeout``."""
        if self._stopped:
            raise RuntimeError("AccountingClient.flush() after stop(): call start() first")
        return await self._ensure_sender().flush(timeout)

    # Not asyncio.timeout(): running out of time is an answer (False), not an error.
    async def stop(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        """Try for ``timeout`` seconds to empty the outbox, then stop; True if it emptied.

        Events left in the outbox, and any recorded after this, are sent after the
        next :meth:`start`, by this or a new client on the same ``outbox_path``.
        """
        self._stopped = True  # events recorded from now on wait for the next start
        sender = self._sender
        empty = False
        if sender is not None and sender.running:
            empty = await sender.flush(timeout)
        self._sender = None
        if sender is not None:
            await sender.stop()
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._quota is not None:
            self._quota.close()
        await self._outbox.close()
        return empty

    def _ensure_sender(self) -> OutboxSender:
        if self._sender is None:
            self._sender = OutboxSender(
                io=self._outbox.run,
                send=self._send_batch,
                batch_size=self.batch_size,
                retry_initial_delay=self.retry_initial_delay,
                retry_max_delay=self.retry_max_delay,
            )
        self._sender.start()
        return self._sender

    async def _send_batch(self, events: list[Any]) -> Delivery:
        try:
            reply = await self._post("api/events", {"events": events}, self.request_timeout)
        except NoAnswer as e:
            return Delivery("retry", problem=f"{e.problem} ({e.detail})")
        if reply.code == 200:
            self._token_refused = False
            if self._quota is not None:
                self._quota.delivered(events)
            counts = reply.body if isinstance(reply.body, dict) else {}
            log.debug(
                "Accounting events delivered: {accepted} accepted, {duplicates} duplicates",
                **{key: counts.get(key) for key in ("accepted", "duplicates")},
            )
            return Delivery("accepted")
        return delivery(reply, self._log_token_refused)

    def _log_token_refused(self, code: int) -> None:
        if not self._token_refused:
            log.error(
                "The accounting service refused the hub's token (HTTP {status}): make "
                "c.AccountingClient.api_token (EOHUB_ACCOUNTING_HUB_TOKEN) the token the "
                "service expects; events refused until then are kept as dead letters, "
                "to requeue with requeue_dead_letters() after the fix",
                status=code,
            )
        self._token_refused = True

    # -- I/O boundaries -----------------------------------------------------------

    async def _post(self, path: str, body: Mapping[str, Any], seconds: float) -> Reply:
        """POST JSON and return the reply, whatever its status; or raise NoAnswer."""
        if self._http is None:
            # Events' own client: a hanging service must not take the connection slots of
            # the hub's shared AsyncHTTPClient (the proxy's) or of the quota checks.
            self._http = AsyncHTTPClient(force_instance=True)
        return await post_json(
            self._http,
            self.url + path,
            body,
            token=self.api_token,
            seconds=seconds,
            ca_file=self.tls_ca_file,
        )


# QuotaAnswer is what quota_check returns: the spawners import it from here.
__all__ = ["DEFAULT_URL", "AccountingClient", "QuotaAnswer", "hub_spawn_limit"]
