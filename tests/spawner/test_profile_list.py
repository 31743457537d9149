"""QuotaKubeSpawner with a ``profile_list``: what is charged, refused, kept and read.

Every launch goes through the real ``authorize_launch`` against a fake accounting
client, then KubeSpawner's own pod builder; pods are validated against the official
schema. The equality with plain KubeSpawner is test_profile_list_kubespawner.py's.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.web import HTTPError

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.pod_security import restricted_violations
from eohub.spawner.context import InvalidLaunchConfig
from tests.support.kube_api import fake_kubeconfig, validate
from tests.support.kube_spawners import (
    ENVIRONMENTS,
    NO_API,
    FakeAccounting,
    make_spawner,
    serialise,
)

GIB = 1024**3
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
IMAGE_REGEX = r"quay\.io/[a-z0-9-]+/[a-z0-9-]+:[0-9a-z.]+"
PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "CPU",
        "slug": "cpu",
        "kubespawner_override": {
            "image": "quay.io/eohub/cpu:1",
            "cpu_guarantee": 1.0,
            "cpu_limit": 2.0,
            "mem_guarantee": "2G",
            "mem_limit": "4G",
        },
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "pangeo": {"kubespawner_override": {"image": "quay.io/pangeo/notebook:1"}},
                    "scipy": {"kubespawner_override": {"image": "quay.io/jupyter/scipy:1"}},
                },
                "unlisted_choice": {
                    "enabled": True,
                    "validation_regex": IMAGE_REGEX,
                    "kubespawner_override": {"image": "{value}"},
                },
            },
            "cores": {
                "choices": {
                    "one": {"display_name": "1 core"},
                    "four": {"kubespawner_override": {"cpu_guarantee": 4.0, "cpu_limit": 4.0}},
                    "staff": {
                        "allowed_groups": ["staff"],
                        "kubespawner_override": {"cpu_guarantee": 64.0, "cpu_limit": 64.0},
                    },
                }
            },
        },
    },
    {
        "display_name": "GPU",
        "slug": "gpu",
        "kubespawner_override": {
            "image": "quay.io/eohub/gpu:1",
            "cpu_guarantee": 4.0,
            "mem_guarantee": "16G",
            "extra_resource_limits": {"nvidia.com/gpu": "2"},
            "node_selector": {"gpu": "a100"},
            "environment": {"CUDA_VISIBLE": "all"},
            "tolerations": [GPU_TOLERATION],
        },
    },
    {
        "display_name": "Burst",
        "slug": "burst",
        "eohub": {"charge": "limit"},
        "kubespawner_override": {
            "image": "quay.io/eohub/cpu:1",
            "cpu_guarantee": 0.5,
            "cpu_limit": 4.0,
            "mem_guarantee": "1G",
            "mem_limit": "8G",
        },
    },
    {
        "display_name": "Two vendors",
        "slug": "mixed-gpu",
        "kubespawner_override": {
            "image": "quay.io/eohub/gpu:1",
            "cpu_guarantee": 1.0,
            "mem_guarantee": "1G",
            "extra_resource_limits": {"amd.com/gpu": "1", "nvidia.com/gpu": "1"},
        },
    },
    {
        "display_name": "Limits only",
        "slug": "limits-only",
        "kubespawner_override": {
            "image": "quay.io/eohub/cpu:1",
            "cpu_limit": 2.0,
            "mem_limit": "4G",
        },
    },
    {
        "display_name": "ML only",
        "slug": "ml-only",
        "allowed_groups": ["eo-ml"],
        "kubespawner_override": {"image": "quay.io/eohub/ml-secret:1", "cpu_guarantee": 2.0},
    },
]


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_kubeconfig(tmp_path_factory.mktemp("kube"), NO_API) as path:
        yield path


async def spawner_with(profiles: Any = None, **traits: Any) -> Any:
    """alice's spawner, with the test environments and ``profiles`` as profile_list."""
    return await make_spawner(
        "alice", profile_list=copy.deepcopy(PROFILES) if profiles is None else profiles, **traits
    )


