"""RepoLaunches: the admin's repository settings, their rules, and the shared instance."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from eohub.domain.repos.specs import RepoError
from eohub.spawner.repo_launches import RepoLaunches, shared_repo_launches


def test_secrets_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOHUB_BINDERHUB_TOKEN", "from-env-token")
    monkeypatch.setenv("EOHUB_REGISTRY_PASSWORD", "from-env-password")
    launches = RepoLaunches()
    assert launches.binderhub_token == "from-env-token"
    assert launches.registry_password == "from-env-password"
    assert launches.builder is None
    assert launches.registry is None


def test_rules_carry_the_settings_and_refuse_a_bad_image_prefix() -> None:
    config = Config()
    config.RepoLaunches.allowed_hosts = ["*.example.org"]
    config.RepoLaunches.trusted_repos = ["github.com/eohub/*"]
    config.RepoLaunches.image_prefix = "registry.example.org/binder/eohub-"
    rules = RepoLaunches(config=config).rules()
    assert rules.policy.allowed_hosts == ("*.example.org",)
    assert rules.policy.trusted_repos == ("github.com/eohub/*",)
    assert rules.image_prefix == "registry.example.org/binder/eohub-"
    config.RepoLaunches.image_prefix = "Bad Prefix/"
    with pytest.raises(RepoError) as refused:
        RepoLaunches(config=config).rules()
    assert list(refused.value.errors) == ["image_prefix"]


def test_clients_are_built_once_and_only_when_configured() -> None:
    config = Config()
    config.RepoLaunches.registry_url = "https://registry.example.org"
    config.RepoLaunches.binderhub_url = "https://binder.example.org"
    launches = RepoLaunches(config=config)
    assert launches.resolver is launches.resolver
    assert launches.registry is not None
    assert launches.registry is launches.registry
    assert launches.builder is not None
    assert launches.builder is launches.builder


def test_one_instance_per_hub_config() -> None:
    first, second = Config(), Config()
    assert shared_repo_launches(first) is shared_repo_launches(first)
    assert shared_repo_launches(first) is not shared_repo_launches(second)
    assert shared_repo_launches(first).config is first
