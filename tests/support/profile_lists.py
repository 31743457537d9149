"""A corpus of KubeSpawner ``profile_list`` values, as admins write them, with choices.

Each :class:`Corpus` entry is a profile list in one of KubeSpawner's forms (a list, a
dict keyed by slug, a sync or an async callable), the base spawner config it is used
with, and the ``user_options`` to launch it with. The spawner tests build the pod of
every (list, choice) pair with plain KubeSpawner and with QuotaKubeSpawner and compare
them, so each entry exercises one of KubeSpawner's override semantics:

- nested options, a marked default choice that is not the first, an unlisted choice
  whose overrides use ``{value}`` (and ``{username}``, which stays for KubeSpawner);
- ``None`` inside a dict override deleting a key of the admin's dict (node_selector,
  environment, extra_labels), and dict traits merged recursively (extra_pod_config);
- callable override values (called with the spawner), one returning a dict (merged);
- list traits (tolerations) replaced, not merged.

Every choice here is one eohub must accept for ``alice`` (group ``eo-sci``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from eohub.spawner.kube import RESTRICTED_CONTAINER, RESTRICTED_POD

#: The admin's own values of the traits the profiles override, shared by both spawners.
BASE_TRAITS: dict[str, Any] = {
    "image": "quay.io/jupyter/base-notebook:2026-01-05",
    "cpu_guarantee": 0.25,
    "cpu_limit": 1.0,
    "mem_guarantee": "512M",
    "mem_limit": "1G",
    "default_url": "/lab",
    "node_selector": {"hub.jupyter.org/node-purpose": "user", "topology.kubernetes.io/zone": "a"},
    "environment": {"TZ": "UTC", "SHARED_DATA": "/data/shared"},
    "extra_labels": {"team": "eo"},
    "extra_pod_config": {"dnsConfig": {"nameservers": ["10.0.0.10"]}},
    "tolerations": [{"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user"}],
}

#: What QuotaKubeSpawner defaults to for the restricted Pod Security Standard; plain
#: KubeSpawner is given the same, so that the pods differ only by what eohub adds.
SECURITY_TRAITS: dict[str, Any] = {
    "uid": 1000,
    "fs_gid": 100,
    "container_security_context": copy.deepcopy(RESTRICTED_CONTAINER),
    "pod_security_context": copy.deepcopy(RESTRICTED_POD),
    "automount_service_account_token": False,
}

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}

IMAGE_OPTION: dict[str, Any] = {
    "display_name": "Image",
    "choices": {
        "pangeo": {
            "display_name": "Pangeo",
            "kubespawner_override": {"image": "quay.io/pangeo/pangeo-notebook:2026.01.05"},
        },
        "scipy": {
            "display_name": "SciPy",
            "default": True,  # marked, and not the first: it is the default
            "kubespawner_override": {"image": "quay.io/jupyter/scipy-notebook:2026-01-05"},
        },
    },
    "unlisted_choice": {
        "enabled": True,
        "display_name": "Image from quay.io",
        "validation_regex": "quay\\.io/[a-z0-9._/-]+:[A-Za-z0-9._-]+",
        "validation_message": "Must be an image on quay.io, with a tag",
        "kubespawner_override": {
            "image": "{value}",
            "environment": {"CUSTOM_IMAGE": "{value}", "OWNER": "{username}"},
        },
    },
}

RESOURCES_OPTION: dict[str, Any] = {
    "display_name": "Resources",
    "choices": {
        "small": {
            "display_name": "1 CPU, 2 GiB",
            "kubespawner_override": {
                "cpu_guarantee": 1.0,
                "cpu_limit": 2.0,
                "mem_guarantee": "2G",
                "mem_limit": "4G",
            },
        },
        "large": {
            "display_name": "4 CPU, 16 GiB",
            "kubespawner_override": {
                "cpu_guarantee": 4.0,
                "cpu_limit": 4.0,
                "mem_guarantee": "16G",
                "mem_limit": "16G",
                # dict overrides merge into what the profile set: only this key changes
                "node_selector": {"eohub.io/pool": "large"},
            },
        },
    },
}

# The z2jh shape: two profiles, none marked default, so the first is.
Z2JH_LIST: list[dict[str, Any]] = [
    {
        "display_name": "Data science",
        "description": "Python with the scientific stack.",
        "kubespawner_override": {"cpu_guarantee": 0.5, "mem_guarantee": "1G"},
        "profile_options": {"image": IMAGE_OPTION, "resources": RESOURCES_OPTION},
    },
    {
        "display_name": "GPU (A100) \u2014 1\u00d7",  # a slug made by slugify: gpu-a100-1x
        "kubespawner_override": {
            "image": "quay.io/jupyter/pytorch-notebook:cuda12-2026-01-05",
            "cpu_guarantee": 4.0,
            "cpu_limit": 8.0,
            "mem_guarantee": "16G",
            "mem_limit": "32G",
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
            "node_selector": {"topology.kubernetes.io/zone": None, "gpu": "a100"},
            "tolerations": [GPU_TOLERATION],
        },
    },
]
Z2JH_CHOICES: list[dict[str, Any]] = [
    {},
    {"profile": "data-science"},
    {"profile": "data-science", "image": "pangeo"},
    {"profile": "data-science", "image": "pangeo", "resources": "large"},
    {"profile": "data-science", "resources": "small"},
    {"profile": "data-science", "image--unlisted-choice": "quay.io/me/custom:v1"},
    # The free text wins over the select's value, as in KubeSpawner.
    {"profile": "data-science", "image": "scipy", "image--unlisted-choice": "quay.io/me/x:2"},
    {"profile": "gpu-a100-1x"},
]

# ``None`` deletes a key of the admin's dicts; a dict override merges recursively.
DELETIONS_LIST: list[dict[str, Any]] = [
    {
        "display_name": "Cleaned",
        "slug": "cleaned",
        "default": True,
        "kubespawner_override": {
            "node_selector": {"topology.kubernetes.io/zone": None, "pool": "clean"},
            "environment": {"SHARED_DATA": None, "PROFILE": "cleaned-for-{username}"},
            "extra_labels": {"team": None, "tier": "clean"},
            "extra_pod_config": {"dnsConfig": {"options": [{"name": "ndots", "value": "2"}]}},
        },
        "profile_options": {
            "zone": {
                "display_name": "Zone",
                "choices": {
                    "b": {
                        "display_name": "Zone B",
                        "kubespawner_override": {
                            "node_selector": {"topology.kubernetes.io/zone": "b"}
                        },
                    },
                    "none": {
                        "display_name": "No preference",
                        "kubespawner_override": {"node_selector": {"pool": None}},
                    },
                },
            }
        },
    },
    {"display_name": "Plain", "slug": "plain"},
]
DELETIONS_CHOICES: list[dict[str, Any]] = [
    {},
    {"profile": "cleaned", "zone": "none"},
    {"profile": "plain"},
]


def user_image(spawner: Any) -> str:
    """A callable override value: the image of this user."""
    return f"quay.io/eohub-users/{spawner.user.name}:latest"


def user_env(spawner: Any) -> dict[str, Any]:
    """A callable override value that returns a dict: merged like a literal one."""
    return {"HOME_OWNER": spawner.user.name, "TZ": None}


CALLABLE_VALUES_LIST: list[dict[str, Any]] = [
    {
        "display_name": "Personal image",
        "kubespawner_override": {"image": user_image, "environment": user_env},
        "profile_options": {
            "ram": {
                "display_name": "Memory",
                "choices": {
                    "4g": {
                        "display_name": "4 GiB",
                        "kubespawner_override": {"mem_guarantee": lambda spawner: "4G"},
                    },
                    "8g": {
                        "display_name": "8 GiB",
                        "kubespawner_override": {"mem_guarantee": "8G", "mem_limit": "8G"},
                    },
                },
            }
        },
    }
]
CALLABLE_VALUES_CHOICES: list[dict[str, Any]] = [
    {},
    {"profile": "personal-image", "ram": "8g"},
]

# KubeSpawner 7.1's dict form: profiles in the order of their keys, so "a-cpu" is the
# default although written second; "b-gpu" has no slug and gets one from its name.
DICT_FORM: dict[str, dict[str, Any]] = {
    "b-gpu": {
        "display_name": "B GPU",
        "kubespawner_override": {
            "image": "quay.io/jupyter/pytorch-notebook:cuda12-2026-01-05",
            "extra_resource_limits": {"nvidia.com/gpu": "2"},
            "tolerations": [GPU_TOLERATION],
        },
    },
    "a-cpu": {
        "display_name": "A CPU",
        "slug": "a-cpu",
        "profile_options": {"resources": RESOURCES_OPTION},
    },
}
DICT_CHOICES: list[dict[str, Any]] = [
    {},
    {"profile": "a-cpu", "resources": "large"},
    {"profile": "b-gpu"},
]


def sync_profiles(spawner: Any) -> list[dict[str, Any]]:
    """A callable profile_list, as 2i2c's hubs use: this user's profiles."""
    personal = {
        "display_name": f"Workspace of {spawner.user.name}",
        "slug": "personal",
        "kubespawner_override": {"environment": {"OWNER": spawner.user.name}},
    }
    return [copy.deepcopy(Z2JH_LIST[0]), personal]


async def async_profiles(spawner: Any) -> list[dict[str, Any]]:
    """An async callable profile_list (KubeSpawner awaits what it returns)."""
    return [
        {
            "display_name": "Async default",
            "default": True,
            "kubespawner_override": {"image": user_image},
            "profile_options": {"image": copy.deepcopy(IMAGE_OPTION)},
        },
        *copy.deepcopy(DELETIONS_LIST[1:]),
    ]


@dataclass(frozen=True)
class Corpus:
    """One profile list, the choices to launch it with, and how to read it."""

    name: str
    profile_list: Any
    choices: list[dict[str, Any]]
    base: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(BASE_TRAITS))

    @property
    def is_dict(self) -> bool:
        return isinstance(self.profile_list, dict)

    def as_list(self) -> Any:
        """The list KubeSpawner < 7.1 takes for the same profiles: values sorted by key."""
        if isinstance(self.profile_list, dict):
            return [copy.deepcopy(self.profile_list[k]) for k in sorted(self.profile_list)]
        return self.fresh()

    def fresh(self) -> Any:
        """A copy of the profile list: KubeSpawner must not be able to change ours."""
        if callable(self.profile_list):
            return self.profile_list
        return _copy(self.profile_list)


def _copy(value: Any) -> Any:
    # deepcopy keeps callables (functions are copied by reference).
    return copy.deepcopy(value)


CORPUS: list[Corpus] = [
    Corpus("z2jh-list", Z2JH_LIST, Z2JH_CHOICES),
    Corpus("deletions", DELETIONS_LIST, DELETIONS_CHOICES),
    Corpus("callable-values", CALLABLE_VALUES_LIST, CALLABLE_VALUES_CHOICES),
    Corpus("dict-form", DICT_FORM, DICT_CHOICES),
    Corpus(
        "sync-callable",
        sync_profiles,
        [{}, {"profile": "personal"}, {"profile": "data-science", "resources": "large"}],
    ),
    Corpus(
        "async-callable",
        async_profiles,
        [
            {},
            {"profile": "async-default", "image": "pangeo"},
            {"profile": "async-default", "image--unlisted-choice": "quay.io/a/b:c"},
            {"profile": "plain"},
        ],
    ),
]

#: (corpus name, choice) pairs for parametrize ids.
CASES: list[tuple[Corpus, dict[str, Any]]] = [(c, o) for c in CORPUS for o in c.choices]


def case_id(case: tuple[Corpus, dict[str, Any]]) -> str:
    corpus, options = case
    return corpus.name + ":" + (",".join(f"{k}={v}" for k, v in options.items()) or "default")


__all__ = [
    "BASE_TRAITS",
    "CASES",
    "CORPUS",
    "SECURITY_TRAITS",
    "Corpus",
    "case_id",
]
