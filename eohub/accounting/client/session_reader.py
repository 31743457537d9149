"""The hub reads a user's last sessions from the accounting service: why each stopped.

``GET api/sessions?user=<name>&limit=<n>`` answers the user's sessions, newest first,
each with its ``server``, ``stopped_at`` and ``end_reason``. The hub's home page asks it
(:mod:`eohub.hub.stops`) to say why each stopped server last stopped.

The hub's client token must be allowed to read sessions (``GET api/sessions`` in
:mod:`eohub.domain.accounting.access`); a refused token is an answer like any failure:
:class:`SessionsUnavailable`, which the page shows as "unknown".

It asks on an HTTP client of its own (:class:`SessionReader`), never on the quota
checks' or the events' connections, within the client's quota timeouts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from eohub.domain.accounting.events import parse_time
from eohub.domain.accounting.stop_reasons import normalise


class SessionsUnavailable(Exception):
    """The service gave no readable list of sessions: ``problem`` says why (for logs);
    ``status`` is the HTTP status it answered with, 0 without one."""

    def __init__(self, problem: str, status: int = 0) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status


@dataclass(frozen=True)
class SessionEnd:
    """One of a user's sessions as the home page needs it: its server, and when and why
    it stopped (``stopped_at`` None: still open; ``end_reason`` normalised, "" if none),
    and the limits it ran with (seconds; None: none)."""

    server: str
    stopped_at: datetime | None
    end_reason: str
    idle_timeout: int | None = None
    max_duration: int | None = None


def session_end(item: object) -> SessionEnd | None:
    """One session of the service's answer; None when it cannot be read."""
    if not isinstance(item, Mapping) or not isinstance(item.get("server"), str):
        return None
    stopped: datetime | None = None
    if item.get("stopped_at") is not None:
        try:
            stopped = parse_time(item["stopped_at"])
        except ValueError:
            return None
    reason = item.get("end_reason")
    return SessionEnd(
        item["server"],
        stopped,
        normalise(reason) if isinstance(reason, str) else "",
        _seconds(item.get("idle_timeout")),
        _seconds(item.get("max_duration")),
    )


def _seconds(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def session_ends(body: object) -> list[SessionEnd]:
    """The sessions of an answer of ``GET api/sessions``, in its order (newest first);
    :class:`SessionsUnavailable` when the body is not such an answer."""
    items = body.get("sessions") if isinstance(body, Mapping) else None
    if not isinstance(items, list):
        raise SessionsUnavailable("The accounting service sent sessions eohub cannot read")
    return [end for end in map(session_end, items) if end is not None]


class SessionReader:
    """Reads sessions on connections of its own: at most ``connections`` at once."""

    def __init__(self, connections: int) -> None:
        self.connections = connections
        self._http: AsyncHTTPClient | None = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    async def last_sessions(self, client: Any, user: str, limit: int) -> list[SessionEnd]:
        """``user``'s last ``limit`` sessions, newest first, as ``client`` (the hub's
        :class:`~eohub.accounting.client.client.AccountingClient`) reaches the service;
        :class:`SessionsUnavailable` when it does not answer with them."""
        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True, max_clients=self.connections)
        query = urlencode({"user": user, "limit": limit})
        headers = {"Accept": "application/json"}
        if client.api_token:
            headers["Authorization"] = f"token {client.api_token}"
        request = HTTPRequest(
            f"{client.url}api/sessions?{query}",
            headers=headers,
            connect_timeout=client.quota_connect_timeout,
            request_timeout=client.quota_timeout,
            ca_certs=client.tls_ca_file or None,
        )
        try:
            response = await self._http.fetch(request, raise_error=False)
        except (HTTPClientError, OSError) as e:
            raise SessionsUnavailable(f"The accounting service did not answer: {e}") from None
        if response.code != 200:
            raise SessionsUnavailable(
                f"The accounting service answered HTTP {response.code}", response.code
            )
        try:
            body = json.loads(response.body) if response.body else None
        except ValueError:
            body = None
        return session_ends(body)


__all__ = ["SessionEnd", "SessionReader", "SessionsUnavailable", "session_end", "session_ends"]
