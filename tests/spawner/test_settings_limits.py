"""Session limits in the spawner settings: the ``session_limits`` trait or file key, each
environment's and profile's limits, and the hub's start-up check naming a bad one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from eohub.domain.launch.config import LaunchConfigError
from eohub.domain.launch.session_limits import LimitRules
from eohub.spawner import check_hub_config
from eohub.spawner.kube import QuotaKubeSpawner
from eohub.spawner.local import QuotaLocalSpawner
from eohub.spawner.mixin import QuotaSpawnerMixin
from eohub.spawner.settings import LaunchSettings

SIZES = {"small": {"cpu": 1, "memory": "2G"}}
LAB = {"image": "quay.io/eohub/lab:1"}
PROFILE = {"display_name": "Lab", "kubespawner_override": {"image": "quay.io/eohub/lab:1"}}


def hub_config(backend: str, **traits: Any) -> Config:
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


# (id, backend, traits, the launch_config_file's text, the key path named, words)
BAD: list[tuple[str, str, dict[str, Any], str | None, str, str]] = [
    (
        "a hub default",
        "eohub-local",
        {"session_limits": {"idle_timeout": "2 hours"}},
        None,
        "session_limits.idle_timeout",
        "must be a duration like 3600, '30m', '2h' or '7d'",
    ),
    (
        "an unknown hub key",
        "eohub-kube",
        {"session_limits": {"max_time": "2h"}},
        None,
        "session_limits.max_time",
        "is not a setting; use idle_timeout, max_duration, groups",
    ),
    (
        "a hub group",
        "eohub-kube",
        {"session_limits": {"groups": {"climate": {"max_duration": "400d"}}}},
        None,
        "session_limits.groups.climate.max_duration",
        "must be between 0 (no limit) and 31622400 seconds",
    ),
    (
        "an environment's group",
        "eohub-kube",
        {"launch_environments": {"gpu": {**LAB, "group_limits": {"climate": {"max": 1}}}}},
        None,
        "environments.gpu.group_limits.climate.max",
        "is not a limit",
    ),
    (
        "an environment's own",
        "eohub-local",
        {"launch_environments": {"gpu": {"max_duration": "eight hours"}}},
        None,
        "environments.gpu.max_duration",
        "must be a duration",
    ),
    (
        "in the file",
        "eohub-local",
        {},
        "session_limits:\n  groups:\n    climate: 2d\n",
        "session_limits.groups.climate",
        "must be a mapping of limits",
    ),
    (
        "a profile's",
        "eohub-kube",
        {"profile_list": [{**PROFILE, "eohub": {"group_limits": {"eo": {"idle_timeout": "x"}}}}]},
        None,
        "profile_list[0].eohub.group_limits.eo.idle_timeout",
        "must be a duration",
    ),
]


@pytest.mark.parametrize(
    ("backend", "traits", "file_text", "where", "words"),
    [c[1:] for c in BAD],
    ids=[c[0] for c in BAD],
)
def test_a_bad_limit_stops_the_hub_naming_the_key(
    tmp_path: Path,
    backend: str,
    traits: dict[str, Any],
    file_text: str | None,
    where: str,
    words: str,
) -> None:
    if file_text is not None:
        traits["launch_config_file"] = write(tmp_path, file_text)
    with pytest.raises(LaunchConfigError) as refused:
        check_hub_config(hub_config(backend, **traits))
    assert refused.value.where == where
    assert str(refused.value).startswith(f"{where}: ")
    assert words in str(refused.value)


def test_good_limits_start_the_hub(tmp_path: Path) -> None:
    config = check_hub_config(
        hub_config(
            "eohub-kube",
            session_limits={"idle_timeout": "2h", "groups": {"climate": {"max_duration": "3d"}}},
            launch_environments={"gpu": {**LAB, "max_duration": "8h", "idle_timeout": 0}},
            profile_list=[{**PROFILE, "eohub": {"max_duration": "4h"}}],
        )
    )
    assert config is not None
    assert config.limit_rules == LimitRules(
        {"idle_timeout": 7200}, {"climate": {"max_duration": 3 * 86400}}
    )
    assert config.environments["gpu"].own_limits == {"idle_timeout": 0, "max_duration": 8 * 3600}


def test_the_trait_replaces_the_files_session_limits(tmp_path: Path) -> None:
    path = write(tmp_path, "session_limits: {idle_timeout: 1h, max_duration: 1d}\n")
    settings = LaunchSettings(launch_config_file=path, launch_sizes=SIZES)
    settings.backend = "local"
    assert settings.launch_config().limit_rules == LimitRules(
        {"idle_timeout": 3600, "max_duration": 86400}
    )
    settings.session_limits = {"max_duration": "2d"}
    assert settings.launch_config().limit_rules == LimitRules({"max_duration": 2 * 86400})


@pytest.mark.parametrize("spawner_class", [QuotaKubeSpawner, QuotaLocalSpawner])
def test_the_limit_settings_are_documented_for_admins(spawner_class: type) -> None:
    traits = spawner_class.class_traits()
    for name in ("session_limits", "idle_culler_services"):
        assert traits[name].metadata.get("config") is True
    assert "c.QuotaKubeSpawner.session_limits = {" in traits["session_limits"].help
    assert "jupyterhub-idle-culler" in traits["idle_culler_services"].help
    assert traits["idle_culler_services"].default() == [
        "jupyterhub-idle-culler",
        "idle-culler",
        "cull-idle",
    ]
    assert issubclass(spawner_class, QuotaSpawnerMixin)


def test_the_deadline_backstop_is_a_kubernetes_setting() -> None:
    trait = QuotaKubeSpawner.class_traits()["deadline_backstop"]
    assert trait.metadata.get("config") is True
    assert trait.default_value == 600
    assert "backstop" in trait.help
    assert "deadline_backstop" not in QuotaLocalSpawner.class_traits()


# The spawner refuses these only when the hub builds it for a server (the first spawn):
# the hub's start-up check names them first.
# (id, backend, section, setting, value, the key named, words)
BAD_SETTINGS: list[tuple[str, str, str, str, Any, str, str]] = [
    (
        "a negative backstop",
        "eohub-kube",
        "QuotaKubeSpawner",
        "deadline_backstop",
        -5,
        "QuotaKubeSpawner.deadline_backstop",
        "must be a whole number of at least 0, not -5",
    ),
    (
        "a backstop in words",
        "eohub-kube",
        "QuotaKubeSpawner",
        "deadline_backstop",
        "ten",
        "QuotaKubeSpawner.deadline_backstop",
        "must be a whole number of at least 0, not 'ten'",
    ),
    (
        "culler services that are not names",
        "eohub-local",
        "QuotaLocalSpawner",
        "idle_culler_services",
        [1, 2],
        "QuotaLocalSpawner.idle_culler_services",
        "must be a list of strings, not [1, 2]",
    ),
    (
        "culler services set on the mixin's section",
        "eohub-kube",
        "QuotaSpawnerMixin",
        "idle_culler_services",
        {"jupyterhub-idle-culler": True},
        "QuotaSpawnerMixin.idle_culler_services",
        "must be a list of strings, not {'jupyterhub-idle-culler': True}",
    ),
    (
        "a launch setting of the wrong type",
        "eohub-local",
        "LaunchSettings",
        "launch_volumes",
        ["home"],
        "LaunchSettings.launch_volumes",
        "must be a dict, not ['home']",
    ),
    (
        "a budget threshold in words",
        "eohub-kube",
        "QuotaKubeSpawner",
        "budget_min_hours",
        "one",
        "QuotaKubeSpawner.budget_min_hours",
        "must be a number, not 'one'",
    ),
]


@pytest.mark.parametrize(
    ("backend", "section", "setting", "value", "where", "words"),
    [c[1:] for c in BAD_SETTINGS],
    ids=[c[0] for c in BAD_SETTINGS],
)
def test_a_setting_of_the_wrong_type_stops_the_hub_naming_it(
    backend: str, section: str, setting: str, value: Any, where: str, words: str
) -> None:
    config = hub_config(backend)
    config[section][setting] = value
    with pytest.raises(LaunchConfigError) as refused:
        check_hub_config(config)
    assert refused.value.where == where
    assert str(refused.value) == f"{where}: {words}"


# (id, backend, section, setting, value)
GOOD_SETTINGS: list[tuple[str, str, str, str, Any]] = [
    ("no backstop beyond max_duration", "eohub-kube", "QuotaKubeSpawner", "deadline_backstop", 0),
    ("an hour's backstop", "eohub-kube", "QuotaKubeSpawner", "deadline_backstop", 3600),
    ("no culler", "eohub-local", "QuotaLocalSpawner", "idle_culler_services", []),
    ("a culler", "eohub-kube", "QuotaKubeSpawner", "idle_culler_services", ["my-culler"]),
    ("a tuple of cullers", "eohub-kube", "QuotaKubeSpawner", "idle_culler_services", ("a", "b")),
]


@pytest.mark.parametrize(
    ("backend", "section", "setting", "value"),
    [c[1:] for c in GOOD_SETTINGS],
    ids=[c[0] for c in GOOD_SETTINGS],
)
def test_good_settings_start_the_hub(backend: str, section: str, setting: str, value: Any) -> None:
    config = hub_config(backend)
    config[section][setting] = value
    assert check_hub_config(config) is not None


def test_a_culler_added_to_the_default_list_starts_the_hub() -> None:
    config = hub_config("eohub-kube")
    config.QuotaKubeSpawner.idle_culler_services.append("my-culler")
    assert check_hub_config(config) is not None
    config.QuotaKubeSpawner.idle_culler_services.append(7)
    with pytest.raises(LaunchConfigError, match=r"^QuotaKubeSpawner.idle_culler_services: "):
        check_hub_config(config)


def test_the_check_leaves_the_spawners_own_settings_as_they_were() -> None:
    config = hub_config("eohub-kube")
    config.QuotaKubeSpawner.deadline_backstop = -1
    with pytest.raises(LaunchConfigError):
        check_hub_config(config)
    trait = QuotaKubeSpawner.class_traits()["deadline_backstop"]
    assert (trait.this_class, trait.name, trait.min) == (QuotaKubeSpawner, "deadline_backstop", 0)
    culler = QuotaKubeSpawner.class_traits()["idle_culler_services"]
    assert culler.this_class is QuotaSpawnerMixin
    assert culler._trait.this_class is QuotaSpawnerMixin  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("deadline_backstop", -5), ("deadline_backstop", "ten"), ("idle_culler_services", [1, 2])],
)
def test_the_spawner_itself_refuses_a_bad_value(setting: str, value: Any) -> None:
    from traitlets import TraitError

    spawner_class = QuotaKubeSpawner if setting == "deadline_backstop" else QuotaLocalSpawner
    with pytest.raises(TraitError):
        spawner_class(config=Config({spawner_class.__name__: {setting: value}}))
