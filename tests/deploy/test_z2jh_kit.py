"""The Zero to JupyterHub deploy kit in ``deploy/z2jh/``: its manifests meet the
Kubernetes schema (strictly) and the restricted Pod Security Standard, and its values
file, mapped onto the hub's config as chart 4.4.0 maps it (``tests/support/z2jh.py``),
gives eohub's spawner, the accounting service with its token from the chart's Secret,
and the roles users need. No hub is started here.
"""

from __future__ import annotations

import copy
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml

from eohub.accounting.scopes import ACCESS, ADMIN, CUSTOM_SCOPES, INGEST, READ, SERVICE_NAME
from eohub.domain.launch.pod_security import restricted_violations
from tests.support.tools import DROPIN_DIR, REPO_ROOT
from tests.support.z2jh import (
    CHART_DEFAULTS,
    CHART_VERSION,
    CONFIG_D,
    HUB_IMAGE,
    HUB_SECRET,
    chart_secret,
    hub_config_from_values,
    hub_environment,
    load_values,
    merge_values,
)

KIT = REPO_ROOT / "deploy" / "z2jh"
VALUES = KIT / "values.yaml"
#: The oldest Kubernetes chart 4.4.0 supports, and the newest schema we have.
SCHEMA_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
MANIFEST_FILES = sorted(p for p in KIT.rglob("*.yaml") if p != VALUES)
MANIFESTS = [
    (path, doc) for path in MANIFEST_FILES for doc in yaml.safe_load_all(path.read_text()) if doc
]
HUB_CLIENT = "eohub-accounting-hub"


def _id(path: Path, doc: dict[str, Any]) -> str:
    return f"{path.relative_to(KIT)}:{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def manifest(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in MANIFESTS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in deploy/z2jh: {len(found)} found"
    return found[0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def without_dropins(values: dict[str, Any]) -> dict[str, Any]:
    """The values less the drop-ins they mount, for checks of the values' own keys."""
    trimmed = copy.deepcopy(values)
    trimmed["hub"].pop("extraFiles")
    return trimmed


def repo_dropins(values: dict[str, Any]) -> dict[str, str]:
    """The text ``helm --set-file`` gives each mounted drop-in: the repository's file of
    the same name (the how-to's command)."""
    mounts = [f["mountPath"] for f in values["hub"]["extraFiles"].values()]
    return {m: (DROPIN_DIR / PurePosixPath(m).name).read_text() for m in mounts}


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return load_values(VALUES)


@pytest.fixture(scope="module")
def secret(values: dict[str, Any]) -> dict[str, str]:
    return chart_secret(values)


@pytest.fixture(scope="module")
def config(values: dict[str, Any], secret: dict[str, str]) -> Any:
    return hub_config_from_values(without_dropins(values), CHART_DEFAULTS, secret=secret)


# -- the manifests ------------------------------------------------------------------------


def test_the_kit_has_its_manifests() -> None:
    kinds = sorted(d["kind"] for _, d in MANIFESTS)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "NetworkPolicy",
        "NetworkPolicy",
        "Service",
        "Service",
        "ServiceAccount",
        "StatefulSet",
    ]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize(("path", "doc"), MANIFESTS, ids=[_id(p, d) for p, d in MANIFESTS])
def test_manifest_meets_the_kubernetes_schema(
    path: Path, doc: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    ("kind", "name"), [("Deployment", "eohub-accounting"), ("StatefulSet", "eohub-accounting-db")]
)
def test_pods_meet_the_restricted_standard(kind: str, name: str) -> None:
    template = manifest(kind, name)["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": template["spec"]}
    kubernetes_validate.validate(pod, SCHEMA_VERSIONS[-1], strict=True)
    assert restricted_violations(pod) == []


def test_the_accounting_service_needs_no_kubernetes_api() -> None:
    # It talks to the hub's REST API and its database only: no RBAC, no token mounted.
    assert not [d for _, d in MANIFESTS if d["kind"] in ("Role", "RoleBinding", "ClusterRole")]
    assert manifest("ServiceAccount", "eohub-accounting")["automountServiceAccountToken"] is False
    pod = manifest("Deployment", "eohub-accounting")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "eohub-accounting"
    assert pod["automountServiceAccountToken"] is False


