"""The profile list is checked at hub start-up, from the config as the admin wrote it."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from eohub.domain.launch.fields import LaunchConfigError
from eohub.spawner import profile_list
from eohub.spawner.kube import QuotaKubeSpawner
from eohub.spawner.settings import spawner_settings

PROFILES: list[dict[str, Any]] = [
    {"display_name": "Python", "kubespawner_override": {"image": "python:3"}},
    {
        "display_name": "GPU",
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "cpu": {"display_name": "CPU", "kubespawner_override": {"image": "x"}},
                    "gpu": {"display_name": "GPU", "kubespawner_override": {"privileged": True}},
                },
            }
        },
    },
]


def check_profile_list(spawner_class: Any, config: Config, environments: Any = ()) -> Any:
    values, _ = spawner_settings(config, spawner_class)
    return profile_list.check_profile_list(spawner_class, values, environments)


def config(section: str = "KubeSpawner", **traits: Any) -> Config:
    c = Config()
    for name, value in traits.items():
        setattr(c[section], name, value)
    return c


@pytest.mark.parametrize("section", ["KubeSpawner", "QuotaKubeSpawner"])
def test_a_privileged_choice_stops_the_hub_naming_its_path(section: str) -> None:
    with pytest.raises(LaunchConfigError) as raised:
        check_profile_list(QuotaKubeSpawner, config(section, profile_list=PROFILES))
    assert raised.value.where == (
        "profile_list[1].profile_options.image.choices.gpu.kubespawner_override.privileged"
    )
    assert "allow_unrestricted_pods" in str(raised.value)


def test_allow_unrestricted_pods_lets_it_through() -> None:
    c = config(profile_list=PROFILES)
    c.QuotaKubeSpawner.allow_unrestricted_pods = True
    profiles = check_profile_list(QuotaKubeSpawner, c)
    assert profiles is not None
    assert [p.slug for p in profiles] == ["python", "gpu"]


def test_the_admins_own_loosened_setting_is_not_blamed_on_a_profile() -> None:
    # The base is what the admin set: a profile that only keeps it adds nothing new.
    c = config(profile_list=PROFILES[:1], uid=0)
    assert check_profile_list(QuotaKubeSpawner, c) is not None


@pytest.mark.parametrize(
    ("profile_list", "where"),
    [
        (
            [{"display_name": "A", "kubespawner_override": {"imag": "x"}}],
            "kubespawner_override.imag",
        ),
        ([{"display_name": "A", "slug": "pangeo"}], "profile_list[0].slug"),
        ("not a list", "profile_list"),
    ],
)
def test_a_bad_list_stops_the_hub_naming_the_key(profile_list: Any, where: str) -> None:
    with pytest.raises(LaunchConfigError) as raised:
        check_profile_list(
            QuotaKubeSpawner, config(profile_list=profile_list), environments={"pangeo"}
        )
    assert raised.value.where.endswith(where)


def test_a_callable_list_is_left_to_the_spawn() -> None:
    assert check_profile_list(QuotaKubeSpawner, config(profile_list=lambda s: PROFILES)) is None
    assert check_profile_list(QuotaKubeSpawner, Config()) == ()
