"""deploy/kubernetes/storage-sampler.yaml: the Kubernetes storage sampler's example
manifest meets the Kubernetes schema (strictly) and the restricted Pod Security
Standard, its RBAC allows every request the sampler makes and nothing that writes, its
command line is the real program's, and its token and network path fit the Zero to
JupyterHub kit (with the values the how-to adds). No cluster is started.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from eohub.accounting.scopes import ACCESS, INGEST
from eohub.domain.launch.pod_security import restricted_violations
from eohub.storage.app import StorageSamplerApp
from eohub.storage.kubernetes import KubernetesSampler
from tests.support.kube_spawners import NAMESPACE
from tests.support.kubelet_stats import (
    KubeletStatsAPI,
    PrometheusStandIn,
    admin_claim,
    kubelet_api,
    start_server,
    vector_answer,
)
from tests.support.tools import REPO_ROOT
from tests.support.z2jh import (
    CHART_DEFAULTS,
    HUB_SECRET,
    chart_secret,
    hub_config_from_values,
    load_values,
    merge_values,
)

MANIFEST = REPO_ROOT / "deploy" / "kubernetes" / "storage-sampler.yaml"
HOWTO = REPO_ROOT / "docs" / "how-to" / "storage-kubernetes.md"
KIT = REPO_ROOT / "deploy" / "z2jh"
DOCS = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
SCHEMA_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
SERVICE = "eohub-storage-sampler"
READ_VERBS = {"get", "list", "watch"}


def manifest(kind: str, path: Path = MANIFEST) -> dict[str, Any]:
    found = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == kind]
    assert len(found) == 1, f"{kind} in {path.name}: {len(found)} found"
    return found[0]


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = manifest("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    (only,) = pod_spec()["containers"]
    return dict(only)


# -- schema and Pod Security ----------------------------------------------------------------


def test_the_manifest_has_its_objects() -> None:
    assert sorted(d["kind"] for d in DOCS) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("doc", DOCS, ids=[f"{d['kind']}/{d['metadata']['name']}" for d in DOCS])
def test_each_object_meets_the_kubernetes_schema(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_pod_meets_the_restricted_standard() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": SERVICE}, "spec": pod_spec()}
    kubernetes_validate.validate(pod, SCHEMA_VERSIONS[-1], strict=True)
    assert restricted_violations(pod) == []


# -- RBAC ------------------------------------------------------------------------------------


def allowed(rules: list[Mapping[str, Any]], resource: str, verb: str) -> bool:
    return any(
        "" in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules
    )


def request_needs(method: str, path: str) -> tuple[str | None, str, str]:
    """(namespace or None for cluster-wide, resource, verb) that a request needs."""
    assert method == "GET", f"the sampler must not {method} {path}"
    parts = path.strip("/").split("/")[2:]  # after api/v1
    if parts[0] == "namespaces":
        verb = "get" if len(parts) == 4 else "list"
        return parts[1], parts[2], verb
    if parts[0] == "nodes" and len(parts) > 2 and parts[2] == "proxy":
        return None, "nodes/proxy", "get"
    return None, parts[0], "get" if len(parts) > 1 else "list"


def permits(namespace: str | None, resource: str, verb: str, hub_namespace: str) -> bool:
    role = manifest("Role")["rules"] if namespace == hub_namespace else []
    return allowed(role, resource, verb) or allowed(
        manifest("ClusterRole")["rules"], resource, verb
    )


def test_the_rbac_only_reads() -> None:
    for kind in ("Role", "ClusterRole"):
        for rule in manifest(kind)["rules"]:
            assert set(rule["verbs"]) <= READ_VERBS, rule
    assert permits(None, "nodes/proxy", "get", NAMESPACE)
    assert not permits(None, "nodes", "list", NAMESPACE)  # nodes are never listed
    assert not permits("kube-system", "pods", "list", NAMESPACE)


def test_the_bindings_give_the_roles_to_the_service_account() -> None:
    account = manifest("ServiceAccount")["metadata"]["name"]
    assert pod_spec()["serviceAccountName"] == account
    for kind, role in (("RoleBinding", "Role"), ("ClusterRoleBinding", "ClusterRole")):
        binding = manifest(kind)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role,
            "name": manifest(role)["metadata"]["name"],
        }
        (subject,) = binding["subjects"]
        assert (subject["kind"], subject["name"]) == ("ServiceAccount", account)
    assert manifest("ClusterRoleBinding")["subjects"][0]["namespace"] == "hub"
    # The token is mounted into the sampler's pod only.
    assert manifest("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod_spec()["automountServiceAccountToken"] is True


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[KubeletStatsAPI]:
    async with kubelet_api(tmp_path) as api:
        yield api


async def test_the_rbac_allows_every_request_of_the_kubelet_source(kube: KubeletStatsAPI) -> None:
    await admin_claim(kube, "group-eo-sci", annotations={"eohub.io/group": "eo-sci"})
    alice = await start_server(kube, "alice")
    kube.usage[(NAMESPACE, alice.pvc_name)] = (4096, 3)
    before = len(kube.requests)
    samples = await KubernetesSampler(namespace=NAMESPACE).measure()
    assert [s.user for s in samples] == ["alice"]
    made = kube.requests[before:]
    assert any("/proxy/stats/summary" in p for _, p in made)
    for method, path in made:
        assert permits(*request_needs(method, path), NAMESPACE), f"{method} {path}"


async def test_the_prometheus_source_needs_only_to_list_claims(kube: KubeletStatsAPI) -> None:
    alice = await start_server(kube, "alice")
    async with PrometheusStandIn() as prometheus:
        prometheus.queries[f'kubelet_volume_stats_used_bytes{{namespace="{NAMESPACE}"}}'] = (
            200,
            vector_answer(
                [({"namespace": NAMESPACE, "persistentvolumeclaim": alice.pvc_name}, 7)]
            ),
        )
        prometheus.queries[f'kubelet_volume_stats_inodes_used{{namespace="{NAMESPACE}"}}'] = (
            200,
            vector_answer([]),
        )
        sampler = KubernetesSampler(
            namespace=NAMESPACE, source="prometheus", prometheus_url=prometheus.url
        )
        before = len(kube.requests)
        assert [s.bytes for s in await sampler.measure()] == [7]
    needs = {request_needs(m, p) for m, p in kube.requests[before:]}
    assert needs == {(NAMESPACE, "persistentvolumeclaims", "list")}


# -- the program, its token and its network path -------------------------------------------------


def command_lines() -> list[list[str]]:
    """The container's command, and each optional flag the manifest shows commented out."""
    command = container()["command"]
    optional = re.findall(r"^\s*# - (--\S+)$", MANIFEST.read_text(), re.MULTILINE)
    return [command, *[[*command, flag] for flag in optional]]


