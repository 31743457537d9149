"""A profile that builds images (jupyterhub-fancy-profiles' ``dynamic_image_building``).

The user names a repository instead of an image; eohub's repository launch resolves it,
finds or builds the image, and the profile's unlisted choice receives that image as its
``{value}``. Real parts as in ``test_repo_launch_kube``: git's http-backend, a real
registry, the BinderHub stand-in and the in-process Kubernetes API.
"""

from __future__ import annotations

from typing import Any

import pytest
from tornado.web import HTTPError

from tests.spawner.test_repo_launch_kube import (
    TOKEN,
    expected_image,
    image_prefix,
    in_registry,
    pod_images,
    repo_launches,
    start_following,
)
from tests.support.git_server import Repo
from tests.support.kube_api import FakeKubeAPI
from tests.support.kube_spawners import FakeAccounting, make_spawner
from tests.support.registry import Registry
from tests.support.repo_services import NamingBinderHub

PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Python",
        "kubespawner_override": {"cpu_guarantee": 0.5, "mem_guarantee": "1G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "dynamic_image_building": {"enabled": True},
                "choices": {
                    "pangeo": {
                        "display_name": "Pangeo",
                        "kubespawner_override": {"image": "quay.io/pangeo/pangeo-notebook:2026"},
                    }
                },
                "unlisted_choice": {
                    "enabled": True,
                    "validation_regex": "quay[.]io/.*",
                    "kubespawner_override": {"image": "{value}"},
                },
            }
        },
    },
    {"display_name": "Plain", "kubespawner_override": {"image": "python:3.12"}},
    {
        # fancy-profiles' "bring your own image": free text only, or a build.
        "display_name": "Own image",
        "kubespawner_override": {"cpu_guarantee": 0.25, "mem_guarantee": "1G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "dynamic_image_building": {"enabled": True},
                "unlisted_choice": {
                    "enabled": True,
                    "validation_regex": "quay[.]io/.*",
                    "kubespawner_override": {"image": "{value}"},
                },
            }
        },
    },
]


async def spawner_for(kube: FakeKubeAPI, launches: Any) -> tuple[Any, FakeAccounting]:
    accounting = FakeAccounting()
    spawner = await make_spawner(
        "alice",
        accounting=accounting,
        api_url=kube.url,
        launch_environments={},
        launch_volumes={},
        profile_list=PROFILES,
        repo_launches=launches,
    )
    return spawner, accounting


async def test_the_built_image_is_the_profiles_image_and_the_repository_is_stored(
    kube: FakeKubeAPI, served: tuple[str, Repo], registry: Registry
) -> None:
    url, repo = served
    async with NamingBinderHub(token=TOKEN, prefix=image_prefix(registry)) as binderhub:
        launches = repo_launches(registry, binderhub.url)
        image = expected_image(launches, url, repo.main)
        registry.push_image(*in_registry(image))
        spawner, accounting = await spawner_for(kube, launches)
        options = {"profile": "python", "repo": url, "ref": "main"}
        await spawner.apply_user_options(spawner, options)
        # The built image does not match the unlisted regex, and need not: the builder
        # made it for this repository. It is not stored as an unlisted value either.
        assert spawner.user_options["profile"] == "python"
        assert spawner.user_options["repo"] == url
        assert "image--unlisted-choice" not in spawner.user_options
        result, _ = await start_following(spawner)

    assert result.startswith("http://")
    assert pod_images(kube) == [image]
    assert [s["image"] for s in accounting.starts] == [image]
    assert accounting.quota_checks[0]["cpu"] == 0.5
    await spawner.stop()


async def test_an_option_with_only_free_text_builds_from_the_repository(
    kube: FakeKubeAPI, served: tuple[str, Repo], registry: Registry
) -> None:
    url, repo = served
    async with NamingBinderHub(token=TOKEN, prefix=image_prefix(registry)) as binderhub:
        launches = repo_launches(registry, binderhub.url)
        image = expected_image(launches, url, repo.main)
        registry.push_image(*in_registry(image))
        spawner, _ = await spawner_for(kube, launches)
        options = {"profile": "own-image", "repo": url, "ref": "main"}
        await spawner.apply_user_options(spawner, options)
        result, _ = await start_following(spawner)
    assert result.startswith("http://")
    assert pod_images(kube) == [image]
    await spawner.stop()


async def test_repository_options_are_refused_for_a_profile_that_builds_nothing(
    kube: FakeKubeAPI, served: tuple[str, Repo], registry: Registry
) -> None:
    url, _ = served
    spawner, _ = await spawner_for(kube, repo_launches(registry, "http://127.0.0.1:9"))
    with pytest.raises(HTTPError) as raised:
        await spawner.apply_user_options(spawner, {"profile": "plain", "repo": url})
    assert raised.value.status_code == 400
    assert "repo: is only for profiles that build images" in raised.value.log_message
    assert kube.names("pods") == []
