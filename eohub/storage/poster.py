"""Posting storage samples to the accounting service (``POST api/storage``).

Samples go in batches of at most :data:`~eohub.domain.accounting.requests.MAX_SAMPLES`.
A batch that gets no answer (or a 5xx: the service or its proxy is restarting) is sent
again after a pause that doubles each time, up to ``retries`` times. A 4xx answer means
the batch itself is wrong (or the token is): the service's message is logged and the
batch dropped, never sent again, since it would be refused again. The service stores a
sample once (same user, group, source and time), so a batch sent twice is no harm.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tornado.httpclient import AsyncHTTPClient

from eohub.accounting.client.http import NoAnswer, Reply, post_json
from eohub.domain.accounting.events import format_time
from eohub.domain.accounting.requests import MAX_SAMPLE_BYTES, MAX_SAMPLES
from eohub.domain.accounting.session_record import StorageSample
from eohub.logs import get_logger

log = get_logger(__name__)


def sample_json(sample: StorageSample) -> dict[str, Any]:
    """One sample as the API takes it."""
    return {
        "user": sample.user,
        "group": sample.group,
        "bytes": sample.bytes,
        "file_count": sample.file_count,
        "measured_at": format_time(sample.measured_at),
        "source": sample.source,
    }


def service_message(reply: Reply) -> str:
    """What the service said about a refused batch: its message and field errors."""
    body = reply.body
    if not isinstance(body, dict):
        return reply.text or "(no message)"
    parts = [str(body.get("message") or "")]
    errors = body.get("errors")
    if isinstance(errors, dict):
        parts.extend(f"{k}: {v}" for k, v in list(errors.items())[:10])
    return "; ".join(p for p in parts if p)[:1000] or "(no message)"


@dataclass
class Posted:
    """What one round of posting did."""

    accepted: int = 0
    duplicates: int = 0
    dropped: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.dropped or self.failed)


@dataclass
class Poster:
    """Posts samples to ``url`` (the service's ``api/storage``) with ``token``."""

    url: str
    token: str = field(repr=False)
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 2.0
    max_backoff: float = 300.0
    ca_file: str = ""

    async def post(
        self, samples: Sequence[StorageSample], stopping: asyncio.Event | None = None
    ) -> Posted:
        """Post ``samples`` in batches. Once ``stopping`` is set, the request under way
        is finished, and nothing more is sent."""
        stopping = stopping or asyncio.Event()
        posted = Posted()
        usable = []
        for s in samples:
            if 0 <= s.bytes <= MAX_SAMPLE_BYTES:
                usable.append(s)
                continue
            log.error(
                "Storage of {user} in group {group!r} not posted: {bytes} bytes is beyond "
                "what the accounting service takes ({limit})",
                user=s.user,
                group=s.group,
                bytes=s.bytes,
                limit=MAX_SAMPLE_BYTES,
            )
            posted.dropped += 1
        http = AsyncHTTPClient()
        for start in range(0, len(usable), MAX_SAMPLES):
            if stopping.is_set():
                posted.failed += len(usable) - start
                break
            batch = usable[start : start + MAX_SAMPLES]
            if not await self._post_batch(http, batch, posted, stopping):
                posted.failed += len(usable) - start - len(batch)
                break
        return posted

    async def _post_batch(
        self,
        http: AsyncHTTPClient,
        batch: list[StorageSample],
        posted: Posted,
        stopping: asyncio.Event,
    ) -> bool:
        """One batch, retried; False when nothing answered (the rest should wait)."""
        body = {"samples": [sample_json(s) for s in batch]}
        pause = self.backoff
        why = ""
        for attempt in range(self.retries + 1):
            problem = await self._attempt(http, body, batch, posted)
            if problem is None:  # stored, or refused and dropped: the next batch may be fine
                return True
            why = problem
            if attempt == self.retries or stopping.is_set():
                break
            log.warning(
                "Storage samples not posted ({why}); trying again in {seconds:g} s",
                why=why,
                seconds=pause,
            )
            try:
                await asyncio.wait_for(stopping.wait(), pause)
            except TimeoutError:
                pass
            else:
                break  # stopping: the samples are measured again at the next start
            pause = min(pause * 2, self.max_backoff)
        posted.failed += len(batch)
        posted.problems.append(why)
        log.error(
            "{count} storage samples not posted: {why}; they are measured again next round",
            count=len(batch),
            why=why,
        )
        return False

    async def _attempt(
        self,
        http: AsyncHTTPClient,
        body: dict[str, Any],
        batch: list[StorageSample],
        posted: Posted,
    ) -> str | None:
        """None when the service answered (stored, or refused and dropped); else why
        the batch should be sent again."""
        try:
            reply = await post_json(
                http, self.url, body, token=self.token, seconds=self.timeout, ca_file=self.ca_file
            )
        except NoAnswer as e:
            return e.detail
        if 200 <= reply.code < 300 and isinstance(reply.body, dict):
            posted.accepted += int(reply.body.get("accepted", 0))
            posted.duplicates += int(reply.body.get("duplicates", 0))
            return None
        if 400 <= reply.code < 500:
            message = service_message(reply)
            log.error(
                "The accounting service refused {count} storage samples (HTTP {code}): "
                "{message}; they are dropped",
                count=len(batch),
                code=reply.code,
                message=message,
            )
            posted.dropped += len(batch)
            posted.problems.append(message)
            return None
        return f"HTTP {reply.code} {service_message(reply)}"


__all__ = ["Posted", "Poster", "sample_json", "service_message"]
