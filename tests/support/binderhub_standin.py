"""A stand-in for BinderHub's build API, replaying the event streams BinderHub sends.

It is a tornado app on a free loopback port, in the test's own event loop. Each scenario
replays what BinderHub >= 1.0 writes for that case, in the order its source writes it
(``binderhub/builder.py`` ``BuildHandler``; repo2docker's JSON log records, as in
``js/packages/binderhub-client/tests/fixtures/fullbuild.eventsource``):

==================  ==========================================================================
scenario            stream
==================  ==========================================================================
``build``           waiting, repo2docker's fetching/building log (part lines, ``\\r``, a
                    record without a phase, an ``unknown`` line), pushing with per-layer
                    progress, then ``ready`` "Done! Image built" with ``imageName``.
``cached``          ``ready`` "Done! Found built image" with ``imageName`` at once.
``fail``            waiting, a building log, repo2docker's ``failure`` record, then the pod's
                    bare ``failed``; then, like BinderHub, keep-alives until the client
                    hangs up.
``stall``           waiting, then silence (a dead connection: not even keep-alives).
``stall-alive``     waiting, then only keep-alives every ``keepalive_interval``.
``banned``          one ``failed`` event: the repository is not allowed to launch.
``badref``          one ``failed`` event: the ref does not resolve.
``hostile``         not BinderHub: a ``failed`` message echoing the Authorization header,
                    standing for a proxy that leaks it, to test that errors hide the token.
==================  ==========================================================================

Before any scenario the request passes BinderHub's checks: the bot filter and the
``Accept: text/event-stream`` check (``BuildHandler.prepare``), the JupyterHub token
(``token``/``bearer`` header, as ``HubAuth.get_token`` reads it; a bad one gets 403,
or with ``legacy_login_redirect`` the 302 to the login page older versions sent),
``build_only`` without ``enable_api_only_mode`` (400), and an unknown provider prefix
(a ``failed`` event, status 200: that one is written with ``BuildHandler.fail``).
Errors raised as HTTP errors are written as ``BuildHandler.send_error`` writes them: the
status, and the message as a ``failed`` event. A path outside ``/build/`` is a 404 page.

The scenario is the constructor's ``scenario``, or else the first path segment of the
spec naming one (``/build/gh/eo-lab/fail/HEAD`` fails), or ``build``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from http.client import responses
from typing import Any
from urllib.parse import unquote, urlsplit

from tornado.httpserver import HTTPServer
from tornado.iostream import StreamClosedError
from tornado.netutil import bind_sockets
from tornado.web import Application, Finish, HTTPError, RequestHandler

from eohub.domain.repos.images import image_name

SCENARIOS = ("build", "cached", "fail", "stall", "stall-alive", "banned", "badref", "hostile")
PROVIDERS = ("gh", "gist", "git", "gl", "zenodo", "figshare", "hydroshare", "dataverse", "ckan")
#: BinderHub's default ``block_build_user_agents``, matched case-insensitively.
BOT_PATTERNS = tuple(
    re.compile(p, re.IGNORECASE) for p in (".*bot.*", ".*gpt.*", ".*crawler.*", ".*spider.*")
)
COMMIT = "1479e0252b2e648bb755ee913292b79495931717"
PREFIX = "registry.example.org/binder/r2d-"
_AUTH = re.compile(r"(?:token|bearer)\s+(.+)", re.IGNORECASE)


@dataclass(frozen=True)
class BuildRequest:
    """One request the stand-in received."""

    path: str
    query: dict[str, list[str]]
    authorization: str | None
    accept: str
    user_agent: str


def building_log(image: str) -> list[dict[str, Any]]:
    """repo2docker's records for a short build, as BinderHub forwards them."""
    return [
        {"message": "Picked Git content provider.\n"},
        {"message": "Cloning into '/tmp/repo2dockern6amo21f'...\n", "phase": "fetching"},
        {"message": f"HEAD is now at {COMMIT[:7]} Add requirements\n", "phase": "fetching"},
        {"phase": "unknown", "message": "warnings.warn(\n"},
        {"message": "Using PythonBuildPack builder\n", "phase": "building"},
        {"message": "Step 1/3 : FROM docker.io/library/buildpack-deps:jammy", "phase": "building"},
        {"message": "\n", "phase": "building"},
        {"message": "Fetching base image...\r", "phase": "building"},
        {"message": "Fetching base image...\r", "phase": "building"},
        {"message": " ---> 0707eec19ac4\n", "phase": "building"},
        {"message": "Step 2/3 : RUN pip install -r requirements.txt", "phase": "building"},
        {"message": "\n", "phase": "building"},
        {"message": " ---> Running in 63fe4c697783\n", "phase": "building"},
        {"message": "Collecting xarray\n", "phase": "building"},
        {"message": f'Step 3/3 : LABEL repo2docker.ref="{COMMIT}"', "phase": "building"},
        {"message": "\n", "phase": "building"},
        {"message": "Successfully built 4abce9060522\n", "phase": "building"},
        {"message": f"Successfully tagged {image}\n", "phase": "building"},
    ]