def test_the_deployment_runs_the_service_as_the_hub_registers_it(values: dict[str, Any]) -> None:
    deployment = manifest("Deployment", "eohub-accounting")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    assert env["JUPYTERHUB_API_TOKEN"] == {
        "secretKeyRef": {"name": HUB_SECRET, "key": f"hub.services.{SERVICE_NAME}.apiToken"}
    }
    assert env["JUPYTERHUB_SERVICE_NAME"] == SERVICE_NAME
    assert env["JUPYTERHUB_CLIENT_ID"] == f"service-{SERVICE_NAME}"
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == f"/services/{SERVICE_NAME}/"
    assert env["JUPYTERHUB_OAUTH_CALLBACK_URL"] == f"/services/{SERVICE_NAME}/oauth_callback"
    hub = values["hub"]
    assert container["image"] == f"{hub['image']['name']}:{hub['image']['tag']}"
    # One replica: the reconcile and enforcement loops must not run twice.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # The Service, the container and the hub's service entry agree on the port.
    port = manifest("Service", SERVICE_NAME)["spec"]["ports"][0]
    assert port["targetPort"] == container["ports"][0]["name"] == "http"
    assert hub["services"][SERVICE_NAME]["url"] == f"http://{SERVICE_NAME}:{port['port']}"
    assert container["ports"][0]["containerPort"] == port["port"]


def test_the_network_policies_select_the_pods_they_protect(values: dict[str, Any]) -> None:
    labels = manifest("Deployment", "eohub-accounting")["spec"]["template"]["metadata"]["labels"]
    # The chart's hub NetworkPolicy admits only pods with this label.
    assert labels["hub.jupyter.org/network-access-hub"] == "true"
    policy = manifest("NetworkPolicy", "eohub-accounting")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    sources = [p["podSelector"]["matchLabels"]["component"] for p in policy["ingress"][0]["from"]]
    assert sorted(sources) == ["hub", "proxy"]
    for rules in (values["hub"]["networkPolicy"], values["proxy"]["chp"]["networkPolicy"]):
        (rule,) = rules["egress"]
        assert rule["to"][0]["podSelector"]["matchLabels"].items() <= labels.items()
        assert rule["ports"] == [{"port": 10101, "protocol": "TCP"}]
    db = manifest("StatefulSet", "eohub-accounting-db")["spec"]["template"]["metadata"]["labels"]
    db_policy = manifest("NetworkPolicy", "eohub-accounting-db")["spec"]
    assert db_policy["podSelector"]["matchLabels"].items() <= db.items()


# -- the image ----------------------------------------------------------------------------


def test_the_image_builds_from_the_charts_hub_image(values: dict[str, Any]) -> None:
    lines = (KIT / "Dockerfile").read_text().splitlines()
    assert [line for line in lines if line.startswith("FROM ")] == [f"FROM {HUB_IMAGE}"]
    assert any("pip install" in line and "EOHUB_SPEC" in line for line in lines)
    assert any(line.startswith('ARG EOHUB_SPEC="eohub[postgres]') for line in lines)
    assert lines[-1] == "USER 1000"  # back to the chart image's unprivileged user
    assert values["hub"]["image"]["tag"].startswith(f"{CHART_VERSION}-eohub-")


# -- the values ---------------------------------------------------------------------------


def test_the_values_kubernetes_fragments_meet_the_schema(
    values: dict[str, Any], secret: dict[str, str]
) -> None:
    for name, rules in (
        ("hub", values["hub"]["networkPolicy"]),
        ("proxy", values["proxy"]["chp"]["networkPolicy"]),
    ):
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": rules["egress"]},
        }
        kubernetes_validate.validate(policy, SCHEMA_VERSIONS[-1], strict=True)
    env = [
        {"name": k, **({"value": v} if isinstance(v, str) else v)}
        for k, v in values["hub"]["extraEnv"].items()
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hub"},
        "spec": {"containers": [{"name": "hub", "image": HUB_IMAGE, "env": env}]},
    }
    kubernetes_validate.validate(pod, SCHEMA_VERSIONS[-1], strict=True)
    assert set(hub_environment(values, secret)) == {
        "EOHUB_ACCOUNTING_URL",
        "EOHUB_ACCOUNTING_HUB_TOKEN",
    }


