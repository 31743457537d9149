"""The configs, rules and members the repository launch policy tests share."""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.options import LaunchRequest, OptionsError
from eohub.domain.launch.policy import Member, authorize
from eohub.domain.launch.repository import RepoRules
from eohub.domain.repos.policy import RepoPolicy
from eohub.domain.repos.specs import RepoProviders

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PREFIX = "registry.example.org/binder/r2d-"
SIZES = {"small": {"cpu": 1, "memory": "2G"}, "medium": {"cpu": 2, "memory": "4G"}}
ENVIRONMENTS: dict[str, Any] = {
    "pangeo": {"image": "pangeo/pangeo-notebook:2024.01.01", "default": True},
    "binder": {
        "display_name": "From a repository",
        "repository": True,
        "allowed_groups": ["builders"],
        "default_size": "medium",
    },
    "classic": {"repository": True, "default_urlpath": "/tree"},
    "hidden": {"image": "eohub/hidden:1", "allowed_groups": ["builders"]},
}
CONFIG = parse_launch_config(ENVIRONMENTS, SIZES, {}, backend="kube")
# The same, for the local backend: a command instead of an image.
LOCAL = parse_launch_config(
    {
        name: {k: v for k, v in env.items() if k != "image"}
        | {"command": ["jupyterhub-singleuser"]}
        for name, env in ENVIRONMENTS.items()
    },
    SIZES,
    {},
    backend="local",
)
# A hub whose default environment launches repositories.
REPO_DEFAULT = parse_launch_config(
    {"plain": {"image": "eohub/plain:1"}, "binder": {"repository": True, "default": True}},
    SIZES,
    {},
    backend="kube",
)
PROVIDERS = RepoProviders.default()
RULES = RepoRules(
    PROVIDERS,
    RepoPolicy(denied_repos=("github.com/evil/*",), trusted_repos=("github.com/pangeo-data/*",)),
    image_prefix=PREFIX,
)

ALICE = Member("alice", frozenset({"builders"}))  # may use "binder"
CAROL = Member("carol", frozenset({"staff"}))  # may not

NOT_FOR_PANGEO = "is only for environments that launch a repository; 'pangeo' does not"


def request(**kwargs: Any) -> LaunchRequest:
    return LaunchRequest(**kwargs)


def refusal(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    repos: RepoRules | None = RULES,
) -> dict[str, str]:
    with pytest.raises(OptionsError) as refused:
        authorize(config, member, req, None, repos)
    errors: dict[str, str] = refused.value.errors
    return errors
