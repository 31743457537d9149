"""KubernetesSampler's Prometheus source against a Prometheus stand-in serving recorded
JSON and text answers (tests/support/kubelet_stats.py); whose each claim is comes from
the in-process Kubernetes API (claims made as KubeSpawner makes them) or from
kube-state-metrics' series.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eohub.domain.storage.prometheus import INODES_USED, KSM_ANNOTATIONS, KSM_LABELS, USED_BYTES
from eohub.storage.kubernetes import KubernetesSampler
from tests.support.kube_api import write_kubeconfig
from tests.support.kube_spawners import NAMESPACE, make_spawner, serialise
from tests.support.kubelet_stats import (
    FEDERATE,
    KUBELET_METRICS,
    KubeletStatsAPI,
    PrometheusStandIn,
    admin_claim,
    eohub_lines,
    kubelet_api,
    post,
    spawner_claim,
    summary_of,
    vector_answer,
)


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[KubeletStatsAPI]:
    async with kubelet_api(tmp_path) as api:
        yield api


@pytest.fixture
async def prometheus() -> AsyncIterator[PrometheusStandIn]:
    async with PrometheusStandIn() as stand_in:
        yield stand_in


def used(claim: str, value: float, namespace: str = NAMESPACE) -> tuple[dict[str, str], float]:
    labels = {"__name__": USED_BYTES, "namespace": namespace, "persistentvolumeclaim": claim}
    return labels | {"instance": "10.0.0.11:10250", "job": "kubelet", "node": "node-a"}, value


async def test_prometheus_json_with_claims_from_the_api(
    kube: KubeletStatsAPI, prometheus: PrometheusStandIn, tmp_path: Path
) -> None:
    alice = await spawner_claim(kube, "alice")
    bob = await spawner_claim(kube, "bob")
    await admin_claim(kube, "group-eo-sci", annotations={"eohub.io/group": "eo-sci"})
    prometheus.queries[f'{USED_BYTES}{{namespace="{NAMESPACE}"}}'] = (
        200,
        vector_answer(
            [
                used(alice, 1.2e9),
                used(bob, 2.5e8),
                used("group-eo-sci", 4e9),
                used("hub-db-dir", 1e6),
            ]
        ),
    )
    prometheus.queries[f'{INODES_USED}{{namespace="{NAMESPACE}"}}'] = (
        200,
        vector_answer([({"namespace": NAMESPACE, "persistentvolumeclaim": alice}, 2893)]),
    )
    token = tmp_path / "token"
    token.write_text("prom-secret\n")
    sampler = KubernetesSampler(
        namespace=NAMESPACE,
        source="prometheus",
        prometheus_url=prometheus.url + "/",
        prometheus_token_file=str(token),
        default_group="eo-sci",
    )
    samples = await sampler.measure()
    assert summary_of(samples) == [
        ("alice", "eo-sci", 1_200_000_000, 2893),
        ("bob", "eo-sci", 250_000_000, 0),
        ("eo-sci", "eo-sci", 4_000_000_000, 0),
    ]
    assert [(p, h) for p, _, h in prometheus.requests] == [
        ("/api/v1/query", "Bearer prom-secret")
    ] * 2
    assert kube.summaries_asked == []  # no node asked: Prometheus measured


async def test_prometheus_text_from_kube_state_metrics_needs_no_kubernetes(
    prometheus: PrometheusStandIn, tmp_path: Path
) -> None:
    ksm = (
        "# HELP kube_persistentvolumeclaim_annotations Kubernetes annotations converted to "
        "Prometheus labels.\n"
        "# TYPE kube_persistentvolumeclaim_annotations untyped\n"
        'kube_persistentvolumeclaim_annotations{annotation_hub_jupyter_org_username="alice@example.org",'
        'namespace="hub",persistentvolumeclaim="claim-alice"} 1 1765015187123\n'
        'kube_persistentvolumeclaim_annotations{annotation_eohub_io_group="climate",'
        'namespace="hub",persistentvolumeclaim="group-climate"} 1 1765015187123\n'
        "# TYPE kube_persistentvolumeclaim_labels untyped\n"
        'kube_persistentvolumeclaim_labels{label_app="jupyterhub",namespace="hub",'
        'persistentvolumeclaim="hub-db-dir"} 1 1765015187123\n'
    )
    prometheus.pages["/federate"] = FEDERATE + ksm
    nowhere = write_kubeconfig(tmp_path / "nowhere", "http://127.0.0.1:9")
    sampler = KubernetesSampler(
        namespace="hub",
        source="prometheus",
        prometheus_url=prometheus.url + "/federate",
        prometheus_format="text",
        claims_from="kube-state-metrics",
        kubeconfig=str(nowhere),
    )
    samples = await sampler.measure()
    assert summary_of(samples) == [
        ("alice@example.org", "", 1_200_271_872, 2893),
        ("climate", "climate", 34_359_738_368, 40012),  # the larger of two kubelets
    ]
    assert sampler.incomplete is False
    ((path, query, _),) = prometheus.requests
    assert path == "/federate"
    assert query["match[]"] == [
        f'{m}{{namespace="hub"}}' for m in (USED_BYTES, INODES_USED, KSM_ANNOTATIONS, KSM_LABELS)
    ]


async def test_a_kubelets_metrics_page(
    kube: KubeletStatsAPI, prometheus: PrometheusStandIn
) -> None:
    # Any text-format page will do: here a kubelet's own /metrics, claims from the API.
    for user in ("alice", "bob"):
        spawner = await make_spawner(user, api_url=kube.url, namespace="hub")
        spawner.pvc_name = f"claim-{user}"
        spawner.storage_capacity = "10Gi"
        await post(
            kube, "persistentvolumeclaims", serialise(spawner, spawner.get_pvc_manifest()), "hub"
        )
    prometheus.pages["/metrics"] = KUBELET_METRICS
    sampler = KubernetesSampler(
        namespace="hub",
        source="prometheus",
        prometheus_url=prometheus.url + "/metrics",
        prometheus_format="text",
    )
    assert summary_of(await sampler.measure()) == [
        ("alice", "", 1_200_271_872, 2893),
        ("bob", "", 204_800, 17),
    ]
    ((_, query, header),) = prometheus.requests
    assert query == {}
    assert header == ""


@pytest.mark.parametrize(
    ("settings", "answer", "message"),
    [
        (
            {"prometheus_query": "kubelet_volume_stats_used_bytes{"},
            None,
            "refused the query (bad_data)",
        ),
        ({}, (503, "Service Unavailable"), "(HTTP 503): the answer is not JSON"),
        (
            {},
            (200, '{"status":"success","data":{"resultType":"matrix","result":[]}}'),
            "instant vector",
        ),
        ({"prometheus_url": "http://127.0.0.1:9"}, None, "did not answer"),
        ({"prometheus_url": ""}, None, "needs KubernetesSampler.prometheus_url"),
        (
            {"prometheus_token_file": "/nonexistent/token"},
            None,
            "cannot read KubernetesSampler.prometheus_token_file",
        ),
        ({"prometheus_format": "text"}, None, "answered HTTP 404: '404 page not found'"),
    ],
)
async def test_prometheus_errors_are_one_clear_line(
    kube: KubeletStatsAPI,
    prometheus: PrometheusStandIn,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    answer: tuple[int, str] | None,
    message: str,
) -> None:
    await spawner_claim(kube, "alice")
    if answer is not None:
        prometheus.queries[f'{USED_BYTES}{{namespace="{NAMESPACE}"}}'] = answer
    settings = {"prometheus_url": prometheus.url, **settings}
    sampler = KubernetesSampler(namespace=NAMESPACE, source="prometheus", **settings)
    with caplog.at_level(logging.INFO, logger="eohub"):
        assert await sampler.measure() == []
    assert sampler.incomplete is True
    (line,) = eohub_lines(caplog, logging.ERROR)
    assert line.startswith(f"No storage measured in namespace {NAMESPACE}: ")
    assert message in line


# -- settings -----------------------------------------------------------------------------------
