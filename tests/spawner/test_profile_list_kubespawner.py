"""A profile list builds the same pod under QuotaKubeSpawner as under plain KubeSpawner.

For every profile list of :mod:`tests.support.profile_lists` (list, dict, sync and async
callable) and every choice listed with it, the pod is built twice from the same base
config: by plain ``kubespawner.KubeSpawner`` (``user_options``, ``load_user_options``,
``get_pod_manifest``) given eohub's security defaults, and by QuotaKubeSpawner
(``authorize_launch``, ``get_pod_manifest``) with no launch environments, sizes or
volumes. The two pods must be equal once eohub's documented additions are removed, and
those additions must be there. Both must be valid Kubernetes objects.

KubeSpawner 7.0 has no dict form: there the plain spawner is given the dict's values
sorted by key, which is what 7.1 makes of the dict.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubespawner
import pytest
from kubespawner import KubeSpawner
from packaging.version import Version

from eohub.domain.accounting.events import event_key
from eohub.spawner.kube import LABEL_PREFIX
from tests.support.kube_api import fake_kubeconfig, validate
from tests.support.kube_spawners import (
    FAKE_HUB,
    NAMESPACE,
    NO_API,
    STARTED,
    fake_orm_spawner,
    fake_user,
    make_spawner,
    serialise,
)
from tests.support.profile_lists import CASES, CORPUS, SECURITY_TRAITS, Corpus, case_id

#: KubeSpawner 7.1 added the dict form of profile_list.
HAS_DICT_FORM = Version(kubespawner.__version__) >= Version("7.1")
USER, GROUP = "alice", "eo-sci"
#: The env vars eohub adds to every launch (eohub.spawner.mixin.launch_env): the group
#: charged, the launch's profile and size names, and the git identity from auth_state.
EOHUB_ENV = (
    "EOHUB_GROUP",
    "EOHUB_ENVIRONMENT",
    "EOHUB_SIZE",
    "GIT_AUTHOR_NAME",
    "GIT_COMMITTER_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_EMAIL",
)


@pytest.fixture(scope="module", autouse=True)
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with fake_kubeconfig(tmp_path_factory.mktemp("kube"), NO_API) as path:
        yield path


def common_traits(corpus: Corpus) -> dict[str, Any]:
    return {
        "namespace": NAMESPACE,
        "k8s_api_host": NO_API,
        "start_timeout": 10,
        "k8s_api_request_retry_timeout": 10,
        **copy.deepcopy(corpus.base),
    }


async def plain_pod(corpus: Corpus, options: dict[str, Any]) -> dict[str, Any]:
    """The pod plain KubeSpawner builds for ``options``."""
    profile_list = corpus.fresh() if HAS_DICT_FORM or not corpus.is_dict else corpus.as_list()
    spawner = KubeSpawner(
        user=fake_user(USER, {GROUP}),
        hub=FAKE_HUB,
        orm_spawner=fake_orm_spawner(),
        api_token="hub-token-for-" + USER,
        oauth_client_id=f"jupyterhub-user-{USER}",
        profile_list=profile_list,
        **copy.deepcopy(SECURITY_TRAITS),
        **common_traits(corpus),
    )
    spawner.user_options = copy.deepcopy(options)
    await spawner.load_user_options()
    return serialise(spawner, await spawner.get_pod_manifest())


async def eohub_pod(corpus: Corpus, options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The pod QuotaKubeSpawner builds for ``options``, and its launch."""
    spawner = await make_spawner(
        USER,
        {GROUP},
        launch_environments={},
        launch_sizes={},
        launch_volumes={},
        profile_list=corpus.fresh(),
        **common_traits(corpus),
    )
    launch = await spawner.authorize_launch(copy.deepcopy(options))
    return serialise(spawner, await spawner.get_pod_manifest()), launch


def strip_eohub(pod: dict[str, Any], launch: Any) -> dict[str, Any]:
    """``pod`` without eohub's documented additions, after checking each is there."""
    pod = copy.deepcopy(pod)
    metadata = pod["metadata"]
    # Labels and annotations under eohub.io/ attribute the pod to the group charged,
    # the profile and the size charged, and the accounting session (kube.py).
    labels = {
        k: metadata["labels"].pop(k)
        for k in list(metadata["labels"])
        if k.startswith(LABEL_PREFIX)
    }
    assert set(labels) == {f"{LABEL_PREFIX}{k}" for k in ("group", "environment", "size")}
    assert labels[f"{LABEL_PREFIX}group"] == GROUP
    assert labels[f"{LABEL_PREFIX}environment"] == launch.environment.name
    annotations = {
        k: metadata["annotations"].pop(k)
        for k in list(metadata["annotations"])
        if k.startswith(LABEL_PREFIX)
    }
    assert annotations == {
        f"{LABEL_PREFIX}group": GROUP,
        f"{LABEL_PREFIX}session-id": event_key("start", USER, "", STARTED),
    }
    if not metadata["annotations"]:
        del metadata["annotations"]  # KubeSpawner leaves out an empty mapping
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    added = {name: env.pop(name)["value"] for name in EOHUB_ENV}
    assert added["EOHUB_GROUP"] == GROUP
    assert added["EOHUB_ENVIRONMENT"] == launch.environment.name == launch.profile.profile.slug
    assert added["EOHUB_SIZE"] == launch.size.name
    assert added["GIT_AUTHOR_NAME"] == "Alice Example"
    assert added["GIT_AUTHOR_EMAIL"] == "alice@example.org"
    container["env"] = list(env.values())
    # Nothing else is stripped. JupyterHub's own JUPYTERHUB_* env does not carry the
    # user_options (which do differ: eohub stores the group and the charge too), so it
    # is the same in both pods and compared like the rest; so are the start page
    # (default_url), the resources, the node selector and the security contexts.
    return pod


@pytest.mark.parametrize(("corpus", "options"), CASES, ids=[case_id(c) for c in CASES])
async def test_a_profile_builds_the_pod_plain_kubespawner_builds(
    corpus: Corpus, options: dict[str, Any]
) -> None:
    expected = await plain_pod(corpus, options)
    pod, launch = await eohub_pod(corpus, options)
    validate(expected)
    validate(pod)
    assert strip_eohub(pod, launch) == expected


async def test_the_dict_form_is_the_list_of_its_values_sorted_by_key() -> None:
    dict_cases = [(c, o) for c, o in CASES if c.is_dict]
    assert dict_cases
    for corpus, options in dict_cases:
        listed = Corpus(corpus.name + "-as-list", corpus.as_list(), corpus.choices)
        pod, launch = await eohub_pod(corpus, options)
        as_list, listed_launch = await eohub_pod(listed, options)
        assert launch.user_options() == listed_launch.user_options()
        assert strip_eohub(pod, launch) == strip_eohub(as_list, listed_launch)


@pytest.mark.parametrize("corpus", CORPUS, ids=[c.name for c in CORPUS])
async def test_the_choices_of_each_list_make_different_pods(corpus: Corpus) -> None:
    # Else the comparison above could pass with overrides applied by neither spawner.
    pods = [await plain_pod(corpus, options) for options in corpus.choices]
    containers = {repr(notebook_parts(p)) for p in pods}
    assert len(containers) >= 2  # some choices are the defaults written out: the same pod


def notebook_parts(pod: dict[str, Any]) -> tuple[Any, ...]:
    container = pod["spec"]["containers"][0]
    env = sorted((e["name"], e.get("value")) for e in container["env"])
    return container["image"], container["resources"], pod["spec"].get("nodeSelector"), env