def pushing_log(image: str) -> list[dict[str, Any]]:
    """repo2docker's ``push_image`` records: per-layer progress, then the success line."""
    return [
        {
            "message": "Pushing image\n",
            "progress": {"a1b2": "Preparing", "c3d4": {"current": 512, "total": 2048}},
            "layers": {"a1b2": {"status": "Preparing", "id": "a1b2"}},
            "phase": "pushing",
        },
        {
            "message": "Pushing image\n",
            "progress": {"a1b2": "Layer already exists", "c3d4": "Pushed"},
            "layers": {"a1b2": {"status": "Layer already exists", "id": "a1b2"}},
            "phase": "pushing",
        },
        {"message": f"Successfully pushed {image}", "phase": "pushing"},
    ]


FAILED_STEP = (
    "The command '/bin/sh -c ${KERNEL_PYTHON_PREFIX}/bin/pip install --no-cache-dir -r "
    '"requirements.txt"\' returned a non-zero code: 1'
)


def failing_log() -> list[dict[str, Any]]:
    """A build whose pip step fails: the log, repo2docker's failure, the pod's failure."""
    return [
        {"message": "Using PythonBuildPack builder\n", "phase": "building"},
        {"message": "Step 2/3 : RUN pip install -r requirements.txt", "phase": "building"},
        {"message": "\n", "phase": "building"},
        {
            "message": "ERROR: Could not find a version that satisfies the requirement x\n",
            "phase": "building",
        },
        {"message": "ERROR: No matching distribution found for nosuchpkg\n", "phase": "building"},
        {"message": FAILED_STEP, "phase": "failure"},
        {"phase": "failed"},
    ]


