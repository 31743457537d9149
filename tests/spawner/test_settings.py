"""The launch settings: the traits, the optional YAML file, and the hub's start-up check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from eohub.domain.launch.config import LaunchConfigError
from eohub.spawner import check_hub_config
from eohub.spawner.settings import LaunchSettings, load_launch_config

SIZES = {"small": {"display_name": "Small", "cpu": 1, "memory": "2G"}}


def hub_config(backend: str = "eohub-kube", **repo: Any) -> Config:
    config = Config()
    config.JupyterHub.spawner_class = backend
    section = "QuotaKubeSpawner" if backend == "eohub-kube" else "QuotaLocalSpawner"
    envs = {"from-repo": {"repository": True}}
    config[section].launch_environments = envs
    config[section].launch_sizes = SIZES
    for key, value in repo.items():
        config.RepoLaunches[key] = value
    return config


@pytest.mark.parametrize(
    ("backend", "settings", "where"),
    [
        ("eohub-kube", {}, "RepoLaunches.image_prefix"),
        ("eohub-kube", {"image_prefix": "Bad Prefix/"}, "RepoLaunches.image_prefix"),
        ("eohub-local", {"allowed_repos": [""]}, "RepoLaunches.allowed_repos"),
        ("eohub-local", {"trusted_repos": ["ok", "bad\n"]}, "RepoLaunches.trusted_repos"),
    ],
)
def test_bad_repository_settings_stop_the_hub_naming_the_setting(
    backend: str, settings: dict[str, Any], where: str
) -> None:
    with pytest.raises(LaunchConfigError) as caught:
        check_hub_config(hub_config(backend, **settings))
    assert str(caught.value).startswith(where + ":")


def test_good_repository_settings_pass() -> None:
    config = check_hub_config(hub_config(image_prefix="registry.example.org/binder/eohub-"))
    assert config is not None
    assert config.environments["from-repo"].repository
    assert check_hub_config(hub_config("eohub-local")) is not None


def settings_config(backend: str = "eohub-local", **traits: Any) -> Config:
    config = Config()
    config.JupyterHub.spawner_class = backend
    section = "QuotaKubeSpawner" if backend == "eohub-kube" else "QuotaLocalSpawner"
    config[section].launch_sizes = SIZES
    for key, value in traits.items():
        config[section][key] = value
    return config


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "launch.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("traits", "file_text", "where", "words"),
    [
        ({"launch_sizes": {"small": {"cpu": "x", "memory": "2G"}}}, None, "sizes.small.cpu", ""),
        (
            {"launch_environments": {"lab": {"sizes": ["nope"]}}},
            None,
            "environments.lab.sizes[0]",
            "unknown size 'nope'",
        ),
        ({}, "sizes: [unclosed", "launch_config_file", "is not valid YAML"),
        ({}, "- a list\n", "launch_config_file", "must hold a mapping"),
        ({}, "sizes: {}\nimages: {}\n", "launch_config_file", "unknown keys ['images']"),
        ({}, "", None, ""),  # an empty file holds nothing: the traits decide
    ],
)
def test_check_hub_config_names_the_bad_key(
    tmp_path: Path, traits: dict[str, Any], file_text: str | None, where: str | None, words: str
) -> None:
    if file_text is not None:
        traits["launch_config_file"] = write(tmp_path, file_text)
    config = settings_config(**traits)
    if where is None:
        assert check_hub_config(config) is not None
        return
    with pytest.raises(LaunchConfigError) as refused:
        check_hub_config(config)
    assert refused.value.where == where
    assert words in str(refused.value)


def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    with pytest.raises(LaunchConfigError, match=r"^launch_config_file: cannot read "):
        check_hub_config(settings_config(launch_config_file=missing))


@pytest.mark.parametrize(
    "spawner_class",
    [
        None,
        "",
        "simple",
        "jupyterhub.spawner.LocalProcessSpawner",
        "eohub.spawner.settings.load_launch_config",  # not a class
        "eohub.spawner.settings.FILE_KEYS",
        dict,
    ],
)
def test_check_hub_config_ignores_other_spawners(spawner_class: Any) -> None:
    config = Config()
    if spawner_class is not None:
        config.JupyterHub.spawner_class = spawner_class
    config.QuotaLocalSpawner.launch_sizes = {"bad": "not a size"}
    assert check_hub_config(config) is None


@pytest.mark.parametrize(
    "spawner_class", ["eohub-local", "eohub.spawner.local.QuotaLocalSpawner", "class"]
)
def test_check_hub_config_reads_the_spawner_section_and_its_bases(spawner_class: str) -> None:
    from eohub.spawner.local import QuotaLocalSpawner

    config = Config()
    config.JupyterHub.spawner_class = (
        QuotaLocalSpawner if spawner_class == "class" else spawner_class
    )
    config.LaunchSettings.launch_sizes = SIZES
    config.QuotaLocalSpawner.launch_environments = {"lab": {"display_name": "Lab"}}
    launch_config = check_hub_config(config)
    assert launch_config is not None
    assert launch_config.backend == "local"
    assert set(launch_config.sizes) == {"small"}
    assert set(launch_config.environments) == {"lab"}


def test_a_trait_replaces_the_files_key_and_the_file_fills_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sizes:\n  big: {cpu: 4, memory: 8G}\ncharge_groups: [climate]\n",
    )
    settings = LaunchSettings(launch_config_file=path, launch_sizes=SIZES)
    settings.backend = "local"
    launch_config = settings.launch_config()
    assert set(launch_config.sizes) == {"small"}
    assert launch_config.charge_groups == frozenset({"climate"})


def test_the_same_config_is_parsed_once() -> None:
    data = {"sizes": SIZES}
    first = load_launch_config("local", data)
    assert load_launch_config("local", {"sizes": dict(SIZES)}) is first
    assert load_launch_config("kube", data) is not first
    assert load_launch_config("local", data, 2.0) is not first