async def pod_of(spawner: Any, options: dict[str, Any]) -> dict[str, Any]:
    await spawner.authorize_launch(options)
    pod = serialise(spawner, await spawner.get_pod_manifest())
    validate(pod)
    return pod


def notebook(pod: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = pod["spec"]["containers"][0]
    return container


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in notebook(pod)["env"]}


# -- what is charged -----------------------------------------------------------------------

CHARGES = [
    ("guarantees", {"profile": "cpu"}, 1.0, 2 * GIB, 0),
    ("an option's override", {"profile": "cpu", "cores": "four"}, 4.0, 2 * GIB, 0),
    ("nvidia GPUs from extra_resource_limits", {"profile": "gpu"}, 4.0, 16 * GIB, 2),
    ("eohub charge: limit", {"profile": "burst"}, 4.0, 8 * GIB, 0),
    ("every */gpu resource", {"profile": "mixed-gpu"}, 1.0, 1 * GIB, 2),
    ("only limits: Kubernetes requests them", {"profile": "limits-only"}, 2.0, 4 * GIB, 0),
]


@pytest.mark.parametrize(
    ("options", "cpu", "memory", "gpus"), [c[1:] for c in CHARGES], ids=[c[0] for c in CHARGES]
)
async def test_the_quota_check_gets_what_the_merged_overrides_ask_for(
    options: dict[str, Any], cpu: float, memory: int, gpus: int
) -> None:
    accounting = FakeAccounting()
    spawner = await spawner_with(accounting=accounting)
    launch = await spawner.authorize_launch(options)
    assert accounting.quota_checks == [
        {"user": "alice", "group": "eo-sci", "cpu": cpu, "memory_bytes": memory, "gpus": gpus}
    ]
    stored = launch.user_options()
    # Apart from the profile's options, which may be named cpu or memory themselves.
    charged = stored["eohub_charged"]
    assert (charged["cpu"], charged["mem"], charged["gpus"]) == (cpu, memory, gpus)
    assert "cpu" not in stored
    pod = serialise(spawner, await spawner.get_pod_manifest())
    validate(pod)
    assert restricted_violations(pod) == []


async def test_a_gpu_profile_builds_its_pod() -> None:
    pod = await pod_of(await spawner_with(), {"profile": "gpu"})
    container = notebook(pod)
    assert container["image"] == "quay.io/eohub/gpu:1"
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    assert pod["spec"]["nodeSelector"] == {"gpu": "a100"}
    assert pod["spec"]["tolerations"] == [GPU_TOLERATION]
    assert env_of(pod)["CUDA_VISIBLE"] == "all"
    assert pod["metadata"]["labels"]["eohub.io/environment"] == "gpu"


SPENT = QuotaAnswer(False, "Group eo-sci has used its 500 core-hours.", {})
LATE_REFUSALS = [
    ("quota spent", SPENT, {"profile": "gpu"}, 403, "500 core-hours"),
    (
        "budget too small",
        QuotaAnswer(True, "ok", {"core_hours": 1.0}),
        {"profile": "gpu"},
        403,
        "does not fit",
    ),
    # A stored charge that the overrides do not make: refused after they were applied.
    (
        "wrong stored charge",
        None,
        {"profile": "gpu", "eohub_charged": {"cpu": 1, "mem": 1, "gpus": 0}},
        400,
        "eohub_charged: is set by",
    ),
]


@pytest.mark.parametrize(
    ("answer", "options", "status", "message"),
    [r[1:] for r in LATE_REFUSALS],
    ids=[r[0] for r in LATE_REFUSALS],
)
async def test_a_refusal_after_the_overrides_leaves_nothing_applied(
    answer: QuotaAnswer | None, options: dict[str, Any], status: int, message: str
) -> None:
    spawner = await spawner_with(accounting=FakeAccounting(answer))
    names: tuple[str, ...] = ("image", "cpu_guarantee", "mem_guarantee", "node_selector")
    names += (
        "extra_resource_limits",
        "environment",
        "tolerations",
        "user_options",
        "extra_labels",
    )
    before = {n: copy.deepcopy(getattr(spawner, n)) for n in names}
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch(options)
    assert raised.value.status_code == status
    assert message in raised.value.log_message
    assert spawner.launch is None
    assert {n: getattr(spawner, n) for n in names} == before


