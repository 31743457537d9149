"""The launch config, members and budgets the launch policy tests share."""

from __future__ import annotations

from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.policy import Budget, Member

SIZES = {
    "small": {"cpu": 1, "memory": "2G"},
    "medium": {"cpu": 2, "memory": "4G"},
    "large": {"cpu": 4, "memory": "16G"},
    "gpu": {"cpu": 4, "memory": "16G", "gpus": 1},
}
ENVIRONMENTS = {
    "pangeo": {
        "image": "pangeo/pangeo-notebook:2024.01.01",
        "default": True,
        "sizes": ["small", "medium", "large"],
        "default_size": "medium",
    },
    "climate": {
        "image": "eohub/climate:1",
        "allowed_groups": ["climate"],
        "default_urlpath": "/rstudio/",
    },
    "personal": {"image": "eohub/alice:1", "allowed_users": ["alice"]},
    "ml": {
        "image": "eohub/ml:1",
        "gpu": True,
        "allowed_groups": ["ml"],
        "sizes": ["small", "gpu"],
    },
}
VOLUMES = {
    "home": {"kind": "workspace", "mount_path": "/home/jovyan", "storage": "10Gi"},
    "common-data": {
        "kind": "pvc",
        "claim_name": "common-data",
        "mount_path": "/data/common",
        "read_only": True,
        "optional": True,
    },
    "ml-scratch": {
        "kind": "pvc",
        "claim_name": "ml-scratch",
        "mount_path": "/scratch",
        "optional": True,
        "allowed_groups": ["ml"],
    },
    "climate-archive": {
        "kind": "nfs",
        "server": "nfs.example.org",
        "path": "/archive",
        "mount_path": "/data/archive",
        "read_only": True,
        "allowed_groups": ["climate"],
    },
}
CONFIG = parse_launch_config(ENVIRONMENTS, SIZES, VOLUMES, backend="kube")
# Only climate and ml are funded: staff cannot be charged.
FUNDED = parse_launch_config(
    ENVIRONMENTS, SIZES, VOLUMES, backend="kube", charge_groups=["climate", "ml"]
)
# The default environment is hidden from most users.
HIDDEN_DEFAULT = parse_launch_config(
    {"a": {"image": "a", "default": True, "allowed_groups": ["x"]}, "b": {"image": "b"}},
    {"s": {"cpu": 1, "memory": "1G"}},
    {},
    backend="kube",
)

ALICE = Member("alice", frozenset({"climate"}))
BOB = Member("bob", frozenset({"climate", "ml"}))
CAROL = Member("carol", frozenset())
DAVE = Member("dave", frozenset({"ml", "staff"}))
MEMBERS = {"alice": ALICE, "bob": BOB, "carol": CAROL, "dave": DAVE}


def budget(
    core: float | None = None, mem: float | None = None, gpu: float | None = None
) -> Budget:
    return {"core_hours": core, "memory_gib_hours": mem, "gpu_hours": gpu}