class BinderHubStandIn:
    """BinderHub's ``/build`` API on loopback; ``async with`` starts and stops it.

    Parameters
    ----------
    token
        The token BinderHub's JupyterHub accepts; None runs without authentication.
    scenario
        Forces one scenario for every request (see the module docstring).
    api_only
        Whether ``enable_api_only_mode`` is on (``build_only=true`` is refused if not).
    legacy_login_redirect
        Answer a bad token with a 302 to the login page, as BinderHub before 1.0 did.
    base_url
        BinderHub's ``base_url``; binderhub-service serves under ``/services/binder/``.
    keepalive_interval
        Seconds between ``:keepalive`` comments (BinderHub: 25).
    gate
        If set, ``build`` waits for it after ``waiting``: tests hold builds open with it.
    """

    def __init__(
        self,
        *,
        token: str | None = "standin-token",  # noqa: S107 - a test token
        scenario: str | None = None,
        api_only: bool = True,
        legacy_login_redirect: bool = False,
        base_url: str = "/services/binder/",
        keepalive_interval: float = 25.0,
        gate: asyncio.Event | None = None,
        prefix: str = PREFIX,
        providers: Sequence[str] = PROVIDERS,
    ) -> None:
        if scenario is not None and scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        self.token = token
        self.scenario = scenario
        self.api_only = api_only
        self.legacy_login_redirect = legacy_login_redirect
        self.base_url = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
        self.keepalive_interval = keepalive_interval
        self.gate = gate
        self.prefix = prefix
        self.providers = tuple(providers)
        self.requests: list[BuildRequest] = []
        self.active = 0
        self.max_active = 0
        #: Streams the client hung up on before BinderHub finished them.
        self.disconnects = 0
        self.url = ""
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._server: HTTPServer | None = None

    def scenario_for(self, spec: str) -> str:
        if self.scenario is not None:
            return self.scenario
        for part in unquote(spec).split("/"):
            if part in SCENARIOS:
                return part
        return "build"

    def image_for(self, provider: str, spec: str) -> str:
        """The image BinderHub names for ``provider``/``spec`` (the ref resolved to COMMIT)."""
        slug = "-".join(unquote(spec).rstrip("/").split("/")[:-1]) or provider
        return image_name(self.prefix, slug, COMMIT)

    async def wait_for(
        self, *, disconnects: int = 0, active: int | None = None, within: float = 5
    ) -> None:
        """Wait until at least ``disconnects`` hang-ups and exactly ``active`` open builds."""
        async with asyncio.timeout(within):
            while not (
                self.disconnects >= disconnects and (active is None or self.active == active)
            ):
                self._changed.clear()
                await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()

    async def start(self) -> str:
        app = Application(
            [
                (
                    rf"{re.escape(self.base_url)}build/([^/]+)/(.+)",
                    _BuildHandler,
                    {"standin": self},
                ),
                (r".*", _NotFound),
            ]
        )
        sockets = bind_sockets(0, "127.0.0.1")
        self._server = HTTPServer(app)
        self._server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}{self.base_url}".rstrip("/")
        return self.url

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.close_all_connections(), 5)

    async def __aenter__(self) -> BinderHubStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _NotFound(RequestHandler):
    """BinderHub's Custom404: an HTML page."""

    def prepare(self) -> None:
        raise HTTPError(404)