@pytest.mark.parametrize(
    ("budget", "options", "fits"),
    [
        ({"core_hours": 2.0}, {"profile": "gpu"}, False),  # 4 cores for 1 hour
        ({"core_hours": 2.0}, {"profile": "cpu"}, True),
        ({"core_hours": 2.0}, {"profile": "cpu", "cores": "four"}, False),
        ({"core_hours": 500.0, "gpu_hours": 1.0}, {"profile": "gpu"}, False),  # 2 GPUs
        ({"core_hours": 500.0, "gpu_hours": 2.0}, {"profile": "gpu"}, True),
    ],
)
async def test_a_profile_that_does_not_fit_the_budget_is_a_403(
    budget: dict[str, float], options: dict[str, Any], fits: bool
) -> None:
    answer = QuotaAnswer(True, "Within budget.", budget)
    spawner = await spawner_with(accounting=FakeAccounting(answer))
    if fits:
        assert (await spawner.authorize_launch(options)).profile is not None
        return
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch(options)
    assert raised.value.status_code == 403
    assert "does not fit the budget left of group 'eo-sci'" in raised.value.log_message
    assert spawner.launch is None


# -- nothing leaks ---------------------------------------------------------------------------


async def test_a_launch_does_not_inherit_the_last_ones_overrides() -> None:
    spawner = await spawner_with()
    await pod_of(spawner, {"profile": "gpu"})
    pod = await pod_of(spawner, {"profile": "cpu"})
    container = notebook(pod)
    assert "gpu" not in str(container["resources"])
    assert "nodeSelector" not in pod["spec"]
    assert "tolerations" not in pod["spec"]
    assert "CUDA_VISIBLE" not in env_of(pod)
    # And an environment launch after a profile launch: the environment's own pod.
    await pod_of(spawner, {"profile": "gpu"})
    pod = await pod_of(spawner, {"environment": "pangeo"})
    assert notebook(pod)["image"] == ENVIRONMENTS["pangeo"]["image"]
    assert pod["spec"]["nodeSelector"] == {"eohub.io/pool": "users"}
    assert "gpu" not in str(notebook(pod)["resources"])
    assert "CUDA_VISIBLE" not in env_of(pod)


async def test_the_admins_config_is_not_changed_by_a_launch() -> None:
    # Two spawners of one config share the admin's objects, as the hub's spawners do.
    node_selector = {"pool": "users"}
    environment = {"SHARED": "1"}
    profiles = copy.deepcopy(PROFILES)
    profiles[1]["kubespawner_override"]["node_selector"] = {"pool": None, "gpu": "a100"}
    snapshot = copy.deepcopy((node_selector, environment, profiles))
    first = await spawner_with(profiles, node_selector=node_selector, environment=environment)
    second = await spawner_with(profiles, node_selector=node_selector, environment=environment)
    gpu = await pod_of(first, {"profile": "gpu"})
    assert gpu["spec"]["nodeSelector"] == {"gpu": "a100"}
    await pod_of(first, {"profile": "cpu", "image--unlisted-choice": "quay.io/me/img:1"})
    pod = await pod_of(second, {"profile": "cpu"})
    assert pod["spec"]["nodeSelector"] == {"pool": "users"}
    assert env_of(pod)["SHARED"] == "1"
    assert "CUDA_VISIBLE" not in env_of(pod)
    assert (node_selector, environment, profiles) == snapshot


