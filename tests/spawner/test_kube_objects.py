"""The Kubernetes objects QuotaKubeSpawner builds from an approved launch.

Every spawn goes through the real ``authorize_launch`` (options schema, policy, quota
check against a fake accounting client), then KubeSpawner's own manifest builders. Each
pod and claim is validated against the official schema (kubernetes-validate, strict,
newest version it ships) and checked against the restricted Pod Security Standard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tornado.web import HTTPError

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.accounting.events import event_key
from eohub.domain.accounting.resources import parse_bytes
from eohub.domain.launch.pod_security import restricted_violations
from tests.support.kube_api import fake_kubeconfig, validate
from tests.support.kube_spawners import (
    CHARGE_GROUPS,
    ENVIRONMENTS,
    GROUPS_OF,
    NO_API,
    SIZES,
    STARTED,
    VOLUMES,
    FakeAccounting,
    make_spawner,
    serialise,
)

GIB = 1024**3


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_kubeconfig(tmp_path_factory.mktemp("kube"), NO_API) as path:
        yield path


async def launch(spawner: Any, options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Authorize ``options``; the pod and (when the workspace is mounted) the claim."""
    await spawner.authorize_launch(options)
    pod = serialise(spawner, await spawner.get_pod_manifest())
    pvc = serialise(spawner, spawner.get_pvc_manifest()) if spawner.storage_pvc_ensure else None
    validate(pod)
    if pvc is not None:
        validate(pvc)
    return pod, pvc


def notebook(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    assert container["name"] == "notebook"
    return container


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in notebook(pod)["env"]}


def volumes_of(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod["spec"].get("volumes", [])}


def mounts_of(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in notebook(pod).get("volumeMounts", [])}


def claims_of(pod: dict[str, Any]) -> dict[str, bool]:
    """Claim name -> read-only, for every claim the pod mounts."""
    mounts = {m["name"]: m for m in notebook(pod).get("volumeMounts", [])}
    return {
        v["persistentVolumeClaim"]["claimName"]: mounts[v["name"]]["readOnly"]
        for v in pod["spec"].get("volumes", [])
        if "persistentVolumeClaim" in v
    }


# -- what the pod is made of ----------------------------------------------------------


async def test_a_default_launch_uses_the_default_environment_size_and_volumes() -> None:
    accounting = FakeAccounting()
    spawner = await make_spawner("alice", accounting=accounting)
    pod, pvc = await launch(spawner, {})

    container = notebook(pod)
    assert container["image"] == ENVIRONMENTS["pangeo"]["image"]
    assert container["resources"] == {
        "requests": {"cpu": 1.0, "memory": 2 * GIB},
        "limits": {"cpu": 2.0, "memory": 4 * GIB},
    }
    assert pod["spec"]["nodeSelector"] == {"eohub.io/pool": "users"}
    assert "tolerations" not in pod["spec"]
    # eohub stops it at 8 hours; the deadline is a backstop 10 minutes beyond.
    assert pod["spec"]["activeDeadlineSeconds"] == 8 * 3600 + 600
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert claims_of(pod) == {"workspace-alice": False, "common-data": True}
    assert set(mounts_of(pod)) == {"/home/jovyan", "/data/common"}
    labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
    assert labels["eohub.io/group"] == "eo-sci"
    assert labels["eohub.io/environment"] == "pangeo"
    assert labels["eohub.io/size"] == "small"
    assert annotations["eohub.io/group"] == "eo-sci"
    assert annotations["eohub.io/session-id"] == event_key("start", "alice", "", STARTED)
    env = env_of(pod)
    assert env["EOHUB_GROUP"] == "eo-sci"
    assert env["EOHUB_ENVIRONMENT"] == "pangeo"
    assert env["EOHUB_SIZE"] == "small"
    assert env["STAC_API_URL"] == "https://stac.example.org/v1"
    assert env["GIT_AUTHOR_NAME"] == env["GIT_COMMITTER_NAME"] == "Alice Example"
    assert env["GIT_AUTHOR_EMAIL"] == "alice@example.org"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab"
    assert "EOHUB_ACCESS_TOKEN" not in env
    # The one quota check, for the resources charged: the size's guarantees.
    assert accounting.quota_checks == [
        {"user": "alice", "group": "eo-sci", "cpu": 1.0, "memory_bytes": 2 * GIB, "gpus": 0}
    ]
    assert pvc is not None
    assert pvc["metadata"]["name"] == "workspace-alice"
    assert pvc["spec"]["resources"]["requests"]["storage"] == str(10 * GIB)


