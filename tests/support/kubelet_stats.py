"""Stand-ins for what the Kubernetes storage sampler reads: kubelets and Prometheus.

:class:`KubeletStatsAPI` is :class:`~tests.support.kube_api.FakeKubeAPI` with nodes and
their kubelets' stats summaries, served through the API server's node proxy
(``GET /api/v1/nodes/{node}/proxy/stats/summary``) as a cluster serves them. A summary
is built from the pods running on the node, in every namespace, shaped like the
kubelet's ``Summary`` (``k8s.io/kubelet/pkg/apis/stats/v1alpha1``): node stats, then
per pod its ``podRef``, containers, and one ``volume`` entry per volume the kubelet
measured (with a ``pvcRef`` for a claim, without for the service account token). How
full each claim is comes from :attr:`KubeletStatsAPI.usage`; a claim with no entry
there is one the kubelet has not measured yet, and is left out, as a kubelet does.

:class:`PrometheusStandIn` answers ``/api/v1/query`` with recorded JSON and any other
path with a recorded page in the text format. The recorded answers below are shaped as
Prometheus 2.x/3.x and the kubelet write them (compact JSON with ``[time, "value"]``
pairs; ``# HELP``/``# TYPE`` lines, Go's ``%g`` floats and millisecond timestamps).

The helpers at the end make a cluster as the hub and an admin would: users' servers
started by eohub's QuotaKubeSpawner (:func:`start_server`), claims made exactly as
KubeSpawner makes them (:func:`spawner_claim`), and the admin's claims and pods.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from .kube_api import NODE, FakeKubeAPI, fake_kubeconfig, now_text, status
from .kube_spawners import NAMESPACE, VOLUMES, make_spawner, serialise

GIB = 2**30
TOKEN_VOLUME_BYTES = 12_288  # a projected service account token, in every pod
BROKEN = "broken"  # KubeletStatsAPI.failing: answer 200 with a body that is not JSON


def _fs(used: int, inodes_used: int, capacity: int = 10 * GIB) -> dict[str, Any]:
    inodes = 655_360
    return {
        "time": now_text()[:19] + "Z",
        "availableBytes": max(capacity - used, 0),
        "capacityBytes": capacity,
        "usedBytes": used,
        "inodesFree": max(inodes - inodes_used, 0),
        "inodes": inodes,
        "inodesUsed": inodes_used,
    }


def _cpu_memory() -> dict[str, Any]:
    stamp = now_text()[:19] + "Z"
    return {
        "cpu": {"time": stamp, "usageNanoCores": 1_843_201, "usageCoreNanoSeconds": 9_212_000_000},
        "memory": {
            "time": stamp,
            "usageBytes": 183_500_800,
            "workingSetBytes": 150_994_944,
            "rssBytes": 104_857_600,
            "pageFaults": 40_117,
            "majorPageFaults": 12,
        },
    }


class KubeletStatsAPI(FakeKubeAPI):
    """The API fake with nodes whose kubelets report their pods' volume usage.

    ``usage`` maps (namespace, claim) to (used bytes, inodes used); ``failing`` maps a
    node to what its proxy answers instead of a summary: an HTTP status (the API server's
    Status body, as when the kubelet cannot be reached), or :data:`BROKEN`.
    ``summaries_asked`` lists each node asked, in order; ``most_in_flight`` is the
    most summary requests that were open at once.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.usage: dict[tuple[str, str], tuple[int, int]] = {}
        self.failing: dict[str, int | str] = {}
        self.extra_nodes: set[str] = set()
        self.summaries_asked: list[str] = []
        self.summary_delay = 0.0  # seconds each kubelet takes to answer
        self.in_flight = self.most_in_flight = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("GET", "/api/v1/nodes", self._nodes)
        app.router.add_route("GET", "/api/v1/nodes/{node}", self._node)
        app.router.add_route("GET", "/api/v1/nodes/{node}/proxy/stats/summary", self._summary)

    # -- the cluster's nodes -------------------------------------------------------------

    def node_names(self) -> list[str]:
        placed = {
            o["spec"].get("nodeName")
            for (plural, _, _), o in self.objects.items()
            if plural == "pods" and o["spec"].get("nodeName")
        }
        return sorted({NODE, *self.extra_nodes, *placed})

    def place(self, namespace: str, pod: str, node: str) -> None:
        """Move a pod to ``node`` (as if scheduled there), with a watch event."""
        obj = self.objects[("pods", namespace, pod)]
        obj["spec"]["nodeName"] = node
        obj["status"]["hostIP"] = f"10.0.0.{1 + self.node_names().index(node) % 250}"
        self.modify("pods", obj)

    def node(self, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            },
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            },
        }

    async def _nodes(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        items = [self.node(n) for n in self.node_names()]
        return web.json_response({"apiVersion": "v1", "kind": "NodeList", "items": items})

    async def _node(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        name = request.match_info["node"]
        if name not in self.node_names():
            return status(404, "NotFound", f'nodes "{name}" not found')
        return web.json_response(self.node(name))

    # -- the kubelets ----------------------------------------------------------------------

    def _pod_stats(self, pod: Mapping[str, Any]) -> dict[str, Any]:
        meta = pod["metadata"]
        volumes = []
        for volume in pod["spec"].get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim is None:
                volumes.append({**_fs(TOKEN_VOLUME_BYTES, 9), "name": volume["name"]})
                continue
            used = self.usage.get((meta["namespace"], claim))
            if used is None:
                continue  # not measured yet: the kubelet leaves it out
            ref = {"name": claim, "namespace": meta["namespace"]}
            volumes.append({**_fs(*used), "name": volume["name"], "pvcRef": ref})
        started = pod["status"].get("startTime", now_text()[:19] + "Z")
        containers = [
            {
                "name": c["name"],
                "startTime": started,
                **_cpu_memory(),
                "rootfs": _fs(65_536, 21, 100 * GIB),
                "logs": _fs(8_192, 1, 100 * GIB),
            }
            for c in pod["spec"]["containers"]
        ]
        return {
            "podRef": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
            "startTime": started,
            "containers": containers,
            **_cpu_memory(),
            "volume": volumes,
            "ephemeral-storage": _fs(86_016, 31, 100 * GIB),
            "process_stats": {"process_count": 3},
        }

    def summary(self, node: str) -> dict[str, Any]:
        """The node's kubelet ``Summary``: every running pod on it, in all namespaces."""
        pods = [
            o
            for (plural, _, _), o in sorted(self.objects.items())
            if plural == "pods"
            and o["spec"].get("nodeName") == node
            and o.get("status", {}).get("phase") == "Running"
        ]
        stamp = now_text()[:19] + "Z"
        return {
            "node": {
                "nodeName": node,
                "systemContainers": [
                    {"name": "kubelet", "startTime": stamp, **_cpu_memory()},
                    {"name": "pods", "startTime": stamp, **_cpu_memory()},
                ],
                "startTime": stamp,
                **_cpu_memory(),
                "fs": _fs(20 * GIB, 120_000, 100 * GIB),
                "runtime": {"imageFs": _fs(12 * GIB, 90_000, 100 * GIB)},
                "rlimit": {"time": stamp, "maxpid": 4_194_304, "curproc": 412},
            },
            "pods": [self._pod_stats(p) for p in pods],
        }

    async def _summary(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        node = request.match_info["node"]
        self.summaries_asked.append(node)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.summary_delay)
        finally:
            self.in_flight -= 1
        if node not in self.node_names():
            return status(404, "NotFound", f'nodes "{node}" not found')
        failure = self.failing.get(node)
        if failure == BROKEN:
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
        if isinstance(failure, int):
            message = (
                f"error trying to reach service: dial tcp 10.0.0.9:10250: connect: "
                f"connection refused (node {node})"
            )
            return status(failure, "ServiceUnavailable", message)
        return web.json_response(self.summary(node))


# -- Prometheus --------------------------------------------------------------------------------


def vector_answer(series: list[tuple[dict[str, str], float]], at: float = 1765015200.123) -> str:
    """An instant query's answer as Prometheus writes it (compact JSON, string values)."""
    result = [{"metric": labels, "value": [at, _go_float(value)]} for labels, value in series]
    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
    return json.dumps(body, separators=(",", ":"))


def _go_float(value: float) -> str:
    # Prometheus' JSON values: strconv.FormatFloat(v, 'f', -1, 64), "NaN", "+Inf".
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


#: Prometheus' answer to a query that does not parse (HTTP 400).
BAD_DATA = json.dumps(
    {
        "status": "error",
        "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:32: parse error: unexpected "}" in label matching',
    },
    separators=(",", ":"),
)


class PrometheusStandIn:
    """A Prometheus on 127.0.0.1: ``queries`` maps a PromQL text to (status, JSON body),
    ``pages`` a path to a text-format page. ``requests`` records (path, query
    parameters, Authorization header) of each request."""

    def __init__(self) -> None:
        self.queries: dict[str, tuple[int, str]] = {}
        self.pages: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> PrometheusStandIn:
        app = web.Application()
        app.router.add_route("GET", "/api/v1/query", self._query)
        app.router.add_route("GET", "/{path:.*}", self._page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _record(self, request: web.Request) -> None:
        query = {k: request.query.getall(k) for k in request.query}
        self.requests.append((request.path, query, request.headers.get("Authorization", "")))

    async def _query(self, request: web.Request) -> web.Response:
        self._record(request)
        code, body = self.queries.get(request.query.get("query", ""), (400, BAD_DATA))
        return web.Response(status=code, text=body, content_type="application/json")

    async def _page(self, request: web.Request) -> web.Response:
        self._record(request)
        page = self.pages.get(request.path)
        if page is None:
            return web.Response(status=404, text="404 page not found\n")
        return web.Response(
            text=page, content_type="text/plain", charset="utf-8", headers={"X-Format": "0.0.4"}
        )


#: A kubelet's ``/metrics`` page (an excerpt: the volume stats among other metrics).
KUBELET_METRICS = """\
# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox
# TYPE kubelet_running_pods gauge
kubelet_running_pods 14
# HELP kubelet_volume_stats_available_bytes [ALPHA] Number of available bytes in the volume
# TYPE kubelet_volume_stats_available_bytes gauge
kubelet_volume_stats_available_bytes{namespace="hub",persistentvolumeclaim="claim-alice"} 9.536303104e+09
kubelet_volume_stats_available_bytes{namespace="hub",persistentvolumeclaim="claim-bob"} 1.0523439104e+10
# HELP kubelet_volume_stats_inodes_used [ALPHA] Number of used inodes in the volume
# TYPE kubelet_volume_stats_inodes_used gauge
kubelet_volume_stats_inodes_used{namespace="hub",persistentvolumeclaim="claim-alice"} 2893
kubelet_volume_stats_inodes_used{namespace="hub",persistentvolumeclaim="claim-bob"} 17
kubelet_volume_stats_inodes_used{namespace="monitoring",persistentvolumeclaim="prometheus-db"} 905
# HELP kubelet_volume_stats_used_bytes [ALPHA] Number of used bytes in the volume
# TYPE kubelet_volume_stats_used_bytes gauge
kubelet_volume_stats_used_bytes{namespace="hub",persistentvolumeclaim="claim-alice"} 1.200271872e+09
kubelet_volume_stats_used_bytes{namespace="hub",persistentvolumeclaim="claim-bob"} 2.0480e+05
kubelet_volume_stats_used_bytes{namespace="monitoring",persistentvolumeclaim="prometheus-db"} 5.4e+10
# HELP kubelet_volume_stats_health_status_abnormal [ALPHA] Abnormal volume health status.
# TYPE kubelet_volume_stats_health_status_abnormal gauge
kubelet_volume_stats_health_status_abnormal{namespace="hub",persistentvolumeclaim="claim-alice"} 0
"""  # noqa: E501 - recorded as served

#: A Prometheus ``/federate`` page: every series with its target's labels and a
#: millisecond timestamp; one claim reported by two kubelets (mounted on two nodes).
FEDERATE = """\
# TYPE kubelet_volume_stats_inodes_used untyped
kubelet_volume_stats_inodes_used{endpoint="https-metrics",instance="10.0.0.11:10250",job="kubelet",metrics_path="/metrics",namespace="hub",node="node-a",persistentvolumeclaim="claim-alice",service="kube-prometheus-stack-kubelet"} 2893 1765015187123
kubelet_volume_stats_inodes_used{endpoint="https-metrics",instance="10.0.0.12:10250",job="kubelet",metrics_path="/metrics",namespace="hub",node="node-b",persistentvolumeclaim="group-climate",service="kube-prometheus-stack-kubelet"} 40012 1765015190456
# TYPE kubelet_volume_stats_used_bytes untyped
kubelet_volume_stats_used_bytes{endpoint="https-metrics",instance="10.0.0.11:10250",job="kubelet",metrics_path="/metrics",namespace="hub",node="node-a",persistentvolumeclaim="claim-alice",service="kube-prometheus-stack-kubelet"} 1.200271872e+09 1765015187123
kubelet_volume_stats_used_bytes{endpoint="https-metrics",instance="10.0.0.12:10250",job="kubelet",metrics_path="/metrics",namespace="hub",node="node-b",persistentvolumeclaim="group-climate",service="kube-prometheus-stack-kubelet"} 3.4359738368e+10 1765015190456
kubelet_volume_stats_used_bytes{endpoint="https-metrics",instance="10.0.0.13:10250",job="kubelet",metrics_path="/metrics",namespace="hub",node="node-c",persistentvolumeclaim="group-climate",service="kube-prometheus-stack-kubelet"} 3.4359734272e+10 1765015189001
"""  # noqa: E501 - recorded as served


# -- a cluster with users' servers -----------------------------------------------------------

GROUP_SPACE = {"kind": "pvc", "claim_name": "group-{group}", "mount_path": "/group"}
LAUNCH_VOLUMES = {**VOLUMES, "group_space": GROUP_SPACE}
MIB = 2**20


@asynccontextmanager
async def kubelet_api(directory: Path) -> AsyncIterator[KubeletStatsAPI]:
    """The API fake with kubelets, and a kubeconfig in ``directory`` pointing at it as the
    default one; KubeSpawner's shared reflectors are stopped at the end."""
    from kubespawner import KubeSpawner

    async with KubeletStatsAPI(kubelet_delay=0.05) as api:
        with fake_kubeconfig(directory, api.url):
            try:
                yield api
            finally:
                await KubeSpawner._stop_all_reflectors()


def eohub_lines(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    """The messages eohub logged at ``level`` or above."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("eohub.") and r.levelno >= level
    ]


async def post(
    kube: KubeletStatsAPI, plural: str, body: dict[str, Any], namespace: str = NAMESPACE
) -> None:
    """Create an object through the API, as kubectl would."""
    async with aiohttp.ClientSession() as http:
        url = f"{kube.url}/api/v1/namespaces/{namespace}/{plural}"
        async with http.post(url, json=body) as response:
            assert response.status == 201, await response.text()


async def admin_claim(
    kube: KubeletStatsAPI, name: str, namespace: str = NAMESPACE, **meta: Any
) -> None:
    """A claim made by an admin (kubectl apply), with the annotations and labels given."""
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, **meta},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "100Gi"}},
        },
    }
    await post(kube, "persistentvolumeclaims", body, namespace)


async def other_pod(
    kube: KubeletStatsAPI, name: str, claim: str, namespace: str = NAMESPACE
) -> None:
    """A pod that is no user's server (the hub, a Prometheus) mounting ``claim``; running."""
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [{"name": "main", "image": "quay.io/jupyterhub/k8s-hub:4.4.0"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }
    await post(kube, "pods", body, namespace)
    for _ in range(200):
        pod = kube.get("pods", namespace, name)
        if pod and pod["status"]["phase"] == "Running":
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"pod {name} did not run")


async def start_server(
    kube: KubeletStatsAPI, user: str, groups: list[str] | None = None, **options: Any
) -> Any:
    """A user's server, as the hub starts it: KubeSpawner creates the claim and the pod."""
    spawner = await make_spawner(user, groups, api_url=kube.url, launch_volumes=LAUNCH_VOLUMES)
    await spawner.apply_user_options(spawner, options)
    await spawner.start()
    return spawner


async def spawner_claim(kube: KubeletStatsAPI, user: str, namespace: str = NAMESPACE) -> str:
    """A user's claim exactly as KubeSpawner makes it (no server started)."""
    spawner = await make_spawner(user, api_url=kube.url, namespace=namespace)
    spawner.storage_capacity = "10Gi"  # the chart's singleuser.storage.capacity
    await post(
        kube, "persistentvolumeclaims", serialise(spawner, spawner.get_pvc_manifest()), namespace
    )
    return str(spawner.pvc_name)


def summary_of(samples: list[Any]) -> list[tuple[str, str, int, int]]:
    """(user, group, bytes, files) of each sample, all measured just now, at one time
    (the round's end), and each from its own claim."""
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=1) < s.measured_at <= now for s in samples)
    assert len({s.measured_at for s in samples}) <= 1
    assert all(s.source.startswith("pvc:") for s in samples)
    assert len({(s.user, s.group, s.source) for s in samples}) == len(samples)
    return [(s.user, s.group, s.bytes, s.file_count) for s in samples]


# -- the kubelet source --------------------------------------------------------------------