async def test_stored_options_restart_the_same_launch_and_cannot_change_the_charge() -> None:
    options = {"profile": "cpu", "image": "pangeo", "cores": "four"}
    first = await spawner_with()
    launch = await first.authorize_launch(options)
    stored = launch.user_options()
    assert stored["profile"] == "cpu"
    assert stored["image"] == "pangeo"
    pod = serialise(first, await first.get_pod_manifest())
    again = await spawner_with()
    assert (await again.authorize_launch(copy.deepcopy(stored))).user_options() == stored
    assert serialise(again, await again.get_pod_manifest()) == pod
    charged = stored["eohub_charged"]
    for key, value in (("cpu", 64.0), ("gpus", 1), ("mem", 1), ("image", "evil:1")):
        changed = {**stored, "eohub_charged": {**charged, key: value}}
        with pytest.raises(HTTPError) as raised:
            await (await spawner_with()).authorize_launch(changed)
        assert raised.value.status_code == 400
        assert "eohub_charged: is set by the environment and size" in raised.value.log_message
    # At the top level, cpu is not the charge but an option, which this profile lacks.
    with pytest.raises(HTTPError) as raised:
        await (await spawner_with()).authorize_launch({**stored, "cpu": 64.0})
    assert "cpu: is not an option of profile 'CPU'" in raised.value.log_message


async def test_stored_free_text_restarts_the_same_image() -> None:
    options = {"profile": "cpu", "image--unlisted-choice": "quay.io/me/img:2"}
    launch = await (await spawner_with()).authorize_launch(options)
    pod = await pod_of(await spawner_with(), launch.user_options())
    assert notebook(pod)["image"] == "quay.io/me/img:2"


# -- image, profile and environments share names --------------------------------------------


@pytest.mark.parametrize(
    ("options", "image"),
    [
        ({"profile": "cpu"}, "quay.io/pangeo/notebook:1"),  # the first choice is the default
        ({"profile": "cpu", "image": "scipy"}, "quay.io/jupyter/scipy:1"),
        ({"profile": "cpu", "image": ["scipy"]}, "quay.io/jupyter/scipy:1"),
        ({"profile": "cpu", "image--unlisted-choice": "quay.io/me/img:3"}, "quay.io/me/img:3"),
        ({"profile": "gpu"}, "quay.io/eohub/gpu:1"),
    ],
)
async def test_image_is_an_option_name_like_any_other(options: dict[str, Any], image: str) -> None:
    pod = await pod_of(await spawner_with(), options)
    assert notebook(pod)["image"] == image


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"profile": "gpu", "image": "quay.io/evil/miner:1"}, "image"),
        ({"profile": "cpu", "image": "quay.io/evil/miner:1"}, "image"),
        ({"profile": "cpu", "image--unlisted-choice": "docker.io/evil/miner:1"}, "image"),
        ({"profile": "cpu", "image--unlisted-choice": "quay.io/x/y:1;rm -rf"}, "image"),
        ({"profile": "cpu", "cores": "staff"}, "cores"),
        ({"profile": "ml-only"}, "profile"),
        ({"profile": "gpu-ml"}, "environment"),  # an environment alice may not see
        ({"profile": "nope"}, "profile"),
        ({"profile": "cpu", "size": "small"}, "size"),
        ({"profile": "cpu", "environment": "pangeo"}, "profile"),
    ],
)
async def test_a_refused_profile_launch_is_a_400(options: dict[str, Any], field: str) -> None:
    accounting = FakeAccounting()
    spawner = await spawner_with(accounting=accounting)
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch(options)
    assert raised.value.status_code == 400
    assert f"{field}:" in raised.value.log_message
    assert accounting.quota_checks == []
    assert spawner.launch is None


async def test_profile_naming_an_environment_launches_the_environment() -> None:
    spawner = await spawner_with()
    launch = await spawner.authorize_launch({"profile": "pangeo"})
    assert launch.profile is None
    assert launch.environment.name == "pangeo"
    assert (
        notebook(serialise(spawner, await spawner.get_pod_manifest()))["image"]
        == (ENVIRONMENTS["pangeo"]["image"])
    )
    # Without either, eohub's default environment is launched.
    assert (await spawner.authorize_launch({})).environment.name == "pangeo"


# -- the admin's mistakes --------------------------------------------------------------------


