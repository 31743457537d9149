"""One JSON POST from the hub to the accounting service: its reply, or why there was none."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError

TEXT_EXCERPT = 200  # bytes of a non-JSON body kept for the log and the dead letter


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, whatever its status; ``body`` is the parsed JSON, or None.

    ``text`` is the start of a body that is not JSON (an HTML error page of a proxy), on
    one line, for the message that says where the answer came from.
    """

    code: int
    body: Any
    text: str = ""


class NoAnswer(Exception):
    """No HTTP answer at all: ``problem`` is a sentence for users, ``detail`` for logs;
    ``kind`` says why: ``timeout``, ``refused`` (the connection), or ``error``."""

    def __init__(self, problem: str, detail: str, *, kind: str = "error") -> None:
        super().__init__(problem)
        self.problem = problem
        self.detail = detail
        self.kind = kind


async def post_json(
    http: AsyncHTTPClient,
    url: str,
    body: Mapping[str, Any],
    *,
    token: str,
    seconds: float,
    connect_seconds: float | None = None,
    ca_file: str = "",
) -> Reply:
    """POST ``body`` as JSON to ``url`` within ``seconds`` (connecting within
    ``connect_seconds``, default ``seconds``); raise :class:`NoAnswer` if nothing
    answers. The token goes in the header only, and never into a message."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    request = HTTPRequest(
        url,
        method="POST",
        headers=headers,
        body=json.dumps(body),
        connect_timeout=seconds if connect_seconds is None else connect_seconds,
        request_timeout=seconds,
        ca_certs=ca_file or None,
    )
    where = urlsplit(url)
    # Without any user:password@ the URL may carry.
    endpoint = f"{where.scheme}://{where.netloc.rpartition('@')[2]}{where.path}"
    try:
        response = await http.fetch(request, raise_error=False)
    except (HTTPClientError, OSError) as e:
        # simple_httpclient raises HTTPTimeoutError; curl_httpclient a 599 saying so.
        if isinstance(e, HTTPTimeoutError) or "timed out" in str(e).lower():
            kind, problem = (
                "timeout",
                f"The accounting service did not answer within {seconds:g} s",
            )
        else:
            # curl_httpclient (JupyterHub's with pycurl) says so in a 599's message.
            refused = isinstance(e, ConnectionRefusedError) or any(
                words in str(e) for words in ("Connection refused", "Failed to connect")
            )
            kind = "refused" if refused else "error"
            problem = "The accounting service cannot be reached"
        raise NoAnswer(problem, f"POST {endpoint}: {e}", kind=kind) from None
    try:
        parsed = json.loads(response.body) if response.body else None
    except ValueError:
        raw = response.body[:TEXT_EXCERPT].decode("utf-8", "replace")
        return Reply(response.code, None, " ".join(raw.split()))
    return Reply(response.code, parsed)
