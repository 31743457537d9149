"""What the launch-form tests share: a launch config, quota answers, and an HTML reader.

The config holds every kind of string an admin may write but a user must never see
(``SECRETS``). :class:`Page` reads the HTML back with the standard library's parser, as
a browser without JavaScript would see it: hidden elements and disabled inputs do not
count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from slugify import slugify

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.profile_selection import visible_profiles
from eohub.domain.launch.profiles import Profile, parse_profile_list
from eohub.domain.launch.repository import RepoRules
from eohub.domain.repos.policy import RepoPolicy
from eohub.domain.repos.specs import RepoProviders

SIZES: dict[str, Any] = {
    "small": {"display_name": "Small", "cpu": 1, "memory": "2G"},
    "medium": {
        "display_name": "Medium",
        "cpu": 2,
        "memory": "4G",
        "cpu_limit": 4,
        "memory_limit": "8G",
    },
    "large": {"display_name": "Large", "cpu": 8, "memory": "32G"},
    "gpu": {"display_name": "One GPU", "cpu": 4, "memory": "16G", "gpus": 1},
}
# Every string an admin may write but a user must never see in the page.
SECRETS = [
    "pangeo/pangeo-notebook:2024.01.01",
    "eohub/climate-r:7",
    "registry.internal/dl/cuda:12",
    "registry.internal/black-ops/secret:1",
    "eohub/alice:1",
    "WANDB_API_KEY",
    "sekrit-wandb-value",
    "PANGEO_SECRET",
    "pangeo-env-secret-value",
    "gpu-node-pool",
    "a100-nodes-only",
    "nvidia.com/gpu",
    "NoSchedule",
    "secret-project",
    "Secret Project X",
    "classified description",
    "black-ops",
    "vault-claim-xyz",
    "/vault",
    "common-data-claim",
    "dl-scratch-claim",
    "ws-{username}",
    "fast-ssd",
]
ENVIRONMENTS: dict[str, Any] = {
    "pangeo": {
        "display_name": "Pangeo",
        "description": "Xarray, Dask and friends.",
        "image": "pangeo/pangeo-notebook:2024.01.01",
        "env": {"PANGEO_SECRET": "pangeo-env-secret-value"},
        "default": True,
        "sizes": ["small", "medium", "large"],
        "default_size": "medium",
    },
    "climate-r": {
        "display_name": "Climate R",
        "image": "eohub/climate-r:7",
        "allowed_groups": ["climate"],
        "default_urlpath": "/rstudio/",
        "sizes": ["small", "medium"],
    },
    "deep-learning": {
        "display_name": "Deep learning",
        "image": "registry.internal/dl/cuda:12",
        "allowed_groups": ["ml"],
        "gpu": True,
        "sizes": ["small", "gpu"],
        "env": {"WANDB_API_KEY": "sekrit-wandb-value"},
        "node_selector": {"gpu-node-pool": "a100-nodes-only"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
    "personal-alice": {
        "display_name": "Alice's own",
        "image": "eohub/alice:1",
        "allowed_users": ["alice"],
        "sizes": ["small"],
    },
    "secret-project": {
        "display_name": "Secret Project X",
        "description": "classified description",
        "image": "registry.internal/black-ops/secret:1",
        "allowed_groups": ["black-ops"],
        "sizes": ["large"],
    },
}
VOLUMES: dict[str, Any] = {
    "home": {
        "kind": "workspace",
        "display_name": "Your workspace",
        "mount_path": "/home/jovyan",
        "claim_name": "ws-{username}",
        "storage": "10Gi",
        "storage_class": "fast-ssd",
    },
    "common-data": {
        "kind": "pvc",
        "display_name": "Common data",
        "description": "Sentinel-2 L2A, read-only.",
        "claim_name": "common-data-claim",
        "mount_path": "/data/common",
        "read_only": True,
        "optional": True,
    },
    "dl-scratch": {
        "kind": "pvc",
        "display_name": "GPU scratch",
        "claim_name": "dl-scratch-claim",
        "mount_path": "/scratch",
        "optional": True,
        "allowed_groups": ["ml"],
    },
    "black-ops-vault": {
        "kind": "pvc",
        "display_name": "Vault",
        "claim_name": "vault-claim-xyz",
        "mount_path": "/vault",
        "allowed_groups": ["black-ops"],
    },
}
CHARGE_GROUPS = ["climate", "ocean", "ml", "black-ops"]

# A Zero to JupyterHub profileList, as KubeSpawner reads it, with 2i2c's allowed_groups.
# Its overrides are admin-only too: SECRETS holds them.
PROFILE_LIST: list[dict[str, Any]] = [
    {
        "display_name": "Data science",
        "slug": "datasci",
        "description": "Pick an image and the memory.\nRuns on shared nodes.",
        "kubespawner_override": {"cpu_guarantee": 1, "node_selector": {"pool": "ds-pool-x"}},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "pangeo": {
                        "display_name": "Pangeo",
                        "description": "Xarray and Dask.",
                        "kubespawner_override": {"image": "quay.io/pangeo/ds-image:1"},
                    },
                    "rocker": {
                        "display_name": "R",
                        "default": True,
                        "kubespawner_override": {"image": "docker.io/rocker/ds-r:4"},
                    },
                    "cuda": {
                        "display_name": "CUDA",
                        "description": "For the ML group.",
                        "allowed_groups": ["ml"],
                        "kubespawner_override": {"image": "registry.internal/ds-cuda:12"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Image of your own",
                    "validation_regex": "quay\\.io/[a-z0-9\\-]+/[a-z0-9\\-]+:[a-z0-9\\-]+",
                    "validation_message": "An image on quay.io, with a tag.",
                    "kubespawner_override": {"image": "{value}"},
                },
            },
            "ram": {
                "display_name": "Memory",
                "choices": {
                    "4g": {
                        "display_name": "4 GB",
                        "kubespawner_override": {"mem_guarantee": "4G"},
                    },
                    "8g": {
                        "display_name": "8 GB",
                        "default": True,
                        "kubespawner_override": {"mem_guarantee": "8G"},
                    },
                },
            },
        },
    },
    {
        "display_name": "Tiny",
        "description": "One core, for the climate group's budget.",
        "kubespawner_override": {"cpu_guarantee": 0.5, "mem_guarantee": "1G"},
        "eohub": {"charge_groups": ["climate"]},
    },
    {
        "display_name": "Black ops GPU",
        "slug": "black-ops-gpu",
        "allowed_groups": ["black-ops"],
        "kubespawner_override": {"image": "registry.internal/black-ops/gpu:1"},
    },
]
PROFILE_SECRETS = ["ds-pool-x", "ds-image", "ds-r:4", "ds-cuda", "black-ops-gpu", "Black ops"]

# A profile whose image option builds images (jupyterhub-fancy-profiles'
# dynamic_image_building), listed for the climate group only.
BUILDER: dict[str, Any] = {
    "display_name": "Build your own",
    "slug": "builder",
    "allowed_groups": ["climate"],
    "kubespawner_override": {"cpu_guarantee": 0.5, "mem_guarantee": "1G"},
    "profile_options": {
        "image": {
            "display_name": "Image",
            "dynamic_image_building": {"enabled": True},
            "choices": {
                "pangeo": {
                    "display_name": "Pangeo",
                    "default": True,
                    "kubespawner_override": {"image": "quay.io/pangeo/ds-image:1"},
                }
            },
            "unlisted_choice": {
                "enabled": True,
                "display_name": "Image of your own",
                "validation_regex": "quay\\.io/.+",
                "kubespawner_override": {"image": "{value}"},
            },
        }
    },
}
#: The admin's repository rules: GitHub and GitLab, any public repository.
RULES = RepoRules(RepoProviders.default(), RepoPolicy())


def profiles_for(groups: frozenset[str], data: Any = None) -> tuple[Profile, ...]:
    """The profiles a member of ``groups`` sees, as the spawner filters them."""
    parsed = parse_profile_list(PROFILE_LIST if data is None else data, slugify)
    return visible_profiles(parsed, groups)


def kube_config(**overrides: Any) -> LaunchConfig:
    settings: dict[str, Any] = {"backend": "kube", "charge_groups": CHARGE_GROUPS}
    settings.update(overrides)
    return parse_launch_config(ENVIRONMENTS, SIZES, VOLUMES, **settings)


UNLIMITED = {"core_hours": None, "gpu_hours": None, "memory_gib_hours": None}


def allowed(core_hours: float | None = None, gpu_hours: float | None = None) -> QuotaAnswer:
    left = {**UNLIMITED, "core_hours": core_hours, "gpu_hours": gpu_hours}
    return QuotaAnswer(True, "Within quota.", left)


def spent(group: str) -> QuotaAnswer:
    return QuotaAnswer(
        False,
        f"The core-hours budget of group {group} is spent: 10 of 10 used this period.",
        {**UNLIMITED, "core_hours": 0.0},
    )


# -- reading the HTML back -------------------------------------------------------------

VOID = {"input", "br", "img", "meta", "link", "hr", "wbr", "source"}


@dataclass
class Control:
    attrs: dict[str, str]
    hidden: bool  # inside a hidden element, or disabled: a browser would not submit it

    @property
    def name(self) -> str:
        return self.attrs.get("name", "")

    @property
    def value(self) -> str:
        return self.attrs.get("value", "")


@dataclass
class Select:
    """A ``<select>``: its attributes, its options (value, label, selected), and whether
    a browser would send it."""

    attrs: dict[str, str]
    hidden: bool
    options: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.attrs.get("name", "")

    @property
    def selected(self) -> str:
        """The value a browser sends: the selected option, else the first."""
        chosen = [v for v, _, s in self.options if s] or [v for v, _, _ in self.options[:1]]
        return chosen[-1] if chosen else ""


@dataclass
class Page(HTMLParser):
    """Inputs with their visibility, and the text a reader without JavaScript sees."""

    controls: list[Control] = field(default_factory=list)
    selects: list[Select] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    stack: list[tuple[str, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    @classmethod
    def of(cls, html: str) -> Page:
        page = cls()
        page.feed(html)
        page.close()
        return page

    @property
    def _hidden(self) -> bool:
        return any(h for _, h in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        hidden = "hidden" in values or tag in ("script", "style")
        if tag == "input":
            gone = self._hidden or hidden or "disabled" in values
            self.controls.append(Control(values, gone))
        if tag == "select":
            gone = self._hidden or hidden or "disabled" in values
            self.selects.append(Select(values, gone))
        if tag == "option" and self.selects:
            label = ""
            self.selects[-1].options.append(
                (values.get("value", label), label, "selected" in values)
            )
        if tag not in VOID:
            self.stack.append((tag, hidden))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][0] == "option" and self.selects:
            value, _, selected = self.selects[-1].options[-1]
            self.selects[-1].options[-1] = (value, data.strip(), selected)
        if not self._hidden and data.strip():
            self.texts.append(" ".join(data.split()))

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def visible(self, name: str, kind: str | None = None) -> list[str]:
        return [
            c.value
            for c in self.controls
            if c.name == name and not c.hidden and (kind is None or c.attrs.get("type") == kind)
        ]

    def present(self, name: str) -> list[str]:
        return [c.value for c in self.controls if c.name == name]

    def checked(self, name: str) -> list[str]:
        return [
            c.value
            for c in self.controls
            if c.name == name and not c.hidden and "checked" in c.attrs
        ]

    def select(self, name: str) -> Select:
        return next(s for s in self.selects if s.name == name)

    def sent(self) -> dict[str, list[str]]:
        """What a browser without JavaScript posts, untouched, as ``{name: [values]}``."""
        data: dict[str, list[str]] = {}
        for c in self.controls:
            kind = c.attrs.get("type")
            if (
                c.hidden
                or not c.name
                or (kind in ("radio", "checkbox") and "checked" not in c.attrs)
            ):
                continue
            data.setdefault(c.name, []).append(c.value)
        for s in self.selects:
            if not s.hidden and s.name:
                data.setdefault(s.name, []).append(s.selected)
        return data

    def control(self, name: str, value: str) -> Control:
        return next(c for c in self.controls if c.name == name and c.value == value)


def read_form(formdata: dict[str, list[str]]) -> dict[str, Any]:
    """``formdata`` read by :meth:`QuotaSpawnerMixin.read_form`, as JupyterHub calls it.

    Reading a form needs no launch config, so a bare QuotaLocalSpawner does.
    """
    from types import SimpleNamespace

    from eohub.spawner.local import QuotaLocalSpawner
    from eohub.spawner.mixin import QuotaSpawnerMixin

    orm = SimpleNamespace(name="", user_options=None, server=None, started=None)
    spawner = QuotaLocalSpawner(user=SimpleNamespace(name="reader", groups=[]), orm_spawner=orm)
    return QuotaSpawnerMixin.read_form(spawner, formdata)


def started_with(spawner: Any, options: dict[str, Any] | None) -> Any:
    """``spawner`` as JupyterHub loads it after a launch with ``options`` started.

    The form prefills only a launch that started, which the spawner keeps in its state;
    JupyterHub's ``orm_spawner.user_options`` are the last ones asked for, refused or not.
    """
    from eohub.spawner.ledger import LAST_OPTIONS_KEY

    if options is not None:
        spawner.load_state({LAST_OPTIONS_KEY: options})
    return spawner