async def test_a_gpu_launch_gets_the_gpu_its_node_pool_and_the_token() -> None:
    spawner = await make_spawner("bob", access_token="oidc-access-token")
    options = {"environment": "gpu-ml", "size": "gpu", "group": "eo-ml", "volumes": ["ml_models"]}
    pod, _ = await launch(spawner, options)

    container = notebook(pod)
    assert container["image"] == ENVIRONMENTS["gpu-ml"]["image"]
    assert container["resources"] == {
        "requests": {"cpu": 8.0, "memory": 32 * GIB, "nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": "1"},
    }
    assert pod["spec"]["nodeSelector"] == {
        "eohub.io/pool": "gpu",
        "nvidia.com/gpu.present": "true",
    }
    assert pod["spec"]["tolerations"] == ENVIRONMENTS["gpu-ml"]["tolerations"]
    assert "activeDeadlineSeconds" not in pod["spec"]
    # bob is in eo-sci too, but scratch is optional and was not chosen.
    assert claims_of(pod) == {"workspace-bob": False, "common-data": True, "ml-models": True}
    assert pod["metadata"]["labels"]["eohub.io/group"] == "eo-ml"
    assert env_of(pod)["EOHUB_ACCESS_TOKEN"] == "oidc-access-token"


async def test_an_optional_volume_is_mounted_at_its_sub_path() -> None:
    spawner = await make_spawner("alice")
    pod, _ = await launch(spawner, {"volumes": ["scratch"], "urlpath": "/lab/tree/scratch"})
    assert claims_of(pod)["eo-scratch"] is False
    assert mounts_of(pod)["/scratch"]["subPath"] == "eo-sci/alice"
    assert env_of(pod)["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/scratch"


VALID_LAUNCHES = [
    ("alice", {}),
    ("alice", {"environment": "pangeo", "size": "medium", "volumes": ["scratch"]}),
    ("bob", {"environment": "gpu-ml", "size": "small", "group": "eo-ml"}),
    ("bob", {"environment": "gpu-ml", "size": "gpu", "group": "eo-ml", "volumes": ["ml_models"]}),
    # eo-sci grants pangeo and scratch (ml_models is eo-ml's: the charged group grants it).
    ("bob", {"environment": "pangeo", "group": "eo-sci", "volumes": ["scratch"]}),
    ("carol", {"environment": "rstudio", "group": "climate"}),
    ("operator", {"environment": "staff-tools", "group": "eo-sci"}),
]


@pytest.mark.parametrize(("username", "options"), VALID_LAUNCHES)
async def test_every_pod_and_claim_is_valid_and_meets_the_restricted_standard(
    username: str, options: dict[str, Any]
) -> None:
    groups = GROUPS_OF.get(username, {"eo-sci"})
    spawner = await make_spawner(username, groups)
    pod, pvc = await launch(spawner, options)  # validates both against the schema
    assert restricted_violations(pod) == []
    security = notebook(pod)["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pvc is not None


async def test_a_new_launch_starts_from_the_admin_config_not_the_last_launch() -> None:
    # The hub keeps one spawner per server across restarts.
    spawner = await make_spawner("bob", access_token="tok")
    await launch(spawner, {"environment": "gpu-ml", "size": "gpu", "group": "eo-ml"})
    pod, _ = await launch(spawner, {"environment": "pangeo", "group": "eo-sci"})
    assert "nvidia.com/gpu" not in str(notebook(pod)["resources"])
    assert "tolerations" not in pod["spec"]
    assert "EOHUB_ACCESS_TOKEN" not in env_of(pod)
    assert pod["spec"]["nodeSelector"] == {"eohub.io/pool": "users"}
    assert len(pod["spec"]["volumes"]) == len({v["name"] for v in pod["spec"]["volumes"]}) == 2


async def test_text_with_braces_reaches_the_pod_as_written() -> None:
    # KubeSpawner formats env, labels and annotations with {username}; data must not be.
    spawner = await make_spawner("alice", display_name="Ada {Lovelace} }{")
    pod, _ = await launch(spawner, {})
    assert env_of(pod)["GIT_AUTHOR_NAME"] == "Ada {Lovelace} }{"


async def test_group_names_that_are_not_kubernetes_names_are_slugged() -> None:
    group = "Climate Lab/EO"
    spawner = await make_spawner("erin", {group}, charge_groups=[])
    pod, _ = await launch(spawner, {"environment": "pangeo", "volumes": []})
    assert pod["metadata"]["annotations"]["eohub.io/group"] == group
    assert pod["metadata"]["labels"]["eohub.io/group"].startswith("climate-lab-eo---")
    assert env_of(pod)["EOHUB_GROUP"] == group


# -- refusals ---------------------------------------------------------------------------

REFUSALS = [
    ("hidden environment", "alice", {"environment": "gpu-ml"}, "environment"),
    ("environment for other users", "alice", {"environment": "staff-tools"}, "environment"),
    ("unknown environment", "alice", {"environment": "matlab"}, "environment"),
    ("unknown size", "alice", {"size": "huge"}, "size"),
    ("gpu size on a cpu environment", "bob", {"size": "gpu", "group": "eo-sci"}, "size"),
    ("size not offered here", "carol", {"environment": "rstudio", "size": "medium"}, "size"),
    ("volume of another group", "alice", {"volumes": ["ml_models"]}, "volumes"),
    ("always-mounted volume as a choice", "alice", {"volumes": ["common_data"]}, "volumes"),
    ("unknown volume", "alice", {"volumes": ["everything"]}, "volumes"),
    ("group the user is not in", "alice", {"group": "eo-ml"}, "group"),
    ("group that cannot be charged", "carol", {"group": "reading-club"}, "group"),
    ("no group chosen among several", "bob", {}, "group"),
    ("no chargeable group", "dave", {}, "group"),
    ("unknown option", "alice", {"image": "evil/miner:latest"}, "image"),
    ("wrong type", "alice", {"size": ["small"]}, "size"),
    ("url with a scheme", "alice", {"urlpath": "//evil.example.org"}, "urlpath"),
]


@pytest.mark.parametrize(
    ("username", "options", "field"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
async def test_a_refused_launch_is_a_400_before_anything_is_built(
    username: str, options: dict[str, Any], field: str
) -> None:
    accounting = FakeAccounting()
    spawner = await make_spawner(username, accounting=accounting)
    before = {n: getattr(spawner, n) for n in ("image", "volumes", "environment", "extra_labels")}
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch(options)
    assert raised.value.status_code == 400
    assert f"{field}:" in raised.value.log_message
    assert spawner.launch is None
    assert accounting.quota_checks == []  # policy refused before the quota was asked
    assert {n: getattr(spawner, n) for n in before} == before


async def test_a_spent_budget_is_a_403_with_the_reason() -> None:
    refusal = QuotaAnswer(False, "Group eo-sci has used its 500 core-hours for 2026-03.", {})
    spawner = await make_spawner("alice", accounting=FakeAccounting(refusal))
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch({})
    assert raised.value.status_code == 403
    assert "500 core-hours" in raised.value.log_message
    assert spawner.launch is None


# -- loosening the pod ------------------------------------------------------------------

HOST_PATH = {"kind": "host_path", "path": "/srv/eo/{username}", "mount_path": "/data/node"}
NFS = {"kind": "nfs", "server": "nas.example.org", "path": "/eo", "mount_path": "/data/nas"}
LOOSENINGS = [
    ("privileged", {"privileged": True}, "container 'notebook' is privileged"),
    ("privilege escalation", {"allow_privilege_escalation": True}, "allowPrivilegeEscalation"),
    ("root", {"uid": 0}, "runs as root"),
    ("no security context", {"container_security_context": {}}, "does not drop ALL"),
    ("host network", {"extra_pod_config": {"hostNetwork": True}}, "node's network"),
    ("host_path volume", {"launch_volumes": {**VOLUMES, "node": HOST_PATH}}, "hostPath"),
    ("nfs volume", {"launch_volumes": {**VOLUMES, "nas": NFS}}, "of type nfs"),
]


@pytest.mark.parametrize(
    ("traits", "problem"), [c[1:] for c in LOOSENINGS], ids=[c[0] for c in LOOSENINGS]
)
async def test_a_loosened_pod_is_refused_unless_allowed(
    traits: dict[str, Any], problem: str
) -> None:
    spawner = await make_spawner("alice", **traits)
    await spawner.authorize_launch({})
    with pytest.raises(HTTPError) as raised:
        await spawner.get_pod_manifest()
    assert raised.value.status_code == 500
    assert problem in raised.value.log_message

    allowed = await make_spawner("alice", allow_unrestricted_pods=True, **traits)
    pod, _ = await launch(allowed, {})  # still a valid pod, sent as configured
    assert any(problem in p for p in restricted_violations(pod))


# -- hypothesis: whatever the request, only what policy allows reaches a pod ------------

NAMES = st.sampled_from(
    [*ENVIRONMENTS, *SIZES, *VOLUMES, *CHARGE_GROUPS, "reading-club", "matlab", "", "-x"]
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | NAMES
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELD_VALUES = {
    "environment": NAMES | VALUES,
    "size": NAMES | VALUES,
    "group": NAMES | VALUES,
    "volumes": st.lists(NAMES, max_size=4) | VALUES,
    "urlpath": st.sampled_from(["/lab", "/rstudio/", "/lab/tree/a b", "//x.org", "/../etc"])
    | VALUES,
}
KNOWN = st.fixed_dictionaries({}, optional=FIELD_VALUES)
# Well-formed requests, allowed or not, so that many examples do build a pod.
PLAUSIBLE = st.fixed_dictionaries(
    {},
    optional={
        "environment": st.sampled_from([*ENVIRONMENTS, "matlab"]),
        "size": st.sampled_from([*SIZES, "huge"]),
        "group": st.sampled_from([*CHARGE_GROUPS, "reading-club"]),
        "volumes": st.lists(st.sampled_from([*VOLUMES, "home"]), unique=True, max_size=3),
        "urlpath": st.sampled_from(["/lab", "/rstudio/", "/lab/tree/work", "/vscode"]),
    },
)
USER_OPTIONS = st.one_of(
    PLAUSIBLE,
    PLAUSIBLE,
    PLAUSIBLE,
    KNOWN,
    st.builds(
        lambda a, b: {**b, **a},
        KNOWN,
        st.dictionaries(st.text(max_size=10), VALUES, min_size=1, max_size=3),
    ),
    VALUES,
)
ANSWERS = st.sampled_from(
    [
        QuotaAnswer(True, "Within budget.", {"core_hours": 500.0, "gpu_hours": 10.0}),
        QuotaAnswer(True, "Nearly spent.", {"core_hours": 2.5, "gpu_hours": 0.0}),
        QuotaAnswer(False, "Spent.", {"core_hours": 0.0}),
        QuotaAnswer(True, "The service did not answer.", {}, "fail-open"),
    ]
)
USERS = st.sampled_from([*GROUPS_OF, "operator"])

# The oracle reads the admin's raw config, not eohub's parsed one or its policy code.


def groups_of(username: str) -> set[str]:
    return GROUPS_OF.get(username, {"eo-sci"})


def visible(environment: str, username: str) -> bool:
    env = ENVIRONMENTS[environment]
    groups, users = set(env.get("allowed_groups", [])), set(env.get("allowed_users", []))
    return (not groups and not users) or username in users or bool(groups & groups_of(username))


def mountable(volume: str, username: str) -> bool:
    groups = set(VOLUMES[volume].get("allowed_groups", []))
    return not groups or bool(groups & groups_of(username))


def allowed_options(username: str) -> st.SearchStrategy[dict[str, Any]]:
    """Requests within what ``username`` may launch (a quota may still refuse them)."""
    chargeable = sorted(groups_of(username) & set(CHARGE_GROUPS)) or ["reading-club"]
    optional = [n for n, v in VOLUMES.items() if v.get("optional") and mountable(n, username)]
    envs = [n for n in ENVIRONMENTS if visible(n, username)]

    def for_environment(env: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {"environment": st.just(env), "group": st.sampled_from(chargeable)},
            optional={
                "size": st.sampled_from(ENVIRONMENTS[env]["sizes"]),
                "volumes": st.lists(st.sampled_from(optional), unique=True)
                if optional
                else st.just([]),
                "urlpath": st.sampled_from(["/lab", "/lab/tree/work", "/vscode"]),
            },
        )

    return st.sampled_from(envs).flatmap(for_environment)


def resources_of(size: str) -> dict[str, Any]:
    """The pod resources of ``size``, from the raw config."""
    data = SIZES[size]
    requests: dict[str, Any] = {"cpu": float(data["cpu"]), "memory": parse_bytes(data["memory"])}
    limits: dict[str, Any] = {}
    if "cpu_limit" in data:
        limits["cpu"] = float(data["cpu_limit"])
    if "memory_limit" in data:
        limits["memory"] = parse_bytes(data["memory_limit"])
    if data.get("gpus"):
        requests["nvidia.com/gpu"] = limits["nvidia.com/gpu"] = str(data["gpus"])
    return {"requests": requests, "limits": limits} if limits else {"requests": requests}


def assert_only_allowed(pod: dict[str, Any], username: str) -> None:
    container = notebook(pod)
    envs = [n for n, e in ENVIRONMENTS.items() if e["image"] == container["image"]]
    assert len(envs) == 1, f"image {container['image']!r} is not an environment's"
    env = envs[0]
    assert visible(env, username)
    sizes = [s for s in ENVIRONMENTS[env]["sizes"] if resources_of(s) == container["resources"]]
    assert sizes, f"resources {container['resources']} are no size of {env}"
    group = pod["metadata"]["annotations"]["eohub.io/group"]
    assert group in groups_of(username) & set(CHARGE_GROUPS)
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    mounted = set()
    for volume in pod["spec"]["volumes"]:
        assert set(volume) == {"name", "persistentVolumeClaim"}, volume
        claim, mount = volume["persistentVolumeClaim"]["claimName"], mounts[volume["name"]]
        sources = [
            name
            for name, v in VOLUMES.items()
            if v["claim_name"].format(username=username) == claim
            and v["mount_path"] == mount["mountPath"]
            and v.get("read_only", False) == mount["readOnly"]
        ]
        assert len(sources) == 1, volume
        assert mountable(sources[0], username)
        mounted.add(sources[0])
    assert {"workspace", "common_data"} <= mounted  # always mounted, for everyone
    assert restricted_violations(pod) == []


# Spawners kept across examples, as the hub keeps one per server: a launch must not
# inherit anything from the one before. Keyed by event loop, since KubeSpawner's API
# client belongs to the loop that made the spawner.
_kept: dict[tuple[int, str], Any] = {}


async def spawner_for(username: str, fresh: bool) -> Any:
    key = (id(asyncio.get_running_loop()), username)
    if fresh or key not in _kept:
        _kept[key] = await make_spawner(username, groups_of(username))
    return _kept[key]


@settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(username=USERS, answer=ANSWERS, fresh=st.booleans(), data=st.data())
async def test_random_user_options_never_reach_a_pod_policy_did_not_allow(
    username: str, answer: QuotaAnswer, fresh: bool, data: st.DataObject
) -> None:
    # Half the requests are within what the user may launch, half anything at all.
    within = data.draw(st.booleans(), label="within policy")
    options = data.draw(allowed_options(username) if within else USER_OPTIONS, label="options")
    spawner = await spawner_for(username, fresh)
    spawner.accounting = FakeAccounting(answer)
    refusal: HTTPError | None = None
    try:
        await spawner.authorize_launch(options)
    except HTTPError as e:
        refusal = e
    if refusal is not None:
        event(f"refused with {refusal.status_code}")
        assert refusal.status_code in (400, 403), refusal
        return
    event("pod built")
    pod = serialise(spawner, await spawner.get_pod_manifest())
    assert_only_allowed(pod, username)


async def test_stored_options_may_repeat_what_the_launch_charges_but_not_change_it() -> None:
    spawner = await make_spawner("alice")
    launch = await spawner.authorize_launch({"environment": "pangeo"})
    stored = launch.user_options()
    again = await (await make_spawner("alice")).authorize_launch(stored)
    assert again.user_options() == stored
    with pytest.raises(HTTPError) as raised:
        await (await make_spawner("alice")).authorize_launch({**stored, "cpu": 64})
    assert raised.value.status_code == 400
    assert "cpu: is set by the environment and size" in raised.value.log_message
