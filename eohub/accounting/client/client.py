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

import asyncio
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient
from traitlets import Enum, Float, Int, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from eohub import logs
from eohub.accounting.client.http import NoAnswer, Reply, post_json
from eohub.accounting.client.outbox import DeadLetter, Outbox
from eohub.accounting.client.replies import QuotaAnswer, delivery, quota_answer
from eohub.accounting.client.sender import Delivery, OutboxSender
from eohub.accounting.scopes import SERVICE_NAME
from eohub.domain.accounting.events import (
    MAX_BATCH,
    parse_event,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.requests import parse_quota_request
from eohub.logs import get_logger

log = get_logger(__name__)

T = TypeVar("T")

DEFAULT_SERVICE_ROOT = "http://127.0.0.1:10101"
SERVICE_PREFIX = f"/services/{SERVICE_NAME}/"
DEFAULT_URL = DEFAULT_SERVICE_ROOT + SERVICE_PREFIX


class AccountingClient(LoggingConfigurable):
    """The hub's connection to the eohub accounting service.

    One instance serves the whole hub. :meth:`start` opens the outbox and starts the
    sender; :meth:`stop` gives it a few seconds to empty the outbox. Whatever is left
    stays in the file and is sent after the next start.
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
    quota_timeout = Float(
        2.0,
        help="""
        Seconds a quota check may take, connecting included. A user waits this long at
        most before ``quota_failure_policy`` decides.
        """,
    ).tag(config=True)
    quota_failure_policy = Enum(
        ["open", "closed"],
        "open",
        help="""
        What a quota check answers when the accounting service cannot (down, slow,
        failing, or refusing the hub's token).

        ``open`` (default): start the server anyway. Its start and stop are still
        recorded in the outbox and charged once the service is back, so an outage lets
        users overspend only while it lasts, and the usage reports show it. Choose it
        when researchers losing their working environment costs more than some
        unplanned hours, the usual case on a research platform.

        ``closed``: refuse to start, telling the user to try again later. Choose it when
        budgets are hard limits, e.g. paid cloud credits or scarce GPUs; an accounting
        outage then stops all new servers.
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
        return _service_url(os.environ.get("EOHUB_ACCOUNTING_URL", DEFAULT_SERVICE_ROOT))

    @default("api_token")
    def _api_token_default(self) -> str:
        return os.environ.get("EOHUB_ACCOUNTING_HUB_TOKEN", "")

    @validate("url")
    def _validate_url(self, proposal: dict[str, Any]) -> str:
        return _service_url(str(proposal["value"]))

    @validate("quota_timeout", "request_timeout", "retry_initial_delay", "retry_max_delay")
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
        self._outbox: Outbox | None = None
        # One worker thread: outbox calls run one at a time, and never on the event loop.
        self._executor: ThreadPoolExecutor | None = None
        self._open_lock = asyncio.Lock()
        self._http: AsyncHTTPClient | None = None
        self._sender: OutboxSender | None = None
        self._stopped = False
        self._token_refused = False

    # -- quota -------------------------------------------------------------------

    async def check_quota(
        self, *, user: str, group: str, cpu: float, memory_bytes: int = 0, gpus: int = 0
    ) -> QuotaAnswer:
        """Ask the service whether ``user`` may start a server of this size for ``group``.

        Raises ValueError (an :class:`~eohub.domain.accounting.events.EventError`) for
        a request the service would refuse, e.g. ``cpu=0``, since no policy should
        answer that. Every failure of the service becomes an answer by
        ``quota_failure_policy``.
        """
        body = {
            "user": user,
            "group": group,
            "cpu": cpu,
            "memory_bytes": memory_bytes,
            "gpus": gpus,
        }
        parse_quota_request(body)  # the service's own rules
        try:
            reply = await self._post("api/quota/check", body, self.quota_timeout)
        except NoAnswer as e:
            return self._quota_fallback(user, group, e.problem, e.detail)
        if reply.code == 200:
            answer = quota_answer(reply.body)
            if answer is not None:
                return answer
            problem = "The accounting service sent an answer eohub cannot read"
        elif reply.code in (401, 403):
            self._log_token_refused(reply.code)
            problem = "The accounting service refused the hub's token"
        else:
            problem = "The accounting service failed"
        return self._quota_fallback(user, group, problem, f"HTTP {reply.code}")

    def _quota_fallback(self, user: str, group: str, problem: str, detail: str) -> QuotaAnswer:
        if self.quota_failure_policy == "open":
            answer = QuotaAnswer(True, f"{problem}; starting anyway (fail-open).", {}, "fail-open")
        else:
            answer = QuotaAnswer(
                False,
                f"{problem}, so the quota cannot be checked and no server is started "
                "(fail-closed). Try again in a few minutes; if this persists, tell the "
                "platform's admins.",
                {},
                "fail-closed",
            )
        log.warning(
            "Quota check of {user} for group {group} decided by the {policy} policy: "
            "{problem} ({detail})",
            user=user,
            group=group,
            policy=answer.source,
            problem=problem,
            detail=detail,
        )
        return answer

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
    ) -> str:
        """Queue the start of a server durably; return the event's id.

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
        )
        return await self._record(event)

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
        if not await self._io(lambda o: o.put([event])):
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
        await self._open_outbox()
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
        async with self._open_lock:
            outbox, self._outbox = self._outbox, None
            executor, self._executor = self._executor, None
            if outbox is not None and executor is not None:
                await asyncio.get_running_loop().run_in_executor(executor, outbox.close)
            if executor is not None:
                executor.shutdown(wait=False)
        return empty

    async def pending(self) -> int:
        """How many events wait to be sent."""
        return await self._io(Outbox.count)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest events the service refused for good, with its field errors."""
        return await self._io(lambda o: o.dead_letters(limit))

    async def requeue_dead_letters(self, rowids: list[int] | None = None) -> int:
        """Queue dead letters (all, or ``rowids``) again, e.g. after a service upgrade."""
        count = await self._io(lambda o: o.requeue_dead_letters(rowids))
        if not self._stopped:
            self._ensure_sender().notify()
        return count

    def _ensure_sender(self) -> OutboxSender:
        if self._sender is None:
            self._sender = OutboxSender(
                io=self._io,
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
            counts = reply.body if isinstance(reply.body, dict) else {}
            log.debug(
                "Accounting events delivered: {accepted} accepted, {duplicates} duplicates",
                accepted=counts.get("accepted"),
                duplicates=counts.get("duplicates"),
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

    async def _open_outbox(self) -> tuple[Outbox, ThreadPoolExecutor]:
        async with self._open_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="eohub-outbox")
            if self._outbox is None:
                self._outbox = await asyncio.get_running_loop().run_in_executor(
                    self._executor, Outbox, self.outbox_path
                )
            return self._outbox, self._executor

    async def _io(self, call: Callable[[Outbox], T], /) -> T:
        outbox, executor = await self._open_outbox()
        return await asyncio.get_running_loop().run_in_executor(executor, call, outbox)

    async def _post(self, path: str, body: Mapping[str, Any], seconds: float) -> Reply:
        """POST JSON and return the reply, whatever its status; or raise NoAnswer."""
        if self._http is None:
            # Our own client: a hanging service must not take the connection slots of
            # the hub's shared AsyncHTTPClient, which it needs to talk to the proxy.
            self._http = AsyncHTTPClient(force_instance=True)
        return await post_json(
            self._http,
            self.url + path,
            body,
            token=self.api_token,
            seconds=seconds,
            ca_file=self.tls_ca_file,
        )


def _service_url(url: str) -> str:
    """The API base that paths are appended to; TraitError if ``url`` cannot be one."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise TraitError(
            "AccountingClient.url must be an http:// or https:// URL without a query, "
            f"like {DEFAULT_URL}; got {url!r}"
        )
    if parts.path in ("", "/"):
        # The service's own address: JupyterHub serves a service under its prefix.
        return url.rstrip("/") + SERVICE_PREFIX
    return url if url.endswith("/") else url + "/"


# QuotaAnswer is what quota_check returns: the spawners import it from here.
__all__ = ["DEFAULT_URL", "AccountingClient", "QuotaAnswer"]
