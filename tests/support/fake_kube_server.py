"""The Kubernetes API fake for a hub in another process: in a thread, with pods that answer.

:class:`~tests.support.kube_api.FakeKubeAPI` lives in one event loop; a real JupyterHub
runs in its own process and talks to it over HTTP, so :class:`KubeAPIThread` runs the
fake in a background thread's loop on a loopback port. Its kubelet gives each pod an
address of its own in 127/8 (all of which is loopback on Linux) where
:class:`StandInServers` answers HTTP on the pod's container port, so the hub's check
that the server is up passes and the proxy can route to it; the server stops when the
pod is deleted. No single-user server runs: what the tests check is the pod the hub
asked for, not a notebook.
"""

from __future__ import annotations

import asyncio
import copy
import errno
import json
import random
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar

from .kube_api import FakeKubeAPI

T = TypeVar("T")
DEFAULT_PORT = 8888  # KubeSpawner's ``port``


class _StandIn(BaseHTTPRequestHandler):
    """Answers every request with 200 and the pod it stands in for."""

    def do_GET(self) -> None:
        body = json.dumps({"stand_in_for": self.server.pod_name}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the hub polls; its log says enough


def _port(pod: Mapping[str, Any]) -> int:
    for container in pod["spec"]["containers"]:
        for port in container.get("ports") or []:
            return int(port["containerPort"])
    return DEFAULT_PORT


class StandInServers:
    """A :class:`~tests.support.kube_api.PodNetwork`: an HTTP server per pod, each on its
    own loopback address, chosen at random in 127/8 so that parallel test runs (all
    using port 8888) do not meet."""

    def __init__(self) -> None:
        self.servers: dict[str, ThreadingHTTPServer] = {}  # by pod uid
        self.addresses: dict[str, str] = {}  # pod name -> its last IP
        self._lock = threading.Lock()

    def start(self, pod: Mapping[str, Any]) -> str:
        port = _port(pod)
        for _ in range(50):
            ip = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            try:
                server = ThreadingHTTPServer((ip, port), _StandIn)
            except OSError as e:
                if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                    continue
                raise
            server.pod_name = pod["metadata"]["name"]  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, daemon=True).start()
            with self._lock:
                self.servers[pod["metadata"]["uid"]] = server
                self.addresses[pod["metadata"]["name"]] = ip
            return ip
        raise RuntimeError(f"no free loopback address for port {port}")

    def stop(self, pod: Mapping[str, Any]) -> None:
        with self._lock:
            server = self.servers.pop(pod["metadata"]["uid"], None)
        if server is not None:
            # shutdown() waits for serve_forever to notice; not in the API's event loop.
            threading.Thread(target=_close, args=(server,), daemon=True).start()

    def close(self) -> None:
        with self._lock:
            servers, self.servers = list(self.servers.values()), {}
        for server in servers:
            _close(server)

    def listening(self) -> int:
        with self._lock:
            return len(self.servers)


def _close(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


class KubeAPIThread:
    """A :class:`FakeKubeAPI` with :class:`StandInServers`, served from a thread.

    Use as ``with KubeAPIThread() as kube:``; ``kube.url`` is the API's address, and
    :meth:`read` looks at the fake's state from the test's thread.
    """

    def __init__(self, *, kubelet_delay: float = 0.2) -> None:
        self.network = StandInServers()
        self.api = FakeKubeAPI(kubelet_delay=kubelet_delay, pod_network=self.network)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> KubeAPIThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.api.__aenter__(), self._loop).result(10)
        self.url = self.api.url
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.api.close(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self.network.close()

    def read(self, look: Callable[[FakeKubeAPI], T]) -> T:
        """``look(api)``, run in the fake's loop (so no change lands half-way), copied."""

        async def run() -> T:
            return copy.deepcopy(look(self.api))

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)