@pytest.mark.parametrize("command", command_lines(), ids=lambda c: c[-1])
def test_the_command_is_the_real_programs(command: list[str]) -> None:
    assert command[0] == "eohub-storage-sampler"
    app = StorageSamplerApp()
    app.parse_command_line(command[1:])
    sampler = app.make_sampler()
    assert isinstance(sampler, KubernetesSampler)
    assert (sampler.source, app.interval) == ("kubelet", 3600)
    if "claim_groups" in command[-1]:
        assert sampler.claim_groups == {"group-climate": "climate"}


def howto_values() -> dict[str, Any]:
    """The how-to's values fragment for the sampler's service and role."""
    blocks = re.findall(r"```yaml\n(hub:\n.*?)```", HOWTO.read_text(), re.DOTALL)
    (block,) = blocks
    values: dict[str, Any] = yaml.safe_load(block)
    return values


def test_the_token_is_the_one_the_chart_makes_for_the_howtos_service() -> None:
    values = merge_values(load_values(KIT / "values.yaml"), howto_values())
    values["hub"].pop("extraFiles")  # the drop-ins are not this test's
    secret = chart_secret(values)
    config = hub_config_from_values(values, CHART_DEFAULTS, secret=secret)
    services = {s["name"]: s for s in config.JupyterHub.services}
    roles = {r["name"]: r for r in config.JupyterHub.load_roles}
    assert len(roles) == len(config.JupyterHub.load_roles)
    role = roles[SERVICE]
    assert (set(role["scopes"]), role["services"]) == ({INGEST, ACCESS}, [SERVICE])
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container()["env"]}
    ref = env["EOHUB_STORAGE_TOKEN"]["secretKeyRef"]
    assert ref["name"] == HUB_SECRET
    assert secret[ref["key"]] == services[SERVICE]["api_token"]


def test_the_sampler_reaches_the_accounting_service() -> None:
    accounting = manifest("Deployment", KIT / "accounting" / "deployment.yaml")
    labels = accounting["spec"]["template"]["metadata"]["labels"]
    (port,) = accounting["spec"]["template"]["spec"]["containers"][0]["ports"]
    service = manifest("Service", KIT / "accounting" / "service.yaml")
    url = urlsplit({e["name"]: e.get("value") for e in container()["env"]}["EOHUB_ACCOUNTING_URL"])
    assert (url.hostname, url.port) == (
        service["metadata"]["name"],
        service["spec"]["ports"][0]["port"],
    )
    policy = manifest("NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    (rule,) = policy["ingress"]
    sampler_labels = manifest("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert rule["from"][0]["podSelector"]["matchLabels"].items() <= sampler_labels.items()
    assert rule["ports"] == [{"port": port["containerPort"], "protocol": "TCP"}]