def test_the_values_use_eohubs_spawner_and_authenticator(config: Any) -> None:
    assert config.JupyterHub.spawner_class == "eohub-kube"
    assert config.JupyterHub.authenticator_class == "eohub-oidc"
    spawners = entry_points(group="jupyterhub.spawners")
    assert spawners["eohub-kube"].value == "eohub.spawner.kube:QuotaKubeSpawner"
    authenticators = entry_points(group="jupyterhub.authenticators")
    assert authenticators["eohub-oidc"].value.startswith("eohub.auth.oidc")


def test_the_accounting_service_gets_its_token_from_the_charts_secret(
    config: Any, values: dict[str, Any], secret: dict[str, str]
) -> None:
    services = {s["name"]: s for s in config.JupyterHub.services}
    assert set(services) == {SERVICE_NAME, HUB_CLIENT}
    accounting = services[SERVICE_NAME]
    assert accounting["api_token"] == secret[f"hub.services.{SERVICE_NAME}.apiToken"]
    assert "command" not in accounting  # its own Deployment, not a process in the hub pod
    assert accounting["url"] == values["hub"]["extraEnv"]["EOHUB_ACCOUNTING_URL"]
    assert set(accounting["oauth_client_allowed_scopes"]) == {ADMIN, READ}
    assert accounting["oauth_no_confirm"] is True
    assert all("apiToken" not in values["hub"]["services"][name] for name in services)
    # The hub's client posts with the token the chart registered for eohub-accounting-hub.
    env = hub_environment(values, secret)
    assert env["EOHUB_ACCOUNTING_HUB_TOKEN"] == services[HUB_CLIENT]["api_token"]
    assert env["EOHUB_ACCOUNTING_HUB_TOKEN"] != accounting["api_token"]


def test_the_roles_give_users_the_accounting_pages(config: Any) -> None:
    roles = {r["name"]: r for r in config.JupyterHub.load_roles}
    assert len(roles) == len(config.JupyterHub.load_roles)  # JupyterHub refuses duplicates
    assert set(roles["user"]["scopes"]) == {"self", ACCESS}
    client = roles["eohub-accounting-hub-client"]
    assert (set(client["scopes"]), client["services"]) == ({INGEST, ACCESS}, [HUB_CLIENT])
    assert roles["eohub-accounting-service"]["services"] == [SERVICE_NAME]
    # hub.extraConfig adds drop-in 30's admins role (its members are read at start-up).
    assert set(roles["eohub-accounting-admins"]["scopes"]) == {ADMIN, ACCESS}
    assert config.JupyterHub.custom_scopes == CUSTOM_SCOPES


def test_the_values_keep_the_charts_home_storage(config: Any) -> None:
    spawner = config.KubeSpawner
    assert spawner.storage_pvc_ensure is True
    assert spawner.storage_capacity == "10Gi"
    assert "pvc_name_template" not in spawner  # KubeSpawner's claim-{user_server}
    (volume,) = spawner.volumes
    assert volume["persistentVolumeClaim"] == {"claimName": "{pvc_name}"}
    (mount,) = spawner.volume_mounts
    assert (mount["name"], mount["mountPath"]) == (volume["name"], "/home/jovyan")
    assert (spawner.uid, spawner.fs_gid, spawner.allow_privilege_escalation) == (1000, 100, False)
    assert [p["slug"] for p in spawner.profile_list] == ["pangeo", "rstudio"]


def test_the_values_drop_the_privileged_metadata_blocker(
    config: Any, values: dict[str, Any]
) -> None:
    assert list(config.KubeSpawner.init_containers) == []
    merged = merge_values(CHART_DEFAULTS, values)["singleuser"]["networkPolicy"]
    # The chart's singleuser NetworkPolicy blocks the metadata server instead.
    assert merged["enabled"] is True
    assert merged["egressAllowRules"]["cloudMetadataServer"] is False


def test_the_charts_default_would_add_a_privileged_init_container() -> None:
    # Why values.yaml sets blockWithIptables: false: eohub refuses this pod.
    config = hub_config_from_values({}, CHART_DEFAULTS)
    (container,) = config.KubeSpawner.init_containers
    assert container.name == "block-cloud-metadata"
    pod = {
        "metadata": {"name": "jupyter-alice"},
        "spec": {
            "initContainers": [{"name": container.name, "securityContext": {"privileged": True}}],
            "containers": [],
        },
    }
    assert any("privileged" in problem for problem in restricted_violations(pod))