async def test_an_override_that_breaks_the_restricted_standard_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    profiles = [{"display_name": "Root", "kubespawner_override": {"privileged": True}}]
    spawner = await spawner_with(profiles)
    caplog.set_level(logging.INFO)
    # Refused when the pod is built (or earlier, when the launch is authorized).
    with pytest.raises(HTTPError) as raised:
        await pod_of(spawner, {"profile": "root"})
    assert raised.value.status_code == 500
    assert "profile_list[0].kubespawner_override.privileged" in caplog.text


async def test_a_typod_override_is_an_invalid_config_naming_the_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    profiles = [{"display_name": "X", "kubespawner_override": {"imagee": "quay.io/x:1"}}]
    spawner = await spawner_with(profiles)
    with pytest.raises(
        InvalidLaunchConfig, match=re.escape("profile_list[0].kubespawner_override.imagee")
    ):
        await spawner.launch_profiles()
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch({"profile": "x"})
    assert raised.value.status_code == 500
    assert "profile_list[0].kubespawner_override.imagee" in caplog.text


def _broken(spawner: Any) -> Any:
    return {}["missing"]  # an admin's callable with a bug in it


def _refusing(spawner: Any) -> Any:
    raise HTTPError(403, "Only for the GPU course.")


@pytest.mark.parametrize("value", ["lots", _broken], ids=["refused value", "failing callable"])
async def test_an_override_value_the_trait_refuses_is_a_500_naming_the_path(
    caplog: pytest.LogCaptureFixture, value: Any
) -> None:
    profiles = [{"display_name": "X", "kubespawner_override": {"cpu_guarantee": value}}]
    spawner = await spawner_with(profiles)
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch({"profile": "x"})
    assert raised.value.status_code == 500
    assert "profile_list[0].kubespawner_override.cpu_guarantee" in caplog.text
    assert "tell an admin" in raised.value.log_message.lower()


async def test_a_callable_override_may_refuse_the_user_itself() -> None:
    profiles = [{"display_name": "X", "kubespawner_override": {"image": _refusing}}]
    with pytest.raises(HTTPError) as raised:
        await (await spawner_with(profiles)).authorize_launch({"profile": "x"})
    assert raised.value.status_code == 403


async def test_a_callable_profile_list_refusing_the_user_is_a_403() -> None:
    def only_staff(spawner: Any) -> list[dict[str, Any]]:
        # 2i2c's hubs raise this from their profile_list callable.
        raise HTTPError(403, "You are not in a group that may use this hub.")

    spawner = await spawner_with(only_staff)
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch({})
    assert raised.value.status_code == 403
    assert spawner.launch is None


# -- the form and launch links ---------------------------------------------------------------


async def test_the_forms_field_names_are_read_as_kubespawner_names_them() -> None:
    spawner = await spawner_with()
    formdata = {
        "profile": ["cpu"],
        "profile-option-cpu--image": ["scipy"],
        "profile-option-cpu--cores": ["four"],
        "profile-option-gpu--image": ["left-over"],
        "group": ["eo-sci"],
        "_xsrf": ["token"],
    }
    options = spawner.read_form(formdata)
    assert options == {"profile": "cpu", "image": "scipy", "cores": "four", "group": "eo-sci"}
    pod = await pod_of(spawner, options)
    assert notebook(pod)["image"] == "quay.io/jupyter/scipy:1"
    assert notebook(pod)["resources"]["requests"]["cpu"] == 4.0


async def test_the_forms_other_field_is_read() -> None:
    spawner = await spawner_with()
    options = spawner.read_form(
        {
            "profile": ["cpu"],
            "profile-option-cpu--image": ["unlisted-choice"],
            "profile-option-cpu--image--unlisted-choice": ["quay.io/me/img:4"],
        }
    )
    pod = await pod_of(spawner, options)
    assert notebook(pod)["image"] == "quay.io/me/img:4"


