"""KubernetesSampler's kubelet source against the in-process Kubernetes API, whose
nodes serve stats summaries shaped like the kubelet's (tests/support/kubelet_stats.py).

Users' claims and pods are made by eohub's QuotaKubeSpawner (KubeSpawner 7) starting
real servers on the fake, so each claim carries exactly what KubeSpawner writes on it;
the admin's claims (a group's shared space, read-only data, the hub's database) are
created as an admin would. No real cluster is involved: see the how-to.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from eohub.storage.kubernetes import KubernetesSampler
from tests.support.kube_api import NODE, write_kubeconfig
from tests.support.kube_spawners import NAMESPACE
from tests.support.kubelet_stats import (
    BROKEN,
    MIB,
    KubeletStatsAPI,
    admin_claim,
    eohub_lines,
    kubelet_api,
    other_pod,
    spawner_claim,
    start_server,
    summary_of,
)


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[KubeletStatsAPI]:
    async with kubelet_api(tmp_path) as api:
        yield api


@pytest.fixture
async def cluster(kube: KubeletStatsAPI) -> KubeletStatsAPI:
    """alice (eo-sci) on the first node, bob (charged to eo-ml) on node-b; both mount
    their workspace, the read-only common data and their group's shared space. The hub
    runs beside them, and a Prometheus in another namespace."""
    await admin_claim(kube, "group-eo-sci", annotations={"eohub.io/group": "eo-sci"})
    await admin_claim(kube, "group-eo-ml", labels={"eohub.io/group": "eo-ml"})
    await admin_claim(kube, "common-data")
    await admin_claim(kube, "hub-db-dir", labels={"app": "jupyterhub", "component": "hub"})
    await admin_claim(kube, "prometheus-db", namespace="monitoring")
    await start_server(kube, "alice")
    bob = await start_server(kube, "bob", group="eo-ml")
    kube.place(NAMESPACE, bob.pod_name, "node-b")
    await other_pod(kube, "hub-5d9c7", "hub-db-dir")
    await other_pod(kube, "prometheus-0", "prometheus-db", namespace="monitoring")
    kube.usage |= {
        (NAMESPACE, "workspace-alice"): (1_200 * MIB, 3_400),
        (NAMESPACE, "workspace-bob"): (300 * MIB, 12),
        (NAMESPACE, "group-eo-sci"): (5_000 * MIB, 40_000),
        (NAMESPACE, "group-eo-ml"): (700 * MIB, 90),
        (NAMESPACE, "common-data"): (90_000 * MIB, 1_000_000),
        (NAMESPACE, "hub-db-dir"): (2 * MIB, 3),
        ("monitoring", "prometheus-db"): (50_000 * MIB, 900),
    }
    return kube


async def test_per_user_and_per_group_samples(
    cluster: KubeletStatsAPI, caplog: pytest.LogCaptureFixture
) -> None:
    # bob's claim is KubeSpawner's: annotated with his name only; the mapping charges it.
    claim = cluster.get("persistentvolumeclaims", NAMESPACE, "workspace-bob")
    assert claim is not None
    assert claim["metadata"]["annotations"]["hub.jupyter.org/username"] == "bob"
    sampler = KubernetesSampler(namespace=NAMESPACE, user_groups={"bob": "eo-ml"})
    with caplog.at_level(logging.INFO, logger="eohub"):
        samples = await sampler.measure()
    assert summary_of(samples) == [
        ("alice", "", 1_200 * MIB, 3_400),
        ("bob", "eo-ml", 300 * MIB, 12),
        ("eo-ml", "eo-ml", 700 * MIB, 90),
        ("eo-sci", "eo-sci", 5_000 * MIB, 40_000),
    ]
    assert sampler.incomplete is False
    # One request per node with a user's claim, none to list nodes (no RBAC for it).
    assert sorted(cluster.summaries_asked) == [NODE, "node-b"]
    asked = [p for m, p in cluster.requests if not p.endswith("/events")]
    assert ("GET", "/api/v1/nodes") not in cluster.requests
    assert f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims" in asked
    assert f"/api/v1/namespaces/{NAMESPACE}/pods" in asked
    lines = eohub_lines(caplog)
    assert (
        "Claim common-data not sampled: it has no hub.jupyter.org/username annotation"
        in " ".join(lines)
    )
    assert any(line.startswith("Claim hub-db-dir not sampled") for line in lines)


async def test_a_shared_claim_on_two_nodes_counts_once(cluster: KubeletStatsAPI) -> None:
    # erin's server, charged to eo-sci, runs on node-b and mounts group-eo-sci as
    # alice's does on the first node: both kubelets report the claim.
    erin = await start_server(cluster, "erin", ["eo-sci"])
    cluster.place(NAMESPACE, erin.pod_name, "node-b")
    cluster.usage[(NAMESPACE, "workspace-erin")] = (MIB, 1)
    for node in (NODE, "node-b"):
        volumes = [v for p in cluster.summary(node)["pods"] for v in p["volume"]]
        assert any(v.get("pvcRef", {}).get("name") == "group-eo-sci" for v in volumes)
    samples = await KubernetesSampler(namespace=NAMESPACE).measure()
    assert ("eo-sci", "eo-sci", 5_000 * MIB, 40_000) in summary_of(samples)
    assert ("erin", "", MIB, 1) in summary_of(samples)
    assert [s.user for s in samples].count("eo-sci") == 1


async def test_skipped_claims_are_logged_once(
    cluster: KubeletStatsAPI, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = KubernetesSampler(namespace=NAMESPACE)
    with caplog.at_level(logging.INFO, logger="eohub"):
        await sampler.measure()
        await sampler.measure()
    skipped = [line for line in eohub_lines(caplog) if "not sampled" in line]
    assert sorted(line.split()[1] for line in skipped) == ["common-data", "hub-db-dir"]


@pytest.mark.parametrize("failure", [503, 403, BROKEN])
async def test_one_node_failing_loses_only_its_claims(
    cluster: KubeletStatsAPI, caplog: pytest.LogCaptureFixture, failure: int | str
) -> None:
    cluster.failing["node-b"] = failure
    sampler = KubernetesSampler(namespace=NAMESPACE, user_groups={"bob": "eo-ml"})
    with caplog.at_level(logging.INFO, logger="eohub"):
        samples = await sampler.measure()
    # bob's workspace and eo-ml's space are on node-b only: no sample, the last stands.
    assert summary_of(samples) == [
        ("alice", "", 1_200 * MIB, 3_400),
        ("eo-sci", "eo-sci", 5_000 * MIB, 40_000),
    ]
    assert sampler.incomplete is True  # --once exits 1
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.getMessage().startswith("No stats summary from node node-b (")
    assert "keep their last sample" in error.getMessage()
    if failure == 403:
        assert "see the RBAC of the how-to" in error.getMessage()


async def test_a_users_claims_are_separate_sources_never_a_partial_sum(
    cluster: KubeletStatsAPI,
) -> None:
    # alice's second claim (a named server's, on node-b): two samples, one per claim.
    alice = {"hub.jupyter.org/username": "alice"}
    await admin_claim(cluster, "workspace-alice--gpu", annotations=alice)
    await other_pod(cluster, "jupyter-alice--gpu", "workspace-alice--gpu")
    cluster.place(NAMESPACE, "jupyter-alice--gpu", "node-b")
    cluster.usage[(NAMESPACE, "workspace-alice--gpu")] = (800 * MIB, 50)
    sampler = KubernetesSampler(namespace=NAMESPACE)
    alices = [(s.source, s.bytes) for s in await sampler.measure() if s.user == "alice"]
    assert alices == [
        (f"pvc:{NAMESPACE}/workspace-alice", 1_200 * MIB),
        (f"pvc:{NAMESPACE}/workspace-alice--gpu", 800 * MIB),
    ]
    # node-b fails: its claim is not posted (its last sample stands), and the other
    # claim's figure is its own, not a smaller sum passed off as alice's whole storage.
    cluster.failing["node-b"] = 503
    alices = [(s.source, s.bytes) for s in await sampler.measure() if s.user == "alice"]
    assert alices == [(f"pvc:{NAMESPACE}/workspace-alice", 1_200 * MIB)]


async def test_a_stopped_server_s_claim_is_not_measured(cluster: KubeletStatsAPI) -> None:
    pods = [k for k in cluster.objects if k[0] == "pods" and k[2].startswith("jupyter-bob")]
    for _, namespace, name in pods:
        cluster.delete("pods", namespace, name)
    samples = await KubernetesSampler(namespace=NAMESPACE).measure()
    assert [s.user for s in samples] == ["alice", "eo-sci"]
    assert cluster.summaries_asked == [NODE]  # node-b runs nothing of ours now


async def test_nodes_are_asked_a_few_at_a_time(kube: KubeletStatsAPI) -> None:
    for i in range(6):
        name = f"user{i}"
        spawner = await start_server(kube, name, ["eo-sci"])
        kube.place(NAMESPACE, spawner.pod_name, f"node-{i}")
        kube.usage[(NAMESPACE, str(spawner.pvc_name))] = (i * MIB, i)
    kube.summary_delay = 0.1
    samples = await KubernetesSampler(namespace=NAMESPACE, node_concurrency=2).measure()
    assert len(samples) == 6
    assert len(kube.summaries_asked) == 6
    assert kube.most_in_flight == 2


async def test_an_empty_namespace(kube: KubeletStatsAPI, caplog: pytest.LogCaptureFixture) -> None:
    sampler = KubernetesSampler(namespace="empty")
    with caplog.at_level(logging.INFO, logger="eohub"):
        assert await sampler.measure() == []
    assert sampler.incomplete is False
    assert kube.summaries_asked == []
    assert [p for _, p in kube.requests] == ["/api/v1/namespaces/empty/persistentvolumeclaims"]
    assert eohub_lines(caplog, logging.WARNING) == []


# Not valid label values: KubeSpawner labels the claims with slugs of them.
ODD_NAMES = ["élodie.o'brien@example.org", "a,b=c !d", "{group} x", "Zoë", "-x-"]


async def test_odd_user_names_come_out_as_the_hub_knows_them(kube: KubeletStatsAPI) -> None:
    claims = {await spawner_claim(kube, name): name for name in ODD_NAMES}
    # KubeSpawner's claim names and labels are slugs; only the annotation is the name.
    assert len(claims) == len(ODD_NAMES)
    assert all(c.startswith("claim-") for c in claims)
    for claim, name in claims.items():
        obj = kube.get("persistentvolumeclaims", NAMESPACE, claim)
        assert obj is not None
        assert obj["metadata"]["annotations"]["hub.jupyter.org/username"] == name
        assert obj["metadata"]["labels"]["hub.jupyter.org/username"] != name
    for i, claim in enumerate(claims):
        await other_pod(kube, f"jupyter-odd-{i}", claim)
        kube.usage[(NAMESPACE, claim)] = (1000 + i, i)
    samples = await KubernetesSampler(namespace=NAMESPACE).measure()
    assert sorted((s.user, s.bytes) for s in samples) == sorted(
        (name, 1000 + i) for i, name in enumerate(claims.values())
    )


async def test_no_api_is_one_error_and_an_incomplete_round(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = write_kubeconfig(tmp_path / "dead", "http://127.0.0.1:9")
    sampler = KubernetesSampler(namespace=NAMESPACE, kubeconfig=str(dead), request_timeout=5)
    with caplog.at_level(logging.INFO, logger="eohub"):
        assert await sampler.measure() == []
    assert sampler.incomplete is True
    (line,) = eohub_lines(caplog, logging.ERROR)
    assert line.startswith(
        f"No storage measured in namespace {NAMESPACE}: cannot list persistentvolumeclaims: "
    )
    missing = KubernetesSampler(namespace=NAMESPACE, kubeconfig=str(tmp_path / "none"))
    assert await missing.measure() == []
    assert missing.incomplete is True
    assert "no Kubernetes API to talk to" in eohub_lines(caplog, logging.ERROR)[-1]


# -- the Prometheus source ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"namespace": "Hub_Users"}, "is not a namespace name"),
        ({"prometheus_url": "prometheus:9090"}, "must be an http:// or https:// URL"),
        ({"prometheus_url": "ftp://user:pw@p/x"}, "'ftp://p/x'"),  # no password echoed
        ({"group_claim_user": "{user}"}, r"may use only \{group\}"),
        ({"claim_groups": {"group-x": " x"}}, "starts or ends with white space"),
        ({"source": "cadvisor"}, "source"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(TraitError, match=message):
        KubernetesSampler(**settings)


@pytest.mark.parametrize(("text", "namespace"), [("jhub\n", "jhub"), (None, "default")])
def test_the_namespace_defaults_to_the_pods_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None, namespace: str
) -> None:
    path = tmp_path / "namespace"
    if text is not None:
        path.write_text(text)  # what Kubernetes mounts with the service account's token
    monkeypatch.setattr("eohub.storage.kubernetes.NAMESPACE_FILE", str(path))
    assert KubernetesSampler().namespace == namespace
