"""An in-process Kubernetes API for KubeSpawner, with its kubelet, and kubeconfigs for it.

Why a small fake of our own rather than kmock: KubeSpawner needs only a handful of
core/v1 endpoints (create, read, list, watch and delete of pods, claims and events),
and kmock needs patches to its private modules to serve even those (it ignores
``watch=True`` as kubernetes_asyncio sends it), fills in no server-side fields,
ignores label and field selectors, and validates nothing. This fake is ~350 lines of
aiohttp with the semantics KubeSpawner's reflectors rely on, written down:

- every change gets a ``resourceVersion``; a list returns the current one, and a watch
  replays the changes after the version it is given, then streams new ones until its
  ``timeoutSeconds`` (``0``/none: synthetic ADDED events for what exists);
- label selectors (``k=v``, ``k!=v``, ``k``, ``!k``) and field selectors on dotted
  paths (``involvedObject.kind=Pod``) filter lists and watches;
- creates fill in ``uid``, ``resourceVersion``, ``creationTimestamp`` and status, answer
  409 for a name taken, and 422 for an object the official schema (kubernetes-validate,
  strict, newest version) rejects, as the API server would;
- a kubelet reports events for each pod (Scheduled, Pulling, then Pulled, Created,
  Started) and marks it Running with a pod IP after ``kubelet_delay`` seconds, or never
  when it is ``None``;
- deleting a pod or claim removes it at once (a DELETED watch event);
- with a ``pod_network`` (:class:`PodNetwork`), each pod gets its own IP from it, where
  something listens when the pod turns Running, released when the pod is deleted:
  a hub in another process can then reach the "server" (the default is one
  :data:`POD_IP` for all, with nothing listening).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import kubernetes_validate
import pytest
from aiohttp import web

KINDS = {
    "pods": "Pod",
    "persistentvolumeclaims": "PersistentVolumeClaim",
    "events": "Event",
    "services": "Service",
    "secrets": "Secret",
}
NODE = "fake-node-1"
POD_IP = "127.0.0.1"
SCHEMA_VERSION = kubernetes_validate.latest_version()
STOP = object()  # ends every open watch when the fake shuts down


class PodNetwork(Protocol):
    """Where pods' servers listen, for :class:`FakeKubeAPI` (``pod_network=``)."""

    def start(self, pod: Mapping[str, Any]) -> str:
        """Make ``pod``'s server listen; its IP, set as the pod's ``podIP``."""
        ...

    def stop(self, pod: Mapping[str, Any]) -> None:
        """Stop ``pod``'s server (the pod was deleted); nothing if it has none."""
        ...


