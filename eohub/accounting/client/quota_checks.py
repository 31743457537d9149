"""Quota checks from the hub: their own connections, their deadlines, and outages.

A class pressing Start at once sends as many checks as the hub runs spawns. They get a
pool of their own, as large as the hub's concurrent spawn limit, which event posting never
uses; a check that finds the pool full waits for a slot inside the hub, and that wait is
not taken from its connect and answer timeouts, so a healthy service under a storm
decides every check itself.

When the service cannot answer, the failure policy decides (:class:`QuotaAnswer` says
so): ``last_known`` from the service's last standing of the user and group
(:mod:`eohub.domain.accounting.last_known`), else ``open`` or ``closed``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient

from eohub.accounting.client.http import NoAnswer, Reply, post_json
from eohub.accounting.client.outage import OutageLog
from eohub.accounting.client.replies import PolicyReason, QuotaAnswer, quota_answer
from eohub.domain.accounting.last_known import LastKnown
from eohub.domain.accounting.ledger import Resources
from eohub.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class QuotaSettings:
    """The client's quota traits, read once per check (tests and admins may change them)."""

    url: str
    token: str
    ca_file: str
    connect_timeout: float
    timeout: float
    policy: str  # open, closed, last_known
    fallback: str  # open, closed: the last_known policy's, without a usable standing
    last_known_max_age: float

    @classmethod
    def of(cls, client: Any) -> QuotaSettings:
        """The settings of an :class:`~eohub.accounting.client.client.AccountingClient`."""
        return cls(
            url=client.url,
            token=client.api_token,
            ca_file=client.tls_ca_file,
            connect_timeout=client.quota_connect_timeout,
            timeout=client.quota_timeout,
            policy=client.quota_failure_policy,
            fallback=client.quota_last_known_fallback,
            last_known_max_age=client.quota_last_known_max_age,
        )


class QuotaChecks:
    """The hub's quota checks: one pool of ``connections``, and the last standings."""

    def __init__(self, connections: int, on_token_refused: Any) -> None:
        self.connections = connections
        self._http: AsyncHTTPClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._token_refused = on_token_refused
        self.outage = OutageLog()
        self.last_known = LastKnown(max_age=0.0)
        self._warned_no_standing = False

    async def check(
        self, settings: QuotaSettings, body: Mapping[str, Any], server: str | None
    ) -> QuotaAnswer:
        """The answer to ``body``; ``server``: the server an allowed spawn starts, or None
        when nothing is started (an allowed answer then lets nothing through)."""
        user, group = str(body["user"]), str(body["group"])
        request = Resources.from_cpu(body["cpu"], int(body["memory_bytes"]), int(body["gpus"]))
        self.last_known.max_age = settings.last_known_max_age
        try:
            # A check that starts nothing says so: the service counts only spawns' denials.
            path = "api/quota/check" if server is not None else "api/quota/check?purpose=form"
            reply, asked_at = await self._post(settings, body, path)
        except NoAnswer as e:
            why = (e.kind, e.problem, e.detail)
            return self._by_policy(settings, user, group, server, request, why)
        answer = quota_answer(reply.body) if reply.code == 200 else None
        if answer is not None:
            self.outage.service_answered()
            if settings.policy == "last_known" and "standing" not in reply.body:
                self._warn_no_standing()
            self.last_known.observe(user, group, reply.body, asked_at)
            if answer.allowed and server is not None:
                self.last_known.let_through(user, group, server, request, time.monotonic())
            return answer
        if reply.code in (401, 403):
            self._token_refused(reply.code)
            kind, problem = "refused", "The accounting service refused the hub's token"
        elif reply.code == 200:
            kind, problem = "error", "The accounting service sent an answer eohub cannot read"
        else:
            kind, problem = "error", "The accounting service failed"
        return self._by_policy(
            settings, user, group, server, request, (kind, problem, f"HTTP {reply.code}")
        )

    def _warn_no_standing(self) -> None:
        if not self._warned_no_standing:
            log.warning(
                "The accounting service sends no standing with its quota answers (an older "
                "eohub-accounting?): quota_failure_policy last_known cannot work, and its "
                "fallback decides during outages; upgrade the service"
            )
        self._warned_no_standing = True

    def queued(self, user: str, server: str) -> None:
        """The start of ``user``'s ``server`` was queued: the spawn started."""
        self.last_known.queued(user, server)

    def delivered(self, events: list[Any]) -> None:
        """The service confirmed ``events``: the spawns of their starts are counted there."""
        now = time.monotonic()
        for event in events:
            if isinstance(event, dict) and event.get("kind") == "start":
                self.last_known.delivered(str(event.get("user")), str(event.get("server")), now)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self._slots = None

    async def _post(
        self, settings: QuotaSettings, body: Mapping[str, Any], path: str
    ) -> tuple[Reply, float]:
        if self._http is None or self._slots is None:
            # Tornado would time a request queued for a connection against its timeout:
            # the semaphore queues it here instead, and Tornado's own queue stays empty.
            self._http = AsyncHTTPClient(force_instance=True, max_clients=self.connections)
            self._slots = asyncio.Semaphore(self.connections)
        http, slots = self._http, self._slots
        try:
            # Bounded on its own: a hung service must not hold spawns in the queue forever.
            async with asyncio.timeout(settings.timeout):
                await slots.acquire()
        except TimeoutError:
            problem = (
                f"The hub had no free connection to the accounting service within "
                f"{settings.timeout:g} s"
            )
            busy = f"{self.connections} checks in flight"
            raise NoAnswer(problem, busy, kind="timeout") from None
        try:
            asked_at = time.monotonic()
            reply = await post_json(
                http,
                settings.url + path,
                body,
                token=settings.token,
                seconds=settings.timeout,
                connect_seconds=settings.connect_timeout,
                ca_file=settings.ca_file,
            )
        finally:
            slots.release()
        return reply, asked_at

    def _by_policy(
        self,
        settings: QuotaSettings,
        user: str,
        group: str,
        server: str | None,
        request: Resources,
        failure: tuple[str, str, str],
    ) -> QuotaAnswer:
        """The policy's answer; ``failure`` is the reason (a :data:`PolicyReason`), the
        problem in words for the user, and the detail for the log."""
        reason, problem, detail = failure
        why: PolicyReason = reason  # type: ignore[assignment]
        policy = settings.policy
        answer = None
        if policy == "last_known":
            now = time.monotonic()
            verdict = self.last_known.decide(user, group, request, now)
            if verdict is not None:
                answer = QuotaAnswer(
                    verdict.allowed,
                    f"{problem}, so eohub decided from its last answers. {verdict.reason}",
                    verdict.budget_left,
                    "last-known",
                    why,
                )
            else:
                policy = settings.fallback
                problem += " and eohub has no recent standing of this user in this group"
        if answer is None:
            answer = _fallback(policy, problem, why)
        self.outage.decided_by_policy(
            policy=policy, reason=reason, problem=problem, detail=detail, user=user, group=group
        )
        if answer.allowed and server is not None:
            self.last_known.let_through(user, group, server, request, time.monotonic())
        return answer


def _fallback(policy: str, problem: str, why: PolicyReason) -> QuotaAnswer:
    if policy == "open":
        return QuotaAnswer(True, f"{problem}; starting anyway (fail-open).", {}, "fail-open", why)
    return QuotaAnswer(
        False,
        f"{problem}, so the quota cannot be checked and no server is started "
        "(fail-closed). Try again in a few minutes; if this persists, tell the "
        "platform's admins.",
        {},
        "fail-closed",
        why,
    )


__all__ = ["QuotaChecks", "QuotaSettings"]