@pytest.mark.parametrize(
    "query",
    [
        {"opt-profile": ["cpu"], "opt-image": ["scipy"], "next": ["/hub/home"]},  # JupyterHub 5
        {"profile": ["cpu"], "image": ["scipy"]},  # JupyterHub 6 strips opt-
        {"profile": ["cpu"], "profile-option-cpu--image": ["scipy"]},
    ],
)
async def test_a_spawn_link_is_read_with_or_without_opt(query: dict[str, list[str]]) -> None:
    spawner = await spawner_with()
    options = spawner.options_from_query(query)
    assert options == {"profile": "cpu", "image": "scipy"}
    assert notebook(await pod_of(spawner, options))["image"] == "quay.io/jupyter/scipy:1"


@pytest.mark.parametrize(
    "query",
    [
        {"opt-profile": ["cpu"], "opt-image--unlisted-choice": ["quay.io/me/img:4"]},
        {"profile": ["cpu"], "profile-option-cpu--image--unlisted-choice": ["quay.io/x/y:1"]},
    ],
)
async def test_a_spawn_link_cannot_carry_a_value_of_the_users_own(
    query: dict[str, list[str]],
) -> None:
    # /hub/spawn?... starts a server at once: a crafted link must not choose the image.
    spawner = await spawner_with()
    with pytest.raises(HTTPError) as raised:
        spawner.options_from_query(query)
    assert raised.value.status_code == 400
    assert "only after you review it" in raised.value.log_message


async def test_options_may_be_named_like_the_charged_keys() -> None:
    # cpu, memory and size are common option names in existing profile lists.
    profiles = [
        {
            "display_name": "Sized",
            "kubespawner_override": {"image": "quay.io/eohub/sized:1"},
            "profile_options": {
                name: {
                    "display_name": name.title(),
                    "choices": {
                        "small": {"display_name": "S", "kubespawner_override": {trait: small}},
                        "large": {"display_name": "L", "kubespawner_override": {trait: large}},
                    },
                }
                for name, trait, small, large in (
                    ("cpu", "cpu_guarantee", 1.0, 4.0),
                    ("memory", "mem_guarantee", "1G", "8G"),
                    ("size", "cpu_limit", 2.0, 8.0),
                )
            },
        }
    ]
    accounting = FakeAccounting()
    spawner = await spawner_with(profiles, accounting=accounting)
    options = {"profile": "sized", "cpu": "large", "memory": "large", "size": "small"}
    pod = await pod_of(spawner, options)
    assert notebook(pod)["resources"]["requests"] == {"cpu": 4.0, "memory": 8 * GIB}
    assert notebook(pod)["resources"]["limits"] == {"cpu": 2.0}
    assert accounting.quota_checks[0]["cpu"] == 4.0
    stored = spawner.user_options
    assert {k: stored[k] for k in options} == options
    assert stored["eohub_charged"]["mem"] == 8 * GIB
    # Restarted from what was stored, the same launch.
    again = await spawner_with(profiles)
    assert (await again.authorize_launch(copy.deepcopy(stored))).user_options() == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("lots", "ram: is not a value this profile can use"),
        ("9000T", "ram: asks for more than this hub allows"),
    ],
)
async def test_the_users_own_value_that_the_pod_cannot_take_is_their_400(
    typed: str, message: str
) -> None:
    profiles = [
        {
            "display_name": "Own memory",
            "kubespawner_override": {"image": "quay.io/eohub/own:1"},
            "profile_options": {
                "ram": {
                    "display_name": "Memory",
                    "unlisted_choice": {
                        "enabled": True,
                        "kubespawner_override": {"mem_guarantee": "{value}"},
                    },
                }
            },
        }
    ]
    spawner = await spawner_with(profiles)
    with pytest.raises(HTTPError) as raised:
        await spawner.authorize_launch({"profile": "own-memory", "ram--unlisted-choice": typed})
    assert raised.value.status_code == 400
    assert message in raised.value.log_message
    pod = await pod_of(spawner, {"profile": "own-memory", "ram--unlisted-choice": "2G"})
    assert notebook(pod)["resources"]["requests"]["memory"] == 2 * GIB
