"""A launch config, members and a LaunchContext, shared by the context and launch-link tests."""

from __future__ import annotations

from typing import Any

from traitlets.config import Config

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.policy import Member
from eohub.domain.launch.repository import RepoRules
from eohub.spawner.context import LaunchContext
from eohub.spawner.repo_launches import RepoLaunches

SIZES: dict[str, Any] = {
    "small": {"display_name": "Small", "cpu": 1, "memory": "2G"},
    "big": {"display_name": "Big", "cpu": 4, "memory": "8G"},
    "gpu": {"display_name": "GPU", "cpu": 2, "memory": "4G", "gpus": 1},
}
ENVIRONMENTS: dict[str, Any] = {
    "lab": {"display_name": "Lab", "default": True},
    "from-repo": {
        "display_name": "From a repository",
        "repository": True,
        "allowed_groups": ["builders"],
    },
}
ALLOWED = QuotaAnswer(True, "Within quota.", {"core_hours": 5.0})
ADA = Member("ada", frozenset({"builders", "climate"}))
BOB = Member("bob", frozenset({"climate"}))


def config() -> LaunchConfig:
    return parse_launch_config(ENVIRONMENTS, SIZES, {}, backend="local")


def rules() -> RepoRules:
    repo_config = Config()
    repo_config.RepoLaunches.trusted_repos = ["github.com/eohub/*"]
    result: RepoRules = RepoLaunches(config=repo_config).rules()
    return result


def context(member: Member = ADA, **fields: Any) -> LaunchContext:
    return LaunchContext(config(), member, rules(), **fields)
