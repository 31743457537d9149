"""A thin client of JupyterHub's REST API: list running servers, stop one.

Only what the accounting service's loops and pages need (a PI sees their members'
servers with their idle time, ``last_activity``, and may stop one), with JupyterHub's
own HTTP stack (tornado's ``AsyncHTTPClient``). Listing pages through
``GET /users?state=active``; an ``asyncio.Semaphore`` bounds how many requests run at
once, so a large hub is never flooded (the approach of jupyterhub-idle-culler). Every
request has a timeout.

Errors are translated here, once, into :class:`HubAPIError`. The token is sent in the
``Authorization`` header only: it never appears in a URL, a log line or an error.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from eohub.domain.accounting.reconcile import HubServer

PAGINATION = "application/jupyterhub-pagination+json"


class HubAPIError(RuntimeError):
    """The hub's API could not be used; ``status`` is the HTTP status, if one came back."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StopOutcome(StrEnum):
    """What the hub answered to a stop request."""

    STOPPED = "stopped"  # 204: stopped (or it was not running)
    STOPPING = "stopping"  # 202: the hub is stopping it; it is gone once it is unlisted
    GONE = "gone"  # 404: no such user or named server


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def servers_of(user_model: dict[str, Any]) -> list[HubServer]:
    """The active servers in one user model of the REST API."""
    name = user_model.get("name")
    servers = user_model.get("servers")
    if not isinstance(name, str) or not isinstance(servers, dict):
        return []
    found = []
    for server_name, model in sorted(servers.items()):
        if not isinstance(model, dict) or model.get("stopped"):
            continue
        options = model.get("user_options")
        pending = model.get("pending")
        found.append(
            HubServer(
                user=name,
                name=str(server_name),
                started=_time(model.get("started")),
                ready=bool(model.get("ready")),
                pending=pending if isinstance(pending, str) else None,
                last_activity=_time(model.get("last_activity")),
                user_options=options if isinstance(options, dict) else {},
            )
        )
    return found


class HubAPI:
    """The hub's REST API, for a service holding a token.

    Parameters
    ----------
    url
        The API's base URL, e.g. ``http://127.0.0.1:8081/hub/api`` (a managed service
        gets it as ``$JUPYTERHUB_API_URL``).
    token
        The service's API token. It needs ``list:users``, ``read:users:name`` and
        ``read:servers`` to list servers, and ``servers`` to stop them.
    concurrency
        Most requests in flight at once.
    request_timeout, connect_timeout
        Seconds one request, and its connection, may take.
    page_size
        Users per page when listing (the hub caps it at ``JupyterHub.api_page_max_limit``).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        concurrency: int = 10,
        request_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        page_size: int = 200,
    ) -> None:
        if not url:
            raise HubAPIError("no hub API URL: set JUPYTERHUB_API_URL")
        if not token:
            raise HubAPIError("no hub API token: set JUPYTERHUB_API_TOKEN")
        if concurrency < 1 or page_size < 1:
            raise ValueError("concurrency and page_size must be at least 1")
        self.url = url.rstrip("/")
        self._token = token
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.page_size = page_size
        self._semaphore = asyncio.Semaphore(concurrency)

    def __repr__(self) -> str:  # never the token
        return f"HubAPI({self.url!r})"

    @classmethod
    def from_env(cls, **kwargs: Any) -> HubAPI:
        """From ``$JUPYTERHUB_API_URL`` and ``$JUPYTERHUB_API_TOKEN``, as a managed service."""
        return cls(
            os.environ.get("JUPYTERHUB_API_URL", ""),
            os.environ.get("JUPYTERHUB_API_TOKEN", ""),
            **kwargs,
        )

    async def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str | int] | None = None,
        accept: str = "application/json",
        ok: tuple[int, ...] = (200,),
    ) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON body or None) for a status in ``ok``.

        A 404 is returned rather than raised when it is in ``ok``.
        """
        url = self.url + path + (f"?{urlencode(query)}" if query else "")
        request = HTTPRequest(
            url,
            method=method,
            headers={"Authorization": f"token {self._token}", "Accept": accept},
            request_timeout=self.request_timeout,
            connect_timeout=self.connect_timeout,
        )
        where = f"{method} {self.url}{path}"  # the query is left out of messages
        async with self._semaphore:
            try:
                response = await AsyncHTTPClient().fetch(request, raise_error=False)
            except (OSError, HTTPClientError) as e:  # refused, reset, TLS, timed out
                raise HubAPIError(f"{where}: the hub did not answer ({e})") from None
        code = response.code
        if code == 599:  # tornado's "no response": a timeout or a broken connection
            raise HubAPIError(f"{where}: the hub did not answer ({response.error})")
        if code not in ok:
            raise HubAPIError(f"{where}: HTTP {code} {_message(response.body)}", code)
        body = response.body
        if not body:
            return code, None
        try:
            return code, json.loads(body)
        except ValueError:
            if code >= 300:  # an error page; the status is what matters
                return code, None
            raise HubAPIError(f"{where}: the answer is not JSON", code) from None

    async def iter_servers(self) -> AsyncIterator[HubServer]:
        """Every active server (ready, starting or stopping), page by page.

        The hub pages with offsets, so a server that stops while the pages are read may
        shift another user onto a page already read: callers must check a server the
        listing seems to miss before they act on its absence.
        """
        offset = 0
        while True:
            _, data = await self._request(
                "GET",
                "/users",
                query={"state": "active", "offset": offset, "limit": self.page_size},
                accept=PAGINATION,
            )
            if isinstance(data, list):  # a hub without pagination sends everything
                for user in data:
                    for server in servers_of(user):
                        yield server
                return
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise HubAPIError("GET /users: the answer is not a page of users")
            for user in data["items"]:
                if isinstance(user, dict):
                    for server in servers_of(user):
                        yield server
            following = (data.get("_pagination") or {}).get("next")
            if not isinstance(following, dict):
                return
            next_offset = following.get("offset")
            if not isinstance(next_offset, int) or next_offset <= offset:
                raise HubAPIError("GET /users: the next page does not move forward")
            offset = next_offset

    async def list_servers(self) -> list[HubServer]:
        """All of :meth:`iter_servers`."""
        return [server async for server in self.iter_servers()]

    async def server(self, user: str, name: str = "") -> HubServer | None:
        """One user's active server ``name``, or None when it does not run (or no user)."""
        for server in await self.user_servers(user):
            if server.name == name:
                return server
        return None

    async def user_servers(self, user: str) -> list[HubServer]:
        """One user's active servers, with their start and last activity (none: no user)."""
        code, data = await self._request("GET", f"/users/{quote(user, safe='')}", ok=(200, 404))
        if code == 404 or not isinstance(data, dict):
            return []
        return servers_of(data)

    async def stop_server(self, user: str, name: str = "") -> StopOutcome:
        """Ask the hub to stop a server. See :class:`StopOutcome` for the answers."""
        path = f"/users/{quote(user, safe='')}/server"
        if name:
            path = f"/users/{quote(user, safe='')}/servers/{quote(name, safe='')}"
        code, _ = await self._request("DELETE", path, ok=(202, 204, 404))
        return {202: StopOutcome.STOPPING, 204: StopOutcome.STOPPED}.get(code, StopOutcome.GONE)


def _message(body: bytes | None) -> str:
    """The hub's error message, short; JupyterHub answers ``{"message": ...}``."""
    if not body:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:200] if message else ""


__all__ = ["HubAPI", "HubAPIError", "StopOutcome", "servers_of"]