def test_the_values_mount_eohubs_dropins_but_not_the_managed_service(
    values: dict[str, Any],
) -> None:
    mounts = [PurePosixPath(f["mountPath"]) for f in values["hub"]["extraFiles"].values()]
    assert {str(m.parent) for m in mounts} == {CONFIG_D}
    assert all((DROPIN_DIR / m.name).is_file() for m in mounts)
    # Drop-in 30 would start a second, managed accounting service in the hub pod and
    # define the roles hub.loadRoles defines (JupyterHub refuses a role defined twice).
    assert "30-eohub-accounting.py" not in {m.name for m in mounts}


def test_the_dropins_load_as_the_chart_loads_them(
    values: dict[str, Any], secret: dict[str, str]
) -> None:
    config = hub_config_from_values(
        values, CHART_DEFAULTS, secret=secret, files=repo_dropins(values)
    )
    assert config.Spawner.default_url == "/lab"
    assert config.JupyterHub.allow_named_servers is True
    assert config.Authenticator.enable_auth_state is True
    assert config.Authenticator.refresh_pre_spawn is True


# -- the chart's mapping, as tables -----------------------------------------------------


@pytest.mark.parametrize(
    ("defaults", "values", "merged"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, {"a": {"b": 1, "c": 3}}),
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),  # lists replace, as in Helm
        ({"a": {"b": 1}}, {"a": {"b": None}}, {"a": {}}),  # null removes a default
        ({"a": 1}, {"b": {"c": 2}}, {"a": 1, "b": {"c": 2}}),
    ],
)
def test_values_merge_over_the_defaults_as_helm_merges_them(
    defaults: dict[str, Any], values: dict[str, Any], merged: dict[str, Any]
) -> None:
    assert merge_values(defaults, values) == merged


HOME = {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
DATA = {"name": "data", "persistentVolumeClaim": {"claimName": "common-data"}}


@pytest.mark.parametrize(
    ("extra", "volumes"),
    [
        (None, [HOME]),
        ([DATA], [HOME, DATA]),
        # 4.3.0+: a dict keeps its keys; KubeSpawner sorts the entries by key.
        ({"1-data": DATA}, {"volume-{user_server}": HOME, "1-data": DATA}),
    ],
)
def test_extra_volumes_join_the_home_volume(extra: Any, volumes: Any) -> None:
    config = hub_config_from_values(
        {"singleuser": {"storage": {"extraVolumes": extra}}}, CHART_DEFAULTS
    )
    assert config.KubeSpawner.volumes == volumes


@pytest.mark.parametrize(
    ("storage", "claim", "mount_path"),
    [
        ({}, "{pvc_name}", "/home/jovyan"),
        ({"homeMountPath": "/home/{username}"}, "{pvc_name}", "/home/{username}"),
        ({"type": "static", "static": {"pvcName": "homes"}}, "homes", "/home/jovyan"),
    ],
)
def test_home_storage_maps_onto_kubespawner(
    storage: dict[str, Any], claim: str, mount_path: str
) -> None:
    config = hub_config_from_values({"singleuser": {"storage": storage}}, CHART_DEFAULTS)
    (volume,) = config.KubeSpawner.volumes
    (mount,) = config.KubeSpawner.volume_mounts
    assert volume["persistentVolumeClaim"]["claimName"] == claim
    assert (mount["name"], mount["mountPath"]) == (volume["name"], mount_path)


def test_a_service_token_never_comes_from_the_values_file() -> None:
    values = {"hub": {"services": {"report-tool": {"apiToken": "from-values"}}}}
    secret = {"hub.config.JupyterHub.cookie_secret": "x", "hub.config.CryptKeeper.keys": "y"}
    with pytest.raises(KeyError, match=r"hub\.services\.report-tool\.apiToken"):
        hub_config_from_values(values, CHART_DEFAULTS, secret=secret)


def test_the_hub_checks_eohubs_config_last_so_a_bad_one_stops_it(
    values: dict[str, Any],
) -> None:
    extra = values["hub"]["extraConfig"]
    # The chart runs extraConfig in key order, after the drop-ins.
    assert sorted(extra)[-1] == "zz-eohub-check"
    assert "check_hub_config(c)" in extra["zz-eohub-check"]
