"""Ask a BinderHub to build a repository's image (build-only mode) and relay its progress.

A repository launch whose image is missing from the registry calls
:meth:`BuildClient.build`. It sends one request, as BinderHub >= 1.0 expects it (the
sources are named in :mod:`eohub.domain.repos.build_events`, which parses the answer):

* ``GET <url>/build/<provider>/<spec>?build_only=true`` (``binderhub/app.py`` routes
  ``/build/([^/]+)/(.+)``; ``BaseHandler.get_spec_from_request`` in ``binderhub/base.py``
  takes the spec from the raw path, so it is sent escaped as BinderHub expects).
  ``build_only=true`` is refused with 400 unless BinderHub runs with
  ``enable_api_only_mode`` (``BuildHandler._get_build_only`` in ``binderhub/builder.py``;
  binderhub-service, the 2i2c-org chart, runs it that way, under ``/services/binder/``).
* ``Authorization: token <token>``: BinderHub with ``auth_enabled`` authenticates as a
  JupyterHub service (``HubOAuthenticated``); ``HubAuth.get_token`` in
  ``jupyterhub/services/auth.py`` reads ``token`` or ``bearer`` tokens from this header
  and requires the service's access scope, ``access:services!service=<name>`` (``binder``
  in binderhub-service). A request it cannot authenticate is a 403
  (``BuildHandler.redirect`` raises 403 instead of redirecting to the login page; older
  versions answered 302, handled here too).
* ``Accept: text/event-stream`` and a User-Agent that BinderHub's default
  ``block_build_user_agents`` (bot, gpt, crawler, spider) do not match: BinderHub 1.0's
  ``BuildHandler.prepare`` answers 400 "Missing Accept header" and 403 "Bots not
  allowed" otherwise.
* Errors before the stream (400, 403, 429 ...) carry BinderHub's words as a ``failed``
  event with ``status_code`` in the body (``BuildHandler.send_error``; versions that
  did not set the status sent it with 200); either way they become a
  :class:`BuildError` with the status and those words.

Every build holds one of the client's ``concurrency`` slots; a caller that has to wait
first gets a "waiting for a free build slot" event. The whole call has a time limit,
and the stream one for silence (keep-alives count as activity). The connection is
closed on every way out, cancellation included: BinderHub then stops watching the build
(``BuildHandler.on_finish``), and after a ``failed`` event it would otherwise keep the
stream open forever.

The token travels in the header only; every message is scrubbed of it before it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import unquote, urlsplit

from tornado.httpclient import HTTPRequest

from eohub._version import __version__
from eohub.adapters.abortable_http import AbortableHTTPClient, fetch_problem, observe
from eohub.adapters.binderhub_stream import BuildStream, StreamStalled
from eohub.domain.repos.build_events import (
    BuildEvent,
    LogTail,
    Outcome,
    clean_line,
    error_reason,
    failure_message,
    slot_wait_event,
)
from eohub.logs import get_logger

log = get_logger(__name__)

#: What eohub calls itself; BinderHub's bot filter must not match it.
USER_AGENT = f"eohub/{__version__} (BinderHub build client)"
#: The access scope a token needs on an authenticating BinderHub (service ``binder``).
ACCESS_SCOPE = "access:services!service=<binderhub service name>"
EventCallback = Callable[[BuildEvent], Awaitable[None] | None]
_MAX_BODY = 1 << 36  # a build log is streamed, never held; this only bounds the count
_PROVIDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# RFC 3986 path characters; the spec arrives already escaped.
_SPEC = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]{1,4096}")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class BuildError(Exception):
    """A build that gave no usable image; the message can be shown to the user.

    It never holds the token. A failed build's message ends with the last lines of its
    log, which are also in ``log_tail``; ``status`` is the HTTP status of a refused
    request.
    """

    def __init__(
        self, message: str, *, status: int | None = None, log_tail: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.log_tail = log_tail


async def _deliver(on_event: EventCallback | None, event: BuildEvent) -> None:
    if on_event is None:
        return
    result = on_event(event)
    if inspect.isawaitable(result):
        await result


class BuildClient:
    """Builds images with one BinderHub, at most ``concurrency`` at a time.

    Parameters
    ----------
    url
        BinderHub's base URL, e.g. ``https://hub.example.org/services/binder``.
    token
        A JupyterHub API token with BinderHub's access scope
        (``access:services!service=binder`` for binderhub-service); ``""`` for a
        BinderHub without authentication.
    timeout
        Seconds a whole build may take, waiting for a slot included.
    idle_timeout
        Seconds BinderHub may stay silent (keep-alives count) before the build is
        declared stalled. BinderHub sends a keep-alive every 25 seconds.
    concurrency
        Builds this client runs at once; further callers wait.
    ca_certs
        A CA bundle for BinderHub's certificate, if not the system's.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 3600,
        idle_timeout: float = 300,
        concurrency: int = 4,
        ca_certs: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.query
            or parts.fragment
        ):
            raise ValueError("the BinderHub URL must be http(s)://host[/path], no query")
        if any(c in token for c in "\r\n\0") or token != token.strip():
            raise ValueError("the BinderHub token has whitespace or control characters")
        if timeout <= 0 or idle_timeout <= 0 or concurrency < 1:
            raise ValueError("timeouts must be positive and concurrency at least 1")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.concurrency = concurrency
        self.ca_certs = ca_certs
        self._token = token
        self._slots = asyncio.Semaphore(concurrency)

    def __repr__(self) -> str:
        return f"BuildClient({self.url!r}, concurrency={self.concurrency})"

    def build_url(self, provider: str, spec: str) -> str:
        """The build-only request URL for ``provider`` and the escaped ``spec``.

        Raises ValueError for a provider or spec that could leave the build endpoint
        (``..`` segments, ``?``, ``#``, spaces, broken escapes).
        """
        if not _PROVIDER.fullmatch(provider):
            raise ValueError(f"not a BinderHub provider prefix: {provider!r}")
        if (
            not _SPEC.fullmatch(spec)
            or _BAD_ESCAPE.search(spec)
            or spec.startswith("/")
            or any(unquote(part) in (".", "..") for part in spec.split("/"))
        ):
            raise ValueError(f"not an escaped BinderHub spec: {spec!r}")
        return f"{self.url}/build/{provider}/{spec}?build_only=true"

    async def build(
        self,
        provider: str,
        spec: str,
        *,
        expected_image: str | None = None,
        on_event: EventCallback | None = None,
    ) -> str:
        """Build ``provider``/``spec`` and return the image name BinderHub reports.

        Every event is passed to ``on_event`` (a function or a coroutine function),
        from the slot wait to the final ``ready``; an exception it raises ends the build
        and propagates. With ``expected_image``, an image of any other name is refused.
        Raises :class:`BuildError`.
        """
        url = self.build_url(provider, spec)
        where = f"{provider}/{spec}"
        deadline = asyncio.timeout(self.timeout)
        waiting = True
        try:
            async with deadline, self._slot(on_event):
                waiting = False
                log.info("binderhub build started", build=where)
                image = await self._run(url, where, expected_image, on_event)
        except TimeoutError:
            if not deadline.expired():
                raise
            what = (
                f"no build slot became free for {where}"
                if waiting
                else f"the build of {where} did not finish"
            )
            log.warning("binderhub build timed out", build=where)
            raise self._error(f"{what} within {self.timeout:g} s") from None
        log.info("binderhub build finished", build=where, image=image)
        return image

    @contextlib.asynccontextmanager
    async def _slot(self, on_event: EventCallback | None) -> AsyncIterator[None]:
        if self._slots.locked():
            await _deliver(on_event, slot_wait_event(self.concurrency))
        async with self._slots:
            yield

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            "User-Agent": USER_AGENT,
        }
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        return headers

    async def _run(
        self,
        url: str,
        where: str,
        expected_image: str | None,
        on_event: EventCallback | None,
    ) -> str:
        stream = BuildStream(asyncio.get_running_loop())
        client = AbortableHTTPClient(force_instance=True, max_body_size=_MAX_BODY)
        fetch = asyncio.ensure_future(client.fetch(self._request(url, stream), raise_error=False))
        fetch.add_done_callback(stream.end)
        fetch.add_done_callback(observe)
        tail = LogTail()
        try:
            while (event := await self._next_event(stream, where, tail)) is not None:
                image = await self._follow(event, where, expected_image, on_event, tail)
                if image is not None:
                    return image
            if stream.broken:
                raise self._error(f"BinderHub's answer for {where} broke off: {stream.broken}")
            for event in stream.final_events():
                image = await self._follow(event, where, expected_image, on_event, tail)
                if image is not None:
                    return image
            raise self._ended(fetch_problem(fetch), stream, where, tail)
        finally:
            stream.close()
            # Closing the socket ends the request; the fetch then completes by itself.
            client.abort()
            client.close()

    def _request(self, url: str, stream: BuildStream) -> HTTPRequest:
        return HTTPRequest(
            url,
            method="GET",
            headers=self._headers(),
            follow_redirects=False,
            connect_timeout=min(30.0, self.idle_timeout),
            request_timeout=self.timeout + 60,  # our own timers decide; this is a backstop
            header_callback=stream.on_header,
            streaming_callback=stream.on_chunk,
            ca_certs=self.ca_certs,
        )

    async def _next_event(
        self, stream: BuildStream, where: str, tail: LogTail
    ) -> BuildEvent | None:
        try:
            return await stream.next_event(self.idle_timeout)
        except StreamStalled:
            raise self._error(
                f"the build of {where} stalled: BinderHub sent nothing for "
                f"{self.idle_timeout:g} s",
                tail=tail,
            ) from None

    async def _follow(
        self,
        event: BuildEvent,
        where: str,
        expected_image: str | None,
        on_event: EventCallback | None,
        tail: LogTail,
    ) -> str | None:
        """Relay one event; the image if it ends the build well, BuildError if badly."""
        if event.message:
            tail.add(event.message)
        await _deliver(on_event, event)
        result = event.outcome
        if result is Outcome.SUCCESS:
            return self._accept(event, where, expected_image)
        if result is Outcome.FAILURE:
            # repo2docker's "failure" record says why; the pod's bare "failed" does not
            reason = clean_line(event.message, 300) or "BinderHub reported the build as failed"
            log.warning("binderhub build failed", build=where)
            raise self._error(
                failure_message(f"the build of {where} failed: {reason}", tail),
                status=event.status_code,
                tail=tail,
            )
        return None

    def _accept(self, event: BuildEvent, where: str, expected_image: str | None) -> str:
        image = event.image_name
        if not image:
            raise self._error(f"BinderHub reported {event.phase} for {where} without an image")
        if expected_image is not None and image != expected_image:
            raise self._error(
                f"BinderHub built {clean_line(image, 300)!r} for {where}, but eohub expected "
                f"{clean_line(expected_image, 300)!r}; the image is not used"
            )
        return image

    def _ended(
        self, error: BaseException | None, state: BuildStream, where: str, tail: LogTail
    ) -> BuildError:
        """The error for a transfer that ended without a result."""
        host = urlsplit(self.url).netloc
        if state.status is None:
            return self._error(f"BinderHub at {host} cannot be reached: {error or 'no answer'}")
        status = state.status
        detail = error_reason(bytes(state.body).decode("utf-8", "replace"))
        said = f" ({detail})" if detail else ""
        if 300 <= status < 400:
            where_to = urlsplit(state.location).path or "another page"
            return self._error(
                f"BinderHub redirected the build request to {where_to}: the token was not "
                f"accepted (it needs the {ACCESS_SCOPE} scope)",
                status=status,
            )
        if status in (401, 403):
            return self._error(
                f"BinderHub refused the build of {where} with {status}{said}: check that the "
                f"token is valid and has the {ACCESS_SCOPE} scope",
                status=status,
            )
        if status == 404:
            return self._error(
                f"there is no BinderHub build API at {self.url}/build/ (404): check the URL "
                "and BinderHub's base_url",
                status=status,
            )
        if status == 429:
            return self._error(
                f"BinderHub's rate limit stopped the build of {where}{said}", status=status
            )
        if status >= 400:
            reason = clean_line(state.reason, 80)
            return self._error(
                f"BinderHub answered {status} {reason} for {where}{said}".replace("  ", " "),
                status=status,
            )
        if not state.streaming:
            kind = clean_line(state.content_type, 80) or "no content type"
            return self._error(
                f"BinderHub answered with {kind}, not an event stream: check the URL",
                status=status,
            )
        broke = f" ({error})" if error else ""
        return self._error(
            failure_message(
                f"BinderHub ended the build stream of {where} without a result{broke}", tail
            ),
            tail=tail,
        )

    def _error(
        self, message: str, *, status: int | None = None, tail: LogTail | None = None
    ) -> BuildError:
        lines = tuple(self._scrub(line) for line in tail.lines()) if tail else ()
        return BuildError(self._scrub(message), status=status, log_tail=lines)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text


__all__ = ["ACCESS_SCOPE", "USER_AGENT", "BuildClient", "BuildError", "EventCallback"]