def now_text() -> str:
    # Microseconds, so that events sort in the order they happened (KubeSpawner sorts
    # them by lastTimestamp).
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate(obj: Mapping[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError unless ``obj`` meets the strict schema."""
    kubernetes_validate.validate(dict(obj), SCHEMA_VERSION, strict=True)


def status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body |= {"message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code)


def _lookup(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def selector_matches(obj: Mapping[str, Any], labels: str, fields: str) -> bool:
    """Whether ``obj`` matches equality-based label and field selectors."""
    own = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in labels.split(","))):
        if " in " in term or " notin " in term or "(" in term:
            raise ValueError(f"set-based label selectors are not supported: {term!r}")
        if "!=" in term:
            key, value = term.split("!=", 1)
            if own.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if own.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in own:
                return False
        elif term not in own:
            return False
    for term in filter(None, (t.strip() for t in fields.split(","))):
        negate = "!=" in term
        path, value = term.replace("!=", "=").replace("==", "=").split("=", 1)
        if (_lookup(obj, path.strip()) == value.strip()) == negate:
            return False
    return True


def _key(plural: str, obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return plural, meta.get("namespace", ""), meta["name"]


class FakeKubeAPI:
    """An in-memory Kubernetes API server on 127.0.0.1, for one test's event loop.

    Use as ``async with FakeKubeAPI(kubelet_delay=0.2) as api:`` and point clients at
    ``api.url``. ``objects`` holds what exists, keyed by (plural, namespace, name);
    ``created`` every accepted create body per plural, ``rejected`` the refused ones
    with the reason, and ``requests`` each (method, path) served.
    """

    def __init__(
        self,
        *,
        kubelet_delay: float | None = 0.2,
        validate: bool = True,
        pod_network: PodNetwork | None = None,
    ) -> None:
        self.kubelet_delay = kubelet_delay
        self.validate = validate
        self.pod_network = pod_network
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.created: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.rejected: list[tuple[dict[str, Any], str]] = []
        self.requests: list[tuple[str, str]] = []
        self._history: list[tuple[int, str, str, dict[str, Any]]] = []
        self._version = 0
        self._versions = itertools.count(1)
        self._names = itertools.count(1)
        self._watches: set[asyncio.Queue[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- server ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeKubeAPI:
        app = web.Application()
        self.add_routes(app)
        app.router.add_route("*", "/api/v1/namespaces/{ns}/{plural}", self._collection)
        app.router.add_route("*", "/api/v1/namespaces/{ns}/{plural}/{name}", self._item)
        app.router.add_route("GET", "/api/v1/{plural}", self._collection)
        # Open watches end at close(); nothing else should keep shutdown waiting.
        self._runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_routes(self, app: web.Application) -> None:
        """A subclass's own routes, matched before the generic ones (none here)."""

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self._watches:
            queue.put_nowait(STOP)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the store ---------------------------------------------------------------------

    def _change(self, kind: str, plural: str, obj: dict[str, Any]) -> None:
        self._version = next(self._versions)
        obj["metadata"]["resourceVersion"] = str(self._version)
        snapshot = copy.deepcopy(obj)
        self._history.append((self._version, kind, plural, snapshot))
        for queue in self._watches:
            queue.put_nowait((kind, plural, snapshot))

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((plural, namespace, name))

    def names(self, plural: str) -> list[str]:
        return sorted(name for p, _, name in self.objects if p == plural)

    def modify(self, plural: str, obj: dict[str, Any]) -> None:
        """Report a change made to ``obj`` (in ``objects``), as the kubelet would."""
        self._change("MODIFIED", plural, obj)

    def add_event(
        self, pod: Mapping[str, Any], reason: str, message: str, kind: str = "Normal"
    ) -> None:
        """Report an event about ``pod``, as the kubelet or the scheduler would."""
        meta = pod["metadata"]
        name = f"{meta['name']}.{next(self._names):x}"
        stamp = now_text()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"], "uid": str(uuid.uuid4())},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "eventTime": None,
            "source": {"component": "kubelet", "host": NODE},
        }
        self.objects[("events", meta["namespace"], name)] = event
        self._change("ADDED", "events", event)

    def _create(self, plural: str, namespace: str, body: dict[str, Any]) -> web.Response:
        body.setdefault("apiVersion", "v1")
        body.setdefault("kind", KINDS[plural])
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            return status(422, "Invalid", f"{KINDS[plural]} metadata.name: Required value")
        if meta.setdefault("namespace", namespace) != namespace:
            return status(400, "BadRequest", "the namespace of the object does not match")
        if (plural, namespace, name) in self.objects:
            message = f'{plural} "{name}" already exists'
            return status(409, "AlreadyExists", message)
        if self.validate:
            try:
                validate(body)
            except kubernetes_validate.ValidationError as e:
                self.rejected.append((copy.deepcopy(body), e.message))
                return status(422, "Invalid", f"{KINDS[plural]} {name!r} is invalid: {e.message}")
        self.created[plural].append(copy.deepcopy(body))
        meta |= {"uid": str(uuid.uuid4()), "creationTimestamp": now_text()[:19] + "Z"}
        if plural == "pods":
            body["status"] = {"phase": "Pending", "qosClass": "Burstable"}
            self._spawn(self._kubelet(body))
        elif plural == "persistentvolumeclaims":
            body["status"] = {"phase": "Bound"}  # a provisioner that is always ready
        elif plural == "secrets" and "stringData" in body:
            data = body.setdefault("data", {})
            for key, value in body.pop("stringData").items():
                data[key] = base64.b64encode(str(value).encode()).decode()
        self.objects[(plural, namespace, name)] = body
        self._change("ADDED", plural, body)
        return web.json_response(body, status=201)

    def delete(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Remove an object at once, as a finished graceful deletion would; None if absent."""
        obj = self.objects.pop((plural, namespace, name), None)
        if obj is not None:
            obj["metadata"]["deletionTimestamp"] = now_text()[:19] + "Z"
            self._change("DELETED", plural, obj)
            if plural == "pods" and self.pod_network is not None:
                self.pod_network.stop(obj)
        return obj

    def _delete(self, plural: str, namespace: str, name: str) -> web.Response:
        obj = self.delete(plural, namespace, name)
        if obj is None:
            return status(404, "NotFound", f'{plural} "{name}" not found')
        return web.json_response(obj)

    # -- the kubelet -------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _kubelet(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        key = ("pods", meta["namespace"], meta["name"])
        image = pod["spec"]["containers"][0].get("image", "")
        await asyncio.sleep(0)  # after the create has been answered
        self.add_event(
            pod, "Scheduled", f"Successfully assigned {meta['namespace']}/{meta['name']} to {NODE}"
        )
        self.add_event(pod, "Pulling", f'Pulling image "{image}"')
        if self.kubelet_delay is None:
            return
        await asyncio.sleep(self.kubelet_delay)
        current = self.objects.get(key)
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            return  # deleted, or replaced by a newer pod of the same name
        self.add_event(current, "Pulled", f'Successfully pulled image "{image}"')
        self.add_event(current, "Created", "Created container notebook")
        self.add_event(current, "Started", "Started container notebook")
        started = now_text()[:19] + "Z"
        ip = POD_IP if self.pod_network is None else self.pod_network.start(current)
        current["spec"]["nodeName"] = NODE
        current["status"] = {
            "phase": "Running",
            "podIP": ip,
            "hostIP": POD_IP,
            "startTime": started,
            "qosClass": "Burstable",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": started}},
                }
                for c in current["spec"]["containers"]
            ],
        }
        self._change("MODIFIED", "pods", current)

    # -- HTTP handlers -----------------------------------------------------------------

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        plural, namespace = request.match_info["plural"], request.match_info.get("ns")
        if plural not in KINDS:
            return status(404, "NotFound", "the server could not find the requested resource")
        if request.method == "POST" and namespace is not None:
            return self._create(plural, namespace, await request.json())
        if request.method != "GET":
            return status(405, "MethodNotAllowed", f"{request.method} is not supported here")
        labels = request.query.get("labelSelector", "")
        fields = request.query.get("fieldSelector", "")
        try:
            selector_matches({}, labels, fields)
        except ValueError as e:
            return status(400, "BadRequest", str(e))

        def wanted(key: tuple[str, str, str], obj: Mapping[str, Any]) -> bool:
            in_namespace = namespace is None or key[1] == namespace
            return key[0] == plural and in_namespace and selector_matches(obj, labels, fields)

        if request.query.get("watch", "").lower() in ("true", "1"):
            return await self._watch(request, wanted)
        items = [copy.deepcopy(o) for k, o in self.objects.items() if wanted(k, o)]
        body = {
            "apiVersion": "v1",
            "kind": f"{KINDS[plural]}List",
            "metadata": {"resourceVersion": str(self._version)},
            "items": items,
        }
        return web.json_response(body)

    async def _item(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        plural, namespace, name = (request.match_info[k] for k in ("plural", "ns", "name"))
        if plural not in KINDS:
            return status(404, "NotFound", "the server could not find the requested resource")
        if request.method == "DELETE":
            return self._delete(plural, namespace, name)
        if request.method != "GET":
            return status(405, "MethodNotAllowed", f"{request.method} is not supported here")
        obj = self.objects.get((plural, namespace, name))
        if obj is None:
            return status(404, "NotFound", f'{plural} "{name}" not found')
        return web.json_response(obj)

    async def _watch(self, request: web.Request, wanted: Any) -> web.StreamResponse:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        since = request.query.get("resourceVersion", "")
        if since in ("", "0"):
            backlog = [("ADDED", o) for k, o in self.objects.items() if wanted(k, o)]
        else:
            backlog = [
                (kind, obj)
                for version, kind, p, obj in self._history
                if version > int(since) and wanted(_key(p, obj), obj)
            ]
        backlog = copy.deepcopy(backlog)
        self._watches.add(queue)  # no await since the backlog: no change can slip between
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        timeout = float(request.query.get("timeoutSeconds") or 0) or None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            await response.prepare(request)
            for kind, obj in backlog:
                await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            while deadline is None or loop.time() < deadline:
                left = None if deadline is None else deadline - loop.time()
                try:
                    item = await asyncio.wait_for(queue.get(), left)
                except TimeoutError:
                    break
                if item is STOP:
                    break
                kind, p, obj = item
                if wanted(_key(p, obj), obj):
                    await response.write(
                        json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                    )
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self._watches.discard(queue)
        return response


@contextmanager
def fake_kubeconfig(directory: Path, url: str) -> Iterator[Path]:
    """Make the Kubernetes client load a kubeconfig for ``url`` instead of ~/.kube/config.

    KubeSpawner loads a kubeconfig (or the in-cluster config) before it applies
    ``k8s_api_host``; its client reads the file's path once, at import, from
    KUBECONFIG, so the module's default is replaced for the duration.
    """
    from kubernetes_asyncio.config import kube_config

    path = write_kubeconfig(directory / "kubeconfig", url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        yield path


def write_kubeconfig(path: Path, url: str) -> Path:
    """A kubeconfig whose one context talks to ``url`` with a dummy token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake", "user": {"token": "fake-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path