class _BuildHandler(RequestHandler):
    """``BuildHandler`` as far as a client can tell."""

    standin: BinderHubStandIn

    def initialize(self, standin: BinderHubStandIn) -> None:
        self.standin = standin
        self._gone = asyncio.Event()
        self._keepalive: asyncio.Task[None] | None = None
        self._counted = False

    def set_default_headers(self) -> None:
        self.set_header("content-type", "text/event-stream")
        self.set_header("cache-control", "no-cache")

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        # BuildHandler.send_error: the status, and the message as a failed event
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = ""
        if isinstance(exc, HTTPError) and exc.log_message:
            message = exc.log_message % exc.args
        message = message or responses.get(status_code, "Unknown HTTP Error")
        if not self._headers_written:
            self.clear()
            self.set_status(status_code)
        event = {"phase": "failed", "status_code": status_code, "message": message + "\n"}
        self.write(f"data: {json.dumps(event)}\n\n")
        self.finish()

    def prepare(self) -> None:
        request = self.request
        self.standin.requests.append(
            BuildRequest(
                path=request.path,
                query={k: [v.decode() for v in vs] for k, vs in request.query_arguments.items()},
                authorization=request.headers.get("Authorization"),
                accept=request.headers.get("Accept", ""),
                user_agent=request.headers.get("User-Agent", ""),
            )
        )
        user_agent = request.headers.get("User-Agent", "")
        if any(p.match(user_agent) for p in BOT_PATTERNS):
            raise HTTPError(403, "Bots not allowed")
        accept = {s.strip().lower() for s in request.headers.get("Accept", "").split(",")}
        if "text/event-stream" not in accept:
            raise HTTPError(400, "Missing Accept header: text/event-stream")
        if self.standin.token is not None:
            match = _AUTH.match(request.headers.get("Authorization", ""))
            if match is None or match.group(1) != self.standin.token:
                if self.standin.legacy_login_redirect:
                    # tornado's @authenticated, before BuildHandler.redirect raised 403
                    self.clear()
                    self.set_status(302)
                    self.set_header("Location", "/hub/login?next=" + request.path)
                    raise Finish()
                raise HTTPError(403)  # BuildHandler.redirect

    def on_connection_close(self) -> None:
        if not self._gone.is_set():
            self._gone.set()
            self.standin.disconnects += 1
            self.standin._notify()

    def on_finish(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._counted:
            self._counted = False
            self.standin.active -= 1
            self.standin._notify()

    async def emit(self, data: dict[str, Any]) -> None:
        """``BuildHandler.emit``, written in two pieces to split it across chunks."""
        frame = f"data: {json.dumps(data)}\n\n".encode()
        try:
            for piece in (frame[: len(frame) // 2], frame[len(frame) // 2 :]):
                self.write(piece)
                await self.flush()
        except StreamClosedError:
            raise Finish() from None

    async def fail(self, message: str) -> None:
        await self.emit({"phase": "failed", "message": message + "\n"})

    async def keep_alive(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.write(":keepalive\n\n")
                await self.flush()
            except StreamClosedError:
                return

    async def until_gone(self) -> None:
        """Hold the stream open, as BinderHub does, until the client or the test ends it."""
        stopping = asyncio.ensure_future(self.standin._stopping.wait())
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait({stopping, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            gone.cancel()

    async def get(self, provider: str, _spec: str) -> None:
        standin = self.standin
        prefix = f"{standin.base_url}build/{provider}"
        spec = self.request.path[self.request.path.index(prefix) + len(prefix) + 1 :]
        if provider not in standin.providers:
            await self.fail(f"No provider found for prefix {provider}")
            return
        scenario = standin.scenario_for(spec)
        if scenario != "stall":
            interval = standin.keepalive_interval
            self._keepalive = asyncio.ensure_future(self.keep_alive(interval))
        spec = spec.rstrip("/")
        key = f"{provider}:{spec}"
        if self.get_query_argument("build_only", "").lower() == "true" and not standin.api_only:
            raise HTTPError(
                400,
                log_message="Building but not launching is not permitted when the API only mode"
                " was not enabled by setting `enable_api_only_mode` to True. ",
            )
        image = standin.image_for(provider, spec)
        standin.active += 1
        standin.max_active = max(standin.max_active, standin.active)
        self._counted = True
        standin._notify()
        if scenario == "cached":
            await self.emit(
                {"phase": "ready", "imageName": image, "message": "Done! Found built image\n"}
            )
            return
        if scenario == "banned":
            await self.emit(
                {
                    "phase": "failed",
                    "message": f"Sorry, {spec} is not allowed to launch. "
                    "Please contact admins for more info!",
                }
            )
            return
        if scenario == "badref":
            await self.fail(
                f"Could not resolve ref for {key}. "
                "Double check your URL and that your repo is public."
            )
            return
        if scenario == "hostile":
            await self.fail(f"proxy error for {self.request.headers.get('Authorization')}")
            return
        await self.emit({"phase": "waiting", "message": "Waiting for build to start...\n"})
        if scenario in ("stall", "stall-alive"):
            await self.until_gone()
            return
        if scenario == "fail":
            for record in failing_log():
                await self.emit(record)
            await self.until_gone()
            return
        if standin.gate is not None:
            gate = asyncio.ensure_future(standin.gate.wait())
            gone = asyncio.ensure_future(self._gone.wait())
            await asyncio.wait({gate, gone}, return_when=asyncio.FIRST_COMPLETED)
            gate.cancel()
            gone.cancel()
            if self._gone.is_set():
                return
        for record in [*building_log(image), *pushing_log(image)]:
            await self.emit(record)
        await self.emit({"phase": "ready", "message": "Done! Image built\n", "imageName": image})


@contextlib.asynccontextmanager
async def binderhub_standin(**kwargs: Any) -> AsyncIterator[BinderHubStandIn]:
    """A started :class:`BinderHubStandIn`, stopped afterwards."""
    async with BinderHubStandIn(**kwargs) as standin:
        yield standin


def build_path(url: str, provider: str, spec: str) -> str:
    """The path the client should request for ``provider``/``spec`` on ``url``."""
    return f"{urlsplit(url).path}/build/{provider}/{spec}"
