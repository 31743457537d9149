"""The tables of test_profile_convert: profile lists, and what each converts to."""

from __future__ import annotations

from typing import Any

IMAGE = "quay.io/eohub/pangeo:2026.11"
SMALL = {"cpu_guarantee": 1, "mem_guarantee": "2G"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def profile(name: str = "Pangeo", **kw: Any) -> dict[str, Any]:
    overrides = kw.pop("overrides", {"image": IMAGE, **SMALL})
    return {"display_name": name, "kubespawner_override": overrides, **kw}


def option(name: str = "Option", **choices: dict[str, Any]) -> dict[str, Any]:
    return {
        "display_name": name,
        "choices": {
            slug: {"display_name": slug.title(), **({"kubespawner_override": c} if c else {})}
            for slug, c in choices.items()
        },
    }


# -- what converts: (case, profile list, base, environments, sizes) ----------------------
CONVERTS: list[tuple[str, Any, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "one profile is one environment with one size",
        [profile(description="xarray", default=True)],
        {},
        {
            "pangeo": {
                "display_name": "Pangeo",
                "description": "xarray",
                "image": IMAGE,
                "sizes": ["pangeo"],
                "default": True,
            }
        },
        {"pangeo": {"display_name": "1 CPU, 2 GiB", "cpu": 1, "memory": "2G"}},
    ),
    (
        "the base (singleuser) gives what the profile does not set; limits are kept",
        [profile(overrides={"cpu_limit": 4, "mem_limit": "8G"})],
        {"image": IMAGE, "cpu_guarantee": 0.5, "mem_guarantee": "1G"},
        {
            "pangeo": {
                "display_name": "Pangeo",
                "image": IMAGE,
                "sizes": ["pangeo"],
                "default": True,
            }
        },
        {
            "pangeo": {
                "display_name": "0.5 CPU, 1 GiB",
                "cpu": 0.5,
                "cpu_limit": 4,
                "memory": "1G",
                "memory_limit": "8G",
            }
        },
    ),
    (
        "a limit alone is also the request, as Kubernetes makes it",
        [profile(overrides={"image": IMAGE, "cpu_limit": 2, "mem_limit": "4G"})],
        {},
        {
            "pangeo": {
                "display_name": "Pangeo",
                "image": IMAGE,
                "sizes": ["pangeo"],
                "default": True,
            }
        },
        {
            "pangeo": {
                "display_name": "2 CPU, 4 GiB",
                "cpu": 2,
                "cpu_limit": 2,
                "memory": "4G",
                "memory_limit": "4G",
            }
        },
    ),
    (
        "an image option makes an environment per choice; the default choice is the default",
        [
            profile(
                overrides=SMALL,
                profile_options={
                    "image": {
                        **option(
                            "Image", a={"image": "quay.io/x/a:1"}, b={"image": "quay.io/x/b:1"}
                        ),
                    }
                },
            )
        ],
        {},
        {
            "pangeo-a": {
                "display_name": "Pangeo (Image: A)",
                "image": "quay.io/x/a:1",
                "sizes": ["pangeo"],
                "default": True,
            },
            "pangeo-b": {
                "display_name": "Pangeo (Image: B)",
                "image": "quay.io/x/b:1",
                "sizes": ["pangeo"],
            },
        },
        {"pangeo": {"display_name": "1 CPU, 2 GiB", "cpu": 1, "memory": "2G"}},
    ),
    (
        "a resource option's choices are the sizes; GPUs need gpu: true",
        [
            profile(
                overrides={"image": IMAGE},
                profile_options={
                    "res": option(
                        "Resources",
                        small=SMALL,
                        gpu={
                            "cpu_guarantee": 4,
                            "mem_guarantee": "16G",
                            "extra_resource_limits": {"nvidia.com/gpu": "2"},
                        },
                    )
                },
            )
        ],
        {},
        {
            "pangeo": {
                "display_name": "Pangeo",
                "image": IMAGE,
                "sizes": ["small", "gpu"],
                "default_size": "small",
                "gpu": True,
                "default": True,
            }
        },
        {
            "small": {"display_name": "Small", "cpu": 1, "memory": "2G"},
            "gpu": {"display_name": "Gpu", "cpu": 4, "memory": "16G", "gpus": 2},
        },
    ),
    (
        "a size choice that changes the placement splits the environment",
        [
            profile(
                overrides={"image": IMAGE, "node_selector": {"pool": "users"}},
                profile_options={
                    "res": option(
                        small=SMALL,
                        gpu={
                            **SMALL,
                            "node_selector": {"pool": "gpu"},
                            "tolerations": [GPU_TOLERATION],
                            "extra_resource_limits": {"nvidia.com/gpu": 1},
                        },
                    )
                },
            )
        ],
        {},
        {
            "pangeo-small": {
                "display_name": "Pangeo - Small",
                "image": IMAGE,
                "node_selector": {"pool": "users"},
                "sizes": ["small"],
                "default": True,
            },
            "pangeo-gpu": {
                "display_name": "Pangeo - Gpu",
                "image": IMAGE,
                "node_selector": {"pool": "gpu"},
                "tolerations": [GPU_TOLERATION],
                "sizes": ["gpu"],
                "gpu": True,
            },
        },
        {
            "small": {"display_name": "Small", "cpu": 1, "memory": "2G"},
            "gpu": {"display_name": "Gpu", "cpu": 1, "memory": "2G", "gpus": 1},
        },
    ),
    (
        "env, start page, groups and eohub's own keys",
        [
            profile(
                overrides={
                    "image": IMAGE,
                    **SMALL,
                    "environment": {"STAC_URL": "https://stac.example.org"},
                    "default_url": "/rstudio",
                },
                allowed_groups=["Climate"],
                eohub={
                    "max_duration": "1h",
                    "idle_timeout": 0,
                    "group_limits": {"Climate": {"max_duration": "2d"}},
                    "charge_groups": ["climate"],
                },
            )
        ],
        {},
        {
            "pangeo": {
                "display_name": "Pangeo",
                "image": IMAGE,
                "default_urlpath": "/rstudio",
                "env": {"STAC_URL": "https://stac.example.org"},
                "sizes": ["pangeo"],
                "allowed_groups": ["Climate"],
                "idle_timeout": 0,
                "max_duration": 3600,
                "group_limits": {"Climate": {"max_duration": 172800}},
                "default": True,
            }
        },
        {"pangeo": {"display_name": "1 CPU, 2 GiB", "cpu": 1, "memory": "2G"}},
    ),
    (
        "equal sizes are shared; names are unique and valid; the marked default wins",
        [
            profile("Pangeo"),
            profile("Pangeo!", slug="PANGEO_2", default=True),
            profile(
                "R",
                slug="--r--",
                overrides={"image": IMAGE, "cpu_guarantee": 2, "mem_guarantee": "2G"},
            ),
        ],
        {},
        {
            "pangeo": {"display_name": "Pangeo", "image": IMAGE, "sizes": ["pangeo"]},
            "pangeo_2": {
                "display_name": "Pangeo!",
                "image": IMAGE,
                "sizes": ["pangeo"],
                "default": True,
            },
            "r": {"display_name": "R", "image": IMAGE, "sizes": ["r"]},
        },
        {
            "pangeo": {"display_name": "1 CPU, 2 GiB", "cpu": 1, "memory": "2G"},
            "r": {"display_name": "2 CPU, 2 GiB", "cpu": 2, "memory": "2G"},
        },
    ),
]


PROFILE = "profile_list[0]"

# -- what cannot be said: (case, profile list, base, the warnings' key paths and words) ---
WARNS: list[tuple[str, Any, dict[str, Any], list[tuple[str, str]]]] = [
    (
        "other KubeSpawner settings name their key path",
        [
            profile(
                overrides={
                    "image": IMAGE,
                    **SMALL,
                    "extra_pod_config": {"priorityClassName": "x"},
                    "volumes": [],
                }
            )
        ],
        {},
        [
            (f"{PROFILE}.kubespawner_override.extra_pod_config", "no eohub launch config"),
            (f"{PROFILE}.kubespawner_override.volumes", "launch_volumes"),
        ],
    ),
    (
        "a callable override",
        [profile(overrides={"image": IMAGE, **SMALL, "cmd": lambda spawner: ["x"]})],
        {},
        [(f"{PROFILE}.kubespawner_override.cmd", "callable")],
    ),
    (
        "no CPU or memory requested: the smallest size, and a warning",
        [profile(overrides={"image": IMAGE})],
        {},
        [(PROFILE, "requests no cpu"), (PROFILE, "requests no memory")],
    ),
    (
        "no image: not converted",
        [profile(overrides=SMALL), profile("R", overrides={"image": IMAGE, **SMALL})],
        {},
        [(PROFILE, "has no image"), (PROFILE, "default launch is not converted")],
    ),
    (
        "free text and other options: only the listed and default choices",
        [
            profile(
                profile_options={
                    "image": {
                        **option("Image", a={"image": "quay.io/x/a:1"}),
                        "unlisted_choice": {
                            "enabled": True,
                            "kubespawner_override": {"image": "{value}"},
                        },
                    },
                    "ui": option(
                        "UI", lab={"default_url": "/lab"}, code={"default_url": "/vscode"}
                    ),
                }
            )
        ],
        {},
        [
            (f"{PROFILE}.profile_options.image.unlisted_choice", "free-text"),
            (f"{PROFILE}.profile_options.ui", "only its default choice 'lab'"),
        ],
    ),
    (
        "groups on a size choice cannot be kept",
        [
            profile(
                profile_options={
                    "res": {
                        "display_name": "Res",
                        "choices": {
                            "small": {"display_name": "S", "kubespawner_override": SMALL},
                            "big": {
                                "display_name": "B",
                                "allowed_groups": ["staff"],
                                "kubespawner_override": {
                                    "cpu_guarantee": 8,
                                    "mem_guarantee": "8G",
                                },
                            },
                        },
                    }
                }
            )
        ],
        {},
        [(f"{PROFILE}.profile_options.res", "eohub sizes have no allowed_groups")],
    ),
    (
        "groups at two levels are narrowed to both",
        [
            profile(
                allowed_groups=["a", "b"],
                profile_options={
                    "image": {
                        **option("Image", x={"image": IMAGE}),
                        "allowed_groups": ["b", "c"],
                    }
                },
            )
        ],
        {},
        [(f"{PROFILE}.profile_options.image.choices.x.allowed_groups", "(b)")],
    ),
    (
        "eohub keys that differ per profile, and charging limits",
        [
            profile(eohub={"charge_groups": ["a"], "charge": "limit"}),
            profile("R", eohub={"charge_groups": ["b"]}),
        ],
        {},
        [
            (f"{PROFILE}.eohub.charge", "not the limits"),
            (f"{PROFILE}.eohub.charge_groups", "groups of all profiles (a, b)"),
        ],
    ),
    (
        "placement that eohub can only add to",
        [
            profile(
                overrides={
                    "image": IMAGE,
                    **SMALL,
                    "node_selector": {"pool": None},
                    "environment": {
                        "TOKEN": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                        "HOME_URL": "/user/{username}",
                    },
                    "tolerations": [GPU_TOLERATION],
                }
            )
        ],
        {"tolerations": [{"key": "dedicated", "operator": "Exists"}]},
        [
            (f"{PROFILE}.kubespawner_override.node_selector", "null"),
            (f"{PROFILE}.kubespawner_override.environment.TOKEN", "not converted"),
            (f"{PROFILE}.kubespawner_override.environment.HOME_URL", "as written"),
            (f"{PROFILE}.kubespawner_override.tolerations", "replaces the admin's"),
        ],
    ),
    (
        "other extended resources, another GPU vendor, unreadable amounts",
        [
            profile(
                overrides={
                    "image": IMAGE,
                    "cpu_guarantee": "lots",
                    "cpu_limit": 1,
                    "mem_guarantee": "4G",
                    "mem_limit": "1G",
                    "extra_resource_limits": {"amd.com/gpu": "1", "example.com/fpga": "1"},
                }
            )
        ],
        {},
        [
            (f"{PROFILE}.kubespawner_override.cpu_guarantee", "cannot be read"),
            (f"{PROFILE}.kubespawner_override.mem_limit", "below the request"),
            (
                f"{PROFILE}.kubespawner_override.extra_resource_limits.amd.com/gpu",
                "gpu_resource_name",
            ),
            (
                f"{PROFILE}.kubespawner_override.extra_resource_limits.example.com/fpga",
                "only GPUs",
            ),
        ],
    ),
]
